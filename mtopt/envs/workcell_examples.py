"""The workcell's outcome examples for a task (``mtopt sd examples``; paper Sec. 4, App. 8,
Fig. 14), and its cameras' calibration for the success detector's gripper crops.

A user specifies a task by showing what its desired and undesired *outcomes* look like. Here the
user is simulated: for each *pair*, a random training scene is reset (a new object set and plate
pose), the lighting is changed, and two final scenes are arranged on it with
:meth:`~mtopt.envs.workcell.WorkcellEnv.arrange` -- one a success for the task and one a failure
(often a hard one: the wrong object lifted, an object held just too low, placed in the wrong
plate section, held over the plate). The gripper is put anywhere above either bin, as a robot
episode may leave it, and lifted heights start at the predicate's boundary, where robot
successes cluster. Pairs share everything but the outcome, to de-correlate spurious
scene features from the task, as the paper's paired videos do.

The physics settles each arranged scene; the ground-truth predicate only confirms that the
arrangement shows the intended outcome (a scene that does not, e.g. an object that slid off the
plate, is re-arranged). Each example is labelled for its task only; label sharing adds the
implied labels when training.

:func:`workcell_camera_projections` reads every view's 3 x 4 pinhole projection from the
workcell's MuJoCo model: the default calibration of a gripper-crop success detector trained on
the simulated cell (``mtopt sd train`` passes it to
:func:`~mtopt.success.training.train_success_detector`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mtopt.envs import scene
from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.envs.workcell_tasks import (
    COVER_OBJECT,
    NEW_TASKS,
    OBJECT_ACQUISITION,
    PLATE_SECTIONS,
    workcell_task_set,
)
from mtopt.progress import progress_bar
from mtopt.success.dataset import UNKNOWN, USER_ROBOT, SDExamples

logger = logging.getLogger(__name__)

SCENE_CATEGORIES = tuple(c for c in scene.CATEGORIES if c != scene.CLOTH)
"""Categories the 12 tasks' examples show (the cloth belongs to the new tasks' scenes only)."""

MAX_ATTEMPTS = 8
"""Arrangements tried per example before the pair is skipped."""
LIFTED_TIP_HEIGHT = 0.05
"""Finger-tip height (m) from which a held object is lifted by the workcell's predicate (its
centre above ``lift_height`` 0.08 m; measured 0.04-0.05 m over the categories)."""
GRIPPER_ROOM = scene.BIN_HALF - 0.05
"""Half side of the square, centred on each bin, where a pair's gripper is put."""
VIEW_CAMERAS = ("shoulder", "side_left", "side_right")
"""MuJoCo camera of each stored view, in the success detector's view order."""


@dataclass(frozen=True)
class SDExamplesConfig:
    """Make outcome examples (successes and failures) of a task for the success detector."""

    task: str = "lift-any"
    """The task whose outcomes are shown: one of the 12, or a new task of
    :data:`~mtopt.envs.workcell_tasks.NEW_TASKS` (its scenes need ``workcell.cloths`` ≥ 1)."""
    out: str = "runs/sd-examples"
    """Directory the examples are written to (one ``examples-*.npz`` shard per run)."""
    pairs: int = 200
    """Success/failure pairs (each pair shares scene, object set, plate pose and lighting)."""
    seed: int = 0
    """Seed of scenes, arrangements and lighting."""
    images: bool = True
    """Render the three views (needed by the image detector; off = states only, faster)."""
    image_size: int = 64
    """Height and width of every view."""
    vary_lighting: bool = True
    """Change the light's intensity, ambient level and direction for every pair."""
    boundary_fraction: float = 0.0
    """Fraction of place pairs that show boundary cases (objects near the rims and dividers,
    or just beside the plate; see :func:`outcome_arrangement`)."""
    progress: bool = True
    """Show a progress bar."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated workcell (image sizes are set from ``image_size``)."""

    def __post_init__(self) -> None:
        if self.task in NEW_TASKS:
            if self.workcell.cloths < 1:
                raise ValueError(
                    f"task {self.task!r} needs the cloth in its scenes: set workcell.cloths >= 1 "
                    "(--workcell.cloths 1 --workcell.max-objects 7)"
                )
        else:
            workcell_task_set().validate([self.task])
        if isinstance(self.pairs, bool) or not isinstance(self.pairs, int) or self.pairs < 1:
            raise ValueError(f"pairs must be a positive integer, got {self.pairs!r}")
        if not 0.0 <= self.boundary_fraction <= 1.0:
            raise ValueError(f"boundary_fraction must be in [0, 1], got {self.boundary_fraction!r}")
        if not isinstance(self.image_size, int) or not 16 <= self.image_size <= 1024:
            raise ValueError(
                f"image_size must be an integer in [16, 1024], got {self.image_size!r}"
            )


