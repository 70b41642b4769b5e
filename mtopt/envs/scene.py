"""MJCF model of the simulated MT-Opt workcell (paper Sec. 5.1, Fig. 16, Fig. 17).

World frame: origin on the table surface midway between the two bins, ``z`` up, ``x`` pointing
away from the robot, ``y`` to the robot's left. The table surface (``z = 0``) is the floor of
both bins. The *right* bin (``y < 0``) holds the objects, the *left* bin (``y > 0``) holds the
divided plate. All lengths are metres.

The model has a fixed number of object *slots*. Every slot is one free body carrying one geom
per category (:data:`CATEGORIES`); the workcell switches a slot's category at reset by enabling
collisions and visibility of exactly one geom (see :func:`category_geom_name`). Absent slots
have no collisions, are hidden and float (gravity compensated) at a parking spot off the table.
The plate is a mocap body, so it is static during an episode and moved only at reset.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import mujoco
import numpy as np

from mtopt.envs.workcell_tasks import OBJECT_CATEGORIES

logger = logging.getLogger(__name__)

DISTRACTOR = "distractor"
"""Category name of the neutral, non-task objects."""
CLOTH = "cloth"
"""Category name of the cloth, the object of the new tasks (paper Sec. 5.6): a flat, light pad
(9 x 5 x 2 cm). It is rigid (a folded cloth's stand-in; a 1.2 cm pad was tried first, and the
aimed picker lifted it in 0 of 30 attempts against 20 of 30 at 2 cm); scenes hold one only when
``WorkcellConfig.cloths`` asks for it, so the 12 tasks' data never shows it."""
CATEGORIES: tuple[str, ...] = (*OBJECT_CATEGORIES, DISTRACTOR, CLOTH)
"""Object categories in one-hot order: the 7 task categories, ``distractor``, then ``cloth``
(its entry is reserved from the start, so adding the cloth's tasks keeps the state's layout)."""

TIMESTEP = 0.005
"""Physics time step in seconds."""
BIN_CENTER_Y = 0.22
"""The right bin is centred at ``(0, -BIN_CENTER_Y)``, the left bin at ``(0, +BIN_CENTER_Y)``."""
BIN_HALF = 0.19
"""Half side of the square inside of both bins (inner size 0.38 m x 0.38 m)."""
WALL_HEIGHT = 0.08
"""Height of the bin walls above the bin floor."""
WALL_HALF_THICKNESS = 0.01
"""Half thickness of the bin walls."""
PLATE_HALF = (0.13, 0.11)
"""Half size (local x, local y) of the divided plate's footprint, rims included."""
PLATE_THICKNESS = 0.008
"""Thickness of the plate's base; its top surface is at this height above the bin floor."""
PLATE_RIM_HEIGHT = 0.012
"""Height of the rims and dividers above the plate's top surface."""
PLATE_DIVIDER_Y = 0.01
"""Plate-local ``y`` of the divider separating ``bottom`` (below) from the top sections."""
PLATE_COLORS = ((0.95, 0.95, 0.9), (0.55, 0.75, 0.95), (0.95, 0.75, 0.8))
"""The three plate colours the reset chooses from (paper Fig. 17)."""
FINGER_LENGTH = 0.07
"""Finger length; the gripper's reference point is the centre between the finger tips."""
FINGER_PAD_HALF_WIDTH = 0.025
"""Half width of the finger pads along the gripper's x axis (5 cm wide rubber pads)."""
MAX_HALF_OPENING = 0.045
"""Maximum travel of each finger from the centre (maximum opening 9 cm)."""
SHOULDER_CAMERA_POS = (-0.6, -0.1, 0.72)
"""Position of the over-the-shoulder camera (behind the robot, looking at both bins)."""
PARK_POSITION = (0.0, 0.0, -1.0)
"""Base of the parking row of absent slots (below the table, collisions disabled)."""


@dataclass(frozen=True)
class CategoryShape:
    """Geometry of one object category (long axis along the body's local x)."""

    geom_type: str
    """MuJoCo primitive: ``capsule``, ``cylinder``, ``box`` or ``ellipsoid``."""
    size: tuple[float, ...]
    """MJCF ``size`` attribute (for capsules: radius and half length along x)."""
    rgba: tuple[float, float, float, float]
    """Colour."""
    half_extent: tuple[float, float, float]
    """Half extents of the axis-aligned bounding box in the body frame (x, y, z)."""


