"""Tests of the simulated workcell environment (spaces, resets, layout, actions, images)."""

from __future__ import annotations

import ctypes.util

import numpy as np
import pytest

from mtopt.envs import scene
from mtopt.envs.aimed import AimedPickPolicy
from mtopt.envs.workcell import (
    GRIPPER_DIM,
    OBJECT_DIM,
    OBJECT_FIELDS,
    PLATE_DIM,
    WorkcellConfig,
    WorkcellEnv,
    state_layout,
)
from mtopt.envs.workcell_spec import WorkcellSpec
from mtopt.envs.workcell_tasks import OBJECT_CATEGORIES, workcell_task_set
from mtopt.evaluation.protocol import ProtocolConfig, episode_seed, run_task_episode


@pytest.fixture(scope="module")
def env() -> WorkcellEnv:
    e = WorkcellEnv()
    yield e
    e.close()


def _objects(env: WorkcellEnv, state: np.ndarray) -> np.ndarray:
    return state[env.state_layout["objects"]].reshape(env.config.n_slots, OBJECT_DIM)


def test_spaces_and_observation_contents(env: WorkcellEnv) -> None:
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(obs) == {"state", "gripper_status", "gripper_height", "gripper_motion"}
    np.testing.assert_array_equal(obs["gripper_motion"], [0, 0, 0])  # nothing moved yet
    assert obs["state"].shape == (GRIPPER_DIM + OBJECT_DIM * 10 + PLATE_DIM,)
    assert info["task_names"] == (*workcell_task_set().names, "lift-cloth", "cover-object")
    np.testing.assert_array_equal(env.action_space.low, [-1, -1, -1, -1, 0, 0])
    np.testing.assert_array_equal(env.action_space.high, [1, 1, 1, 1, 1, 1])
    assert env.action_space.dtype == np.float32
    # the gripper starts open, above the right bin
    assert obs["gripper_status"][0] == 0.0
    assert obs["state"][1] < -0.02
    assert 0.13 < obs["gripper_height"][0] < 0.21


def test_gripper_motion_is_the_achieved_translation_and_shows_a_blocked_push(
    env: WorkcellEnv,
) -> None:
    obs, _ = env.reset(seed=0)
    before = obs["state"][0:3].copy()
    obs, *_ = env.step(np.array([0.5, 0, 0, 0, 0, 0], np.float32))  # free move along x
    np.testing.assert_allclose(obs["gripper_motion"], obs["state"][0:3] - before, atol=1e-6)
    assert obs["gripper_motion"][0] > 0.5 * 0.5 * env.config.max_translation
    for _ in range(env.config.max_steps - 2):  # push down until the floor or objects stop it
        obs, *_ = env.step(np.array([0, 0, -1, 0, 0, 0], np.float32))
        if abs(obs["gripper_motion"][2]) < 1e-3:
            break
    assert abs(obs["gripper_motion"][2]) < 1e-3, "the push never got blocked"
    assert obs["gripper_height"][0] > 0.0


def test_state_layout_is_contiguous_and_consistent(env: WorkcellEnv) -> None:
    layout = state_layout(10)
    covered = np.zeros(env.state_dim, dtype=int)
    for name, sl in layout.items():
        if name != "objects":
            covered[sl] += 1
    assert (covered == 1).all()
    obs, _ = env.reset(seed=3)
    state, objs = obs["state"], _objects(env, obs["state"])
    np.testing.assert_allclose(state[layout["gripper_pos"]], env.data.qpos[:3], atol=1e-6)
    assert state[layout["gripper_opening"]][0] == pytest.approx(
        2 * scene.MAX_HALF_OPENING, abs=2e-3
    )
    present = objs[:, OBJECT_FIELDS["present"]][:, 0]
    cats = env.categories
    np.testing.assert_array_equal(present, [c is not None for c in cats])
    for row, cat in zip(objs, cats, strict=True):
        onehot = row[OBJECT_FIELDS["category"]]
        if cat is None:
            assert not row.any()
        else:
            assert onehot.sum() == 1 and scene.CATEGORIES[int(onehot.argmax())] == cat
            assert np.hypot(*row[OBJECT_FIELDS["yaw"]]) == pytest.approx(1.0, abs=1e-5)
            # objects start inside the right bin
            assert abs(row[0]) < scene.BIN_HALF and row[1] < 0
    sin_c = state[layout["plate_yaw"]]
    assert np.hypot(*sin_c) == pytest.approx(1.0, abs=1e-6)
    assert state[layout["plate_pos"]][1] > 0  # plate in the left bin