def section_point(section: str, rng: np.random.Generator, margin: float = 0.035) -> tuple:
    """A random plate-local ``(x, y)`` inside ``section`` (at least ``margin`` from its edges)."""
    hx, hy = scene.PLATE_HALF
    dy = scene.PLATE_DIVIDER_Y
    if section == "bottom":
        x, y = rng.uniform(-hx + margin, hx - margin), rng.uniform(-hy + margin, dy - margin)
    else:
        y = rng.uniform(dy + margin, hy - margin)
        lo, hi = (-hx + margin, -margin) if section == "top-left" else (margin, hx - margin)
        x = rng.uniform(lo, hi)
    return float(x), float(y)


def section_edge_point(section: str, rng: np.random.Generator) -> tuple:
    """A random plate-local ``(x, y)`` inside ``section``, 0.5-2 cm from one of its edges (a
    rim or a divider, chosen at random)."""
    hx, hy = scene.PLATE_HALF
    dy = scene.PLATE_DIVIDER_Y
    x0, x1 = {"bottom": (-hx, hx), "top-left": (-hx, 0.0), "top-right": (0.0, hx)}[section]
    y0, y1 = (-hy, dy) if section == "bottom" else (dy, hy)
    x, y = section_point(section, rng, margin=0.01)
    d = float(rng.uniform(0.005, 0.02))
    edge = int(rng.integers(4))
    if edge == 0:
        x = x0 + d
    elif edge == 1:
        x = x1 - d
    elif edge == 2:
        y = y0 + d
    else:
        y = y1 - d
    return float(x), float(y)


def beside_plate_point(rng: np.random.Generator) -> tuple:
    """A random plate-local ``(x, y)`` just outside the plate's footprint (0.5-4 cm beyond one
    of its four rims): an object there may lean on the rim, but it is not on the plate."""
    hx, hy = scene.PLATE_HALF
    out = float(rng.uniform(0.005, 0.04))
    side = int(rng.integers(4))
    along = float(rng.uniform(-1.0, 1.0))
    if side < 2:
        return (hx + out) * (1 if side == 0 else -1), along * hy
    return along * hx, (hy + out) * (1 if side == 2 else -1)


def _plate_object(
    cat: str, section: str, rng: np.random.Generator, near_edge: bool = False
) -> tuple:
    x, y = section_edge_point(section, rng) if near_edge else section_point(section, rng)
    return (cat, x, y, float(rng.uniform(-np.pi, np.pi)))


