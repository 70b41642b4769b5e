"""The episode: one attempt by one robot at one task, as stored in the episode log.

An :class:`Episode` holds the observations the robot saw (``T + 1`` of them for ``T`` steps),
the ``T`` actions it took, how it was collected (robot, task, policy, ε, seed, wall-clock
times), and the *ground-truth* success of the episode for every task. Every field is checked
when the episode is built, so a bad episode fails at the robot, not in the learner.

The episode is environment-agnostic: the action width and the observation keys beyond ``state``
are the environment's (its :class:`mtopt.spec.EnvSpec`); the workcell's action is
``(dx, dy, dz, dyaw, gripper open/close, terminate)`` (paper Sec. 5.1).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

REQUIRED_OBSERVATIONS: tuple[str, ...] = ("state",)
"""Observation keys every episode carries."""

OBSERVATION_DTYPES: dict[str, np.dtype] = {
    "state": np.dtype(np.float32),
    "gripper_status": np.dtype(np.float32),
    "gripper_height": np.dtype(np.float32),
    "image": np.dtype(np.uint8),
}
"""Required dtype of each known observation key."""

EXTRA_OBSERVATION_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_)
)
"""Dtypes allowed for observation keys other than the known ones."""

SCRIPTED_POLICY_PREFIX = "scripted-"
"""Policy names of scripted bootstrap policies start with this (``scripted-pick``)."""
CHECKPOINT_POLICY_PREFIX = "checkpoint:"
"""Policy names of learned policies are ``checkpoint:<checkpoint id>``."""
EXPERT_POLICY_PREFIX = "expert-"
"""Policy names of an environment's expert policies (diagnostics) start with this
(``expert-aimed-pick``)."""


def learned_policy_name(run_tag: str, step: int) -> str:
    """Policy name of run ``run_tag``'s weights after ``step`` updates: ``checkpoint:TAG@STEP``."""
    return f"{CHECKPOINT_POLICY_PREFIX}{run_tag}@{step}"


_OBS_KEY = re.compile(r"^[a-z0-9_]+$")


def new_episode_id(robot_id: int, source: np.random.Generator | int | None = None) -> str:
    """A globally unique episode id ``"{robot_id:03d}-{12 hex digits}"``.

    ``source`` decides the hex part: a seeded ``np.random.Generator`` (reproducible runs), an
    integer counter (e.g. the robot's episode index; unique only within one run of the robot),
    or ``None`` for a random UUID (unique across runs, not reproducible).
    """
    if isinstance(robot_id, bool) or not isinstance(robot_id, int | np.integer) or robot_id < 0:
        raise ValueError(f"robot_id must be a non-negative integer, got {robot_id!r}")
    if source is None:
        suffix = uuid.uuid4().hex[:12]
    elif isinstance(source, np.random.Generator):
        suffix = f"{int(source.integers(0, 2**48)):012x}"
    elif isinstance(source, int | np.integer) and not isinstance(source, bool) and source >= 0:
        suffix = f"{int(source):012x}"
    else:
        raise ValueError(
            "source must be a numpy Generator, a non-negative integer counter or None, "
            f"got {source!r}"
        )
    return f"{int(robot_id):03d}-{suffix}"


def _fail(name: str, problem: str) -> None:
    raise ValueError(f"Episode.{name}: {problem}")


def _check_array(
    name: str, value: object, dtype: np.dtype, shape: tuple[int | None, ...], what: str
) -> np.ndarray:
    """Check ``value`` is an ndarray of ``dtype`` whose shape matches ``shape`` (None = any)."""
    if not isinstance(value, np.ndarray):
        _fail(name, f"must be a numpy array {what}, got {type(value).__name__}")
    assert isinstance(value, np.ndarray)
    if value.dtype != dtype:
        _fail(name, f"must have dtype {dtype} ({what}), got dtype {value.dtype}")
    ok = value.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, value.shape, strict=False)
    )
    if not ok:
        _fail(name, f"must have shape {what}, got shape {value.shape}")
    return value


def _check_str(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str) or not value or value != value.strip():
        _fail(name, f"must be a non-empty string without padding, got {value!r}")