def test_same_seed_same_episode() -> None:
    runs = []
    for _ in range(2):
        e = WorkcellEnv()
        obs, _ = e.reset(seed=42)
        trace = [obs["state"]]
        for a in ([0.3, -0.2, -1, 0.5, 0, 0], [0, 0, -1, 0, 1, 0], [0, 0, 1, 0, 1, 0]):
            obs, *_ = e.step(np.array(a, dtype=np.float32))
            trace.append(obs["state"])
        runs.append(np.stack(trace))
    np.testing.assert_array_equal(runs[0], runs[1])
    other = WorkcellEnv().reset(seed=43)[0]["state"]
    assert not np.array_equal(runs[0][0], other)


def test_random_scene_composition(env: WorkcellEnv) -> None:
    cfg = env.config
    counts = set()
    for seed in range(15):
        env.reset(seed=seed)
        cats = [c for c in env.categories if c is not None]
        n_distractors = cats.count(scene.DISTRACTOR)
        assert cfg.min_objects <= len(cats) - n_distractors <= cfg.max_objects
        assert n_distractors <= cfg.max_distractors
        counts.add(len(cats))
    assert len(counts) > 2


def test_slot_bodies_collide_exactly_when_an_object_is_present(env: WorkcellEnv) -> None:
    # the broad phase filters by body: a present object's body must carry its live geom's
    # collision bits (MuJoCo 3.3 let every object fall through the floor without them)
    m = env.model
    for seed in range(4):
        env.reset(seed=seed)
        for i, cat in enumerate(env.categories):
            b = env._body[i]
            geoms = env._geoms[i]
            assert m.body_contype[b] == m.body_conaffinity[b] == int(cat is not None)
            assert int(m.body_contype[b]) == int(np.bitwise_or.reduce(m.geom_contype[geoms]))
        b0, b1 = env._body_range
        present = env.data.xpos[b0:b1][~env._absent]
        assert (present[:, 2] > 0).all(), present


def test_evaluation_scene_has_every_category(env: WorkcellEnv) -> None:
    for seed in range(5):
        env.reset(seed=seed, options={"scene": "evaluation"})
        cats = [c for c in env.categories if c is not None]
        assert len(cats) == 9
        assert set(OBJECT_CATEGORIES) <= set(cats)


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ([0, 0, 0, 0, 0, float("nan")], "terminate=nan"),
        ([1.5, 0, 0, 0, 0, 0], r"dx=1.5 \(allowed \[-1, 1\]\)"),
        ([0, 0, 0, 0, -0.2, 0], r"gripper=-0.2 \(allowed \[0, 1\]\)"),
        ([0, 0, float("inf"), 0, 0, 0], "dz=inf"),
        ([0, 0, 0], r"shape \(6,\)"),
        ([0, 0, 0.5j, 0, 0, 0], "6 real numbers, got complex"),
    ],
)
def test_invalid_actions_raise(env: WorkcellEnv, action: list[float], match: str) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(np.array(action))


def test_tolerance_and_workspace_clipping(env: WorkcellEnv) -> None:
    env.reset(seed=0)
    env.step(np.array([1 + 5e-7, 0, 0, 0, 0, 0]))  # within tolerance: accepted
    for _ in range(12):  # drive into the far wall: silently clipped to the workspace
        obs, *_ = env.step(np.array([1, 0, 1, 0, 0, 0], dtype=np.float32))
        if env._done:
            break
    assert obs["state"][0] <= scene.BIN_HALF
    assert obs["gripper_height"][0] <= 0.301


def test_truncation_success_info_and_reward(env: WorkcellEnv) -> None:
    env.reset(seed=1, options={"task": "lift-any"})
    noop = np.zeros(6, dtype=np.float32)
    for i in range(env.config.max_steps):
        _, reward, terminated, truncated, info = env.step(noop)
        assert not terminated
        assert truncated == (i == env.config.max_steps - 1)
        assert ("success" in info) == truncated
    assert info["success"].dtype == bool and info["success"].shape == (14,)
    assert reward == 0.0  # nothing lifted
    with pytest.raises(RuntimeError, match="reset"):
        env.step(noop)


def test_terminate_ends_episode_with_reward_of_task(env: WorkcellEnv) -> None:
    env.reset(seed=2, options={"grasped": True, "task": "lift-any"})
    for _ in range(2):
        env.step(np.array([0, 0, 1, 0, 1, 0], dtype=np.float32))
    _, reward, terminated, truncated, info = env.step(np.array([0, 0, 0, 0, 1, 1]))
    assert terminated and not truncated
    assert info["success"][0] and reward == 1.0


