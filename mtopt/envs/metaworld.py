"""Meta-World MT10 and MT50 behind the environment interface (``--env metaworld-mt10``).

Meta-World (``../shared/papers/metaworld-lecture-slides.txt``) is the standard multi-task
benchmark: a Sawyer arm, one scene per task, 50 goal positions per task, a 39-d state, a 4-d
action (end-effector translation and gripper effort) and a success flag per step. This module
runs its MT10 and MT50 task sets through the MT-Opt pipeline. The ``metaworld`` package (3.1.1,
which requires ``mujoco==3.3.0``) is imported only when a spec is built.

How an episode maps onto MT-Opt:

* **Tasks.** One task per Meta-World environment (``reach-v3``, ...), each with its own
  one-hot slot; :attr:`MetaWorldConfig.reserved_slots` more are kept free for new tasks.
  Tasks that manipulate the same object (``drawer-open-v3`` and ``drawer-close-v3``) share a
  *skill*, which is what skill impersonation routes on (:data:`TASK_OBJECTS`). Tasks never
  imply or exclude each other: every task has its own scene.
* **Steps.** One policy step repeats its action for :attr:`MetaWorldConfig.action_repeat`
  Meta-World steps, so a 500-step Meta-World episode is ``ceil(500 / k)`` policy steps and a
  sparse reward at the end is only that many steps from the start.
* **Success.** An episode succeeds if Meta-World's success flag was ever 1 during it, checked
  at every Meta-World step (the benchmark's protocol). With
  :attr:`MetaWorldConfig.terminate_on_success` the episode ends at that step (Meta-World's own
  ``terminate_on_success`` option), so its final observation shows the success that a
  success detector is asked to recognise. The flag only ends episodes; rewards come from the
  success detector unless a config says ``oracle``.
* **Scenes.** An episode starts at one of the task's 50 goal positions (object and goal
  placements fixed by ``metaworld.MT10(seed=goal_seed)``): a random one for collection, and
  goal ``k mod 50`` for evaluation attempt ``k`` (the protocol: 50 attempts, one per goal).
* **Bootstrap.** Meta-World's scripted expert of the task (``metaworld.policies``) with
  Gaussian action noise and random actions, so that the bootstrap data succeeds only part of
  the time (:class:`NoisyExpertPolicy`); without noise it is the task's expert policy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from mtopt.spec import ActionSpec, EnvSpec, ObservationSpec, StartMode
from mtopt.tasks import TaskSet

INSTALL_HINT = "pip install metaworld==3.1.1 (it requires mujoco==3.3.0)"
"""How to install the optional Meta-World dependency."""
METAWORLD_STEPS = 500
"""Meta-World's episode length in its own steps (``max_path_length``)."""
GOALS = 50
"""Goal positions per task in Meta-World's multi-task benchmarks."""
STATE_DIM = 39
"""Meta-World's observation: hand, gripper, two objects, the previous frame's copy, the goal."""
BENCHMARKS: dict[str, str] = {"mt10": "MT10_V3", "mt50": "MT50_V3"}
"""Task-set names and the ``metaworld.env_dict`` tables that list their environments."""

TASK_OBJECTS: dict[str, str] = {
    "assembly": "peg-ring",
    "disassemble": "peg-ring",
    "button-press": "button",
    "button-press-topdown": "button",
    "button-press-topdown-wall": "button",
    "button-press-wall": "button",
    "coffee-button": "coffee-machine",
    "coffee-pull": "mug",
    "coffee-push": "mug",
    "door-close": "door",
    "door-lock": "door-lock",
    "door-open": "door",
    "door-unlock": "door-lock",
    "drawer-close": "drawer",
    "drawer-open": "drawer",
    "faucet-close": "faucet",
    "faucet-open": "faucet",
    "handle-press": "handle",
    "handle-press-side": "handle",
    "handle-pull": "handle",
    "handle-pull-side": "handle",
    "peg-insert-side": "peg",
    "peg-unplug-side": "peg",
    "pick-out-of-hole": "puck",
    "pick-place": "puck",
    "pick-place-wall": "puck",
    "plate-slide": "plate",
    "plate-slide-back": "plate",
    "plate-slide-back-side": "plate",
    "plate-slide-side": "plate",
    "push": "puck",
    "push-back": "puck",
    "push-wall": "puck",
    "shelf-place": "puck",
    "stick-pull": "stick",
    "stick-push": "stick",
    "sweep": "puck",
    "sweep-into": "puck",
    "window-close": "window",
    "window-open": "window",
}
"""The object each task manipulates (its skill); tasks not listed are a skill of their own
(``reach-v3``: ``reach``). Tasks of one skill share data under skill impersonation."""

