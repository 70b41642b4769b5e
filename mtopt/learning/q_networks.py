"""The two Q-network trunks: the image conv net of paper Fig. 8 and a state MLP.

Both implement :class:`mtopt.learning.networks.QNetwork`; build them with
:func:`mtopt.learning.network_builder.build_q_network`.

Where the inputs enter:

* **Conv** (Fig. 8): the image goes through ``tower_layers`` convs (``embed``, once per
  state). Action, gripper status/height and the one-hot task go through two FC layers; the
  first FC layer is split into a per-state part (gripper + task, computed in ``embed`` as
  ``StateEmbedding.context``) and a per-action part -- the sum equals one FC layer on the
  concatenation. The result is tiled over the feature map's ``h x w`` and added to it, then
  ``head_conv_layers`` convs, flatten, and the 3-FC-layer output head(s).
* **MLP**: state + gripper + one-hot task are embedded once per state (``embed``); the action
  is embedded per sample, added, followed by ``mlp_merged_layers`` FC layers and the head(s).

``architecture`` options of the MLP trunks hook in at two places: CARE
(:mod:`mtopt.learning.care`) mixes several copies of the state encoder in ``embed``
(:meth:`MLPQNetwork._mixed`), soft modularization (:mod:`mtopt.learning.soft_modular`)
computes routes in ``embed`` and replaces the merged FC layers per action
(:meth:`MLPQNetwork._merged`). :func:`mtopt.learning.network_builder.add_architecture` adds
them to the built network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mtopt.learning.networks import (
    NetworkShape,
    Observation,
    QNetwork,
    QNetworkConfig,
    StateEmbedding,
    TaskHeads,
    input_features,
    task_one_hot,
)

if TYPE_CHECKING:
    from mtopt.learning.care import CareMixture
    from mtopt.learning.soft_modular import SoftModular


def _he_init(module: nn.Module) -> None:
    """He (fan-in, ReLU) initialisation of every conv / linear layer, zero biases.

    The networks have no normalisation layers; PyTorch's default init shrinks the signal
    about 3x in variance per ReLU layer, which leaves a 16-conv stack nearly constant at init.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _pooled(size: int) -> int:
    """Spatial size after a 2x2 max-pool with ``ceil_mode=True``."""
    return (size + 1) // 2


