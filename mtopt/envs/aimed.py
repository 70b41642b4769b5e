"""An aimed top-down picker: a measuring stick for the workcell, not a bootstrap policy.

The paper's bootstrap policies (:mod:`mtopt.envs.scripted`) are crude on purpose: they
never aim. :class:`AimedPickPolicy` does. It reads the object poses from the ``state``
observation (the same vector the state learner sees; no ground-truth success), picks the
object with the most room around its grasp, turns the gripper so that the pads close across
the object's short side with the most clearance from walls and neighbours, moves above it,
descends to just below its centre, closes, lifts and terminates. If a descent stalls
(a finger rests on a neighbour or a wall) it gives the object up and tries the next one.

The one-off diagnostic ``benchmarks/aimed_ceiling.py`` (in the git history at 88de4cc) ran it
on the evaluation protocol to measure what a competent top-down grasp reaches in this
simulation (the ceiling for ``lift-*`` tasks) and which failures are physical rather than a
learning problem.
Usage: ``policy.reset(rng, task=...)`` at the start of each episode, then ``policy.act(obs)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mtopt.envs import scene
from mtopt.envs.workcell_config import OBJECT_FIELDS, WorkcellConfig, state_layout

CLEARANCE = 0.10
"""Finger-tip height (m) for moving across the bin to the next object."""
LIFT_TO = 0.16
"""Finger-tip height (m) reached before terminating."""
GRASP_DEPTH = 0.015
"""The finger tips close this far (m) below the object's centre (floor permitting): a pinch
above the equator of a round object squeezes it out downwards."""


class _Object(NamedTuple):
    slot: int
    pos: np.ndarray
    yaw: float
    category: str


def wrap_half_turn(angle: float) -> float:
    """``angle`` in [-pi/2, pi/2): a parallel gripper is symmetric under a half turn."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def _objects(state: np.ndarray, layout: dict[str, slice], n_slots: int) -> list[_Object]:
    out = []
    for i in range(n_slots):
        block = state[layout[f"object{i}"]]
        if block[OBJECT_FIELDS["present"]][0] < 0.5 or block[2] < -0.1:
            continue
        cat = scene.CATEGORIES[int(np.argmax(block[OBJECT_FIELDS["category"]]))]
        s, c = block[OBJECT_FIELDS["yaw"]]
        out.append(_Object(i, block[OBJECT_FIELDS["pos"]].astype(float), math.atan2(s, c), cat))
    return out


def grasp_yaw(target: _Object, others: list[_Object], gripper_yaw: float) -> tuple[float, float]:
    """``(yaw, room)``: the gripper yaw whose open pads fit around ``target`` with the most
    room (m, capped at 3 cm) to the bin walls and the ``others``; small turns win ties."""
    hx, hy, _ = scene.SHAPES[target.category].half_extent
    pad = scene.MAX_HALF_OPENING + 0.006
    best, best_score, best_room = target.yaw, -math.inf, -math.inf
    for j in range(8):
        rel = j * math.pi / 8
        if abs(hx * math.sin(rel)) + abs(hy * math.cos(rel)) > scene.MAX_HALF_OPENING - 0.006:
            continue  # too wide across the pads at this angle
        yaw = wrap_half_turn(target.yaw + rel)
        across = np.array([-math.sin(yaw), math.cos(yaw)])
        along = np.array([math.cos(yaw), math.sin(yaw)])
        room = math.inf
        for side in (-1.0, 1.0):
            for a in (-scene.FINGER_PAD_HALF_WIDTH, scene.FINGER_PAD_HALF_WIDTH):
                p = target.pos[:2] + side * pad * across + a * along
                room = min(room, scene.BIN_HALF - abs(p[0]))
                room = min(room, scene.BIN_HALF - abs(p[1] + scene.BIN_CENTER_Y))
                for o in others:
                    reach = max(scene.SHAPES[o.category].half_extent[:2])
                    room = min(room, float(np.linalg.norm(p - o.pos[:2])) - reach)
        room = min(room, 0.03)
        score = room - 0.01 * abs(wrap_half_turn(yaw - gripper_yaw))
        if score > best_score:
            best, best_score, best_room = yaw, score, room
    return best, best_room