TASK_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "reach": ("reach", "goal", "move", "free", "air"),
    "push": ("push", "puck", "slide", "table", "goal"),
    "pick-place": ("pick", "place", "puck", "grasp", "lift", "goal"),
    "door-open": ("open", "door", "pull", "hinge", "swing"),
    "drawer-open": ("open", "drawer", "pull", "slide", "handle"),
    "drawer-close": ("close", "drawer", "push", "slide", "handle"),
    "button-press-topdown": ("press", "button", "push", "down", "top"),
    "peg-insert-side": ("insert", "peg", "grasp", "hole", "side"),
    "window-open": ("open", "window", "slide", "sideways", "handle"),
    "window-close": ("close", "window", "slide", "sideways", "handle"),
}
"""Hand-written attributes (verb, object, motion; :attr:`mtopt.tasks.Task.attributes`) of
MT10's ten tasks, which MT50 shares; MT50's other tasks get the words of their name and skill
(:func:`mtopt.tasks.default_attributes`)."""


CALIBRATED_REPEAT = 10
"""The action repeat at which :data:`EXPERT_SCALE` and :data:`BOOTSTRAP_NOISE` were measured."""

EXPERT_SCALE: dict[str, float] = {
    # task: factor  the plain expert's success, 20 attempts (session 26)
    "bin-picking-v3": 0.3,  # expert 0.65 at 1, 1.00 at 0.3
    "box-close-v3": 0.3,  # expert 0.10 at 1, 0.90 at 0.3
    "coffee-pull-v3": 0.5,  # expert 0.75 at 1, 1.00 at 0.5
    "coffee-push-v3": 0.5,  # expert 0.65 at 1, 1.00 at 0.5
    "hammer-v3": 0.5,  # expert 0.30 at 1, 0.80 at 0.5
    "handle-pull-side-v3": 0.3,  # expert 0.00 at 1, 0.55 at 0.3
    "lever-pull-v3": 0.3,  # expert 0.00 at 1, 0.80 at 0.3
    "pick-place-wall-v3": 0.5,  # expert 0.75 at 1, 1.00 at 0.5
    "soccer-v3": 0.3,  # expert 0.65 at 1, 1.00 at 0.3
    "stick-pull-v3": 0.3,  # expert 0.55 at 1, 1.00 at 0.3
    "push-back-v3": 0.5,  # expert 0.65 at 1, 1.00 at 0.5
    "shelf-place-v3": 0.3,  # expert 0.75 at 1, 1.00 at 0.3
    "sweep-v3": 0.5,  # expert 0.75 at 1, 1.00 at 0.5
}
"""Per task, the factor on the expert's translation command at :data:`CALIBRATED_REPEAT`
(tasks not listed: 1). Meta-World's experts are proportional controllers tuned to act every
simulator step; repeating an action 10 steps makes some of them overshoot and fail without any
noise. Where the plain expert succeeds less than :data:`EXPERT_SCALE_BELOW` of the calibration
attempts, ``benchmarks/calibrate_metaworld.py --scales`` picks the factor under which it
succeeds most (docs/metaworld.md). At other action repeats the experts act unscaled."""
EXPERT_SCALE_BELOW = 0.8
"""Experts at least this good at factor 1 keep it (so MT10's experts act as Meta-World wrote
them)."""

