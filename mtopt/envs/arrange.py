"""Arranging final scenes and varying the lighting of the workcell (success-detector examples).

In MT-Opt a user specifies a task by showing examples of its desired and undesired *outcomes*
(paper Sec. 4, App. 8): final scenes, not demonstrations. In simulation these scenes are
arranged directly: after a ``reset`` the workcell can put an object of a chosen category in the
closed gripper at a chosen height, lay objects on the plate at plate-local positions, move the
gripper, and change the lighting. The physics then settles the scene, so the outcome is judged
by the same ground-truth predicates as any episode's final state.

:class:`SceneArrangementMixin` is mixed into :class:`mtopt.envs.workcell.WorkcellEnv`; nothing
here runs unless called, so episodes are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from mtopt.envs import scene

DEFAULT_LIGHT = {"diffuse": 0.7, "ambient": 0.0, "direction": (0.0, 0.0, -1.0)}
"""The scene's built-in directional light (what :meth:`set_lighting` restores by default)."""
ARRANGE_SETTLE_SUBSTEPS = 60
"""Physics steps run after an arrangement so that grasps close and objects come to rest."""


def _category_index(category: str) -> int:
    if category not in scene.CATEGORIES:
        raise ValueError(f"unknown object category {category!r}; allowed: {scene.CATEGORIES}")
    return scene.CATEGORIES.index(category)


