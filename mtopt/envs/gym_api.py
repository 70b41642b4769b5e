"""The workcell through the standard Gymnasium API: one task per env, and a vector env of all.

``gymnasium.make("mtopt/Workcell-v0", task="lift-carrot", obs="state")`` (registered on
``import mtopt``, :mod:`mtopt.gym_registration`) builds a :class:`WorkcellGymEnv`: one task of
the simulated workcell with a sparse reward, 1.0 on the episode's final step exactly when the
task's ground-truth success predicate holds there, else 0. It is meant for users and
evaluation; mtopt's learner does not use it (it receives the spec and labels episodes with
its success detector).

``gymnasium.make_vec("mtopt/Workcell-v0", num_envs=12)`` (or :func:`make_workcell_vector_env`)
builds a :class:`gymnasium.vector.SyncVectorEnv` whose sub-env ``i`` runs task
``tasks[i % len(tasks)]``: every sub-env has the same spaces, and the observation's ``task``
entry (an index into :data:`TASKS`) tells a multi-task policy which task it acts for.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mtopt.envs.workcell import WorkcellEnv
from mtopt.envs.workcell_config import SCENES, WorkcellConfig
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.envs.workcell_tasks import NEW_TASKS, OBJECT_ACQUISITION, workcell_task_set

TASKS: tuple[str, ...] = (*workcell_task_set().names, *NEW_TASKS)
"""Tasks an env can run, in the order of the observation's ``task`` index: the 12 evaluation
tasks (their one-hot slot order), then the new tasks ``lift-cloth`` and ``cover-object``,
which need a cloth in the scene (``cloths=1``)."""
EVALUATION_TASKS: tuple[str, ...] = workcell_task_set().names
"""The 12 tasks a vector env serves unless told otherwise."""
OBS_MODES = ("state", "image")
"""``obs="state"``: the state vector and the gripper inputs; ``"image"``: the over-the-shoulder
camera image instead of the state vector."""
LOW_DIM_KEYS = ("gripper_status", "gripper_height", "gripper_motion")
"""The gripper inputs of both observation modes (as the workcell reports them)."""
RESET_OPTIONS = ("scene", "grasped")
"""Keys accepted in ``reset(options=...)`` (the workcell's meaning; the task is fixed)."""
FIXED_SETTINGS = ("image", "side_images")
"""Workcell settings that ``obs`` decides (not accepted as keyword settings)."""


def _workcell_config(
    obs: str, config: WorkcellConfig | None, settings: dict[str, Any]
) -> WorkcellConfig:
    """``config`` (default :class:`WorkcellConfig`) with ``settings`` and the images ``obs``
    needs; ``ValueError`` for an unknown or fixed setting (values are checked by the config)."""
    if config is None:
        config = WorkcellConfig()
    elif not isinstance(config, WorkcellConfig):
        raise ValueError(f"config must be a WorkcellConfig or None, got {config!r}")
    allowed = [f.name for f in dataclasses.fields(WorkcellConfig) if f.name not in FIXED_SETTINGS]
    fixed = sorted(set(settings) & set(FIXED_SETTINGS))
    if fixed:
        raise ValueError(f"workcell setting(s) {fixed} are set by obs={obs!r}; pass obs='image'")
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"unknown workcell setting(s) {unknown}; allowed: {allowed}")
    return dataclasses.replace(config, **settings, image=obs == "image", side_images=False)