BOOTSTRAP_NOISE: dict[str, tuple[float, float]] = {
    # task: (Gaussian noise std, random-action probability)  calibration rate; MT10's tasks
    # over 50 attempts (session 24)
    "reach-v3": (3.0, 0.7),  # 0.26
    "push-v3": (0.3, 0.0),  # 0.22
    "pick-place-v3": (0.5, 0.1),  # 0.18
    "door-open-v3": (3.0, 0.1),  # 0.26
    "drawer-open-v3": (1.0, 0.1),  # 0.16
    "drawer-close-v3": (3.0, 1.0),  # 0.38: uniformly random actions close the drawer this often
    "button-press-topdown-v3": (3.0, 0.7),  # 0.18
    "peg-insert-side-v3": (0.3, 0.1),  # 0.30
    "window-open-v3": (2.0, 0.1),  # 0.26
    "window-close-v3": (3.0, 0.7),  # 0.22
    # MT50's other 40 tasks: calibration rate over 20 attempts (session 26)
    "assembly-v3": (0.2, 0.0),  # 0.20
    "basketball-v3": (0.3, 0.1),  # 0.10
    "bin-picking-v3": (0.2, 0.0),  # 0.30 (expert x0.3)
    "box-close-v3": (0.2, 0.0),  # 0.30 (expert x0.3)
    "button-press-topdown-wall-v3": (3.0, 0.3),  # 0.25
    "button-press-v3": (0.5, 0.1),  # 0.15
    "button-press-wall-v3": (0.5, 0.1),  # 0.35
    "coffee-button-v3": (3.0, 1.0),  # 0.15
    "coffee-pull-v3": (0.5, 0.1),  # 0.30 (expert x0.5)
    "coffee-push-v3": (0.5, 0.1),  # 0.25 (expert x0.5)
    "dial-turn-v3": (2.0, 0.1),  # 0.25
    "disassemble-v3": (0.3, 0.05),  # 0.10
    "door-close-v3": (3.0, 1.0),  # 0.15
    "door-lock-v3": (0.2, 0.05),  # 0.35
    "door-unlock-v3": (3.0, 0.5),  # 0.25
    "hand-insert-v3": (0.3, 0.1),  # 0.35
    "faucet-open-v3": (3.0, 0.1),  # 0.25
    "faucet-close-v3": (2.0, 0.1),  # 0.25
    "hammer-v3": (0.3, 0.1),  # 0.20 (expert x0.5)
    "handle-press-side-v3": (0.5, 0.1),  # 0.20
    "handle-press-v3": (0.3, 0.1),  # 0.35
    "handle-pull-side-v3": (0.05, 0.0),  # 0.10 (expert x0.3)
    "handle-pull-v3": (1.0, 0.1),  # 0.20
    "lever-pull-v3": (0.1, 0.0),  # 0.30 (expert x0.3)
    "pick-place-wall-v3": (0.3, 0.1),  # 0.10 (expert x0.5)
    "pick-out-of-hole-v3": (0.2, 0.0),  # 0.25
    "plate-slide-v3": (1.0, 0.1),  # 0.15
    "plate-slide-side-v3": (1.0, 0.1),  # 0.20
    "plate-slide-back-v3": (0.3, 0.1),  # 0.10
    "plate-slide-back-side-v3": (0.3, 0.1),  # 0.25
    "peg-unplug-side-v3": (0.3, 0.1),  # 0.30
    "soccer-v3": (3.0, 0.1),  # 0.30 (expert x0.3)
    "stick-push-v3": (0.3, 0.1),  # 0.25
    "stick-pull-v3": (0.3, 0.1),  # 0.20 (expert x0.3)
    "push-wall-v3": (0.3, 0.1),  # 0.15
    "push-back-v3": (0.3, 0.1),  # 0.35 (expert x0.5)
    "reach-wall-v3": (3.0, 0.5),  # 0.25
    "shelf-place-v3": (0.2, 0.05),  # 0.25 (expert x0.3)
    "sweep-into-v3": (1.0, 0.1),  # 0.10
    "sweep-v3": (0.5, 0.1),  # 0.10 (expert x0.5)
}
"""Per task, the bootstrap policy's Gaussian noise std and random-action probability that
bring it closest to a quarter of successes under the evaluation protocol (10-40 % is the aim:
the learner must improve on weak data), measured with ``benchmarks/calibrate_metaworld.py``
at :data:`CALIBRATED_REPEAT` with terminate on success (docs/metaworld.md has the commands).
Other action repeats need ``scripted_noise`` and ``scripted_random``."""


def _metaworld() -> Any:
    """The ``metaworld`` package, or an ``ImportError`` that says how to install it."""
    try:
        import metaworld
    except ImportError as err:
        raise ImportError(f"the Meta-World environments need metaworld: {INSTALL_HINT}") from err
    # Meta-World's experts warn on every call whose gain saturates the action; they mean it
    warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
    return metaworld


