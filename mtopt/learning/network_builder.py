"""Build a Q-network from its config and its shape (the one place that knows every variant)."""

from __future__ import annotations

from mtopt.learning.networks import NetworkShape, QNetwork, QNetworkConfig
from mtopt.learning.object_networks import ObjectActionQNetwork, ObjectMLPQNetwork
from mtopt.learning.q_networks import ConvQNetwork, MLPQNetwork


def build_q_network(config: QNetworkConfig, shape: NetworkShape) -> QNetwork:
    """The Q-network of ``config`` with the sizes of ``shape`` (float32, on the CPU).
    ``state_encoder: auto`` must be resolved first (:func:`~mtopt.learning.networks.
    resolve_network`)."""
    if config.kind == "mlp" and config.state_encoder == "auto":
        raise ValueError(
            "network.state_encoder 'auto' is resolved for an environment by resolve_network() "
            "before the network is built"
        )
    if config.kind == "conv":
        return ConvQNetwork(config, shape)
    if config.state_encoder == "objects":
        return ObjectMLPQNetwork(config, shape)
    if config.state_encoder == "objects-action":
        return ObjectActionQNetwork(config, shape)
    return MLPQNetwork(config, shape)
