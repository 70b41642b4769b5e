"""Ground-truth success predicates of the 12 workcell tasks, evaluated on a final state.

The predicates work on a small, simulator-independent summary of the state
(:class:`SceneFacts`), so they can be unit-tested on hand-constructed states;
:class:`ContactIndex` extracts those facts from a MuJoCo model and data.

Definitions (thresholds are documented in ``docs/workcell.md``):

* an object is *grasped* when it touches both fingers;
* an object is *lifted* when it is grasped and its centre is higher than ``lift_height`` above
  the bin floor;
* ``lift-any`` succeeds when exactly one object (any category, distractors included) is lifted;
  ``lift-<category>`` when exactly one object is lifted and it belongs to ``<category>``;
* an object *rests on the plate* when it touches no finger, touches a plate geom and its centre
  lies inside the plate's footprint (in plate-local coordinates);
* ``place-any`` succeeds when at least one object rests on the plate; ``place-<section>`` when
  at least one object rests on the plate with its centre inside that section;
* the new tasks (paper Sec. 5.6, not in the 12-task set): ``lift-cloth`` succeeds when exactly
  one object is lifted and it is a cloth; ``cover-object`` when a cloth touches no finger,
  touches another (non-cloth) object whose centre is lower than the cloth's and lies within
  ``COVER_RADIUS`` of the cloth's centre horizontally.

Plate-local frame: origin at the plate centre, ``x`` to the plate's *right*, ``y`` to its *top*.
``bottom`` is ``y < divider_y``; ``top-left`` is ``y >= divider_y, x < 0``; ``top-right`` is
``y >= divider_y, x >= 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from mtopt.envs import scene
from mtopt.envs.workcell_tasks import (
    COVER_OBJECT,
    LIFT_CLOTH,
    OBJECT_CATEGORIES,
    PLATE_SECTIONS,
    lift_task,
    place_task,
)

COVER_RADIUS = 0.04
"""``cover-object``: the covered object's centre lies this close (m) to the cloth's centre,
horizontally (the cloth is 9 x 5 cm)."""


@dataclass(frozen=True)
class SceneFacts:
    """Everything the predicates need about one state (``n`` object slots)."""

    categories: tuple[str | None, ...]
    """Category of every slot (``None`` for an absent slot)."""
    positions: np.ndarray
    """Object centres in world coordinates, shape ``(n, 3)``."""
    touch_left: np.ndarray
    """Bool ``(n,)``: the object touches the left finger."""
    touch_right: np.ndarray
    """Bool ``(n,)``: the object touches the right finger."""
    touch_plate: np.ndarray
    """Bool ``(n,)``: the object touches a geom of the plate."""
    plate_xy: np.ndarray
    """Plate centre ``(x, y)`` in world coordinates."""
    plate_yaw: float
    """Plate yaw in radians."""
    touch_objects: np.ndarray | None = None
    """Bool ``(n, n)``: slot ``i`` touches slot ``j`` (symmetric); ``None``: no object touches
    another."""


def plate_local(xy: np.ndarray, plate_xy: np.ndarray, plate_yaw: float) -> np.ndarray:
    """World ``(..., 2)`` points expressed in the plate-local frame."""
    c, s = np.cos(plate_yaw), np.sin(plate_yaw)
    d = np.asarray(xy, dtype=float) - np.asarray(plate_xy, dtype=float)
    return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)


def plate_section(local_xy: np.ndarray) -> np.ndarray:
    """Section index (into :data:`PLATE_SECTIONS`) of plate-local points; -1 off the plate."""
    local_xy = np.asarray(local_xy, dtype=float)
    hx, hy = scene.PLATE_HALF
    x, y = local_xy[..., 0], local_xy[..., 1]
    inside = (np.abs(x) <= hx) & (np.abs(y) <= hy)
    top = y >= scene.PLATE_DIVIDER_Y
    section = np.where(top, np.where(x < 0, 1, 2), 0)
    return np.where(inside, section, -1)


def success_vector(facts: SceneFacts, task_names: Sequence[str], lift_height: float) -> np.ndarray:
    """Bool vector of task successes, in the order of ``task_names``.

    ``task_names`` may contain ``lift-any``, ``place-any``, ``lift-<category>`` and
    ``place-<section>``; any other name raises ``ValueError``.
    """
    present = np.array([c is not None for c in facts.categories], dtype=bool)
    pos = np.asarray(facts.positions, dtype=float).reshape(-1, 3)
    grasped = present & facts.touch_left & facts.touch_right
    lifted = grasped & (pos[:, 2] > lift_height)
    n_lifted = int(lifted.sum())
    lifted_cat = facts.categories[int(np.argmax(lifted))] if n_lifted == 1 else None

    local = plate_local(pos[:, :2], facts.plate_xy, facts.plate_yaw)
    section = plate_section(local)
    free = present & ~facts.touch_left & ~facts.touch_right
    on_plate = free & facts.touch_plate & (section >= 0)

    values: dict[str, bool] = {"lift-any": n_lifted == 1, "place-any": bool(on_plate.any())}
    values[LIFT_CLOTH] = lifted_cat == scene.CLOTH
    values[COVER_OBJECT] = _covers(facts, pos, free)
    for cat in OBJECT_CATEGORIES:
        values[lift_task(cat)] = lifted_cat == cat
    for i, sec in enumerate(PLATE_SECTIONS):
        values[place_task(sec)] = bool((on_plate & (section == i)).any())
    unknown = [n for n in task_names if n not in values]
    if unknown:
        raise ValueError(f"no predicate for task(s) {unknown}; known: {sorted(values)}")
    return np.array([values[n] for n in task_names], dtype=bool)


def _covers(facts: SceneFacts, pos: np.ndarray, free: np.ndarray) -> bool:
    """Whether a free cloth rests over another object (``cover-object``)."""
    if facts.touch_objects is None:
        return False
    cats = facts.categories
    for c in np.flatnonzero(free):
        if cats[c] != scene.CLOTH:
            continue
        for o in np.flatnonzero(facts.touch_objects[c]):
            if cats[o] in (None, scene.CLOTH):
                continue
            near = np.hypot(*(pos[c, :2] - pos[o, :2])) < COVER_RADIUS
            if near and pos[c, 2] > pos[o, 2]:
                return True
    return False


class ContactIndex:
    """Maps MuJoCo geoms to object slots / fingers / plate to summarise contacts quickly."""

    def __init__(self, model: mujoco.MjModel, n_slots: int) -> None:
        self.n_slots = n_slots
        self.geom_slot = np.full(model.ngeom, -1, dtype=np.int64)
        for slot in range(n_slots):
            for cat in scene.CATEGORIES:
                self.geom_slot[model.geom(scene.category_geom_name(slot, cat)).id] = slot
        # geom kind: 0 other, 1 left finger, 2 right finger, 3 plate
        self.geom_kind = np.zeros(model.ngeom, dtype=np.int64)
        self.geom_kind[model.geom("finger_left").id] = 1
        self.geom_kind[model.geom("finger_right").id] = 2
        plate_body = model.body("plate").id
        self.geom_kind[model.geom_bodyid == plate_body] = 3

    def object_contacts(self, data: mujoco.MjData) -> np.ndarray:
        """Bool ``(n_slots, n_slots)``: which object slots touch each other (symmetric)."""
        out = np.zeros((self.n_slots + 1, self.n_slots + 1), dtype=bool)
        if data.ncon:
            geom = data.contact.geom
            s1, s2 = self.geom_slot[geom[:, 0]], self.geom_slot[geom[:, 1]]
            out[s1, s2] = True
            out[s2, s1] = True
        return out[:-1, :-1]

    def touches(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bool ``(n_slots,)`` arrays: touches left finger, right finger, plate."""
        out = np.zeros((4, self.n_slots + 1), dtype=bool)
        if data.ncon:
            geom = data.contact.geom
            g1, g2 = geom[:, 0], geom[:, 1]
            s1, s2 = self.geom_slot[g1], self.geom_slot[g2]
            k1, k2 = self.geom_kind[g1], self.geom_kind[g2]
            # slot index -1 lands in the spare last column, which is dropped
            out[k2, s1] = True
            out[k1, s2] = True
        return out[1, :-1], out[2, :-1], out[3, :-1]