def test_reset_option_errors(env: WorkcellEnv) -> None:
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"shuffle": True})
    with pytest.raises(ValueError, match="scene must be one of"):
        env.reset(seed=0, options={"scene": "kitchen"})
    with pytest.raises(ValueError, match="lift-any"):
        env.reset(seed=0, options={"task": "lift-pizza"})
    with pytest.raises(ValueError, match="previous episode"):
        WorkcellEnv().reset(seed=0, options={"chain": True})


def test_grasped_start_holds_an_object(env: WorkcellEnv) -> None:
    for seed in range(5):
        env.reset(seed=seed, options={"grasped": True})
        success = dict(zip(env.task_names, env.success_vector(), strict=True))
        assert success["lift-any"]
        facts = env.scene_facts()
        held = int(np.flatnonzero(facts.touch_left & facts.touch_right)[0])
        cat = env.categories[held]
        if cat != scene.DISTRACTOR:
            assert success[f"lift-{cat}"]
        assert sum(success[f"lift-{c}"] for c in OBJECT_CATEGORIES) <= 1


def test_chain_keeps_scene_and_held_object(env: WorkcellEnv) -> None:
    env.reset(seed=5, options={"grasped": True})
    for _ in range(2):
        env.step(np.array([0, 0.5, 0, 0, 1, 0], dtype=np.float32))
    obs, *_ = env.step(np.array([0, 0, 0, 0, 1, 1], dtype=np.float32))
    before = obs["state"].copy()
    cats = env.categories
    obs, _ = env.reset(seed=6, options={"chain": True, "task": "place-any"})
    assert env.categories == cats
    np.testing.assert_allclose(obs["state"], before, atol=1e-6)
    assert obs["gripper_status"][0] == 1.0
    # still holding it after moving in the new episode
    obs, *_ = env.step(np.array([0, 0, 0.5, 0, 1, 0], dtype=np.float32))
    assert env.success_vector()[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_size", 8),
        ("image_size", 2048),
        ("image_size", 64.0),
        ("side_image_size", 0),
        ("n_slots", 4),
        ("render_backend", "vulkan"),
        ("max_translation", -0.1),
    ],
)
def test_config_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        WorkcellConfig(**{field: value})


def test_state_only_never_creates_a_renderer(env: WorkcellEnv) -> None:
    env.reset(seed=0)
    env.step(np.zeros(6, dtype=np.float32))
    assert env._cameras is None


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is None, reason="libOSMesa not installed")
def test_rendering_images() -> None:
    e = WorkcellEnv(WorkcellConfig(image=True, image_size=64, render_backend="osmesa"))
    try:
        obs, _ = e.reset(seed=0)
        img = obs["image"]
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert img.std() > 5.0
        assert e.observation_space.contains(obs)
        side = e.render_side_images()
        assert side.shape == (2, 64, 64, 3) and side.dtype == np.uint8
        assert not np.array_equal(side[0], side[1])
        moved, *_ = e.step(np.array([0, 0, -1, 0, 0, 0], dtype=np.float32))
        assert not np.array_equal(moved["image"], img)  # the gripper moved in the picture
        # any camera at any size, apart from the observations (the videos' larger view)
        big = e.render_camera("shoulder", 128)
        assert big.shape == (128, 128, 3) and np.array_equal(e.render_camera(), moved["image"])
        assert np.array_equal(e.render_camera("side_left", 64), e.render_side_images()[0])
        with pytest.raises(ValueError, match="unknown camera 'top'"):
            e.render_camera("top")
        with pytest.raises(ValueError, match=r"\[16, 1024\], got 8"):
            e.render_camera("shoulder", 8)
    finally:
        e.close()


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is None, reason="libOSMesa not installed")
def test_switching_render_backend_is_refused() -> None:
    from mtopt.envs import rendering

    rendering.ensure_backend("osmesa")
    with pytest.raises(RuntimeError, match="already in use"):
        rendering.ensure_backend("egl")
    with pytest.raises(ValueError, match="render_backend"):
        rendering.resolve_backend("vulkan")


def test_physics_blow_up_ends_the_episode_as_a_failure_of_every_task():
    env = WorkcellEnv()
    env.reset(seed=3, options={"task": "lift-any"})
    env.data.qvel[0] = np.nan  # what MuJoCo meets when a contact solve blows up
    _obs, reward, terminated, truncated, info = env.step(np.zeros(6, dtype=np.float32))
    assert info.get("physics_unstable") is True
    assert truncated and not terminated and reward == 0.0
    assert not info["success"].any() and info["success"].shape == (len(env.task_names),)
    with pytest.raises(ValueError, match="unstable"):
        env.reset(options={"chain": True})
    env.reset(seed=4)  # a fresh scene is fine
    _, _, _, truncated, info = env.step(np.zeros(6, dtype=np.float32))
    assert "physics_unstable" not in info and not truncated
    env.close()