def outcome_arrangement(
    task: str, success: bool, rng: np.random.Generator, boundary: float = 0.0
) -> dict[str, Any]:
    """Keyword arguments of ``WorkcellEnv.arrange`` showing a success or failure of ``task``.

    With probability ``boundary`` a place outcome is a *boundary case*, as robot episodes often
    end: a success has its object's centre 0.5-2 cm inside its section's edges (the rim or a
    divider), and a failure is an object just beside the plate, or (section tasks) just across
    a divider."""
    near = boundary > 0 and rng.random() < boundary
    any_cat = str(rng.choice(SCENE_CATEGORIES))
    # finger-tip heights: a held object counts as lifted from a tip height of about 0.05 m
    # (tall objects earlier), so successes start there and low holds end just below it; the
    # caller's predicate check re-draws any arrangement on the wrong side of the boundary
    high = float(rng.uniform(LIFTED_TIP_HEIGHT, 0.25))
    low = float(rng.uniform(0.02, LIFTED_TIP_HEIGHT - 0.005))
    if task == COVER_OBJECT:
        return _cover_arrangement(success, rng, high)
    if task_skill(task) == OBJECT_ACQUISITION:
        cat = task.removeprefix("lift-") if task != "lift-any" else any_cat
        if success:
            return {"held": cat, "held_height": high}
        kinds = ["low", "empty-closed", "empty-open", "on-plate"]
        if task != "lift-any":
            kinds += ["wrong-object"] * 3
        kind = str(rng.choice(kinds))
        if kind == "wrong-object":
            other = [c for c in SCENE_CATEGORIES if c != cat]
            return {"held": str(rng.choice(other)), "held_height": high}
        if kind == "low":
            return {"held": cat, "held_height": low}
        if kind == "empty-closed":
            return {"gripper_closed": True, "held_height": high}
        if kind == "empty-open":
            return {"held_height": high}
        return {"on_plate": [_plate_object(cat, str(rng.choice(PLATE_SECTIONS)), rng)]}
    section = task.removeprefix("place-")
    if success:
        sec = section if section in PLATE_SECTIONS else str(rng.choice(PLATE_SECTIONS))
        return {"on_plate": [_plate_object(any_cat, sec, rng, near)], "held_height": high}
    kinds = ["over-plate", "empty", "held-low"]
    if section in PLATE_SECTIONS:
        kinds += ["wrong-section"] * 3
    if near:
        kinds = ["beside-plate"] * 2 + (["wrong-section"] * 2 if section in PLATE_SECTIONS else [])
    kind = str(rng.choice(kinds))
    if kind == "beside-plate":
        x, y = beside_plate_point(rng)
        yaw = float(rng.uniform(-np.pi, np.pi))
        return {"on_plate": [(any_cat, x, y, yaw)], "held_height": high}
    if kind == "wrong-section":
        other = str(rng.choice([s for s in PLATE_SECTIONS if s != section]))
        return {"on_plate": [_plate_object(any_cat, other, rng, near)], "held_height": high}
    if kind == "over-plate":
        return {"held": any_cat, "held_height": float(rng.uniform(0.06, 0.2)), "over_plate": True}
    if kind == "held-low":
        return {"held": any_cat, "held_height": low}
    return {"held_height": high}


def task_skill(task: str) -> str:
    """The skill of one of the 12 tasks or of a new task."""
    return NEW_TASKS[task] if task in NEW_TASKS else workcell_task_set()[task].skill


def _cover_arrangement(success: bool, rng: np.random.Generator, high: float) -> dict[str, Any]:
    """``cover-object``: the cloth laid over a bin object (success); laid beside one, held over
    the bin, left on the plate, another object laid over one instead, or another object held
    up (failures: the last two show that only the cloth covers, in scenes like the 12 tasks')."""
    dx, dy = (float(v) for v in rng.uniform(-0.015, 0.015, size=2))
    if success:
        return {"covering": (scene.CLOTH, dx, dy), "held_height": high}
    kind = str(rng.choice(["beside"] * 2 + ["held", "on-plate", "not-cloth", "held-other"]))
    if kind == "not-cloth":
        return {"covering": (str(rng.choice(SCENE_CATEGORIES)), dx, dy), "held_height": high}
    if kind == "held-other":
        return {"held": str(rng.choice(SCENE_CATEGORIES)), "held_height": high}
    if kind == "beside":
        angle, dist = rng.uniform(-np.pi, np.pi), rng.uniform(0.07, 0.11)
        offset = (float(dist * np.cos(angle)), float(dist * np.sin(angle)))
        return {"covering": (scene.CLOTH, *offset), "held_height": high}
    if kind == "held":
        return {"held": scene.CLOTH, "held_height": float(rng.uniform(0.04, 0.15))}
    return {"on_plate": [_plate_object(scene.CLOTH, str(rng.choice(PLATE_SECTIONS)), rng)]}


def pair_gripper_xy(rng: np.random.Generator) -> tuple[float, float]:
    """World ``(x, y)`` of the gripper for one pair: above either bin, anywhere in it.

    Robot episodes end with the gripper wherever the policy left it -- above the plate after a
    place, above the object bin after a lift -- so the examples must not tie an outcome to one
    gripper position. Both examples of a pair share it.
    """
    x, y = rng.uniform(-GRIPPER_ROOM, GRIPPER_ROOM, size=2)
    side = 1.0 if rng.random() < 0.5 else -1.0
    return float(x), float(y + side * scene.BIN_CENTER_Y)


def _random_lighting(env: WorkcellEnv, rng: np.random.Generator) -> None:
    env.set_lighting(
        diffuse=float(rng.uniform(0.35, 1.1)),
        ambient=float(rng.uniform(0.0, 0.3)),
        direction=(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)), -1.0),
    )