class WorkcellGymEnv(gym.Env[dict[str, Any], np.ndarray]):
    """One task of the simulated workcell behind the Gymnasium API (module docstring).

    Observations: a ``Dict`` of ``state`` (``obs="state"``) or ``image`` (``obs="image"``), the
    gripper inputs :data:`LOW_DIM_KEYS` and ``task`` (its index in :data:`TASKS`). Actions:
    ``(dx, dy, dz, dyaw, gripper, terminate)`` in the spec's bounds. Reward: 1.0 on the final
    step if the task succeeded, else 0. ``terminated`` when the policy terminates;
    ``truncated`` at the step limit (``max_steps``) or when the physics blew up
    (``info["physics_unstable"]``, reward 0). ``info["success"]`` is the task's ground truth on
    the final step (False before).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(
        self,
        task: str | None = None,
        obs: str = "state",
        render_mode: str | None = None,
        scene: str = "random",
        config: WorkcellConfig | None = None,
        **settings: Any,
    ) -> None:
        """``task``: one of :data:`TASKS`; ``obs``: one of :data:`OBS_MODES`; ``scene``:
        ``"random"`` (training scenes) or ``"evaluation"`` (the standard scene, paper Fig. 17);
        ``config`` and keyword ``settings`` (:class:`WorkcellConfig` fields, e.g.
        ``image_size=96``) configure the workcell. Place tasks start holding an object."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; allowed: {list(TASKS)}")
        if obs not in OBS_MODES:
            raise ValueError(f"obs must be one of {OBS_MODES}, got {obs!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
        self.config = _workcell_config(obs, config, settings)
        if task in NEW_TASKS and self.config.cloths < 1:
            raise ValueError(
                f"task {task!r} needs a cloth in the scene; pass cloths=1 and max_objects=7"
            )
        self.task = task
        self.task_index = TASKS.index(task)
        self.obs_mode = obs
        self.render_mode = render_mode
        self._workcell = WorkcellEnv(self.config)
        if self._workcell.task_names != TASKS:
            raise RuntimeError(f"workcell tasks {self._workcell.task_names} differ from {TASKS}")
        skill = NEW_TASKS[task] if task in NEW_TASKS else workcell_task_set()[task].skill
        self._start: dict[str, Any] = {
            "task": task,
            "scene": scene,
            "grasped": skill != OBJECT_ACQUISITION,
        }
        inner = self._workcell.observation_space.spaces
        keys = (obs, *LOW_DIM_KEYS)  # "state" or "image"
        self.observation_space = spaces.Dict(
            {**{k: inner[k] for k in keys}, "task": spaces.Discrete(len(TASKS))}
        )
        self.action_space = spaces.Box(
            low=np.array(WORKCELL_ACTION.low, dtype=np.float32),
            high=np.array(WORKCELL_ACTION.high, dtype=np.float32),
            dtype=np.float32,
        )

    @property
    def workcell(self) -> WorkcellEnv:
        """The wrapped :class:`WorkcellEnv` (its ``success_vector()``, ``scene_facts()``, ...)."""
        return self._workcell

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {k: raw[k] for k in (self.obs_mode, *LOW_DIM_KEYS)}
        out["task"] = np.int64(self.task_index)
        return out

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode of the task; the same ``seed`` gives the same episode. Options
        (:data:`RESET_OPTIONS`): ``scene`` ("random" | "evaluation") and ``grasped`` (start
        holding an object) override the env's start for this episode."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: {list(RESET_OPTIONS)}")
        # one random stream: the workcell draws its scenes from this env's seeded generator
        self._workcell.np_random = self.np_random
        raw, _ = self._workcell.reset(options={**self._start, **options})
        return self._observe(raw), {"task": self.task, "task_index": self.task_index}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply ``action``; ``ValueError`` if it is outside :attr:`action_space`."""
        raw, _, terminated, truncated, inner = self._workcell.step(action)
        success = "success" in inner and bool(inner["success"][self.task_index])
        info = {
            "task": self.task,
            "task_index": self.task_index,
            "success": success,
            "physics_unstable": bool(inner.get("physics_unstable", False)),
        }
        return self._observe(raw), float(success), terminated, truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The over-the-shoulder RGB image, uint8 ``(image_size, image_size, 3)``, for
        ``render_mode="rgb_array"``; ``None`` otherwise."""
        return self._workcell.render_image() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release the workcell's rendering resources."""
        self._workcell.close()


def make_workcell_vector_env(
    num_envs: int | None = None,
    tasks: list[str] | tuple[str, ...] | None = None,
    *,
    task: str | None = None,
    obs: str = "state",
    scene: str = "random",
    render_mode: str | None = None,
    config: WorkcellConfig | None = None,
    max_episode_steps: int | None = None,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    **settings: Any,
) -> SyncVectorEnv:
    """A :class:`SyncVectorEnv` of ``num_envs`` workcells, sub-env ``i`` running
    ``tasks[i % len(tasks)]``; ``num_envs`` defaults to ``len(tasks)`` and may not be smaller.

    ``tasks`` defaults to :data:`EVALUATION_TASKS`; ``task`` (one name) is short for
    ``tasks=[task]``. ``max_episode_steps`` (``gymnasium.make_vec`` passes one when given)
    is the workcell's ``max_steps`` unless ``max_steps`` or a ``config`` is given: the workcell
    itself truncates the episode and judges success on its last step. The other arguments are
    those of :class:`WorkcellGymEnv`. ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i``.
    """
    if task is not None and tasks is not None:
        raise ValueError(f"pass task or tasks, not both (got task={task!r}, tasks={tasks!r})")
    if isinstance(tasks, str):
        raise ValueError(f"tasks must be a list of task names, got the string {tasks!r}")
    chosen = tuple(tasks) if tasks is not None else EVALUATION_TASKS if task is None else (task,)
    bad = [t for t in chosen if t not in TASKS]
    if bad or not chosen:
        raise ValueError(f"unknown or no task(s) {bad or list(chosen)}; allowed: {list(TASKS)}")
    if num_envs is None:
        num_envs = len(chosen)
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < len(chosen):
        raise ValueError(
            f"num_envs must be an integer >= the {len(chosen)} task(s) served (one sub-env per "
            f"task at least), got {num_envs!r}; pass num_envs={len(chosen)} or fewer tasks"
        )
    if max_episode_steps is not None and "max_steps" not in settings and config is None:
        settings["max_steps"] = max_episode_steps
    fns = [
        functools.partial(
            WorkcellGymEnv,
            task=chosen[i % len(chosen)],
            obs=obs,
            render_mode=render_mode,
            scene=scene,
            config=config,
            **settings,
        )
        for i in range(num_envs)
    ]
    return SyncVectorEnv(fns, autoreset_mode=autoreset_mode)