class SceneArrangementMixin:
    """``arrange`` and ``set_lighting`` for the workcell (see the module docstring)."""

    # provided by WorkcellEnv
    model: mujoco.MjModel
    data: mujoco.MjData

    def set_lighting(
        self,
        diffuse: float = DEFAULT_LIGHT["diffuse"],
        ambient: float = DEFAULT_LIGHT["ambient"],
        direction: Sequence[float] = DEFAULT_LIGHT["direction"],
    ) -> None:
        """Set the main light's diffuse and ambient intensity (0..1.5) and direction (pointing
        down, ``z < 0``). Affects rendered images only; the defaults restore the built-in light."""
        for name, v in (("diffuse", diffuse), ("ambient", ambient)):
            if not isinstance(v, int | float) or not 0.0 <= v <= 1.5:
                raise ValueError(f"light {name} must be a number in [0, 1.5], got {v!r}")
        d = np.asarray(direction, dtype=float)
        if d.shape != (3,) or not np.isfinite(d).all() or d[2] >= 0:
            raise ValueError(
                f"light direction must be 3 finite numbers with z < 0, got {direction!r}"
            )
        self.model.light_diffuse[0] = diffuse
        self.model.light_ambient[0] = ambient
        self.model.light_dir[0] = d / np.linalg.norm(d)

    def _lay_over(self, slot: int, candidates: list[int], covering: tuple) -> None:
        """Put ``slot`` just above a random object of ``candidates``, offset by ``dx, dy``."""
        env: Any = self
        if not candidates:
            raise ValueError("covering needs another object in the bin to lay it over")
        _, dx, dy = covering
        target = candidates[int(env.np_random.integers(len(candidates)))]
        d, t, a = self.data, env._qadr[target], env._qadr[slot]
        top = d.qpos[t + 2] + max(scene.SHAPES[env.categories[target]].half_extent)
        half_z = scene.SHAPES[env.categories[slot]].half_extent[2]
        d.qpos[a : a + 3] = (d.qpos[t] + dx, d.qpos[t + 1] + dy, top + half_z + 0.003)
        yaw = float(env.np_random.uniform(-math.pi, math.pi))
        d.qpos[a + 3 : a + 7] = scene.yaw_quat(yaw)

    def arrange(
        self,
        *,
        held: str | None = None,
        held_height: float = 0.16,
        on_plate: Sequence[tuple[str, float, float, float]] = (),
        gripper_xy: tuple[float, float] | None = None,
        gripper_closed: bool = False,
        covering: tuple[str, float, float] | None = None,
        settle_substeps: int = ARRANGE_SETTLE_SUBSTEPS,
    ) -> dict[str, np.ndarray]:
        """Arrange a final scene on top of the current one and return its observation.

        ``held``: category of an object put in the closed gripper; ``held_height``: finger-tip
        height of the gripper (m above the bin floor). ``on_plate``: objects
        ``(category, x, y, yaw)`` laid on the plate at plate-local ``x, y`` (``x`` to the
        plate's right, ``y`` to its top). ``gripper_xy``: world ``x, y`` of the gripper
        (default: where it is). ``gripper_closed``: close the (empty) gripper. ``covering``:
        an object ``(category, dx, dy)`` laid over one of the bin's other objects (chosen at
        random), its centre ``(dx, dy)`` m from that object's, dropped from just above it: it
        settles over the object, or beside it for a larger offset. Objects are taken
        from the bin (or from absent slots) and switched to the requested categories; the rest
        of the scene stays. The episode is over afterwards (call ``reset`` to start one).
        """
        env: Any = self
        if not env._has_scene:
            raise RuntimeError("call reset() before arrange()")
        if not isinstance(held_height, int | float) or not 0.02 <= held_height <= 0.3:
            raise ValueError(f"held_height must be a number in [0.02, 0.3], got {held_height!r}")
        wanted = ([held] if held is not None else []) + [o[0] for o in on_plate]
        wanted += [covering[0]] if covering is not None else []
        idx = [_category_index(c) for c in wanted]
        cats = env._cats.copy()
        present = [int(s) for s in np.flatnonzero(cats >= 0)]
        absent = [int(s) for s in np.flatnonzero(cats < 0)]
        env.np_random.shuffle(present)
        pool = present + absent
        if len(idx) > len(pool):
            raise ValueError(f"cannot arrange {len(idx)} objects with {len(pool)} slots")
        slots = pool[: len(idx)]
        # a requested cloth is the scene's own cloth when it has one (one cloth per scene)
        cloth = scene.CATEGORIES.index(scene.CLOTH)
        own = [s for s in present if cats[s] == cloth]
        for k, c in enumerate(idx):
            if c == cloth and own and own[0] not in slots[:k]:
                mine = own.pop(0)
                if mine in slots:
                    slots[slots.index(mine)] = slots[k]
                slots[k] = mine
        cats[slots] = idx
        d = self.data
        saved = d.qpos.copy(), d.mocap_pos.copy(), d.mocap_quat.copy()
        env._assign_categories(cats)  # mj_setConst resets the data to qpos0; restore the scene
        d.qpos[:], d.mocap_pos[:], d.mocap_quat[:] = saved
        d.qvel[:] = 0.0
        if gripper_xy is not None:
            d.qpos[0:2] = gripper_xy
        d.qpos[2] = held_height if held is not None else max(float(d.qpos[2]), held_height)
        d.qpos[4:6] = scene.MAX_HALF_OPENING
        d.ctrl[:6] = d.qpos[:6]
        env._closed = False
        rest = slots[int(held is not None) : len(slots) - int(covering is not None)]
        if held is not None:
            env._put_in_hand(slots[0])
        elif gripper_closed:
            d.qpos[4:6] = 0.0
            d.ctrl[4:6] = 0.0
            env._closed = True
        px, py, pyaw = env._plate
        c, s = math.cos(pyaw), math.sin(pyaw)
        for slot, (cat, lx, ly, yaw) in zip(rest, on_plate, strict=True):
            half_z = scene.SHAPES[cat].half_extent[2]
            a = env._qadr[slot]
            z = scene.PLATE_THICKNESS + half_z + 0.002
            d.qpos[a : a + 3] = (px + c * lx - s * ly, py + s * lx + c * ly, z)
            d.qpos[a + 3 : a + 7] = scene.yaw_quat(pyaw + yaw)
        if covering is not None:
            self._lay_over(slots[-1], [s for s in present if s not in slots], covering)
        env._update_template()
        mujoco.mj_step(self.model, d, nstep=settle_substeps)
        env._done = True
        return env._observe()