def benchmark_tasks(benchmark: str) -> tuple[str, ...]:
    """Names of the environments of ``benchmark`` (``mt10`` or ``mt50``), in Meta-World's
    order."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown Meta-World benchmark {benchmark!r}; known: {list(BENCHMARKS)}")
    _metaworld()
    from metaworld import env_dict

    return tuple(getattr(env_dict, BENCHMARKS[benchmark]))


def task_skill(task: str) -> str:
    """The skill of a Meta-World task: the object it manipulates (:data:`TASK_OBJECTS`)."""
    base = task.removesuffix("-v3")
    return TASK_OBJECTS.get(base, base)


@dataclass(frozen=True)
class MetaWorldConfig:
    """Meta-World episodes as MT-Opt sees them, and the bootstrap policy's noise."""

    action_repeat: int = 10
    """Meta-World steps per policy step (the policy acts every ``k`` steps; an episode is
    ``ceil(500 / k)`` policy steps)."""
    terminate_on_success: bool = True
    """End an episode at the first Meta-World step whose success flag is 1 (Meta-World's
    ``terminate_on_success``); otherwise episodes run all 500 steps and succeed if the flag
    was ever 1."""
    goal_seed: int = 0
    """Seed of the benchmark's 50 goal positions per task (``metaworld.MT10(seed=...)``)."""
    reserved_slots: int = 6
    """One-hot slots kept free for tasks added later (the task set's capacity is the
    benchmark's tasks plus these)."""
    scripted_noise: float | None = None
    """Std of the Gaussian noise the bootstrap policy adds to the expert's action (action
    units; actions are clipped to [-1, 1]); ``None``: each task's calibrated level
    (:data:`BOOTSTRAP_NOISE`)."""
    scripted_random: float | None = None
    """Probability per policy step that the bootstrap policy takes a uniformly random action
    instead; ``None``: each task's calibrated level (:data:`BOOTSTRAP_NOISE`)."""
    cached_tasks: int = 10
    """Task environments an environment keeps built (about 26 MB each; the least recently
    used one is closed beyond this and rebuilt when its task comes again). MT10 keeps all of
    its 10; on MT50 it bounds the memory of an evaluation's 16 side-by-side environments."""

    def __post_init__(self) -> None:
        if not isinstance(self.action_repeat, int) or not 1 <= self.action_repeat <= 100:
            raise ValueError(
                f"action_repeat must be an integer in [1, 100], got {self.action_repeat!r}"
            )
        if not isinstance(self.reserved_slots, int) or self.reserved_slots < 0:
            raise ValueError(f"reserved_slots must be an integer >= 0, got {self.reserved_slots!r}")
        if not isinstance(self.cached_tasks, int) or self.cached_tasks < 1:
            raise ValueError(f"cached_tasks must be an integer >= 1, got {self.cached_tasks!r}")
        if not isinstance(self.goal_seed, int) or self.goal_seed < 0:
            raise ValueError(f"goal_seed must be an integer >= 0, got {self.goal_seed!r}")
        noise, random = self.scripted_noise, self.scripted_random
        if noise is not None and not (isinstance(noise, (int, float)) and noise >= 0):
            raise ValueError(f"scripted_noise must be None or >= 0, got {noise!r}")
        if random is not None and not (isinstance(random, (int, float)) and 0 <= random <= 1):
            raise ValueError(f"scripted_random must be None or in [0, 1], got {random!r}")

    def bootstrap_noise(self, task: str) -> tuple[float, float]:
        """``(noise, random)`` of ``task``'s bootstrap policy: the config's values where set,
        the task's calibrated ones (:data:`BOOTSTRAP_NOISE`) otherwise."""
        calibrated = BOOTSTRAP_NOISE.get(task)
        if self.scripted_noise is None or self.scripted_random is None:
            if self.action_repeat != CALIBRATED_REPEAT:
                raise ValueError(
                    f"the bootstrap noise was calibrated at action_repeat {CALIBRATED_REPEAT}, "
                    f"not {self.action_repeat}; set --env.metaworld.scripted-noise and "
                    "--env.metaworld.scripted-random, or calibrate this repeat with "
                    "benchmarks/calibrate_metaworld.py"
                )
            if calibrated is None:
                raise ValueError(
                    f"task {task!r} has no calibrated bootstrap noise (BOOTSTRAP_NOISE covers "
                    f"{len(BOOTSTRAP_NOISE)} tasks); set --env.metaworld.scripted-noise and "
                    "--env.metaworld.scripted-random, or calibrate it with "
                    "benchmarks/calibrate_metaworld.py"
                )
        noise = self.scripted_noise if self.scripted_noise is not None else calibrated[0]
        random = self.scripted_random if self.scripted_random is not None else calibrated[1]
        return float(noise), float(random)

    def expert_scale(self, task: str) -> float:
        """The factor on ``task``'s expert translation command at this action repeat
        (:data:`EXPERT_SCALE`)."""
        if self.action_repeat != CALIBRATED_REPEAT:
            return 1.0
        return EXPERT_SCALE.get(task, 1.0)

    @property
    def horizon(self) -> int:
        """Policy steps of a full-length episode."""
        return math.ceil(METAWORLD_STEPS / self.action_repeat)


