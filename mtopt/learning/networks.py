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
variant), and the environment's low-dimensional inputs (:attr:`NetworkShape.inputs`, e.g. the
workcell's ``gripper_status`` and ``gripper_height``, ``(B, w)`` or ``(B,)``).

**Sizes** never come from the user: :func:`network_shape` derives a :class:`NetworkShape`
from the environment's spec, and every network is built from a config and a shape.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional

from mtopt.spec import StateStructure

if TYPE_CHECKING:
    from mtopt.spec import EnvSpec

Observation = Mapping[str, torch.Tensor]
"""A batch of observations: a mapping from observation key to a ``(B, ...)`` tensor."""

KINDS = ("conv", "mlp")
"""Allowed values of :attr:`QNetworkConfig.kind`."""
HEADS = ("single", "multi")
"""Allowed values of :attr:`QNetworkConfig.heads`."""
ENCODERS = ("auto", "flat", "objects", "objects-action")
"""Allowed values of :attr:`QNetworkConfig.state_encoder`."""
ARCHITECTURES = ("mtopt", "soft-modular", "care")
"""Allowed values of :attr:`QNetworkConfig.architecture`."""


@dataclass(frozen=True)
class QNetworkConfig:
    """What the user chooses of a Q-network's architecture; the sizes come from the environment
    (:class:`NetworkShape`), and :func:`mtopt.learning.network_builder.build_q_network` makes
    the module from both."""

    kind: str = "conv"
    """Trunk: ``"conv"`` (image, paper Fig. 8) or ``"mlp"`` (low-dimensional ``state``)."""
    heads: str = "single"
    """``"single"`` output head, or ``"multi"``: one 3-layer head per task slot (Fig. 9)."""
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
    """FC layers after adding the action embedding, before the output head(s) (MLP, >= 0;
    ``architecture: soft-modular`` replaces them by its ``module_layers``)."""
    state_encoder: str = "auto"
    """MLP state encoder: ``"objects"`` (a shared per-object encoder over the state's object
    slots, gripper-relative positions, pooled; needs an environment whose spec describes its
    :class:`~mtopt.spec.StateStructure`), ``"objects-action"`` (the same, plus a per-(object,
    action) branch that sees each object relative to the gripper *after* the action; see
    :mod:`mtopt.learning.object_networks`), ``"flat"`` (one MLP over the whole vector, for any
    environment) or ``"auto"``: ``objects`` where the environment has a structure (the
    workcell), else ``flat`` (:func:`resolve_network`; checkpoints store the resolved one). The
    conv trunk ignores it."""
    gripper_frame: bool = True
    """``objects`` encoders: also give every object slot its offset in the gripper's frame
    (along and across the closing direction) and its heading relative to the gripper's. Whether
    an object is between the fingers is a function of exactly these; without them the per-slot
    encoder never sees the gripper's yaw and the relation is lost in the pooling."""
    extra_inputs: tuple[str, ...] = ()
    """Recorded observations the network reads besides the environment's default inputs
    (:attr:`mtopt.spec.ObservationSpec.extra`), e.g. the workcell's ``gripper_motion`` (the
    gripper's achieved translation during the last step: the state holds no history, so a
    push blocked by a finger resting on a neighbour looks like any other push without it)."""
    pair_geometry: bool = True
    """``objects-action`` encoder: also feed every (action, object) pair the object's offset
    from the gripper *after* the move in the turned gripper's frame, its distance and the
    absolute offsets (:func:`mtopt.learning.object_networks.pair_geometry`), so that "the move
    brings an object between the fingers" is linear in the pair's inputs."""
    slot_action_width: int = 48
    """``objects-action`` encoder: width of the per-(object, action) layers that score where
    each object would be relative to the gripper after the action."""
    length_scale: float = 0.05
    """``objects`` encoders: metres per unit of the network's geometric inputs. Positions,
    offsets, the finger opening and the gripper height are divided by it, so that a one-step
    move (5 cm) is an input change of 1 rather than 0.05 (raw metres left the network nearly
    blind to the finger opening that tells a held object from an empty grasp)."""
    architecture: str = "mtopt"
    """Multi-task conditioning of the ``mlp`` trunk, on top of the one-hot task input that every
    variant keeps: ``"mtopt"`` (none more: the paper's network), ``"soft-modular"`` (a routing
    network picks, per state and task, soft routes through ``module_layers`` layers of
    ``modules`` modules after the action is added; Yang et al. 2020,
    :mod:`mtopt.learning.soft_modular`) or ``"care"`` (``care_encoders`` state encoders mixed
    by attention weights from an embedding of the task's attributes, which is also added to the
    mixed state embedding; Sodhani et al. 2021, :mod:`mtopt.learning.care`). The conv trunk
    takes ``"mtopt"`` only."""
    modules: int = 4
    """``soft-modular``: modules per layer of the routed base network (>= 2)."""
    module_layers: int = 2
    """``soft-modular``: layers of modules after the action is added (>= 1); they replace the
    ``mlp_merged_layers`` FC layers."""
    module_width: int = 0
    """``soft-modular``: output width of every module (0: ``mlp_width``). Per CEM sample each
    module layer costs ``modules * width**2`` multiply-adds, ``modules`` times one FC layer."""
    care_encoders: int = 4
    """``care``: state encoders in the mixture (>= 1): the variant's own encoder and
    ``care_encoders - 1`` copies of it with their own weights."""
    context_width: int = 32
    """``care``: width of the task-context embedding computed from the task's attributes."""
    attribute_buckets: int = 128
    """``care``: hashed buckets of the multi-hot vector of a task's attribute words (a word's
    bucket is its CRC-32 modulo this), so the weights' shapes do not depend on the vocabulary
    and a task set grown with new words still loads a checkpoint."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.heads not in HEADS:
            raise ValueError(f"heads must be one of {HEADS}, got {self.heads!r}")
        positive = ("conv_channels", "tower_layers", "head_conv_layers", "fc_width")
        positive += ("mlp_width", "mlp_state_layers", "slot_action_width")
        positive += ("module_layers", "care_encoders", "context_width", "attribute_buckets")
        for name in positive:
            _check_int(name, getattr(self, name), 1)
        _check_int("mlp_merged_layers", self.mlp_merged_layers, 0)
        _check_int("modules", self.modules, 2)
        _check_int("module_width", self.module_width, 0)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        value = self.length_scale
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"length_scale must be a number > 0, got {value!r}")
        if self.state_encoder not in ENCODERS:
            raise ValueError(f"state_encoder must be one of {ENCODERS}, got {self.state_encoder!r}")
        for name, depth in (
            ("tower_pool_after", self.tower_layers),
            ("head_pool_after", self.head_conv_layers),
        ):
            indices = getattr(self, name)
            if not all(isinstance(i, int) and 0 <= i < depth for i in indices):
                raise ValueError(
                    f"{name} must hold layer indices in [0, {depth - 1}], got {indices!r}"
                )


@dataclass(frozen=True)
class NetworkShape:
    """The sizes a Q-network takes from its environment's spec (:func:`network_shape`), never
    from the user: task slots, action and state widths, image size, low-dimensional inputs and
    the state's object structure. Stored in checkpoints next to the :class:`QNetworkConfig`."""

    task_capacity: int
    """Width of the one-hot task input (the task set's ``capacity``)."""
    action_dim: int
    """Action dimensions ``A``."""
    state_dim: int = 0
    """Width ``D`` of the ``state`` observation (MLP trunks)."""
    image_size: int = 0
    """Side of the square ``image`` observation (the conv trunk)."""
    inputs: tuple[tuple[str, int], ...] = ()
    """Low-dimensional observations fed next to the state or image, ``(key, width)`` in order
    (the environment's proprioceptive inputs, then the chosen ``extra_inputs``)."""
    length_inputs: tuple[str, ...] = ()
    """Keys of :attr:`inputs` measured in metres (the object encoders rescale them)."""
    structure: StateStructure | None = None
    """The state's object structure (the ``objects`` encoders need it)."""
    task_attributes: tuple[tuple[str, ...], ...] = ()
    """Every task slot's attribute words (:meth:`mtopt.tasks.TaskSet.attribute_table`; ``()``
    for a free slot), for ``architecture: care``; ``()`` for the architectures that do not read
    them. A grown task set may fill a free slot (:func:`loadable_shape`)."""

    @property
    def input_dim(self) -> int:
        """Total width of :attr:`inputs`."""
        return sum(w for _, w in self.inputs)


