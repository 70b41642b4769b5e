"""Build a Q-network from its config and its shape (the one place that knows every variant)."""

from __future__ import annotations

from mtopt.learning.networks import NetworkShape, QNetwork, QNetworkConfig
from mtopt.learning.object_networks import ObjectActionQNetwork, ObjectMLPQNetwork
from mtopt.learning.q_networks import ConvQNetwork, MLPQNetwork


def build_q_network(config: QNetworkConfig, shape: NetworkShape) -> QNetwork:
    """The Q-network of ``config`` with the sizes of ``shape`` (float32, on the CPU)."""
    if config.kind == "conv":
        return ConvQNetwork(config, shape)
    if config.state_encoder == "objects":
        return ObjectMLPQNetwork(config, shape)
    if config.state_encoder == "objects-action":
        return ObjectActionQNetwork(config, shape)
    return MLPQNetwork(config, shape)
