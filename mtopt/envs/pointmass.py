"""A point mass that must reach one of N goals: the smallest environment behind the interface.

It exists to prove that the pipeline knows an environment only through its
:class:`mtopt.spec.EnvSpec` (collection, success detectors, training, evaluation and the
continuous system run on it without touching learning code), and to give the tests a task set
that trains in seconds.

The point starts near the centre of the square ``[-1, 1]^2``; ``goals`` goal markers are drawn
at random positions at least ``2 * radius`` apart. Task ``reach-<i>`` succeeds when the episode
ends with the point within ``radius`` of goal ``i``. The action is ``(dx, dy, terminate)``:
a move of at most ``step`` per axis, and a binary terminate choice. The ``state`` is the point's
position followed by every goal's position. The scripted bootstrap policy heads for the task's
goal with Gaussian noise and terminates at random, so it succeeds only part of the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from mtopt.spec import ActionSpec, EnvSpec, ObservationSpec, StartMode
from mtopt.tasks import TaskSet

SKILL = "reach"
"""The one skill of the point-mass task set."""


def reach_task(goal: int) -> str:
    """Name of the task of reaching goal ``goal``."""
    return f"reach-{goal}"


@dataclass(frozen=True)
class PointMassConfig:
    """The point-mass environment and its scripted bootstrap policy."""

    goals: int = 4
    """Goal markers, one task per goal."""
    capacity: int = 8
    """One-hot task slots (>= goals; the rest are reserved for new tasks)."""
    horizon: int = 10
    """Maximum steps of an episode."""
    step: float = 0.25
    """Largest move per axis and step."""
    radius: float = 0.2
    """Distance to a goal within which the episode's end counts as reaching it."""
    scripted_noise: float = 0.8
    """Std of the Gaussian noise the scripted policy adds to its move (action units)."""
    scripted_terminate_prob: float = 0.15
    """Probability per step that the scripted policy terminates early."""

    def __post_init__(self) -> None:
        if not isinstance(self.goals, int) or not 1 <= self.goals <= 8:
            raise ValueError(f"goals must be an integer in [1, 8], got {self.goals!r}")
        if not isinstance(self.capacity, int) or self.capacity < self.goals:
            raise ValueError(
                f"capacity must be an integer >= goals ({self.goals}), got {self.capacity!r}"
            )
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {self.horizon!r}")
        for name in ("step", "radius"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if not self.scripted_noise >= 0:
            raise ValueError(f"scripted_noise must be >= 0, got {self.scripted_noise!r}")
        if not 0 <= self.scripted_terminate_prob <= 1:
            raise ValueError(
                f"scripted_terminate_prob must be in [0, 1], got {self.scripted_terminate_prob!r}"
            )


def point_mass_task_set(config: PointMassConfig) -> TaskSet:
    """``reach-0`` ... ``reach-<goals-1>``; reaching one goal excludes reaching another."""
    tasks = TaskSet(config.capacity)
    names: list[str] = []
    for i in range(config.goals):
        words = ("reach", "goal", f"goal-{i}", "marker", "point")
        names.append(tasks.add(reach_task(i), SKILL, excludes=names, attributes=words).name)
    return tasks


class PointMassEnv(gym.Env):
    """The point-mass Gymnasium environment (module docstring)."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, config: PointMassConfig | None = None) -> None:
        self.config = config if config is not None else PointMassConfig()
        cfg = self.config
        self.task_names = tuple(reach_task(i) for i in range(cfg.goals))
        dim = 2 + 2 * cfg.goals
        self.action_space = gym.spaces.Box(
            np.array([-1, -1, 0], dtype=np.float32), np.ones(3, dtype=np.float32), dtype=np.float32
        )
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)}
        )
        self._pos = np.zeros(2)
        self._goals = np.zeros((cfg.goals, 2))
        self._steps = 0
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: ['task']")
        task = options.get("task")
        if task is not None and task not in self.task_names:
            raise ValueError(f"unknown task {task!r}; known tasks: {list(self.task_names)}")
        cfg = self.config
        rng = self.np_random
        goals: list[np.ndarray] = []
        while len(goals) < cfg.goals:
            g = rng.uniform(-0.9, 0.9, size=2)
            if all(np.linalg.norm(g - h) >= 2 * cfg.radius for h in goals):
                goals.append(g)
        self._goals = np.stack(goals)
        self._pos = rng.uniform(-0.2, 0.2, size=2)
        self._steps = 0
        self._done = False
        return self._observe(), {"task_names": self.task_names}

    def _observe(self) -> dict[str, np.ndarray]:
        state = np.concatenate([self._pos, self._goals.ravel()]).astype(np.float32)
        return {"state": state}

    def success_vector(self) -> np.ndarray:
        """Ground-truth success of every task for the point's current position."""
        return np.linalg.norm(self._goals - self._pos, axis=1) <= self.config.radius

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        a = np.asarray(action)
        if a.shape != (3,) or not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 3 finite real numbers (dx, dy, terminate), got {a!r}")
        a = np.clip(a.astype(np.float64), self.action_space.low, self.action_space.high)
        terminate = a[2] > 0.5
        if not terminate:
            self._pos = np.clip(self._pos + self.config.step * a[:2], -1.0, 1.0)
        self._steps += 1
        terminated = bool(terminate)
        truncated = not terminated and self._steps >= self.config.horizon
        info: dict[str, Any] = {"task_names": self.task_names}
        reward = 0.0
        if terminated or truncated:
            self._done = True
            info["success"] = self.success_vector()
        return self._observe(), reward, terminated, truncated, info


class ScriptedReachPolicy:
    """Heads for the task's goal with Gaussian noise; terminates at random or when close."""

    def __init__(self, config: PointMassConfig) -> None:
        self.config = config
        self._rng = np.random.default_rng(0)
        self._goal = 0

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        self._rng = rng
        self._goal = int(task.rsplit("-", 1)[1]) if task else int(rng.integers(self.config.goals))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = obs["state"]
        goal = state[2 + 2 * self._goal : 4 + 2 * self._goal]
        move = np.clip((goal - state[:2]) / self.config.step, -1, 1)
        move = move + self.config.scripted_noise * self._rng.standard_normal(2)
        near = np.linalg.norm(goal - state[:2]) < 0.5 * self.config.radius
        stop = near or self._rng.random() < self.config.scripted_terminate_prob
        return np.array([*np.clip(move, -1, 1), float(stop)], dtype=np.float32)


@dataclass(frozen=True)
class PointMassSpec(EnvSpec):
    """The point-mass environment as an :class:`mtopt.spec.EnvSpec`."""

    config: PointMassConfig = field(default_factory=PointMassConfig)
    """The environment's settings."""

    def __post_init__(self) -> None:
        cfg = self.config
        set_ = object.__setattr__
        set_(self, "name", "pointmass")
        set_(self, "task_set", point_mass_task_set(cfg))
        set_(self, "action", ActionSpec((-1.0, -1.0, 0.0), (1.0, 1.0, 1.0), (2,), terminate_dim=2))
        set_(self, "observation", ObservationSpec(state_dim=2 + 2 * cfg.goals))
        set_(self, "structure", None)
        set_(self, "horizon", cfg.horizon)

    def make_env(self, image: bool = False, side_images: bool = False) -> PointMassEnv:
        if image or side_images:
            raise ValueError("the pointmass environment has no cameras; use obs 'state'")
        return PointMassEnv(self.config)

    def reset_options(
        self, task: str, mode: StartMode, attempt: int | None = None
    ) -> dict[str, Any]:
        del mode, attempt
        self.task_set.validate([task])
        return {"task": task}

    def scripted_policy(self, task: str) -> tuple[ScriptedReachPolicy, str]:
        self.task_set.validate([task])
        return ScriptedReachPolicy(self.config), "scripted-reach"