def conv_output_size(
    config: QNetworkConfig, image_size: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Spatial sizes ``(tower_hw, head_hw)`` of the conv feature maps for ``config`` on square
    images of side ``image_size``."""
    h = w = image_size
    h, w = (h + 1) // 2, (w + 1) // 2  # first conv: kernel 5, stride 2, padding 2
    for i in range(config.tower_layers):
        if i in config.tower_pool_after:
            h, w = _pooled(h), _pooled(w)
    tower = (h, w)
    for i in range(config.head_conv_layers):
        if i in config.head_pool_after:
            h, w = _pooled(h), _pooled(w)
    return tower, (h, w)


def _conv_stack(
    in_channels: int, channels: int, layers: int, pool_after: tuple[int, ...], first_stride: int
) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(layers):
        if i == 0 and first_stride > 1:
            modules.append(nn.Conv2d(in_channels, channels, 5, stride=first_stride, padding=2))
        else:
            modules.append(nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1))
        modules.append(nn.ReLU(inplace=True))
        if i in pool_after:
            modules.append(nn.MaxPool2d(2, ceil_mode=True))
    return nn.Sequential(*modules)


class ConvQNetwork(QNetwork):
    """Image Q-network of paper Fig. 8 (7 convs, FC action/state/task merge, 9 convs, FCs)."""

    def __init__(self, config: QNetworkConfig, shape: NetworkShape) -> None:
        super().__init__()
        if config.kind != "conv":
            raise ValueError(f"ConvQNetwork needs kind='conv', got {config.kind!r}")
        if shape.image_size < 1:
            raise ValueError(f"ConvQNetwork needs an image size >= 1, got {shape.image_size}")
        if config.architecture != "mtopt":
            raise ValueError(
                f"architecture {config.architecture!r} needs the state trunk (kind 'mlp', "
                "--obs state); the conv trunk takes architecture 'mtopt' only"
            )
        self.config, self.shape = config, shape
        c, width = config.conv_channels, config.fc_width
        self.tower = _conv_stack(3, c, config.tower_layers, config.tower_pool_after, 2)
        self.context_fc = nn.Linear(shape.input_dim + shape.task_capacity, width, bias=False)
        self.action_fc = nn.Linear(shape.action_dim, width)
        self.merge_fc = nn.Linear(width, c)
        self.head_convs = _conv_stack(c, c, config.head_conv_layers, config.head_pool_after, 1)
        (_, (h, w)) = conv_output_size(config, shape.image_size)
        _he_init(self)
        self.heads = TaskHeads(
            c * h * w, width, shape.task_capacity if config.heads == "multi" else 1
        )

    def embed(self, obs: Observation, task: torch.Tensor) -> StateEmbedding:
        if "image" not in obs:
            raise ValueError(f"conv Q-network needs obs['image']; got keys {sorted(obs)}")
        image = obs["image"]
        size = self.shape.image_size
        if image.dim() != 4 or tuple(image.shape[1:]) != (size, size, 3):
            raise ValueError(
                f"image must have shape (B, {size}, {size}, 3), got {tuple(image.shape)}"
            )
        batch = image.shape[0]
        # (B, H, W, 3) -> NCHW view whose memory is channels-last; float() keeps the strides.
        x = image.permute(0, 3, 1, 2).float().div_(255.0)
        features = self.tower(x)
        ctx_in = torch.cat(
            [
                input_features(obs, batch, self.shape),
                task_one_hot(task, self.shape.task_capacity),
            ],
            1,
        )
        return StateEmbedding(features, self.context_fc(ctx_in), task.long())

    def q_logits_from_embedding(
        self, embedding: StateEmbedding, actions: torch.Tensor
    ) -> torch.Tensor:
        self._check_actions(embedding, actions)
        b, n = actions.shape[:2]
        act = torch.relu(self.action_fc(actions) + embedding.context.unsqueeze(1))
        act = self.merge_fc(act)  # (B, N, C)
        feat = embedding.features.permute(0, 2, 3, 1)  # (B, h, w, C)
        _, h, w, c = feat.shape
        # tile: (B, 1, h, w, C) + (B, N, 1, 1, C) -> (B*N, h, w, C), then an NCHW view
        x = (feat.unsqueeze(1) + act[:, :, None, None, :]).reshape(b * n, h, w, c)
        x = self.head_convs(x.permute(0, 3, 1, 2))
        x = x.reshape(b, n, -1)
        return self.heads(x, embedding.task)


class MLPQNetwork(QNetwork):
    """Q-network on the low-dimensional ``state`` observation."""

    STATE_ENCODER: tuple[str, ...] = ("state_tower",)
    """Names of the modules that make the per-state encoder (CARE copies them)."""

    def __init__(self, config: QNetworkConfig, shape: NetworkShape) -> None:
        super().__init__()
        if config.kind != "mlp":
            raise ValueError(f"MLPQNetwork needs kind='mlp', got {config.kind!r}")
        if shape.state_dim < 1:
            raise ValueError(
                f"MLPQNetwork needs state_dim >= 1 (the size of obs['state']), "
                f"got {shape.state_dim}"
            )
        self.config, self.shape = config, shape
        width = config.mlp_width
        in_dim = shape.state_dim + shape.input_dim + shape.task_capacity
        layers: list[nn.Module] = []
        for i in range(config.mlp_state_layers):
            layers.append(nn.Linear(in_dim if i == 0 else width, width))
            if i < config.mlp_state_layers - 1:
                layers.append(nn.ReLU(inplace=True))
        self.state_tower = nn.Sequential(*layers)
        self.action_fc = nn.Linear(shape.action_dim, width)
        merged: list[nn.Module] = []
        for _ in range(config.mlp_merged_layers):
            merged += [nn.Linear(width, width), nn.ReLU(inplace=True)]
        self.merged = nn.Sequential(*merged)
        _he_init(self)
        self.heads = TaskHeads(
            width, config.fc_width, shape.task_capacity if config.heads == "multi" else 1
        )
        self.care: CareMixture | None = None  # architecture: care (add_architecture)
        self.modular: SoftModular | None = None  # architecture: soft-modular

    def _mixed(
        self, run: Callable[[nn.Module], dict[str, torch.Tensor]], task: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The state encoder's per-state outputs: ``run(self)``, or under ``care`` the
        attention-weighted mixture of ``run`` over the encoders plus the task context."""
        if self.care is not None:
            return self.care.mix(run, self, task)
        if self.config.architecture != "mtopt" and self.modular is None:
            raise ValueError(
                f"this network lacks its architecture {self.config.architecture!r} parts: "
                "build it with mtopt.learning.network_builder.build_q_network"
            )
        return run(self)

    def _state_embedding(
        self,
        features: torch.Tensor,
        task: torch.Tensor,
        extras: dict[str, torch.Tensor] | None = None,
    ) -> StateEmbedding:
        """The :class:`StateEmbedding` of ``features``; ``soft-modular`` adds its routes."""
        if self.modular is not None:
            extras = {**(extras or {}), **self.modular.routes(features, task)}
        return StateEmbedding(
            features, features.new_zeros(features.shape[0], 0), task.long(), extras
        )

    def _merged(self, x: torch.Tensor, embedding: StateEmbedding) -> torch.Tensor:
        """The per-action layers after the action is added: the ``merged`` FC layers, or the
        routed modules of ``soft-modular``."""
        return self.merged(x) if self.modular is None else self.modular(x, embedding)

    def embed(self, obs: Observation, task: torch.Tensor) -> StateEmbedding:
        if "state" not in obs:
            raise ValueError(f"MLP Q-network needs obs['state']; got keys {sorted(obs)}")
        state = obs["state"]
        if state.dim() != 2 or state.shape[1] != self.shape.state_dim:
            raise ValueError(
                f"state must have shape (B, {self.shape.state_dim}), got {tuple(state.shape)}"
            )
        batch = state.shape[0]
        x = torch.cat(
            [
                state.float(),
                input_features(obs, batch, self.shape),
                task_one_hot(task, self.shape.task_capacity),
            ],
            dim=1,
        )
        # pre-activation; the action embedding is added to it
        features = self._mixed(lambda enc: {"features": enc.state_tower(x)}, task)["features"]
        return self._state_embedding(features, task)

    def q_logits_from_embedding(
        self, embedding: StateEmbedding, actions: torch.Tensor
    ) -> torch.Tensor:
        self._check_actions(embedding, actions)
        x = torch.relu(embedding.features.unsqueeze(1) + self.action_fc(actions))
        return self.heads(self._merged(x, embedding), embedding.task)
