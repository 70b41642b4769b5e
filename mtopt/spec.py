"""The environment interface: what every layer above ``mtopt.envs`` knows of an environment.

An environment module under :mod:`mtopt.envs` exports one :class:`EnvSpec`. The data, learning,
policy, success-detector, evaluation and system layers receive that spec and never import an
environment module: a new benchmark (another simulator, a real robot) is one module under
``mtopt/envs/`` plus an entry in the registry (:mod:`mtopt.envs`).

A spec holds

* the task set (tasks, skills, relations, one-hot slots with reserved capacity);
* the action space (:class:`ActionSpec`: continuous dims and binary discrete choices such as
  the gripper and terminate);
* the observation layout (:class:`ObservationSpec`: the per-step keys and their shapes);
* optionally the structure of the ``state`` vector (:class:`StateStructure`), which the
  object-centric Q-network encoders use;
* the episode horizon;
* how an episode of a task starts, for collection and for evaluation (reset options);
* the scripted bootstrap policies, and optionally an expert policy per task (a competent
  controller for diagnostics: collecting data that shows good behaviour);
* a constructor for the Gymnasium env, whose final step reports the ground-truth success of
  every task (the *success predicates*, used only for oracle rewards and for evaluation) in
  ``info["success"]`` (a bool vector over ``info["task_names"]``) and may set
  ``info["physics_unstable"]`` when the episode must be discarded, and
  ``info["episode_extra"]`` (a dict of str / int / float) that the robot records in the
  episode's ``extra``: e.g. ``env_steps``, the simulator steps of an environment whose policy
  step repeats its action (the log's statistics count them).

Specs are frozen, picklable objects: robot processes and Ray actors receive them as they are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym

    from mtopt.tasks import TaskSet


@dataclass(frozen=True)
class ActionSpec:
    """Bounds of an action vector and which dimensions are binary discrete choices."""

    low: tuple[float, ...]
    """Lower bound of every dimension; for a discrete dim, its first value."""
    high: tuple[float, ...]
    """Upper bound of every dimension; for a discrete dim, its second value."""
    discrete_dims: tuple[int, ...] = ()
    """Indices of binary discrete dims; each takes exactly the value ``low[d]`` or ``high[d]``."""
    terminate_dim: int | None = None
    """The discrete dim that ends the episode when it is ``high`` (``None``: no such action)."""

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or len(self.low) == 0:
            raise ValueError(
                f"low and high must be non-empty and of equal length, got {len(self.low)} "
                f"and {len(self.high)} values"
            )
        for d, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            if not lo < hi:
                raise ValueError(f"action dim {d}: need low < high, got low={lo}, high={hi}")
        if len(set(self.discrete_dims)) != len(self.discrete_dims):
            raise ValueError(f"discrete_dims has duplicates: {self.discrete_dims}")
        for d in self.discrete_dims:
            if not 0 <= d < len(self.low):
                raise ValueError(f"discrete dim {d} out of range; allowed 0..{len(self.low) - 1}")
        if self.terminate_dim is not None and self.terminate_dim not in self.discrete_dims:
            raise ValueError(
                f"terminate_dim {self.terminate_dim} must be one of the discrete dims "
                f"{self.discrete_dims}"
            )

    @property
    def dim(self) -> int:
        """Number of action dimensions ``A``."""
        return len(self.low)

    @property
    def continuous_dims(self) -> tuple[int, ...]:
        """Indices of the continuous dims, in order."""
        return tuple(d for d in range(self.dim) if d not in self.discrete_dims)


@dataclass(frozen=True)
class ObservationSpec:
    """The per-step observation keys an episode records, with their shapes and dtypes."""

    state_dim: int
    """Width ``D`` of the low-dimensional ``state`` vector."""
    proprio: tuple[tuple[str, int], ...] = ()
    """Further low-dimensional float observations fed to the Q-network next to the state or
    image (QT-Opt's gripper status and height), as ``(key, width)`` pairs in input order."""
    extra: tuple[tuple[str, int], ...] = ()
    """Recorded float observations the Q-network does not read by default, ``(key, width)``."""
    image_size: int | None = None
    """Side of the square RGB ``image`` observation when it is rendered; ``None``: the
    environment has no camera."""
    length_inputs: tuple[str, ...] = ()
    """Keys of :attr:`proprio` and :attr:`extra` measured in metres (networks rescale them)."""

    def __post_init__(self) -> None:
        if not isinstance(self.state_dim, int) or self.state_dim < 1:
            raise ValueError(f"state_dim must be a positive integer, got {self.state_dim!r}")
        keys = ["state", *(k for k, _ in self.proprio), *(k for k, _ in self.extra)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"observation keys must be unique, got {keys}")
        for key, width in (*self.proprio, *self.extra):
            if not isinstance(width, int) or width < 1:
                raise ValueError(f"observation {key!r}: width must be >= 1, got {width!r}")
        stray = [k for k in self.length_inputs if k not in keys[1:]]
        if stray:
            raise ValueError(f"length_inputs {stray} are not proprio or extra keys {keys[1:]}")

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys recorded at every step (without ``image``)."""
        return ("state", *(k for k, _ in self.proprio), *(k for k, _ in self.extra))


@dataclass(frozen=True)
class StateStructure:
    """How the ``state`` vector splits into a robot block, object slots and a context block,
    and how an action moves the robot: what the object-centric Q-network encoders need."""

    robot_dim: int
    """Leading entries describing the robot's end effector (x, y, z first; then sin/cos yaw
    and further entries)."""
    object_dim: int
    """Entries per object slot (position x, y, z first)."""
    context_dim: int
    """Trailing entries describing the scene's context; its first four are a planar target
    frame (x, y, sin yaw, cos yaw: the workcell's plate)."""
    presence_index: int
    """Index inside an object block of its present flag (1 present, 0 empty slot)."""
    yaw_index: int
    """Index inside an object block of its sin/cos heading pair."""
    robot_yaw_index: int
    """Index inside the robot block of its sin/cos yaw pair."""
    opening_index: int
    """Index inside the robot block of the gripper opening."""
    action_translation: float
    """Metres of end-effector translation per unit of the first three action dims."""
    action_yaw: float
    """Radians of end-effector rotation per unit of the fourth action dim."""

    def slots(self, state_dim: int) -> int:
        """Object slots of a state of width ``state_dim``; ``ValueError`` if it does not split."""
        slots, rest = divmod(state_dim - self.robot_dim - self.context_dim, self.object_dim)
        if slots < 1 or rest:
            raise ValueError(
                f"state of width {state_dim} does not split into {self.robot_dim} robot + "
                f"k * {self.object_dim} object + {self.context_dim} context entries"
            )
        return slots


class EpisodePolicy(Protocol):
    """What runs an episode: reset per episode with its own generator, then act per step."""

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


StartMode = Literal["collect", "evaluate"]
"""Why an episode starts: fleet collection (random scenes) or the evaluation protocol (the
environment's standard evaluation scene)."""


class EnvSpec(ABC):
    """One environment as the layers above :mod:`mtopt.envs` see it (module docstring)."""

    name: str
    """Registry name (``--env NAME``)."""
    task_set: TaskSet
    """Tasks, skills, relations and one-hot slots."""
    action: ActionSpec
    """The action space."""
    observation: ObservationSpec
    """The per-step observation layout."""
    structure: StateStructure | None
    """The state's object structure, or ``None`` (flat encoders only)."""
    horizon: int
    """Maximum steps of an episode."""

    @abstractmethod
    def make_env(self, image: bool = False, side_images: bool = False) -> gym.Env:
        """A new Gymnasium env; ``image`` renders the ``image`` observation at every step and
        ``side_images`` the success detector's side views (``ValueError`` if unsupported)."""

    @abstractmethod
    def reset_options(
        self, task: str, mode: StartMode, attempt: int | None = None
    ) -> dict[str, Any]:
        """``env.reset`` options that start a fresh episode of ``task``; ``attempt`` is the
        evaluation attempt's index (Meta-World's protocol gives attempt ``k`` goal position
        ``k``; environments whose evaluation scene comes from the seed alone ignore it)."""

    @abstractmethod
    def scripted_policy(self, task: str) -> tuple[EpisodePolicy, str]:
        """The scripted bootstrap policy of ``task`` and its name (``scripted-...``)."""

    def expert_policy(self, task: str) -> tuple[EpisodePolicy, str]:
        """A competent controller for ``task`` and its name (``expert-...``), for diagnostics
        (does the learner fit good behaviour?); it reads only the recorded observations.
        Raises ``ValueError`` naming the environment when it has none (the default)."""
        raise ValueError(
            f"environment {self.name!r} has no expert policy (asked for task {task!r}); "
            "collect with bootstrap 'scripted'"
        )

    def chain_skill(self, task: str) -> str | None:
        """The skill whose tasks may run right after an episode of ``task`` on the same scene
        (the workcell chains a place after a lift); ``None``: episodes never chain."""
        del task
        return None

    def chain_options(self, task: str) -> dict[str, Any]:
        """``env.reset`` options that continue the previous episode's scene for ``task``."""
        raise ValueError(f"environment {self.name!r} does not chain episodes (task {task!r})")

    def camera_projections(self) -> Callable[[int], np.ndarray] | None:
        """``size -> (views, 3, 4)`` projections of the environment's simulated cameras at a
        view size (gripper crops of the image success detector default to them); ``None``: no
        simulated cameras."""
        return None

    def has_ground_truth(self, task: str) -> bool:
        """Whether the environment reports ground-truth success for ``task`` (its success
        predicates; used for oracle rewards and the evaluation). A task added to the task set
        by outcome examples alone has none: only its success detector labels it."""
        return task in self.task_set

    def known_attributes(self, task: str) -> tuple[str, ...]:
        """Hand-written :attr:`mtopt.tasks.Task.attributes` of a task this environment knows
        without having it in its task set (the workcell's new tasks): a run that adds it gets
        them unless its task file names others. ``()`` (the default): none known."""
        del task
        return ()

    def control_hz(self) -> float | None:
        """Policy steps per second of simulated (or real) time, e.g. for the timestamps of a
        dataset export; ``None`` (the default): the environment does not say."""
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready identity of the spec, stored in checkpoints and compared on load."""
        return {
            "env": self.name,
            "tasks": list(self.task_set.names),
            "task_capacity": self.task_set.capacity,
            "action_dim": self.action.dim,
            "state_dim": self.observation.state_dim,
        }