@dataclass(eq=False)
class Episode:
    """One episode of one robot, with everything the episode log stores.

    ``observations`` maps a key to an array whose leading dimension is ``T + 1`` (the
    observation before each of the ``T`` actions plus the final one): ``state`` float32
    ``(T+1, D)`` (required), ``gripper_status`` / ``gripper_height`` float32 ``(T+1, 1)`` (the
    workcell's), optional ``image`` uint8 ``(T+1, H, W, 3)``; other keys (lower-case letters,
    digits, ``_``) may hold float32/float64/int32/int64/uint8/bool arrays with that leading
    dimension. ``actions`` is float32 ``(T, A)`` with the environment's action width ``A``.

    ``success[i]`` is the ground-truth outcome of the episode for task ``success_tasks[i]``,
    computed by the environment's success predicates. **It is ground truth for analysis and
    for labelling success-detector examples only: the learner must never read it unless a
    config explicitly asks for ``oracle`` rewards.** Rewards for learning come from the
    success detector during log replay.
    """

    episode_id: str
    """Globally unique id (see :func:`new_episode_id`)."""
    robot_id: int
    """Id of the robot that collected the episode."""
    task: str
    """The task the episode was collected for."""
    policy: str
    """``scripted-pick``, ``scripted-place`` (any ``scripted-<name>``), an expert policy
    (``expert-<name>``, e.g. ``expert-aimed-pick``) or ``checkpoint:<id>``."""
    epsilon: float
    """ε of an ε-greedy policy in [0, 1] (an expert's exploration noise); 0.0 for greedy and
    scripted policies."""
    seed: int
    """Seed of the episode's random draws (environment reset and policy noise)."""
    start_time: float
    """Unix time (s) when the episode started."""
    end_time: float
    """Unix time (s) when the episode ended; not before ``start_time``."""
    observations: dict[str, np.ndarray]
    """Observation arrays, each with leading dimension ``T + 1``."""
    actions: np.ndarray
    """float32 ``(T, 6)`` actions."""
    success: np.ndarray
    """bool ``(n_tasks,)`` ground-truth success per task of ``success_tasks`` (see above)."""
    success_tasks: tuple[str, ...]
    """Task names that ``success`` is aligned with (unique)."""
    final_side_images: np.ndarray | None = None
    """uint8 ``(2, H, W, 3)`` side-camera images after the episode, for the success detector."""
    final_image: np.ndarray | None = None
    """uint8 ``(H, W, 3)`` over-the-shoulder image after the episode, recorded when the episode
    has no per-step ``image`` observation (collection with ``final_views``): with
    ``final_side_images`` it gives the success detector its three views."""
    chained_from: str | None = None
    """Id of the lift episode this place episode was chained after, if any."""
    extra: dict[str, str | float | int] = field(default_factory=dict)
    """Small free-form metadata (string keys; str / float / int values)."""

    def __post_init__(self) -> None:
        if isinstance(self.success_tasks, list):
            self.success_tasks = tuple(self.success_tasks)
        if isinstance(self.robot_id, np.integer):
            self.robot_id = int(self.robot_id)
        if isinstance(self.seed, np.integer):
            self.seed = int(self.seed)
        self.validate()

    @property
    def num_steps(self) -> int:
        """Number of actions taken, ``T``."""
        return int(self.actions.shape[0])

    def success_for(self, task: str) -> bool:
        """Ground-truth success for ``task`` (analysis / SD labels only; see class docs)."""
        try:
            return bool(self.success[self.success_tasks.index(task)])
        except ValueError:
            raise KeyError(
                f"episode {self.episode_id} has no success label for task {task!r}; "
                f"labelled tasks: {', '.join(self.success_tasks)}"
            ) from None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, its value or shape and what is allowed."""
        _check_str("episode_id", self.episode_id)
        r = self.robot_id
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            _fail("robot_id", f"must be a non-negative integer, got {r!r}")
        _check_str("task", self.task)
        self._validate_policy()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            _fail("seed", f"must be an integer, got {self.seed!r}")
        if not -(2**63) <= self.seed < 2**63:
            _fail("seed", f"must fit in a signed 64-bit integer, got {self.seed}")
        for name in ("start_time", "end_time"):
            t = getattr(self, name)
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                _fail(name, f"must be a finite unix time in seconds, got {t!r}")
        if self.end_time < self.start_time:
            _fail("end_time", f"{self.end_time} is before start_time {self.start_time}")
        steps = self._validate_actions()
        self._validate_observations(steps + 1)
        self._validate_success()
        if self.final_side_images is not None:
            _check_array(
                "final_side_images",
                self.final_side_images,
                np.dtype(np.uint8),
                (2, None, None, 3),
                "(2, H, W, 3) uint8 or None",
            )
        if self.final_image is not None:
            _check_array(
                "final_image",
                self.final_image,
                np.dtype(np.uint8),
                (None, None, 3),
                "(H, W, 3) uint8 or None",
            )
        _check_str("chained_from", self.chained_from, allow_none=True)
        if self.chained_from == self.episode_id:
            _fail("chained_from", f"an episode cannot be chained from itself ({self.episode_id})")
        self._validate_extra()

    # -- field checks ----------------------------------------------------------------------
    def _validate_policy(self) -> None:
        p = self.policy
        ok = isinstance(p, str) and any(
            p.startswith(prefix) and len(p) > len(prefix) and p == p.strip()
            for prefix in (SCRIPTED_POLICY_PREFIX, CHECKPOINT_POLICY_PREFIX, EXPERT_POLICY_PREFIX)
        )
        if not ok:
            _fail(
                "policy",
                f"must be 'scripted-<name>' (e.g. 'scripted-pick', 'scripted-place'), "
                f"'expert-<name>' or 'checkpoint:<id>', got {p!r}",
            )
        e = self.epsilon
        if isinstance(e, bool) or not isinstance(e, int | float) or not 0.0 <= e <= 1.0:
            _fail("epsilon", f"must be a number in [0, 1], got {e!r}")

    def _validate_actions(self) -> int:
        a = _check_array(
            "actions", self.actions, np.dtype(np.float32), (None, None), "(T, A) float32"
        )
        if a.shape[1] < 1:
            _fail("actions", f"must have at least one action dimension, got shape {a.shape}")
        return int(a.shape[0])

    def _validate_observations(self, length: int) -> None:
        obs = self.observations
        if not isinstance(obs, dict):
            _fail("observations", f"must be a dict of arrays, got {type(obs).__name__}")
        missing = [k for k in REQUIRED_OBSERVATIONS if k not in obs]
        if missing:
            _fail("observations", f"missing required key(s) {missing}; have {sorted(obs)}")
        specs: dict[str, tuple[tuple[int | None, ...], str]] = {
            "state": ((length, None), f"({length}, D) float32 (T+1 = {length} rows)"),
            "gripper_status": ((length, 1), f"({length}, 1) float32"),
            "gripper_height": ((length, 1), f"({length}, 1) float32"),
            "image": ((length, None, None, 3), f"({length}, H, W, 3) uint8"),
        }
        for key, value in obs.items():
            name = f"observations[{key!r}]"
            if not isinstance(key, str) or not _OBS_KEY.match(key):
                _fail("observations", f"key {key!r} must match [a-z0-9_]+")
            if key in specs:
                shape, what = specs[key]
                _check_array(name, value, OBSERVATION_DTYPES[key], shape, what)
                continue
            if not isinstance(value, np.ndarray) or value.dtype not in EXTRA_OBSERVATION_DTYPES:
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                allowed = ", ".join(str(d) for d in EXTRA_OBSERVATION_DTYPES)
                _fail(name, f"must be a numpy array of one of {allowed}; got {got}")
            if value.ndim < 1 or value.shape[0] != length:
                _fail(name, f"must have leading dimension T+1 = {length}, got shape {value.shape}")

    def _validate_success(self) -> None:
        tasks = self.success_tasks
        if not isinstance(tasks, tuple) or not all(isinstance(t, str) and t for t in tasks):
            _fail("success_tasks", f"must be a tuple of non-empty task names, got {tasks!r}")
        if len(set(tasks)) != len(tasks):
            _fail("success_tasks", f"task names must be unique, got {tasks!r}")
        n = len(tasks)
        _check_array("success", self.success, np.dtype(np.bool_), (n,), f"({n},) bool")

    def _validate_extra(self) -> None:
        if not isinstance(self.extra, Mapping):
            _fail("extra", f"must be a dict, got {type(self.extra).__name__}")
        for k, v in self.extra.items():
            if not isinstance(k, str):
                _fail("extra", f"keys must be strings, got {k!r}")
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                _fail(f"extra[{k!r}]", f"must be str, int or float, got {type(v).__name__}")