def _aimed_lift(config: WorkcellConfig, task: str, k: int) -> float:
    """Reward of the aimed picker on evaluation attempt ``k`` of ``task``."""
    env, spec = WorkcellEnv(config), WorkcellSpec(config)
    seed = episode_seed(ProtocolConfig().seed, spec.task_set.slot(task), k)
    success = run_task_episode(env, AimedPickPolicy(config), task, seed, spec)
    env.close()
    return float(success)


@pytest.mark.parametrize(("task", "k"), [("lift-carrot", 2), ("lift-sausage", 1)])
def test_a_pinched_round_object_stays_in_the_gripper(task, k):
    # the shipped grasp physics (impratio 5, 3 no-slip iterations) hold the carrot and the
    # sausage while the gripper waits at the top. On MuJoCo 4.0 these attempts failed with
    # MuJoCo's default soft friction (impratio 1, no no-slip pass); on 3.3, the pinned
    # version, soft friction holds them too (session 24, docs/RESULTS.md), so only the shipped
    # settings are checked here
    assert _aimed_lift(WorkcellConfig(), task, k) == 1.0


def test_grasp_physics_settings_are_checked():
    with pytest.raises(ValueError, match="impratio"):
        WorkcellConfig(impratio=0.5)
    with pytest.raises(ValueError, match="noslip_iterations"):
        WorkcellConfig(noslip_iterations=-1)


def test_nearest_object_offset_reads_present_slots_only():
    from mtopt.envs.workcell_config import (
        GRIPPER_DIM,
        OBJECT_DIM,
        OBJECT_FIELDS,
        nearest_object_offset,
        present_object_positions,
        state_layout,
    )

    layout = state_layout(3)
    state = np.zeros(layout["plate_yaw"].stop, np.float32)
    state[:3] = (0.1, -0.2, 0.15)  # the gripper
    for i, (pos, present) in enumerate([((0.3, -0.2, 0.02), 1), ((0.1, -0.18, 0.02), 0)]):
        block = state[GRIPPER_DIM + i * OBJECT_DIM : GRIPPER_DIM + (i + 1) * OBJECT_DIM]
        block[OBJECT_FIELDS["pos"]] = pos
        block[OBJECT_FIELDS["present"]] = present
    np.testing.assert_allclose(present_object_positions(state), [[0.3, -0.2, 0.02]], atol=1e-6)
    # the absent slot is nearer but does not count
    np.testing.assert_allclose(nearest_object_offset(state), [0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        nearest_object_offset(state, np.array([0.3, -0.1])), [0.0, -0.1], atol=1e-6
    )
    empty = np.zeros_like(state)
    assert np.all(np.isinf(nearest_object_offset(empty)))


@pytest.mark.parametrize("kind", ["object far away", "gripper jump"])
def test_a_divergence_without_a_mujoco_warning_also_ends_the_episode(kind):
    env = WorkcellEnv()
    env.reset(seed=3, options={"task": "lift-any"})
    b0, _ = env._body_range
    body = b0 + int(np.flatnonzero(~env._absent)[0])
    if kind == "object far away":  # an ejected object, as the logs held (1e5 m)
        adr = env.model.jnt_qposadr[env.model.body_jntadr[body]]
        env.data.qpos[adr : adr + 3] = [0.0, 2.0, 0.5]
        action = np.zeros(6, dtype=np.float32)
    else:  # the gripper is thrown 0.3 m up within a step that commanded a descent
        env.data.qpos[2] -= 0.3
        action = np.array([0, 0, -1, 0, 0, 0], dtype=np.float32)
    _obs, reward, _terminated, truncated, info = env.step(action)
    assert info.get("physics_unstable") is True and truncated and reward == 0.0
    env.reset(seed=4)
    for _ in range(3):  # ordinary full-speed steps are not flagged
        _, _, _, truncated, info = env.step(np.array([1, 1, -1, 1, 0, 0], dtype=np.float32))
        assert "physics_unstable" not in info and not truncated
    env.close()


def test_a_scene_whose_settle_blows_up_is_resampled(monkeypatch):
    env = WorkcellEnv()
    verdicts = iter([True, True, False])  # the first two settles "threw an object out"
    monkeypatch.setattr(env, "_objects_diverged", lambda: next(verdicts))
    env.reset(seed=5, options={"task": "lift-any"})
    assert env.resampled_scenes == 2
    monkeypatch.setattr(env, "_objects_diverged", lambda: True)
    with pytest.raises(RuntimeError, match="no stable 'random' scene in 20 attempts"):
        env.reset()
    with pytest.raises(ValueError, match="chain=True needs a previous episode"):
        env.reset(options={"chain": True})
    env.close()