SHAPES: dict[str, CategoryShape] = {
    "banana": CategoryShape("capsule", (0.018, 0.05), (0.95, 0.85, 0.15, 1), (0.068, 0.018, 0.018)),
    "bottle": CategoryShape(
        "cylinder", (0.024, 0.045), (0.2, 0.65, 0.35, 1), (0.024, 0.024, 0.045)
    ),
    "sausage": CategoryShape(
        "capsule", (0.016, 0.035), (0.55, 0.22, 0.12, 1), (0.051, 0.016, 0.016)
    ),
    "milk": CategoryShape("box", (0.03, 0.03, 0.045), (0.97, 0.97, 0.97, 1), (0.03, 0.03, 0.045)),
    "box": CategoryShape("box", (0.05, 0.028, 0.02), (0.2, 0.35, 0.85, 1), (0.05, 0.028, 0.02)),
    "can": CategoryShape("cylinder", (0.03, 0.03), (0.85, 0.1, 0.1, 1), (0.03, 0.03, 0.03)),
    "carrot": CategoryShape(
        "ellipsoid", (0.06, 0.02, 0.02), (1.0, 0.5, 0.05, 1), (0.06, 0.02, 0.02)
    ),
    DISTRACTOR: CategoryShape(
        "ellipsoid", (0.035, 0.035, 0.015), (0.45, 0.45, 0.45, 1), (0.035, 0.035, 0.015)
    ),
    CLOTH: CategoryShape("box", (0.045, 0.025, 0.01), (0.6, 0.3, 0.7, 1), (0.045, 0.025, 0.01)),
}
"""Shape and colour of every category in :data:`CATEGORIES`."""

OBJECT_DENSITY = 400.0
"""Density of the (hollow, toy) objects in kg/m^3."""
OBJECT_ANGULAR_DAMPING = 2e-5
"""Damping (N m s/rad) of the objects' rotational degrees of freedom: a cheap stand-in for
rolling resistance, so round objects stop rolling within about a second."""
HIDDEN_GROUP = 5
"""Geom group of inactive category geoms; renderers disable it."""
VISIBLE_OBJECT_GROUP = 2
"""Geom group of the active category geom of a present slot."""


def category_geom_name(slot: int, category: str) -> str:
    """Name of the geom of ``category`` in object slot ``slot``."""
    return f"obj{slot}_{category}"


def slot_body_name(slot: int) -> str:
    """Name of the free body of object slot ``slot``."""
    return f"obj{slot}"


