"""Tests of the ground-truth success predicates (hand-made facts and staged sim states)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from mtopt.envs import predicates, scene
from mtopt.envs.workcell import WorkcellEnv
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.envs.workcell_tasks import NEW_TASKS, workcell_task_set

NAMES = (*workcell_task_set().names, *NEW_TASKS)
LIFT = 0.08


def _facts(cats, pos, left=(), right=(), plate=(), plate_xy=(0.0, 0.22), plate_yaw=0.0, pairs=None):
    n = len(cats)
    mask = lambda idx: np.isin(np.arange(n), list(idx))  # noqa: E731
    touching = None
    if pairs is not None:
        touching = np.zeros((n, n), dtype=bool)
        for i, j in pairs:
            touching[i, j] = touching[j, i] = True
    return predicates.SceneFacts(
        touch_objects=touching,
        categories=tuple(cats),
        positions=np.asarray(pos, dtype=float),
        touch_left=mask(left),
        touch_right=mask(right),
        touch_plate=mask(plate),
        plate_xy=np.asarray(plate_xy, dtype=float),
        plate_yaw=plate_yaw,
    )


def _true(facts) -> set[str]:
    vec = predicates.success_vector(facts, NAMES, LIFT)
    return {n for n, v in zip(NAMES, vec, strict=True) if v}


def test_one_lifted_carrot() -> None:
    f = _facts(["carrot", "can", None], [[0, -0.2, 0.15], [0, -0.2, 0.03], [0, 0, -1]], [0], [0])
    assert _true(f) == {"lift-any", "lift-carrot"}


def test_lift_needs_both_fingers_and_height() -> None:
    one_finger = _facts(["carrot"], [[0, -0.2, 0.15]], left=[0])
    too_low = _facts(["carrot"], [[0, -0.2, 0.05]], [0], [0])
    assert _true(one_finger) == set()
    assert _true(too_low) == set()


def test_two_lifted_objects_fail_every_lift() -> None:
    f = _facts(["banana", "milk"], [[0, -0.2, 0.15], [0, -0.2, 0.15]], [0, 1], [0, 1])
    assert _true(f) == set()


def test_distractor_counts_for_lift_any_only() -> None:
    f = _facts([scene.DISTRACTOR], [[0, -0.2, 0.15]], [0], [0])
    assert _true(f) == {"lift-any"}


@pytest.mark.parametrize(
    ("local", "section"),
    [((0.0, -0.06), "bottom"), ((-0.06, 0.06), "top-left"), ((0.06, 0.06), "top-right")],
)
@pytest.mark.parametrize("yaw", [0.0, math.pi / 2, -2.5])
def test_place_sections_in_plate_frame(local, section, yaw) -> None:
    plate_xy = np.array([0.03, 0.2])
    c, s = math.cos(yaw), math.sin(yaw)
    world = plate_xy + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
    f = _facts(["can"], [[*world, 0.04]], plate=[0], plate_xy=plate_xy, plate_yaw=yaw)
    assert _true(f) == {"place-any", f"place-{section}"}


def test_place_needs_release_contact_and_footprint() -> None:
    held = _facts(["can"], [[0, 0.22, 0.04]], left=[0], plate=[0])
    not_touching = _facts(["can"], [[0, 0.22, 0.04]])
    off_plate = _facts(["can"], [[0.2, 0.22, 0.04]], plate=[0])
    assert _true(held) == set()
    assert _true(not_touching) == set()
    assert _true(off_plate) == set()


def test_a_lifted_cloth_is_lift_cloth_and_lift_any() -> None:
    f = _facts([scene.CLOTH, "can"], [[0, -0.2, 0.15], [0, -0.2, 0.03]], [0], [0])
    assert _true(f) == {"lift-any", "lift-cloth"}


def test_cover_object_needs_a_free_cloth_over_a_touched_object() -> None:
    cloth_on_can = [[0.0, -0.2, 0.07], [0.02, -0.2, 0.03]]
    assert _true(_facts([scene.CLOTH, "can"], cloth_on_can, pairs=[(0, 1)])) == {"cover-object"}
    # not touching, held by the fingers, beside the object, below it, or not a cloth
    assert _true(_facts([scene.CLOTH, "can"], cloth_on_can, pairs=[])) == set()
    held = _facts([scene.CLOTH, "can"], cloth_on_can, left=[0], pairs=[(0, 1)])
    assert "cover-object" not in _true(held)
    beside = [[0.0, -0.2, 0.07], [0.05, -0.2, 0.03]]  # 5 cm > COVER_RADIUS
    assert _true(_facts([scene.CLOTH, "can"], beside, pairs=[(0, 1)])) == set()
    under = [[0.0, -0.2, 0.01], [0.0, -0.2, 0.03]]
    assert _true(_facts([scene.CLOTH, "can"], under, pairs=[(0, 1)])) == set()
    assert _true(_facts(["box", "can"], cloth_on_can, pairs=[(0, 1)])) == set()
    assert _true(_facts([scene.CLOTH, scene.CLOTH], cloth_on_can, pairs=[(0, 1)])) == set()


def test_unknown_task_name_raises() -> None:
    f = _facts(["can"], [[0, 0, 0.03]])
    with pytest.raises(ValueError, match="lift-pizza"):
        predicates.success_vector(f, ["lift-pizza"], LIFT)


# -- staged simulator states -------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> WorkcellEnv:
    return WorkcellEnv()


def _teleport(env: WorkcellEnv, slot: int, xyz, yaw: float = 0.0) -> None:
    a = env._qadr[slot]
    env.data.qpos[a : a + 3] = xyz
    env.data.qpos[a + 3 : a + 7] = scene.yaw_quat(yaw)
    env.data.qvel[env._vadr[slot] : env._vadr[slot] + 6] = 0.0


@pytest.mark.parametrize(
    ("section", "local"),
    [("bottom", (0.0, -0.05)), ("top-left", (-0.065, 0.06)), ("top-right", (0.065, 0.06))],
)
def test_teleported_object_rests_in_section(env: WorkcellEnv, section, local) -> None:
    env.reset(seed=11, options={"scene": "evaluation"})
    slot = env.categories.index("can")
    px, py, yaw = env._plate
    c, s = math.cos(yaw), math.sin(yaw)
    x = px + c * local[0] - s * local[1]
    y = py + s * local[0] + c * local[1]
    _teleport(env, slot, (x, y, scene.PLATE_THICKNESS + 0.032), yaw)
    mujoco.mj_step(env.model, env.data, nstep=60)
    got = {n for n, v in zip(NAMES, env.success_vector(), strict=True) if v}
    assert got == {"place-any", f"place-{section}"}


def test_object_on_bin_floor_is_not_placed(env: WorkcellEnv) -> None:
    env.reset(seed=12)
    assert not env.success_vector().any()


def test_gripper_lifts_a_bottle(env: WorkcellEnv) -> None:
    env.reset(seed=13, options={"scene": "evaluation"})
    slot = env.categories.index("bottle")
    gx, gy, gyaw = env.data.qpos[0], env.data.qpos[1], env.data.qpos[3]
    # stand the bottle upright right under the open gripper; float the others beside the
    # bins, out of the gripper's reach but inside the workcell's divergence box
    _teleport(env, slot, (gx, gy, scene.SHAPES["bottle"].half_extent[2] + 0.001), gyaw)
    others = [i for i, c in enumerate(env.categories) if c is not None and i != slot]
    gravcomp = env.model.body_gravcomp.copy()
    try:
        for k, other in enumerate(others):
            env.model.body_gravcomp[env._body[other]] = 1.0
            _teleport(env, other, (0.38, -0.2 + 0.1 * k, 0.4))
        for _ in range(4):
            env.step(np.array([0, 0, -1, 0, 0, 0], dtype=np.float32))
        env.step(np.array([0, 0, 0, 0, 1, 0], dtype=np.float32))
        for _ in range(3):
            env.step(np.array([0, 0, 1, 0, 1, 0], dtype=np.float32))
        got = {n for n, v in zip(NAMES, env.success_vector(), strict=True) if v}
    finally:
        env.model.body_gravcomp[:] = gravcomp
    assert got == {"lift-any", "lift-bottle"}


def test_cloth_scenes_and_the_new_tasks_in_the_simulator() -> None:
    cell = WorkcellEnv(WorkcellConfig(cloths=1, max_objects=7))
    _, info = cell.reset(seed=3, options={"scene": "evaluation"})
    assert info["task_names"][-2:] == ("lift-cloth", "cover-object")
    assert cell.categories.count(scene.CLOTH) == 1 and len([c for c in cell.categories if c]) == 10
    assert not cell.success_vector().any()
    # a grasped start holds the cloth; released over an object, it covers it
    obs, _ = cell.reset(seed=4, options={"grasped": True, "task": "cover-object"})
    cloth = cell.categories.index(scene.CLOTH)
    assert cell.scene_facts().touch_left[cloth] and cell.scene_facts().touch_right[cloth]
    target = next(i for i, c in enumerate(cell.categories) if c not in (None, scene.CLOTH))
    goal = cell.slot_positions()[target]
    done, k = False, 0
    while not done:
        g = obs["state"][:3]
        move = np.clip((goal[:2] - g[:2]) / 0.05, -1, 1)
        lift = np.clip((0.10 - g[2]) / 0.05, -1, 1)
        grip = 1.0 if k < 12 else 0.0
        obs, reward, term, trunc, info = cell.step(
            np.array([move[0], move[1], lift, 0, grip, 0], dtype=np.float32)
        )
        done, k = term or trunc, k + 1
    got = {n for n, v in zip(info["task_names"], info["success"], strict=True) if v}
    assert got == {"cover-object"} and reward == 1.0
    # the 12 tasks' scenes never hold a cloth
    plain = WorkcellEnv()
    for seed in range(5):
        plain.reset(seed=seed)
        assert scene.CLOTH not in plain.categories


def test_cloths_need_free_slots() -> None:
    with pytest.raises(ValueError, match=r"cloths=1 do not fit.*max-objects 7"):
        WorkcellConfig(cloths=1)
    with pytest.raises(ValueError, match="cloths must be a non-negative integer"):
        WorkcellConfig(cloths=-1, max_objects=7)