def resolve_network(config: QNetworkConfig, spec: EnvSpec) -> QNetworkConfig:
    """``config`` with ``state_encoder: auto`` resolved for ``spec``: ``objects`` when the
    environment describes its state's object structure, else ``flat``."""
    if config.state_encoder != "auto":
        return config
    return replace(config, state_encoder="objects" if spec.structure is not None else "flat")


def network_shape(config: QNetworkConfig, spec: EnvSpec, obs: str = "state") -> NetworkShape:
    """The :class:`NetworkShape` of ``config``'s network in environment ``spec``, reading the
    ``state`` or the ``image`` observation (``obs``). Raises ``ValueError`` naming the value if
    the environment cannot feed the network."""
    config = resolve_network(config, spec)
    o = spec.observation
    extra = dict(o.extra)
    unknown = [k for k in config.extra_inputs if k not in extra]
    if unknown:
        raise ValueError(
            f"network.extra_inputs {list(unknown)} are not recorded by env {spec.name!r}; "
            f"allowed: {sorted(extra)}"
        )
    inputs = (*o.proprio, *((k, extra[k]) for k in config.extra_inputs))
    if obs == "image":
        if o.image_size is None:
            raise ValueError(f"env {spec.name!r} has no camera: use obs 'state'")
        return NetworkShape(
            spec.task_set.capacity, spec.action.dim, 0, o.image_size, inputs, o.length_inputs
        )
    if config.state_encoder != "flat":
        if spec.structure is None:
            raise ValueError(
                f"network.state_encoder {config.state_encoder!r} needs an environment with an "
                f"object structure; env {spec.name!r} has none: use state_encoder 'flat'"
            )
        spec.structure.slots(o.state_dim)  # raises when the state does not split
    return NetworkShape(
        spec.task_set.capacity,
        spec.action.dim,
        o.state_dim,
        0,
        inputs,
        o.length_inputs,
        spec.structure,
        spec.task_set.attribute_table() if config.architecture == "care" else (),
    )