def metaworld_task_set(tasks: tuple[str, ...], reserved_slots: int) -> TaskSet:
    """One task per environment in ``tasks``' order, with ``reserved_slots`` free slots."""
    task_set = TaskSet(len(tasks) + reserved_slots)
    for name in tasks:
        attributes = TASK_ATTRIBUTES.get(name.removesuffix("-v3"), ())
        task_set.add(name, task_skill(name), attributes=attributes)
    return task_set


@cache
def _goals(benchmark: str, goal_seed: int) -> dict[str, list[Any]]:
    """Per environment, the benchmark's 50 goal positions as Meta-World ``Task`` records (built
    once per process: Meta-World resets every environment 50 times to draw them)."""
    metaworld = _metaworld()
    bench = getattr(metaworld, BENCHMARKS[benchmark].removesuffix("_V3"))(seed=goal_seed)
    goals: dict[str, list[Any]] = {}
    for record in bench.train_tasks:
        goals.setdefault(record.env_name, []).append(record)
    return goals


class MetaWorldEnv(gym.Env):
    """One Gymnasium env that runs any task of a Meta-World benchmark (module docstring).

    ``reset`` options: ``task`` (a task name; default a random task) and ``goal`` (a goal index
    in ``[0, 50)``; default a random goal). The ``state`` observation is Meta-World's 39-d
    vector; the final step's ``info["success"]`` holds the episode's success for its own task
    (every other task: ``False``, as it was not attempted)."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, benchmark: str, config: MetaWorldConfig | None = None) -> None:
        self.config = config if config is not None else MetaWorldConfig()
        self.benchmark = benchmark
        self.task_names = benchmark_tasks(benchmark)
        self._classes = {name: self._env_class(name) for name in self.task_names}
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)}
        )
        self._envs: dict[str, Any] = {}
        self._env: Any = None
        self._task = ""
        self._goal = -1
        self._raw_steps = 0
        self._success = False
        self._done = True

    @staticmethod
    def _env_class(name: str) -> Any:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        return ALL_V3_ENVIRONMENTS[name]

    @property
    def task(self) -> str:
        """The current episode's task ('' before the first reset)."""
        return self._task

    @property
    def metaworld_env(self) -> Any:
        """The current task's own Meta-World environment (e.g. to time raw stepping)."""
        return self._env

    @property
    def goal(self) -> int:
        """The current episode's goal index (-1 before the first reset)."""
        return self._goal

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task", "goal"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: ['goal', 'task']")
        task = options.get("task")
        if task is None:
            task = self.task_names[int(self.np_random.integers(len(self.task_names)))]
        elif task not in self._classes:
            raise ValueError(f"unknown task {task!r}; known tasks: {list(self.task_names)}")
        goal = options.get("goal")
        if goal is None:
            goal = int(self.np_random.integers(GOALS))
        elif isinstance(goal, bool) or not isinstance(goal, (int, np.integer)):
            raise ValueError(f"goal must be an integer in [0, {GOALS}), got {goal!r}")
        elif not 0 <= goal < GOALS:
            raise ValueError(f"goal must be in [0, {GOALS}), got {goal}")
        env = self._envs.pop(task, None)
        if env is None:
            env = self._classes[task]()
        self._envs[task] = env  # the most recently used last
        while len(self._envs) > self.config.cached_tasks:
            oldest = next(iter(self._envs))
            self._envs.pop(oldest).close()
        if (task, int(goal)) != (self._task, self._goal) or env is not self._env:
            env.set_task(_goals(self.benchmark, self.config.goal_seed)[task][int(goal)])
        env.seed(int(self.np_random.integers(2**31)))
        obs, _ = env.reset()
        self._env, self._task, self._goal = env, task, int(goal)
        self._raw_steps = 0
        self._success = False
        self._done = False
        return self._observe(obs), {"task_names": self.task_names, "task": task, "goal": goal}

    @staticmethod
    def _observe(obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"state": np.asarray(obs, dtype=np.float32)}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("episode is over; call reset() before step()")
        a = np.asarray(action)
        if a.shape != (4,) or not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
            raise ValueError(
                f"action must be 4 finite real numbers (dx, dy, dz, grip), got {action!r}"
            )
        a = np.clip(a.astype(np.float32), -1.0, 1.0)
        cfg, env = self.config, self._env
        unstable = False
        obs = None
        for _ in range(cfg.action_repeat):
            obs, _r, _te, _tr, info = env.step(a)
            self._raw_steps += 1
            if getattr(env, "_did_see_sim_exception", False):
                unstable = True
                break
            if info["success"]:
                self._success = True
                if cfg.terminate_on_success:
                    break
            if self._raw_steps >= METAWORLD_STEPS:
                break
        terminated = self._success and cfg.terminate_on_success
        truncated = not terminated and (unstable or self._raw_steps >= METAWORLD_STEPS)
        out: dict[str, Any] = {"task_names": self.task_names, "metaworld_steps": self._raw_steps}
        reward = 0.0
        if terminated or truncated:
            self._done = True
            success = np.zeros(len(self.task_names), dtype=bool)
            success[self.task_names.index(self._task)] = self._success and not unstable
            out["success"] = success
            out["episode_extra"] = {"env_steps": self._raw_steps}
            if unstable:
                out["physics_unstable"] = True
            reward = float(success.any())
        return self._observe(obs), reward, terminated, truncated, out

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        self._env = None