class AimedPickPolicy:
    """Aimed top-down picking for ``lift-*`` tasks (see the module docstring)."""

    def __init__(self, config: WorkcellConfig | None = None) -> None:
        cfg = config if config is not None else WorkcellConfig()
        self._layout, self._n = state_layout(cfg.n_slots), cfg.n_slots
        self._step, self._max_yaw = cfg.max_translation, cfg.max_yaw
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an episode of ``task`` (``lift-<category>``; ``lift-any`` or ``None``: any
        object). The policy is deterministic; ``rng`` is accepted for the common interface."""
        if task is not None and not task.startswith("lift-"):
            raise ValueError(f"AimedPickPolicy only does lift-* tasks, got {task!r}")
        name = None if task in (None, "lift-any") else task.removeprefix("lift-")
        if name is not None and name not in scene.CATEGORIES:
            raise ValueError(f"unknown category {name!r}; known: {list(scene.CATEGORIES)}")
        self.category = name
        self.phase = "approach"
        self._target: int | None = None
        self._given_up: set[int] = set()
        self._last_z = math.inf

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action for observation ``obs`` (reads ``obs["state"]`` only)."""
        state = obs["state"]
        grip = state[self._layout["gripper_pos"]].astype(float)
        gripper_yaw = math.atan2(*state[self._layout["gripper_yaw"]])
        action = np.zeros(6, dtype=np.float32)
        if self.phase == "close":
            action[4] = 1.0
            self.phase = "lift"
            return action
        if self.phase == "lift":
            action[2], action[4] = 1.0, 1.0
            action[5] = float(grip[2] >= LIFT_TO)
            return action
        everything = _objects(state, self._layout, self._n)
        wanted = [
            o
            for o in everything
            if o.slot not in self._given_up and self.category in (None, o.category)
        ]
        if self._target is None and wanted:

            def merit(o: _Object) -> float:
                rest = [x for x in everything if x.slot != o.slot]
                distance = float(np.linalg.norm(o.pos[:2] - grip[:2]))
                return grasp_yaw(o, rest, gripper_yaw)[1] - 0.05 * distance

            self._target = max(wanted, key=merit).slot
            self._last_z = math.inf
        target = next((o for o in wanted if o.slot == self._target), None)
        if target is None:  # nothing (left) to pick
            action[5] = 1.0
            return action
        rest = [o for o in everything if o.slot != target.slot]
        dyaw = wrap_half_turn(grasp_yaw(target, rest, gripper_yaw)[0] - gripper_yaw)
        delta = target.pos - grip
        action[3] = np.clip(dyaw / self._max_yaw, -1, 1)
        aligned = bool(np.all(np.abs(delta[:2]) < 0.008) and abs(dyaw) < 0.08)
        bottom = max(target.pos[2] - GRASP_DEPTH, 0.004)
        if aligned:
            goal_z = bottom
        elif np.linalg.norm(delta[:2]) < 0.03:
            goal_z = grip[2]  # finish aligning where we are
        else:
            goal_z = max(grip[2], CLEARANCE)
        if aligned and abs(grip[2] - goal_z) < 0.006:
            self.phase = "close"
        elif aligned and self._last_z - grip[2] < 0.002:
            self._given_up.add(target.slot)  # a finger rests on something: try another
            self._target = None
            action[2] = 1.0
            return action
        self._last_z = grip[2] if aligned else math.inf
        action[:2] = np.clip(delta[:2] / self._step, -1, 1)
        action[2] = np.clip((goal_z - grip[2]) / self._step, -1, 1)
        return action


PLATE_TARGETS: dict[str, tuple[float, float]] = {
    "place-any": (0.0, (scene.PLATE_DIVIDER_Y - scene.PLATE_HALF[1]) / 2),
    "place-bottom": (0.0, (scene.PLATE_DIVIDER_Y - scene.PLATE_HALF[1]) / 2),
    "place-top-left": (-scene.PLATE_HALF[0] / 2, (scene.PLATE_DIVIDER_Y + scene.PLATE_HALF[1]) / 2),
    "place-top-right": (scene.PLATE_HALF[0] / 2, (scene.PLATE_DIVIDER_Y + scene.PLATE_HALF[1]) / 2),
}
"""Plate-local release point of each place task: the middle of its section (``place-any``
uses the largest, ``bottom``)."""
TRANSIT = 0.13
"""Finger-tip height (m) at which a held object clears the bin walls."""
RELEASE = 0.05
"""Finger-tip height (m) above the bin floor at which the gripper opens over the plate."""


class AimedPlacePolicy:
    """Aimed placing for ``place-*`` tasks: carry the held object over the middle of the task's
    plate section (plate pose from the ``state`` observation), lower it, open, retract,
    terminate. Like :class:`AimedPickPolicy` a measuring stick, not a bootstrap policy."""

    def __init__(self, config: WorkcellConfig | None = None) -> None:
        cfg = config if config is not None else WorkcellConfig()
        self._layout, self._step = state_layout(cfg.n_slots), cfg.max_translation
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an episode of ``task`` (a ``place-*`` task; ``None`` means ``place-any``)."""
        task = "place-any" if task is None else task
        if task not in PLATE_TARGETS:
            raise ValueError(f"AimedPlacePolicy does {sorted(PLATE_TARGETS)}, got {task!r}")
        self._local = np.array(PLATE_TARGETS[task])
        self.phase = "transit"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action for observation ``obs`` (reads ``obs["state"]`` only)."""
        state = obs["state"]
        grip = state[self._layout["gripper_pos"]].astype(float)
        action = np.zeros(6, dtype=np.float32)
        if self.phase == "open":
            self.phase = "retract"
            return action  # gripper command 0: open
        if self.phase == "retract":
            self.phase = "done"
            action[2] = 1.0
            return action
        if self.phase == "done":
            action[5] = 1.0
            return action
        action[4] = 1.0
        sin_yaw, cos_yaw = state[self._layout["plate_yaw"]]
        rot = np.array([[cos_yaw, -sin_yaw], [sin_yaw, cos_yaw]])
        goal = state[self._layout["plate_pos"]].astype(float) + rot @ self._local
        delta = goal - grip[:2]
        if grip[2] < TRANSIT - 0.01 and grip[1] < 0.0:
            action[2] = 1.0  # climb out of the right bin before crossing
            return action
        near = bool(np.all(np.abs(delta) < 0.01))
        goal_z = RELEASE if near else max(TRANSIT, grip[2])
        action[:2] = np.clip(delta / self._step, -1, 1)
        action[2] = np.clip((goal_z - grip[2]) / self._step, -1, 1)
        if near and abs(grip[2] - RELEASE) < 0.01:
            self.phase = "open"
        return action