def stored_network(
    stored_config: Mapping[str, Any], stored_shape: Mapping[str, Any]
) -> tuple[QNetworkConfig, NetworkShape]:
    """The :class:`QNetworkConfig` and :class:`NetworkShape` of a checkpoint's stored dicts."""
    from mtopt.config import from_dict

    shape = dict(stored_shape)
    structure = shape.pop("structure", None)
    shape["inputs"] = tuple((str(k), int(w)) for k, w in shape.get("inputs", ()))
    shape["length_inputs"] = tuple(shape.get("length_inputs", ()))
    shape["task_attributes"] = tuple(
        tuple(str(w) for w in words) for words in shape.get("task_attributes", ())
    )
    return from_dict(QNetworkConfig, stored_config), NetworkShape(
        **shape, structure=None if structure is None else StateStructure(**structure)
    )


def loadable_shape(
    stored: NetworkShape, attributes: tuple[tuple[str, ...], ...], where: str
) -> NetworkShape:
    """A checkpoint's ``stored`` shape with this run's per-slot task ``attributes`` (its task
    set's :meth:`~mtopt.tasks.TaskSet.attribute_table`), so that a ``care`` network loaded
    into a grown task set reads the new tasks' attributes. A slot the checkpoint left free may
    gain attributes; a slot whose attributes changed raises ``ValueError`` naming ``where``, the
    slot and both values. Shapes without attributes (the other architectures) are returned
    unchanged: their weights do not depend on them."""
    old = stored.task_attributes
    if not old or not attributes or len(old) != len(attributes):
        return stored  # nothing to check; a capacity change is refused with the other fields
    for slot, (was, now) in enumerate(zip(old, attributes, strict=True)):
        if was and tuple(now) != was:
            raise ValueError(
                f"{where}: task slot {slot} has attributes {list(was)} in the checkpoint but "
                f"{list(now)} in this run; the care network's task context would change its "
                "meaning (a run may only describe tasks in slots the checkpoint left free)"
            )
    return replace(stored, task_attributes=tuple(tuple(w) for w in attributes))


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
    encoder: per-slot pre-activations, yaws and presence mask; ``soft-modular``: the routing
    probabilities ``routes`` and ``route_out``); ``None`` otherwise."""


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


def input_features(obs: Observation, batch: int, shape: NetworkShape) -> torch.Tensor:
    """``(B, shape.input_dim)`` float tensor of the low-dimensional inputs, in order."""
    cols = []
    for key, _ in shape.inputs:
        if key not in obs:
            raise ValueError(f"observation lacks {key!r}; has keys {sorted(obs)}")
        cols.append(obs[key].reshape(batch, -1).float())
    if not cols:
        return next(iter(obs.values())).new_zeros(batch, 0, dtype=torch.float32)
    return torch.cat(cols, dim=1)


def network_obs_keys(config: QNetworkConfig, shape: NetworkShape) -> tuple[str, ...]:
    """The observation keys the network reads: ``image`` or ``state``, then its inputs."""
    return ("image" if config.kind == "conv" else "state", *(k for k, _ in shape.inputs))


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
    shape: NetworkShape

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
        if actions.dim() != 2 or actions.shape[1] != self.shape.action_dim:
            raise ValueError(
                f"actions must have shape (B, {self.shape.action_dim}), got {tuple(actions.shape)}"
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
            or (actions.shape[2] != self.shape.action_dim)
        ):
            raise ValueError(
                f"actions must have shape ({batch}, N, {self.shape.action_dim}), "
                f"got {tuple(actions.shape)}"
            )
