"""The simulated workcell as an :class:`mtopt.spec.EnvSpec` (the default environment).

The spec bundles the workcell's config with its scripted bootstrap policies: a lift task starts
on a random scene with the scripted picker, a place task starts holding an object with the
scripted placer, and a place may be chained on the scene a lift left behind (paper App. 9.1).
Evaluation starts every attempt on the standard evaluation scene (paper Fig. 17). Its expert
policies, for diagnostics, are the aimed controllers of :mod:`mtopt.envs.aimed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from mtopt.envs.aimed import AimedPickPolicy, AimedPlacePolicy
from mtopt.envs.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)
from mtopt.envs.workcell_config import (
    GRIPPER_DIM,
    OBJECT_DIM,
    OBJECT_FIELDS,
    PLATE_DIM,
    WorkcellConfig,
)
from mtopt.envs.workcell_tasks import (
    NEW_TASKS,
    OBJECT_ACQUISITION,
    OBJECT_MANIPULATION,
    TASK_ATTRIBUTES,
    workcell_task_set,
)
from mtopt.spec import ActionSpec, EnvSpec, ObservationSpec, StartMode, StateStructure

WORKCELL_ACTION = ActionSpec(
    low=(-1.0, -1.0, -1.0, -1.0, 0.0, 0.0),
    high=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    discrete_dims=(4, 5),
    terminate_dim=5,
)
"""``(dx, dy, dz, dyaw, gripper, terminate)``: four continuous motion dims in ``[-1, 1]``, the
gripper (0 open, 1 closed) and terminate as binary choices."""


@dataclass(frozen=True)
class WorkcellSpec(EnvSpec):
    """The workcell's spec: its config and its scripted bootstrap policies."""

    config: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated cell."""
    pick: ScriptedPickConfig = field(default_factory=ScriptedPickConfig)
    """The scripted picking policy (object-acquisition tasks)."""
    place: ScriptedPlaceConfig = field(default_factory=ScriptedPlaceConfig)
    """The scripted placing policy (object-manipulation tasks)."""

    def __post_init__(self) -> None:
        cfg = self.config
        set_ = object.__setattr__
        set_(self, "name", "workcell")
        set_(self, "task_set", workcell_task_set())
        set_(self, "action", WORKCELL_ACTION)
        set_(
            self,
            "observation",
            ObservationSpec(
                state_dim=GRIPPER_DIM + OBJECT_DIM * cfg.n_slots + PLATE_DIM,
                proprio=(("gripper_status", 1), ("gripper_height", 1)),
                extra=(("gripper_motion", 3),),
                image_size=cfg.image_size,
                length_inputs=("gripper_height", "gripper_motion"),
            ),
        )
        set_(
            self,
            "structure",
            StateStructure(
                robot_dim=GRIPPER_DIM,
                object_dim=OBJECT_DIM,
                context_dim=PLATE_DIM,
                presence_index=OBJECT_FIELDS["present"].start,
                yaw_index=OBJECT_FIELDS["yaw"].start,
                robot_yaw_index=3,
                opening_index=5,
                action_translation=cfg.max_translation,
                action_yaw=cfg.max_yaw,
            ),
        )
        set_(self, "horizon", cfg.max_steps)

    def make_env(self, image: bool = False, side_images: bool = False) -> Any:
        from mtopt.envs.workcell import WorkcellEnv

        cfg = self.config
        if (image and not cfg.image) or (side_images and not cfg.side_images):
            cfg = replace(cfg, image=cfg.image or image, side_images=cfg.side_images or side_images)
        return WorkcellEnv(cfg)

    def reset_options(
        self, task: str, mode: StartMode, attempt: int | None = None
    ) -> dict[str, Any]:
        del attempt  # the evaluation scene comes from the attempt's seed
        skill = self.task_set[task].skill
        options: dict[str, Any] = {"task": task}
        if mode == "evaluate":
            options["scene"] = "evaluation"
        if skill != OBJECT_ACQUISITION:
            options["grasped"] = True
        return options

    def has_ground_truth(self, task: str) -> bool:
        """The 12 tasks and the new tasks of :data:`NEW_TASKS` (once a run adds them)."""
        return task in self.task_set or task in NEW_TASKS

    def known_attributes(self, task: str) -> tuple[str, ...]:
        """The hand-written attributes of :data:`NEW_TASKS` (``lift-cloth``, ``cover-object``)."""
        return TASK_ATTRIBUTES.get(task, ()) if task in NEW_TASKS else ()

    def scripted_policy(self, task: str) -> tuple[Any, str]:
        if self.task_set[task].skill == OBJECT_ACQUISITION:
            return ScriptedPickPolicy(self.pick), "scripted-pick"
        return ScriptedPlacePolicy(self.place), "scripted-place"

    def expert_policy(self, task: str) -> tuple[Any, str]:
        """The aimed controllers of :mod:`mtopt.envs.aimed`: the aimed picker for
        object-acquisition tasks, the aimed placer for object-manipulation tasks."""
        if self.task_set[task].skill == OBJECT_ACQUISITION:
            return AimedPickPolicy(self.config), "expert-aimed-pick"
        return AimedPlacePolicy(self.config), "expert-aimed-place"

    def chain_skill(self, task: str) -> str | None:
        return OBJECT_MANIPULATION if self.task_set[task].skill == OBJECT_ACQUISITION else None

    def camera_projections(self) -> Callable[[int], np.ndarray]:
        from mtopt.envs.workcell_examples import workcell_camera_projections

        return partial(workcell_camera_projections, workcell=self.config)

    def control_hz(self) -> float:
        """One policy step lasts ``substeps * timestep`` of simulated time (10 Hz by default)."""
        return 1.0 / (self.config.substeps * self.config.timestep)

    def chain_options(self, task: str) -> dict[str, Any]:
        self.task_set.validate([task])
        return {"chain": True, "task": task}
