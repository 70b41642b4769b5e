"""Q-network configuration, common interface and output heads (paper App. 7.1, Fig. 8 / 9).

A Q-network scores ``(state, action, task)`` with a sigmoid in ``[0, 1]``. The interface is
split so that CEM can score many actions per state cheaply:

* :meth:`QNetwork.embed` ``(obs, task) -> StateEmbedding`` runs the per-state part once
  (conv: the image tower; MLP: the state tower) and also pre-computes the per-state
  contribution of the gripper state and the one-hot task, which are fixed for a state;
* :meth:`QNetwork.q_logits_from_embedding` ``(embedding, actions (B, N, A)) -> (B, N)``
  tiles the embedding over ``N`` actions and runs the per-action part;
* :meth:`QNetwork.logits` / :meth:`QNetwork.forward` ``(obs, actions (B, A), task (B,))``
  are the single-action convenience paths (``forward`` returns the sigmoid).

**Task input.** ``task`` is always an integer index tensor ``(B,)`` holding each row's
one-hot slot (:meth:`mtopt.tasks.TaskSet.slot`); the network expands it to a one-hot vector of
width ``task_capacity`` internally. The one-hot vector is an *input* in every variant (paper
App. 7.1); the multi-headed variant also uses the index to select the row's output head.

**Observations** are a dict of tensors: ``image`` uint8 ``(B, H, W, 3)`` (conv variant; made
float in ``[0, 1]`` and NCHW with channels-last memory inside), ``state`` float ``(B, D)`` (MLP
variant), ``gripper_status`` and ``gripper_height`` float ``(B, 1)`` (or ``(B,)``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

from mtopt.tasks import DEFAULT_CAPACITY

Observation = Mapping[str, torch.Tensor]
"""A batch of observations: a mapping from observation key to a ``(B, ...)`` tensor."""

KINDS = ("conv", "mlp")
"""Allowed values of :attr:`QNetworkConfig.kind`."""
HEADS = ("single", "multi")
"""Allowed values of :attr:`QNetworkConfig.heads`."""
ENCODERS = ("flat", "objects", "objects-action")
"""Allowed values of :attr:`QNetworkConfig.state_encoder`."""


@dataclass(frozen=True)
class QNetworkConfig:
    """Architecture of a Q-network; ``build_q_network(config)`` makes the module."""

    kind: str = "conv"
    """Trunk: ``"conv"`` (image, paper Fig. 8) or ``"mlp"`` (low-dimensional ``state``)."""
    heads: str = "single"
    """``"single"`` output head, or ``"multi"``: one 3-layer head per task slot (Fig. 9)."""
    task_capacity: int = DEFAULT_CAPACITY
    """Width of the one-hot task input (the task set's ``capacity``)."""
    action_dim: int = 6
    """Action dimensions ``A`` (workcell: dx, dy, dz, dyaw, gripper, terminate)."""
    state_dim: int = 0
    """Dimensions ``D`` of the ``state`` observation (MLP only). 0 means "not known yet" (e.g.
    filled in from the data with ``dataclasses.replace``); building an MLP needs it > 0."""
    image_height: int = 64
    """Image height in pixels (conv only; fixes the size of the flattened feature map)."""
    image_width: int = 64
    """Image width in pixels (conv only)."""
    conv_channels: int = 64
    """Channels of every conv layer and of the tiled action/task embedding (conv only)."""
    tower_layers: int = 7
    """Conv layers applied to the image before the action is merged in (paper: 7)."""
    tower_pool_after: tuple[int, ...] = (0, 3)
    """Tower layer indices followed by a 2x2 max-pool (the first layer also has stride 2)."""
    head_conv_layers: int = 9
    """Conv layers after the merge (paper: 9)."""
    head_pool_after: tuple[int, ...] = (0,)
    """Post-merge conv layer indices followed by a 2x2 max-pool. The default merges at 8x8
    (64x64 images) and pools after the first post-merge conv: the post-merge convs run once
    per CEM sample, and at 4x4 they cost ~2.5x less than at 8x8."""
    fc_width: int = 64
    """Width of the action/gripper/task FC layers (conv) and of the output head layers."""
    mlp_width: int = 256
    """Hidden width of the MLP trunk (state tower, action embedding, merged layers)."""
    mlp_state_layers: int = 2
    """FC layers embedding state + gripper + task once per state (MLP only, >= 1)."""
    mlp_merged_layers: int = 1
    """FC layers after adding the action embedding, before the output head(s) (MLP, >= 0)."""
    state_encoder: str = "objects"
    """MLP state encoder: ``"objects"`` (a shared per-object encoder over the workcell's object
    slots, gripper-relative positions, pooled), ``"objects-action"`` (the same, plus a
    per-(object, action) branch that sees each object relative to the gripper *after* the
    action; see :mod:`mtopt.learning.object_networks`) or ``"flat"`` (one MLP over the whole
    vector, for any ``state_dim``). The conv trunk ignores it."""
    gripper_frame: bool = True
    """``objects`` encoders: also give every object slot its offset in the gripper's frame
    (along and across the closing direction) and its heading relative to the gripper's. Whether
    an object is between the fingers is a function of exactly these; without them the per-slot
    encoder never sees the gripper's yaw and the relation is lost in the pooling."""
    motion_obs: bool = False
    """Also feed the gripper's achieved translation during the last step (observation
    ``gripper_motion``) with its status and height. The state holds no history, so a push
    blocked by a finger resting on a neighbour looks like any other push; with the achieved
    motion it does not (logs collected before this observation existed lack it)."""
    pair_geometry: bool = True
    """``objects-action`` encoder: also feed every (action, object) pair the object's offset
    from the gripper *after* the move in the turned gripper's frame, its distance and the
    absolute offsets (:func:`mtopt.learning.object_networks.pair_geometry`), so that "the move
    brings an object between the fingers" is linear in the pair's inputs."""
    slot_action_width: int = 48
    """``objects-action`` encoder: width of the per-(object, action) layers that score where
    each object would be relative to the gripper after the action."""
    action_translation: float = 0.05
    """``objects-action`` encoder: metres of gripper translation per unit of dx/dy/dz (the
    workcell's ``max_translation``), used to move the gripper frame by the action."""
    action_yaw: float = 0.25
    """``objects-action`` encoder: radians of gripper rotation per unit of dyaw (the
    workcell's ``max_yaw``)."""
    length_scale: float = 0.05
    """``objects`` encoders: metres per unit of the network's geometric inputs. Positions,
    offsets, the finger opening and the gripper height are divided by it, so that a one-step
    move (5 cm) is an input change of 1 rather than 0.05 (raw metres left the network nearly
    blind to the finger opening that tells a held object from an empty grasp)."""
    gripper_state_dim: int = 6
    """``objects`` encoder: leading state entries describing the gripper (x, y, z, ...)."""
    object_dim: int = 14
    """``objects`` encoder: state entries per object slot (position xyz first)."""
    plate_state_dim: int = 4
    """``objects`` encoder: trailing state entries describing the plate (x, y first)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.heads not in HEADS:
            raise ValueError(f"heads must be one of {HEADS}, got {self.heads!r}")
        positive = ("task_capacity", "action_dim", "image_height", "image_width")
        positive += ("conv_channels", "tower_layers", "head_conv_layers", "fc_width")
        positive += ("mlp_width", "mlp_state_layers", "slot_action_width")
        for name in positive:
            _check_int(name, getattr(self, name), 1)
        _check_int("mlp_merged_layers", self.mlp_merged_layers, 0)
        for name in ("action_translation", "action_yaw", "length_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if self.state_encoder not in ENCODERS:
            raise ValueError(f"state_encoder must be one of {ENCODERS}, got {self.state_encoder!r}")
        if self.state_encoder != "flat" and self.state_dim > 0:
            body = self.state_dim - self.gripper_state_dim - self.plate_state_dim
            if body < self.object_dim or body % self.object_dim:
                raise ValueError(
                    f"state_dim {self.state_dim} does not split into {self.gripper_state_dim} "
                    f"gripper + k * {self.object_dim} object + {self.plate_state_dim} plate "
                    f"entries (state_encoder={self.state_encoder!r})"
                )
        _check_int("state_dim", self.state_dim, 0)
        for name, depth in (
            ("tower_pool_after", self.tower_layers),
            ("head_pool_after", self.head_conv_layers),
        ):
            indices = getattr(self, name)
            if not all(isinstance(i, int) and 0 <= i < depth for i in indices):
                raise ValueError(
                    f"{name} must hold layer indices in [0, {depth - 1}], got {indices!r}"
                )


LEGACY_FIELD_VALUES: dict[str, object] = {
    "gripper_frame": False,
    "pair_geometry": False,
    "state_encoder": "flat",
}
"""Fields added to :class:`QNetworkConfig` after checkpoints were first written, with the value
that reproduces the older networks. A stored config that lacks one of them was written before
it existed and is read with this value (:func:`stored_network_config`), not the new default."""


REMOVED_FIELD_VALUES: dict[str, object] = {"command_obs": False, "motion_model": False}
"""Fields removed from :class:`QNetworkConfig`, with the value under which a stored network
did not use them. A stored config holding one of them with that value is read without it; with
another value it describes a network this code does not build, and is refused."""
REMOVED_DEPENDENT_FIELDS = ("motion_model_width", "motion_model_history")
"""Removed fields that only had an effect with a removed field on; dropped whatever their value."""


def stored_network_config(stored: Mapping[str, object]) -> QNetworkConfig:
    """The :class:`QNetworkConfig` of a checkpoint's stored ``network_config`` dict."""
    from mtopt.config import from_dict

    current = {**LEGACY_FIELD_VALUES, **stored}
    for name, off in REMOVED_FIELD_VALUES.items():
        value = current.pop(name, off)
        if value != off:
            raise ValueError(
                f"the stored network uses {name}={value!r}, which was removed; this version "
                f"builds only networks with {name}={off!r}"
            )
    for name in REMOVED_DEPENDENT_FIELDS:
        current.pop(name, None)
    return from_dict(QNetworkConfig, current)


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class StateEmbedding(NamedTuple):
    """The per-state part of a Q-network, computed once and tiled over CEM samples."""

    features: torch.Tensor
    """Conv: the image tower's feature map ``(B, C, h, w)``; MLP: the state embedding."""
    context: torch.Tensor
    """Per-state pre-activation contribution of gripper state + task to the action branch
    (conv: ``(B, fc_width)``); an empty ``(B, 0)`` tensor for the MLP (already in features)."""
    task: torch.Tensor
    """The rows' task slots ``(B,)`` (int64), used to select output heads."""
    extras: dict[str, torch.Tensor] | None = None
    """Further per-state tensors a variant needs in its per-action part (``objects-action``
    encoder: per-slot pre-activations, yaws and presence mask); ``None`` otherwise."""


def task_one_hot(task: torch.Tensor, capacity: int) -> torch.Tensor:
    """Float one-hot ``(B, capacity)`` of integer slots ``(B,)``; ValueError if out of range."""
    if task.dim() != 1 or task.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"task must be an integer slot tensor of shape (B,), got dtype {task.dtype} and "
            f"shape {tuple(task.shape)}"
        )
    if task.numel() and (int(task.min()) < 0 or int(task.max()) >= capacity):
        raise ValueError(
            f"task slots must be in [0, {capacity - 1}], got values in "
            f"[{int(task.min())}, {int(task.max())}]"
        )
    return functional.one_hot(task.long(), capacity).float()