def _render_views(env: WorkcellEnv) -> np.ndarray:
    return np.concatenate([env.render_image()[None], env.render_side_images()])


def make_examples(config: SDExamplesConfig) -> dict[str, Any]:
    """Make and write the examples; returns a summary (counts, skipped pairs, file)."""
    names = workcell_task_set().names
    names += (config.task,) if config.task in NEW_TASKS else ()
    col = names.index(config.task)
    wc = replace(config.workcell, image_size=config.image_size, side_image_size=config.image_size)
    env = WorkcellEnv(wc)
    judged = env.task_names.index(config.task)
    rng = np.random.default_rng(config.seed)
    states, views, labels = [], [], []
    skipped = 0
    bar = progress_bar(config.pairs, f"examples {config.task}", "pair", config.progress)
    try:
        for _ in range(config.pairs):
            scene_seed = int(rng.integers(2**31 - 1))
            if config.vary_lighting:
                _random_lighting(env, rng)
            gripper_xy = pair_gripper_xy(rng)
            pair = []
            for desired in (True, False):
                for _attempt in range(MAX_ATTEMPTS):
                    kwargs = outcome_arrangement(
                        config.task, desired, rng, config.boundary_fraction
                    )
                    env.reset(seed=scene_seed)
                    if kwargs.pop("over_plate", False):
                        kwargs["gripper_xy"] = tuple(env.scene_facts().plate_xy)
                    else:
                        kwargs["gripper_xy"] = gripper_xy
                    obs = env.arrange(**kwargs)
                    if bool(env.success_vector()[judged]) == desired:
                        view = _render_views(env) if config.images else None
                        pair.append((obs["state"], view, desired))
                        break
            if len(pair) == 2:
                for state, view, desired in pair:
                    states.append(state)
                    views.append(view)
                    labels.append(int(desired))
            else:
                skipped += 1
            bar.update(1)
    finally:
        bar.close()
        env.set_lighting()
        env.close()
    n = len(labels)
    label_matrix = np.full((n, len(names)), UNKNOWN, dtype=np.int8)
    label_matrix[:, col] = labels
    examples = SDExamples(
        names,
        label_matrix,
        np.full(n, col, dtype=np.int64),
        np.full(n, USER_ROBOT, dtype=np.int64),
        np.stack(states).astype(np.float32) if n else np.zeros((0, 0), np.float32),
        np.stack(views) if config.images and n else None,
        np.arange(n, dtype=np.int64) // 2,  # rows were appended pair by pair
    )
    path = examples.save(config.out, f"{config.task}-s{config.seed}")
    logger.info("%s: %d examples (%d pairs skipped) -> %s", config.task, n, skipped, path)
    return {
        "task": config.task,
        "examples": n,
        "successes": int(sum(labels)),
        "skipped_pairs": skipped,
        "file": str(path),
    }


def workcell_camera_projections(size: int, workcell: WorkcellConfig | None = None) -> np.ndarray:
    """float64 ``(3, 3, 4)``: for each view, the matrix mapping a homogeneous world point to
    homogeneous pixel coordinates (column, row, 1) of a ``size`` x ``size`` image of the
    workcell camera (``workcell``: the cell, default the default cell)."""
    import mujoco

    if not isinstance(size, int) or size < 1:
        raise ValueError(f"image size must be a positive integer, got {size!r}")
    env = WorkcellEnv(workcell if workcell is not None else WorkcellConfig())
    try:
        env.reset(seed=0)
        m, d = env.model, env.data
        out = []
        for name in VIEW_CAMERAS:
            cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, name)
            rot = d.cam_xmat[cid].reshape(3, 3)  # columns: camera x (right), y (up), z (back)
            focal = 0.5 * size / np.tan(np.deg2rad(float(m.cam_fovy[cid])) / 2)
            # column = size/2 + f x / (-z), row = size/2 - f y / (-z), in camera coordinates
            intrinsic = np.array([[focal, 0, -size / 2], [0, -focal, -size / 2], [0, 0, -1.0]])
            extrinsic = np.concatenate([rot.T, -(rot.T @ d.cam_xpos[cid])[:, None]], axis=1)
            out.append(intrinsic @ extrinsic)
    finally:
        env.close()
    return np.stack(out)
