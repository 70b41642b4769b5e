"""Mirror augmentation: sampled transitions reflected across the workcell's ``x = 0`` plane.

The workcell is symmetric under the reflection ``x -> -x``: both bins are centred on ``x = 0``,
the gripper (two fingers closing along its local ``y``, pads centred on its local ``x = 0``),
every object primitive (capsule, cylinder, box, ellipsoid) and the plate (its vertical divider
sits on the plate's local ``x = 0``) are symmetric under their own local ``x -> -x``, the
physics is isotropic, and training scenes draw positions and yaws from symmetric ranges. So the
reflection of a logged transition is a transition that could have been logged, with the same
outcome, except that the plate's ``top-left`` and ``top-right`` sections trade places.

Under the reflection a pose ``(x, y, z, yaw)`` becomes ``(-x, y, z, -yaw)`` (for a body that is
symmetric under its local ``x -> -x``, the reflected body is the original one turned to
``-yaw``), so in the ``state`` vector the gripper's, every object's and the plate's ``x`` and
``sin yaw`` change sign. The action's ``dx`` and ``dyaw`` change sign, as do the ``x`` entries of
``gripper_motion`` and ``gripper_command``; heights, the gripper opening and status, categories
and presence flags stay. Tasks trade slots by :attr:`MirrorConfig.task_pairs`.

This is not in the paper. It doubles the geometric variety of a log for a state-based
Q-function, which memorises scenes at the data sizes of our learning benchmark
(docs/RESULTS.md, session 7). Images are not reflected (the cameras are not placed
symmetrically), so the augmentation refuses image observations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mtopt.envs.workcell_config import GRIPPER_DIM, OBJECT_DIM, OBJECT_FIELDS, PLATE_DIM
from mtopt.tasks import TaskSet

if TYPE_CHECKING:
    from mtopt.data.replay import TransitionBatch

MIRRORABLE_OBS_KEYS = (
    "state",
    "gripper_status",
    "gripper_height",
    "gripper_motion",
    "gripper_command",
)
"""Observations the reflection knows how to transform."""
_X_FIRST_KEYS = ("gripper_motion", "gripper_command")
"""Observations whose entry 0 is a world-frame ``x`` (translations)."""
MIRROR_ACTION_DIMS = (0, 3)
"""Action entries that change sign: ``dx`` and ``dyaw``."""


@dataclass(frozen=True)
class MirrorConfig:
    """Mirror augmentation of sampled transitions (not in the paper; :mod:`mtopt.data.mirror`)."""

    probability: float = 0.0
    """Probability that a sampled transition is replaced by its reflection across ``x = 0``
    (0 turns the augmentation off and draws nothing from the sampler's stream)."""
    task_pairs: tuple[tuple[str, str], ...] = (("place-top-left", "place-top-right"),)
    """Tasks that trade places under the reflection; every other task maps to itself. A task
    you add whose outcome depends on left and right must be paired here."""

    def __post_init__(self) -> None:
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"mirror probability must be a number in [0, 1], got {p!r}")
        seen: set[str] = set()
        for pair in self.task_pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(
                    f"mirror task_pairs entries must be two different task names, got {pair!r}"
                )
            for name in pair:
                if name in seen:
                    raise ValueError(f"task {name!r} appears in more than one mirror task pair")
                seen.add(name)


def state_sign(state_dim: int) -> np.ndarray:
    """``(state_dim,)`` float32 multipliers (+1 / -1) that reflect a ``state`` vector.

    Raises ``ValueError`` if ``state_dim`` is not a workcell state size
    (``GRIPPER_DIM + k * OBJECT_DIM + PLATE_DIM``).
    """
    slots, rest = divmod(state_dim - GRIPPER_DIM - PLATE_DIM, OBJECT_DIM)
    if slots < 0 or rest:
        raise ValueError(
            f"state of size {state_dim} is not a workcell state (gripper {GRIPPER_DIM} + "
            f"k x object {OBJECT_DIM} + plate {PLATE_DIM}); the mirror augmentation needs one"
        )
    sign = np.ones(state_dim, dtype=np.float32)
    sign[[0, 3]] = -1.0  # gripper x, sin yaw
    x, sin_yaw = OBJECT_FIELDS["pos"].start, OBJECT_FIELDS["yaw"].start
    for i in range(slots):
        base = GRIPPER_DIM + i * OBJECT_DIM
        sign[[base + x, base + sin_yaw]] = -1.0
    plate = state_dim - PLATE_DIM  # x, y, sin yaw, cos yaw
    sign[[plate, plate + 2]] = -1.0
    return sign


def task_slot_permutation(task_set: TaskSet, pairs: tuple[tuple[str, str], ...]) -> np.ndarray:
    """``(capacity,)`` int64: the one-hot slot each slot's task moves to under the reflection.

    Raises ``ValueError`` naming the known tasks if a pair names an unknown one.
    """
    perm = np.arange(task_set.capacity, dtype=np.int64)
    for a, b in pairs:
        task_set.validate([a, b])
        sa, sb = task_set.slot(a), task_set.slot(b)
        perm[sa], perm[sb] = sb, sa
    return perm


def _reflect_obs(obs: dict[str, np.ndarray], rows: np.ndarray, sign: np.ndarray) -> dict:
    out = {}
    for key, value in obs.items():
        if key == "state":
            value = value.copy()
            value[rows] *= sign
        elif key in _X_FIRST_KEYS:
            value = value.copy()
            value[rows, 0] *= -1.0
        elif key not in MIRRORABLE_OBS_KEYS:
            raise ValueError(
                f"the mirror augmentation cannot reflect observation {key!r}; it handles "
                f"{MIRRORABLE_OBS_KEYS}"
            )
        out[key] = value
    return out


def mirror_transitions(
    batch: TransitionBatch, rows: np.ndarray, task_perm: np.ndarray
) -> TransitionBatch:
    """``batch`` with the transitions where ``rows`` (bool ``(n,)``) is set reflected.

    States, next states, actions and task slots change (``task_perm`` from
    :func:`task_slot_permutation`); rewards, labels, terminal flags and steps to go stay, since
    the reflected transition has the same outcome. The input batch is not modified.
    """
    rows = np.asarray(rows, dtype=bool)
    if rows.shape != (len(batch),):
        raise ValueError(f"rows must be a bool mask of shape ({len(batch)},), got {rows.shape}")
    if "state" not in batch.obs:
        raise ValueError("the mirror augmentation needs the 'state' observation")
    sign = state_sign(batch.obs["state"].shape[1])
    action = batch.action.copy()
    action[np.ix_(rows, MIRROR_ACTION_DIMS)] *= -1.0
    task = np.where(rows, task_perm[batch.task], batch.task)
    return replace(
        batch,
        obs=_reflect_obs(batch.obs, rows, sign),
        next_obs=_reflect_obs(batch.next_obs, rows, sign),
        action=action,
        task=task,
    )