def _fmt(values: tuple[float, ...] | list[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _look_at(pos: tuple[float, float, float], target: tuple[float, float, float]) -> str:
    """``xyaxes`` attribute of a camera at ``pos`` looking at ``target`` (z up)."""
    p, t = np.asarray(pos, float), np.asarray(target, float)
    fwd = (t - p) / np.linalg.norm(t - p)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    return _fmt(np.concatenate([right, up]))


def _shape_geom(name: str, shape: CategoryShape, extra: str) -> str:
    if shape.geom_type == "capsule":
        r, h = shape.size
        geo = f'type="capsule" fromto="{-h} 0 0 {h} 0 0" size="{r}"'
    else:
        geo = f'type="{shape.geom_type}" size="{_fmt(shape.size)}"'
    return f'<geom name="{name}" {geo} rgba="{_fmt(shape.rgba)}" {extra}/>'


def _bin_walls(name: str, cy: float) -> str:
    h, t, wh = BIN_HALF, WALL_HALF_THICKNESS, WALL_HEIGHT / 2
    walls = [
        (f"{name}_front", (h + t, cy, wh), (t, h + 2 * t, wh)),
        (f"{name}_back", (-h - t, cy, wh), (t, h + 2 * t, wh)),
        (f"{name}_left", (0, cy + h + t, wh), (h, t, wh)),
        (f"{name}_right", (0, cy - h - t, wh), (h, t, wh)),
    ]
    return "\n".join(
        f'<geom name="{n}" type="box" pos="{_fmt(p)}" size="{_fmt(s)}" class="wall"/>'
        for n, p, s in walls
    )


def _plate_geoms() -> str:
    hx, hy = PLATE_HALF
    b, r, t = PLATE_THICKNESS / 2, PLATE_RIM_HEIGHT / 2, 0.004
    z_rim = PLATE_THICKNESS + r
    dy = PLATE_DIVIDER_Y
    parts = [
        ("plate_base", (0, 0, b), (hx, hy, b)),
        ("plate_rim_px", (hx - t, 0, z_rim), (t, hy, r)),
        ("plate_rim_nx", (-hx + t, 0, z_rim), (t, hy, r)),
        ("plate_rim_py", (0, hy - t, z_rim), (hx - 2 * t, t, r)),
        ("plate_rim_ny", (0, -hy + t, z_rim), (hx - 2 * t, t, r)),
        ("plate_divider_h", (0, dy, z_rim), (hx - 2 * t, t, r)),
        ("plate_divider_v", (0, (dy + hy) / 2, z_rim), (t, (hy - dy) / 2 - 2 * t, r)),
    ]
    return "\n".join(
        f'<geom name="{n}" type="box" pos="{_fmt(p)}" size="{_fmt(s)}" class="plate"/>'
        for n, p, s in parts
    )


def _slot_body(slot: int) -> str:
    x, y, z = PARK_POSITION
    geoms = "\n".join(
        _shape_geom(category_geom_name(slot, c), SHAPES[c], 'class="object"') for c in CATEGORIES
    )
    # explicit inertial so that hidden geoms do not add mass; the workcell sets the body's
    # mass and inertia from category_inertia() when it assigns a category.
    return (
        f'<body name="{slot_body_name(slot)}" pos="{x + 0.2 * slot:.3f} {y} {z}" gravcomp="1">'
        '<freejoint/><inertial pos="0 0 0" mass="0.1" diaginertia="1e-4 1e-4 1e-4"/>'
        f"{geoms}</body>"
    )


def build_mjcf(n_slots: int) -> str:
    """The workcell's MJCF model as a string, with ``n_slots`` object slots."""
    if not isinstance(n_slots, int) or not 1 <= n_slots <= 32:
        raise ValueError(f"n_slots must be an integer in [1, 32], got {n_slots!r}")
    half_open = MAX_HALF_OPENING
    fl = FINGER_LENGTH
    shoulder = _look_at(SHOULDER_CAMERA_POS, (0.02, -0.03, 0.0))
    side_r = _look_at((0.15, -0.75, 0.45), (0.0, -0.05, 0.02))
    side_l = _look_at((0.15, 0.75, 0.45), (0.0, 0.05, 0.02))
    slots = "\n".join(_slot_body(i) for i in range(n_slots))
    return f"""
<mujoco model="mtopt_workcell">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="pyramidal"
          iterations="20" ls_iterations="8"/>
  <visual><global offwidth="1024" offheight="1024"/><quality shadowsize="0"/></visual>
  <default>
    <geom solref="0.01 1" friction="0.8 0.005 0.0001"/>
    <default class="wall"><geom rgba="0.45 0.35 0.25 1" contype="1" conaffinity="1"/></default>
    <default class="plate"><geom rgba="0.95 0.95 0.9 1" group="1"/></default>
    <default class="object"><geom contype="0" conaffinity="0" group="{HIDDEN_GROUP}"
        density="{OBJECT_DENSITY}"/></default>
    <default class="finger"><geom type="box" friction="2.0 0.02 0.0001" condim="4"
        rgba="0.2 0.2 0.2 1"/></default>
  </default>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1" directional="true" diffuse="0.7 0.7 0.7"/>
    <geom name="floor" type="plane" size="1 1 0.05" rgba="0.6 0.55 0.5 1"/>
    {_bin_walls("rbin", -BIN_CENTER_Y)}
    {_bin_walls("lbin", BIN_CENTER_Y)}
    <camera name="shoulder" pos="{_fmt(SHOULDER_CAMERA_POS)}" xyaxes="{shoulder}" fovy="58"/>
    <camera name="side_right" pos="0.15 -0.75 0.45" xyaxes="{side_r}" fovy="50"/>
    <camera name="side_left" pos="0.15 0.75 0.45" xyaxes="{side_l}" fovy="50"/>
    <body name="plate" mocap="true" pos="0 {BIN_CENTER_Y} 0">{_plate_geoms()}</body>
    <body name="gripper" gravcomp="1">
      <joint name="gx" type="slide" axis="1 0 0" armature="0.5" damping="1"/>
      <joint name="gy" type="slide" axis="0 1 0" armature="0.5" damping="1"/>
      <joint name="gz" type="slide" axis="0 0 1" armature="0.5" damping="1"/>
      <joint name="gyaw" type="hinge" axis="0 0 1" armature="0.02" damping="0.05"/>
      <geom name="palm" type="box" pos="0 0 {fl + 0.012}" size="0.03 0.06 0.012" mass="0.3"
            rgba="0.3 0.3 0.35 1"/>
      <geom name="wrist" type="cylinder" pos="0 0 {fl + 0.08}" size="0.02 0.06"
            contype="0" conaffinity="0" mass="0.1" rgba="0.6 0.6 0.65 1"/>
      <body name="finger_left" gravcomp="1">
        <joint name="finger_left" type="slide" axis="0 1 0" range="0 {half_open}"
               armature="0.05" damping="0.5"/>
        <geom name="finger_left" class="finger" pos="0 0.006 {fl / 2}"
              size="{FINGER_PAD_HALF_WIDTH} 0.006 {fl / 2}" mass="0.05"/>
      </body>
      <body name="finger_right" gravcomp="1">
        <joint name="finger_right" type="slide" axis="0 -1 0" range="0 {half_open}"
               armature="0.05" damping="0.5"/>
        <geom name="finger_right" class="finger" pos="0 -0.006 {fl / 2}"
              size="{FINGER_PAD_HALF_WIDTH} 0.006 {fl / 2}" mass="0.05"/>
      </body>
    </body>
    {slots}
  </worldbody>
  <actuator>
    <position name="ax" joint="gx" kp="4000" kv="150" forcerange="-40 40"/>
    <position name="ay" joint="gy" kp="4000" kv="150" forcerange="-40 40"/>
    <position name="az" joint="gz" kp="4000" kv="150" forcerange="-40 40"/>
    <position name="ayaw" joint="gyaw" kp="20" kv="1.2" forcerange="-5 5"/>
    <position name="afl" joint="finger_left" kp="1500" kv="20" forcerange="-12 12"/>
    <position name="afr" joint="finger_right" kp="1500" kv="20" forcerange="-12 12"/>
  </actuator>
  <equality>
    <joint name="finger_coupling" joint1="finger_right" joint2="finger_left" solref="0.01 1"/>
  </equality>
</mujoco>
"""


@lru_cache(maxsize=1)
def category_inertia() -> dict[str, tuple[float, np.ndarray]]:
    """Mass (kg) and diagonal inertia (in the slot body's frame) of every category.

    Computed by MuJoCo's compiler from the shapes. All shapes are centred and symmetric about
    the body axes, so the centre of mass is the body origin and the inertia tensor is diagonal
    in the body frame (the slot bodies keep an identity inertial frame).
    """
    density = f'density="{OBJECT_DENSITY}"'
    bodies = "".join(
        f'<body name="{c}"><freejoint/>{_shape_geom(c, SHAPES[c], density)}</body>'
        for c in CATEGORIES
    )
    model = mujoco.MjModel.from_xml_string(f"<mujoco><worldbody>{bodies}</worldbody></mujoco>")
    out: dict[str, tuple[float, np.ndarray]] = {}
    for c in CATEGORIES:
        b = model.body(c).id
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.body_iquat[b])
        rot = rot.reshape(3, 3)
        tensor = rot @ np.diag(model.body_inertia[b]) @ rot.T
        out[c] = (float(model.body_mass[b]), np.diag(tensor).copy())
    return out


def yaw_quat(yaw: float) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation by ``yaw`` about the world z axis."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


# -- random scene layouts --------------------------------------------------------------------
def sample_categories(
    rng: np.random.Generator,
    kind: str,
    min_objects: int,
    max_objects: int,
    max_distractors: int,
    cloths: int = 0,
) -> list[int]:
    """Category indices (into :data:`CATEGORIES`) of the objects of a new scene.

    ``kind="random"``: ``min_objects..max_objects`` task objects of categories drawn with
    replacement, plus ``0..max_distractors`` distractors. ``kind="evaluation"``: one object of
    each task category plus two extras, each a distractor or a random task category with equal
    probability (paper Fig. 17). Either kind then gets ``cloths`` cloths.
    """
    n_cat = len(OBJECT_CATEGORIES)
    distractor = CATEGORIES.index(DISTRACTOR)
    if kind == "random":
        n = int(rng.integers(min_objects, max_objects + 1))
        cats = [int(c) for c in rng.integers(0, n_cat, size=n)]
        cats += [distractor] * int(rng.integers(0, max_distractors + 1))
    elif kind == "evaluation":
        cats = list(range(n_cat))
        for _ in range(2):
            cats.append(distractor if rng.random() < 0.5 else int(rng.integers(0, n_cat)))
    else:
        raise ValueError(f"scene must be 'random' or 'evaluation', got {kind!r}")
    return cats + [CATEGORIES.index(CLOTH)] * cloths


def _rotated_half(half: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Half extents ``(..., 2)`` of the world-axis-aligned box around a rotated rectangle."""
    c, s = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
    out = np.empty((*np.shape(yaw), 2))
    out[..., 0] = half[..., 0] * c + half[..., 1] * s
    out[..., 1] = half[..., 0] * s + half[..., 1] * c
    return out


def _separated(
    xy: np.ndarray,
    yaw: np.ndarray,
    half: np.ndarray,
    pxy: np.ndarray,
    pyaw: np.ndarray,
    phalf: np.ndarray,
    margin: float,
) -> np.ndarray:
    """Bool ``(m,)``: candidate rectangles that overlap none of the placed ones (2-D SAT).

    Candidates have centres ``xy (m, 2)``, yaws ``yaw (m,)`` and common half extents
    ``half (2,)``; placed rectangles ``pxy (p, 2)``, ``pyaw (p,)``, ``phalf (p, 2)``.
    """
    if len(pxy) == 0:
        return np.ones(len(xy), dtype=bool)
    dx = xy[:, :1] - pxy[None, :, 0]
    dy = xy[:, 1:] - pxy[None, :, 1]
    ca, sa = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    cb, sb = np.cos(pyaw)[None, :], np.sin(pyaw)[None, :]
    c = np.abs(ca * cb + sa * sb)  # |cos(yaw_a - yaw_b)|
    s = np.abs(sa * cb - ca * sb)  # |sin(yaw_a - yaw_b)|
    hax, hay = half
    hbx, hby = phalf[None, :, 0] + margin, phalf[None, :, 1] + margin
    sep = np.abs(dx * ca + dy * sa) > hax + hbx * c + hby * s
    sep |= np.abs(dy * ca - dx * sa) > hay + hbx * s + hby * c
    sep |= np.abs(dx * cb + dy * sb) > hbx + hax * c + hay * s
    sep |= np.abs(dy * cb - dx * sb) > hby + hax * s + hay * c
    return sep.all(axis=1)


def sample_object_poses(
    rng: np.random.Generator, cats: list[int], margin: float = 0.005, batch: int = 128
) -> np.ndarray:
    """Resting poses ``(n, 4)`` = (x, y, z, yaw) for objects of ``cats`` in the right bin.

    Footprints (yawed rectangles) do not overlap and stay inside the bin. If no free spot is
    found among a few batches of candidates, the object is dropped from above a random spot.
    """
    n = len(cats)
    out = np.zeros((n, 4))
    halves = np.array([SHAPES[CATEGORIES[c]].half_extent for c in cats]).reshape(n, 3)
    order = np.argsort(-halves[:, 0] * halves[:, 1], kind="stable")  # big objects first
    placed_xy, placed_yaw, placed_half = np.zeros((n, 2)), np.zeros(n), np.zeros((n, 2))
    for j, i in enumerate(order):
        half = halves[i, :2]
        z = halves[i, 2] + 0.001
        for _attempt in range(4):
            yaw = rng.uniform(-math.pi, math.pi, size=batch)
            room = BIN_HALF - 0.003 - _rotated_half(half, yaw)
            xy = rng.uniform(-1.0, 1.0, size=(batch, 2)) * room
            xy[:, 1] -= BIN_CENTER_Y
            free = _separated(xy, yaw, half, placed_xy[:j], placed_yaw[:j], placed_half[:j], margin)
            ok = np.flatnonzero(free)
            if len(ok):
                k = ok[0]
                break
        else:
            k = 0
            z += 0.095  # above the tallest resting object
            logger.debug("no free spot for a %s; dropping it from above", CATEGORIES[cats[i]])
        out[i] = (xy[k, 0], xy[k, 1], z, yaw[k])
        placed_xy[j], placed_yaw[j], placed_half[j] = xy[k], yaw[k], half
    return out


def sample_plate_pose(rng: np.random.Generator) -> tuple[float, float, float]:
    """Random plate pose ``(x, y, yaw)`` with the whole plate inside the left bin."""
    yaw = float(rng.uniform(-math.pi, math.pi))
    room = BIN_HALF - _rotated_half(np.array(PLATE_HALF), np.array(yaw)) - 0.002
    x, y = rng.uniform(-1.0, 1.0, size=2) * room
    return float(x), float(y + BIN_CENTER_Y), yaw
