"""Build a Q-network from its config and its shape (the one place that knows every variant)."""

from __future__ import annotations

from torch import nn

from mtopt.learning.care import CareMixture
from mtopt.learning.networks import NetworkShape, QNetwork, QNetworkConfig, TaskHeads
from mtopt.learning.object_networks import ObjectActionQNetwork, ObjectMLPQNetwork
from mtopt.learning.q_networks import ConvQNetwork, MLPQNetwork
from mtopt.learning.soft_modular import SoftModular


def build_q_network(config: QNetworkConfig, shape: NetworkShape) -> QNetwork:
    """The Q-network of ``config`` with the sizes of ``shape`` (float32, on the CPU).
    ``state_encoder: auto`` must be resolved first (:func:`~mtopt.learning.networks.
    resolve_network`). The MLP trunks get their ``architecture``'s parts here
    (:func:`add_architecture`); the conv trunk refuses any but ``mtopt``."""
    if config.kind == "mlp" and config.state_encoder == "auto":
        raise ValueError(
            "network.state_encoder 'auto' is resolved for an environment by resolve_network() "
            "before the network is built"
        )
    if config.kind == "conv":
        return ConvQNetwork(config, shape)
    net: MLPQNetwork
    if config.state_encoder == "objects":
        net = ObjectMLPQNetwork(config, shape)
    elif config.state_encoder == "objects-action":
        net = ObjectActionQNetwork(config, shape)
    else:
        net = MLPQNetwork(config, shape)
    add_architecture(net)
    return net


def add_architecture(net: MLPQNetwork) -> None:
    """Give a built MLP Q-network the parts of its ``config.architecture`` (after its own
    layers, so that ``mtopt``'s parameters keep their names and initial draws):

    * ``soft-modular``: :class:`~mtopt.learning.soft_modular.SoftModular` as ``net.modular``
      in place of the ``merged`` FC layers, and output heads of the modules' width;
    * ``care``: :class:`~mtopt.learning.care.CareMixture` as ``net.care``, holding
      ``care_encoders - 1`` fresh copies of the layers named by ``net.STATE_ENCODER``.
    """
    cfg, shape = net.config, net.shape
    if cfg.architecture == "soft-modular":
        net.merged = nn.Sequential()  # the routed modules replace these layers
        net.modular = SoftModular(cfg, shape)
        if net.modular.module_width != cfg.mlp_width:
            heads = shape.task_capacity if cfg.heads == "multi" else 1
            net.heads = TaskHeads(net.modular.module_width, cfg.fc_width, heads)
    elif cfg.architecture == "care":
        net.care = CareMixture({n: getattr(net, n) for n in net.STATE_ENCODER}, cfg, shape)