class NoisyExpertPolicy:
    """Meta-World's scripted expert of a task, its translation command multiplied by ``scale``
    (:data:`EXPERT_SCALE`), with Gaussian action noise of std ``noise`` and a uniformly random
    action with probability ``random`` per step (``noise`` and ``random`` 0: the expert)."""

    def __init__(
        self, task: str, noise: float = 0.0, random: float = 0.0, scale: float = 1.0
    ) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        self.task = task
        self.noise = float(noise)
        self.random = float(random)
        self.scale = float(scale)
        self._expert = ENV_POLICY_MAP[task]()
        self._rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        if task is not None and task != self.task:
            raise ValueError(f"this policy acts for {self.task!r}, asked for {task!r}")
        self._rng = rng

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.random and self._rng.random() < self.random:
            return self._rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        action = np.array(self._expert.get_action(obs["state"].astype(np.float64)))
        action[:3] *= self.scale
        if self.noise:
            action = action + self.noise * self._rng.standard_normal(4)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class MetaWorldSpec(EnvSpec):
    """A Meta-World benchmark (``mt10`` or ``mt50``) as an :class:`mtopt.spec.EnvSpec`."""

    benchmark: Literal["mt10", "mt50"] = "mt10"
    """Which task set: MT10 or MT50."""
    config: MetaWorldConfig = field(default_factory=MetaWorldConfig)
    """Episodes and bootstrap noise."""

    def __post_init__(self) -> None:
        cfg = self.config
        set_ = object.__setattr__
        set_(self, "name", f"metaworld-{self.benchmark}")
        tasks = benchmark_tasks(self.benchmark)
        set_(self, "task_set", metaworld_task_set(tasks, cfg.reserved_slots))
        set_(self, "action", ActionSpec((-1.0,) * 4, (1.0,) * 4))
        set_(self, "observation", ObservationSpec(state_dim=STATE_DIM))
        set_(self, "structure", None)
        set_(self, "horizon", cfg.horizon)

    def make_env(self, image: bool = False, side_images: bool = False) -> MetaWorldEnv:
        if image or side_images:
            raise ValueError(
                f"{self.name} records state observations only; use obs 'state' (no images)"
            )
        return MetaWorldEnv(self.benchmark, self.config)

    def reset_options(
        self, task: str, mode: StartMode, attempt: int | None = None
    ) -> dict[str, Any]:
        self.task_set.validate([task])
        options: dict[str, Any] = {"task": task}
        if mode == "evaluate" and attempt is not None:
            options["goal"] = attempt % GOALS
        return options

    def scripted_policy(self, task: str) -> tuple[NoisyExpertPolicy, str]:
        self.task_set.validate([task])
        cfg = self.config
        policy = NoisyExpertPolicy(task, *cfg.bootstrap_noise(task), cfg.expert_scale(task))
        return policy, "scripted-noisy"

    def expert_policy(self, task: str) -> tuple[NoisyExpertPolicy, str]:
        """Meta-World's scripted expert of ``task`` at this action repeat, without noise."""
        self.task_set.validate([task])
        return NoisyExpertPolicy(task, scale=self.config.expert_scale(task)), "expert-metaworld"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "action_repeat": self.config.action_repeat}
