"""Configuration, state layout and constants of the simulated workcell.

``WorkcellConfig`` is the frozen config of :class:`mtopt.envs.workcell.WorkcellEnv`;
:func:`state_layout` names the slices of the fixed-size ``state`` observation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtopt.envs import rendering, scene

GRIPPER_DIM = 6
"""State entries of the gripper: x, y, z, sin yaw, cos yaw, opening."""
OBJECT_FIELDS: dict[str, slice] = {
    "pos": slice(0, 3),
    "yaw": slice(3, 5),
    "category": slice(5, 5 + len(scene.CATEGORIES)),
    "present": slice(5 + len(scene.CATEGORIES), 6 + len(scene.CATEGORIES)),
}
"""Layout of one object slot's block in the state vector (position, sin/cos yaw, one-hot
category over :data:`scene.CATEGORIES`, present flag)."""
OBJECT_DIM = 6 + len(scene.CATEGORIES)
"""State entries per object slot (15)."""
PLATE_DIM = 4
"""State entries of the plate: x, y, sin yaw, cos yaw."""
SCENES = ("random", "evaluation")
"""Values of the ``scene`` reset option."""
RESET_OPTIONS = ("scene", "grasped", "chain", "task")
"""Keys accepted in ``reset(options=...)``."""
_MARGIN = 0.015
WORKSPACE_LOW = np.array(
    [-scene.BIN_HALF + _MARGIN, -scene.BIN_CENTER_Y - scene.BIN_HALF + _MARGIN, 0.002, -math.pi]
)
"""Lower limits of the gripper target (x, y, z of the finger-tip centre, yaw)."""
WORKSPACE_HIGH = np.array(
    [scene.BIN_HALF - _MARGIN, scene.BIN_CENTER_Y + scene.BIN_HALF - _MARGIN, 0.30, math.pi]
)
"""Upper limits of the gripper target (x, y, z of the finger-tip centre, yaw)."""


def state_layout(n_slots: int) -> dict[str, slice]:
    """Named slices of the ``state`` observation for ``n_slots`` object slots.

    ``gripper_pos`` (x, y, z), ``gripper_yaw`` (sin, cos), ``gripper_opening``; ``object<i>``
    (a block of :data:`OBJECT_DIM`, see :data:`OBJECT_FIELDS`) and ``objects`` (all blocks);
    ``plate_pos`` (x, y), ``plate_yaw`` (sin, cos).
    """
    layout = {
        "gripper_pos": slice(0, 3),
        "gripper_yaw": slice(3, 5),
        "gripper_opening": slice(5, 6),
        "objects": slice(GRIPPER_DIM, GRIPPER_DIM + OBJECT_DIM * n_slots),
    }
    for i in range(n_slots):
        layout[f"object{i}"] = slice(
            GRIPPER_DIM + OBJECT_DIM * i, GRIPPER_DIM + OBJECT_DIM * (i + 1)
        )
    end = GRIPPER_DIM + OBJECT_DIM * n_slots
    layout["plate_pos"] = slice(end, end + 2)
    layout["plate_yaw"] = slice(end + 2, end + 4)
    return layout


def present_object_positions(state: np.ndarray) -> np.ndarray:
    """``(k, 3)`` centres of the present objects in one ``state`` vector (any slot count)."""
    slots = (len(state) - GRIPPER_DIM - PLATE_DIM) // OBJECT_DIM
    obj = state[GRIPPER_DIM : GRIPPER_DIM + slots * OBJECT_DIM].reshape(slots, OBJECT_DIM)
    present = obj[:, OBJECT_FIELDS["present"]][:, 0] > 0.5
    return obj[present][:, OBJECT_FIELDS["pos"]]


def nearest_object_offset(state: np.ndarray, xy: np.ndarray | None = None) -> np.ndarray:
    """Horizontal offset ``(2,)`` from ``xy`` (default: the gripper) to the nearest present
    object of ``state``; ``inf`` entries if no object is present."""
    xy = state[:2] if xy is None else xy
    rel = present_object_positions(state)[:, :2] - xy
    if len(rel) == 0:
        return np.full(2, np.inf)
    return rel[np.argmin(np.linalg.norm(rel, axis=1))]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_float(name: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class WorkcellConfig:
    """Configuration of the simulated workcell."""

    n_slots: int = 10
    """Object slots in the model (fixed state size); absent slots are parked. At least 9 (the
    evaluation scene has 9 objects)."""
    max_steps: int = 20
    """Policy steps per episode; the episode is truncated after this many steps."""
    substeps: int = 20
    """Physics steps per policy step."""
    timestep: float = 0.005
    """Physics time step in seconds (one policy step lasts ``substeps * timestep``)."""
    max_translation: float = 0.05
    """Gripper translation in metres per policy step for an action component of +-1."""
    max_yaw: float = 0.25
    """Gripper rotation in radians per policy step for an action component of +-1."""
    min_objects: int = 3
    """Fewest task-category objects in a random training scene."""
    max_objects: int = 8
    """Most task-category objects in a random training scene."""
    max_distractors: int = 2
    """Most distractor objects in a random training scene (0 to this many)."""
    cloths: int = 0
    """Cloths (:data:`scene.CLOTH`) added to every scene, random and evaluation: the object of
    the new tasks ``lift-cloth`` and ``cover-object`` (paper Sec. 5.6). With a cloth in the scene
    a ``grasped`` start holds the cloth, so a place-skill episode starts with it in hand. 0 (the
    12 tasks' scenes) never shows one. The cloths need free slots: ``n_slots`` must exceed
    ``max_objects + max_distractors`` (and 9, the evaluation scene) by ``cloths``."""
    lift_height: float = 0.08
    """A grasped object counts as lifted when its centre is this high above the bin floor."""
    start_height: tuple[float, float] = (0.14, 0.2)
    """Range of the gripper's initial finger-tip height above the right bin."""
    settle_substeps: int = 20
    """Physics steps run after a reset so that objects come to rest."""
    final_settle_substeps: int = 60
    """Physics steps run after the last step of an episode, with the gripper holding its pose,
    before the final state is observed and judged: a released object finishes falling, so
    success is decided on a scene at rest (as a camera looking after the episode would)."""
    impratio: float = 5.0
    """MuJoCo's ratio of frictional to normal constraint impedance. Values above 1 make
    friction stiffer than the contact. Chosen on MuJoCo 4.0, where with the default of 1 a
    pinched round object crept out of the closed fingers within a second (the
    ``aimed_ceiling.py`` diagnostic, in the git history); 5 held the aimed grasp as 10 did and
    halved the learned picker's contact blow-ups. On MuJoCo 3.3 (pinned since session 24) the
    aimed picker holds as often as it did on 4.0 at these settings; soft friction no longer
    loses the grasp there (docs/RESULTS.md)."""
    noslip_iterations: int = 3
    """Iterations of MuJoCo's no-slip solver, which removes the residual slip of soft friction
    in held objects (0 turns it off; 3 iterations cost 20–30 % of the step rate)."""
    image: bool = False
    """Add the over-the-shoulder RGB ``image`` to every observation."""
    image_size: int = 64
    """Height and width in pixels of ``image`` (16 to 1024)."""
    side_images: bool = False
    """Add the two side-camera images ``side_images`` to every observation (otherwise grab them
    when needed with ``WorkcellEnv.render_side_images()``)."""
    side_image_size: int = 64
    """Height and width in pixels of each side image (16 to 1024)."""
    render_backend: str | None = None
    """OpenGL backend for images: ``osmesa``, ``egl`` or ``glfw``; ``None`` means ``$MUJOCO_GL``
    or, if unset, ``osmesa``."""

    def __post_init__(self) -> None:
        _check_int("n_slots", self.n_slots, 9, 32)
        _check_int("max_steps", self.max_steps, 1, 10_000)
        _check_int("substeps", self.substeps, 1, 1000)
        _check_int("final_settle_substeps", self.final_settle_substeps, 0, 10_000)
        _check_float("timestep", self.timestep, 1e-4, 0.02)
        _check_float("max_translation", self.max_translation, 1e-3, 0.2)
        _check_float("max_yaw", self.max_yaw, 1e-3, math.pi)
        _check_int("min_objects", self.min_objects, 1, self.n_slots)
        _check_int("max_objects", self.max_objects, self.min_objects, self.n_slots)
        _check_int("max_distractors", self.max_distractors, 0, self.n_slots - self.max_objects)
        # a scene's other objects: at most max_objects + max_distractors, or the evaluation's 9
        room = self.n_slots - max(self.max_objects + self.max_distractors, 9)
        if isinstance(self.cloths, bool) or not isinstance(self.cloths, int) or self.cloths < 0:
            raise ValueError(f"cloths must be a non-negative integer, got {self.cloths!r}")
        if self.cloths > room:
            raise ValueError(
                f"cloths={self.cloths} do not fit: n_slots ({self.n_slots}) - max(max_objects + "
                f"max_distractors ({self.max_objects + self.max_distractors}), 9 in the "
                f"evaluation scene) leaves {room} slot(s); lower max_objects (e.g. "
                f"--env.workcell.max-objects {self.max_objects - self.cloths + room})"
            )
        _check_float("lift_height", self.lift_height, 0.05, 0.3)
        lo_hi = self.start_height
        if (
            not isinstance(lo_hi, tuple)
            or len(lo_hi) != 2
            or not all(isinstance(v, (int, float)) for v in lo_hi)
            or not 0.1 <= lo_hi[0] <= lo_hi[1] <= WORKSPACE_HIGH[2]
        ):
            raise ValueError(
                f"start_height must be a (low, high) tuple with 0.1 <= low <= high <= "
                f"{WORKSPACE_HIGH[2]}, got {lo_hi!r}"
            )
        _check_int("settle_substeps", self.settle_substeps, 0, 10_000)
        _check_float("impratio", self.impratio, 1.0, 100.0)
        _check_int("noslip_iterations", self.noslip_iterations, 0, 100)
        for name in ("image", "side_images"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_int("image_size", self.image_size, 16, 1024)
        _check_int("side_image_size", self.side_image_size, 16, 1024)
        if self.render_backend is not None and self.render_backend not in rendering.BACKENDS:
            raise ValueError(
                f"render_backend must be None or one of {rendering.BACKENDS}, "
                f"got {self.render_backend!r}"
            )