def gripper_features(obs: Observation, batch: int, motion: bool = False) -> torch.Tensor:
    """``(B, 2)`` float tensor of (gripper_status, gripper_height); with ``motion`` ``(B, 5)``,
    followed by the ``gripper_motion`` observation (x, y, z)."""
    keys = ("gripper_status", "gripper_height") + (("gripper_motion",) if motion else ())
    cols = []
    for key in keys:
        if key not in obs:
            raise ValueError(f"observation lacks {key!r}; has keys {sorted(obs)}")
        cols.append(obs[key].reshape(batch, -1).float())
    return torch.cat(cols, dim=1)


def gripper_dims(config: QNetworkConfig) -> int:
    """Width of :func:`gripper_features` for ``config``."""
    return 5 if config.motion_obs else 2


class TaskHeads(nn.Module):
    """Output head(s) of 3 FC layers (``in -> width -> width -> 1``) producing a logit.

    With ``num_heads == 1`` this is one shared head. With ``num_heads > 1`` (the paper's
    multi-headed ablation, Fig. 9) every task slot owns a head; each row's head weights are
    gathered by its task index and applied with a batched matmul, so the cost equals one head.
    """

    def __init__(self, in_features: int, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        shapes = [(in_features, width), (width, width), (width, 1)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in shapes:
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.empty(num_heads, fan_in, fan_out).uniform_(-bound, bound)
            b = torch.empty(num_heads, 1, fan_out).uniform_(-bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, N)`` of features ``(B, N, in_features)`` for the rows' tasks ``(B,)``."""
        n_layers = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if self.num_heads == 1:
                x = torch.addmm(b[0], x.reshape(-1, w.shape[1]), w[0]).view(*x.shape[:2], -1)
            else:
                x = torch.baddbmm(b[task], x, w[task])
            if i < n_layers - 1:
                x = torch.relu(x)
        return x.squeeze(-1)


class QNetwork(nn.Module, ABC):
    """Common interface of the Q-networks; see the module docstring."""

    config: QNetworkConfig

    @abstractmethod
    def embed(self, obs: Observation, task: torch.Tensor) -> StateEmbedding:
        """Per-state part for observations ``obs`` and task slots ``task`` ``(B,)``."""

    @abstractmethod
    def q_logits_from_embedding(
        self, embedding: StateEmbedding, actions: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``(B, N)`` of ``N`` actions ``(B, N, A)`` per embedded state."""

    def q_from_embedding(self, embedding: StateEmbedding, actions: torch.Tensor) -> torch.Tensor:
        """Q-values in ``[0, 1]`` of shape ``(B, N)`` for actions ``(B, N, A)``."""
        return torch.sigmoid(self.q_logits_from_embedding(embedding, actions))

    def logits(self, obs: Observation, actions: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` of one action ``(B, A)`` per state (use with the log loss)."""
        if actions.dim() != 2 or actions.shape[1] != self.config.action_dim:
            raise ValueError(
                f"actions must have shape (B, {self.config.action_dim}), got {tuple(actions.shape)}"
            )
        return self.q_logits_from_embedding(self.embed(obs, task), actions.unsqueeze(1))[:, 0]

    def forward(self, obs: Observation, actions: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B,)`` in ``[0, 1]`` of one action ``(B, A)`` per state."""
        return torch.sigmoid(self.logits(obs, actions, task))

    def score_fn(
        self, obs: Observation, task: torch.Tensor, use_logits: bool = False
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A CEM score function: embeds ``obs`` once, then scores actions ``(B, N, A)``.

        Logits rank actions exactly like Q-values (the sigmoid is monotone) and skip the
        sigmoid; pass ``use_logits=True`` when only the argmax matters.
        """
        embedding = self.embed(obs, task)
        if use_logits:
            return lambda actions: self.q_logits_from_embedding(embedding, actions)
        return lambda actions: self.q_from_embedding(embedding, actions)

    def _check_actions(self, embedding: StateEmbedding, actions: torch.Tensor) -> None:
        batch = embedding.task.shape[0]
        if (
            actions.dim() != 3
            or actions.shape[0] != batch
            or (actions.shape[2] != self.config.action_dim)
        ):
            raise ValueError(
                f"actions must have shape ({batch}, N, {self.config.action_dim}), "
                f"got {tuple(actions.shape)}"
            )


def build_q_network(config: QNetworkConfig) -> QNetwork:
    """Build the Q-network described by ``config`` (float32, on the CPU)."""
    from mtopt.learning.q_networks import ConvQNetwork, MLPQNetwork

    if config.kind == "conv":
        return ConvQNetwork(config)
    if config.state_encoder == "objects":
        from mtopt.learning.object_networks import ObjectMLPQNetwork

        return ObjectMLPQNetwork(config)
    if config.state_encoder == "objects-action":
        from mtopt.learning.object_networks import ObjectActionQNetwork

        return ObjectActionQNetwork(config)
    return MLPQNetwork(config)
