"""The mirror augmentation: hand-checked reflections, the replay's use of them, and the
workcell's own symmetry (the reflection of a rollout is a rollout with the same outcome)."""

from types import SimpleNamespace

import mujoco
import numpy as np
import pytest

from mtopt.data.mirror import (
    MirrorConfig,
    mirror_transitions,
    state_sign,
    task_slot_permutation,
)
from mtopt.data.replay import ReplayConfig, TaskReplay, TransitionBatch
from mtopt.envs.workcell_config import GRIPPER_DIM, OBJECT_DIM, PLATE_DIM
from mtopt.tasks import default_task_set

TS = default_task_set()
ONE_SLOT = GRIPPER_DIM + OBJECT_DIM + PLATE_DIM  # 24
FULL = GRIPPER_DIM + 10 * OBJECT_DIM + PLATE_DIM  # the workcell's 150
MOTION_KEYS = ("state", "gripper_status", "gripper_height", "gripper_motion", "gripper_command")


def test_state_sign_by_hand_for_one_object_slot():
    # gripper x y z sin cos open | object x y z sin cos cat*8 present | plate x y sin cos
    expected = np.ones(ONE_SLOT, dtype=np.float32)
    expected[[0, 3, 6, 9, 20, 22]] = -1.0
    np.testing.assert_array_equal(state_sign(ONE_SLOT), expected)
    assert (state_sign(FULL) == -1).sum() == 2 + 2 * 10 + 2


@pytest.mark.parametrize("dim", [16, ONE_SLOT + 1, 5])
def test_state_sign_rejects_non_workcell_states(dim):
    with pytest.raises(ValueError, match=f"state of size {dim} is not a workcell state"):
        state_sign(dim)


def test_task_permutation_swaps_the_top_sections_only():
    perm = task_slot_permutation(TS, MirrorConfig().task_pairs)
    left, right = TS.slot("place-top-left"), TS.slot("place-top-right")
    assert perm[left] == right and perm[right] == left
    others = [s for s in range(TS.capacity) if s not in (left, right)]
    np.testing.assert_array_equal(perm[others], others)
    with pytest.raises(ValueError, match="lift-left"):
        task_slot_permutation(TS, (("lift-left", "lift-any"),))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probability": 1.5}, "mirror probability must be a number in \\[0, 1\\], got 1.5"),
        ({"probability": True}, "got True"),
        ({"task_pairs": (("lift-any", "lift-any"),)}, "two different task names"),
        (
            {"task_pairs": (("a", "b"), ("b", "c"))},
            "task 'b' appears in more than one mirror task pair",
        ),
    ],
)
def test_mirror_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MirrorConfig(**kwargs)


def _batch(n=3, seed=0):
    rng = np.random.default_rng(seed)

    def obs():
        return {
            "state": rng.normal(size=(n, ONE_SLOT)).astype(np.float32),
            "gripper_status": rng.random((n, 1)).astype(np.float32),
            "gripper_height": rng.random((n, 1)).astype(np.float32),
            "gripper_motion": rng.normal(size=(n, 3)).astype(np.float32),
            "gripper_command": rng.normal(size=(n, 3)).astype(np.float32),
        }

    return TransitionBatch(
        obs=obs(),
        action=rng.uniform(-1, 1, (n, 6)).astype(np.float32),
        next_obs=obs(),
        reward=np.array([0, 1, 0], np.float32)[:n],
        done=np.array([0, 1, 1], np.float32)[:n],
        task=np.array([TS.slot("place-top-left"), TS.slot("lift-any"), 11])[:n],
        label=np.array([1, 1, 0], np.float32)[:n],
        steps_to_go=np.array([2, 0, 0], np.float32)[:n],
    )


def test_mirror_transitions_by_hand():
    b = _batch()
    before = {k: v.copy() for k, v in b.obs.items()}
    rows = np.array([True, False, True])
    m = mirror_transitions(b, rows, task_slot_permutation(TS, MirrorConfig().task_pairs))
    for k in before:  # the input is not modified
        np.testing.assert_array_equal(b.obs[k], before[k])
    s, ms = b.obs["state"][0], m.obs["state"][0]
    assert ms[0] == -s[0] and ms[1] == s[1] and ms[2] == s[2]  # gripper x, y, z
    assert ms[3] == -s[3] and ms[4] == s[4] and ms[5] == s[5]  # sin yaw, cos yaw, opening
    assert ms[6] == -s[6] and ms[9] == -s[9] and ms[10] == s[10]  # object x, sin yaw, cos
    np.testing.assert_array_equal(ms[11:20], s[11:20])  # category, present
    np.testing.assert_array_equal(ms[20:], [-s[20], s[21], -s[22], s[23]])  # plate
    np.testing.assert_array_equal(m.obs["state"][1], b.obs["state"][1])  # row 1 untouched
    np.testing.assert_array_equal(
        m.next_obs["gripper_command"][2], b.next_obs["gripper_command"][2] * [-1, 1, 1]
    )
    np.testing.assert_array_equal(
        m.obs["gripper_motion"][0], b.obs["gripper_motion"][0] * [-1, 1, 1]
    )
    np.testing.assert_array_equal(m.obs["gripper_height"], b.obs["gripper_height"])
    np.testing.assert_array_equal(m.action[0], b.action[0] * [-1, 1, 1, -1, 1, 1])
    np.testing.assert_array_equal(m.action[1], b.action[1])
    # task 0 (top-left) -> top-right; row 1 not reflected; row 2 (top-right, slot 11) -> 10
    np.testing.assert_array_equal(m.task, [TS.slot("place-top-right"), TS.slot("lift-any"), 10])
    for k in ("reward", "done", "label", "steps_to_go"):
        np.testing.assert_array_equal(getattr(m, k), getattr(b, k))


def test_mirroring_twice_is_the_identity():
    b = _batch()
    perm = task_slot_permutation(TS, MirrorConfig().task_pairs)
    rows = np.ones(3, dtype=bool)
    twice = mirror_transitions(mirror_transitions(b, rows, perm), rows, perm)
    for k in b.obs:
        np.testing.assert_array_equal(twice.obs[k], b.obs[k])
    np.testing.assert_array_equal(twice.action, b.action)
    np.testing.assert_array_equal(twice.task, b.task)


def test_mirror_refuses_images_and_bad_masks():
    b = _batch()
    perm = np.arange(TS.capacity)
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        mirror_transitions(b, np.ones(2, dtype=bool), perm)
    b.obs["image"] = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="cannot reflect observation 'image'"):
        mirror_transitions(b, np.ones(3, dtype=bool), perm)
    with pytest.raises(ValueError, match="cannot reflect observation\\(s\\) \\['image'\\]"):
        ReplayConfig(obs_keys=("image", "state"), mirror=MirrorConfig(probability=0.5))


def _replay(probability, seed=3):
    rng = np.random.default_rng(0)
    cfg = ReplayConfig(capacity=200, obs_keys=MOTION_KEYS, mirror=MirrorConfig(probability))
    r = TaskReplay(cfg, TS, np.random.default_rng(seed))
    for i in range(4):
        ep = SimpleNamespace(
            observations={
                "state": rng.normal(size=(6, FULL)).astype(np.float32),
                "gripper_status": np.zeros((6, 1), np.float32),
                "gripper_height": np.ones((6, 1), np.float32),
                "gripper_motion": rng.normal(size=(6, 3)).astype(np.float32),
                "gripper_command": rng.normal(size=(6, 3)).astype(np.float32),
            },
            actions=rng.uniform(-1, 1, (5, 6)).astype(np.float32),
        )
        r.add_episode(ep, [("place-top-left", i % 2 == 0), ("lift-any", i < 2)])
    return r


def test_replay_mirrors_sampled_rows_from_its_own_stream():
    off, on = _replay(0.0).sample(64), _replay(1.0).sample(64)
    # the same rows are drawn (the mask is drawn after them), and every one is reflected
    perm = task_slot_permutation(TS, MirrorConfig().task_pairs)
    expected = mirror_transitions(off, np.ones(64, dtype=bool), perm)
    for k in MOTION_KEYS:
        np.testing.assert_array_equal(on.obs[k], expected.obs[k])
        np.testing.assert_array_equal(on.next_obs[k], expected.next_obs[k])
    np.testing.assert_array_equal(on.action, expected.action)
    np.testing.assert_array_equal(on.task, expected.task)
    # probability 0 draws nothing: the stream matches a replay built without the option
    plain = TaskReplay(
        ReplayConfig(capacity=200, obs_keys=MOTION_KEYS), TS, np.random.default_rng(3)
    )
    plain._arrays, plain._buckets = _replay(0.0)._arrays, _replay(0.0)._buckets
    np.testing.assert_array_equal(plain.sample(64).action, off.action)
    # about half the rows of a 0.5 replay are reflected; top-left rows move to top-right
    half = _replay(0.5).sample(2000)
    moved = np.mean(half.task == TS.slot("place-top-right"))
    assert 0.2 < moved < 0.3  # half of the place rows (half the batch) flip sections


def _reflect_scene(env) -> None:
    """Reflect the workcell's current physical scene across x = 0, in place."""
    d = env.data
    d.qpos[[0, 3]] *= -1.0  # gripper x, yaw
    d.qvel[[0, 3]] *= -1.0
    d.ctrl[[0, 3]] *= -1.0
    for a, v in zip(env._qadr, env._vadr, strict=True):
        d.qpos[a] *= -1.0
        d.qpos[a + 5 : a + 7] *= -1.0  # quaternion (w, x, y, z) -> (w, x, -y, -z)
        d.qvel[v] *= -1.0
        d.qvel[v + 4 : v + 6] *= -1.0  # angular velocity, a pseudovector
    d.mocap_pos[0, 0] *= -1.0
    d.mocap_quat[0, 2:] *= -1.0
    env._plate[[0, 2]] *= -1.0
    env._update_template()
    mujoco.mj_forward(env.model, d)


@pytest.mark.parametrize(
    ("seed", "place", "succeeded"),
    [(107, True, "place-top-left"), (110, True, "place-top-right"), (124, False, "lift-any")],
)
def test_the_reflection_of_a_rollout_is_a_rollout_with_the_same_outcome(seed, place, succeeded):
    """Scripted episodes (seeds chosen to succeed) replayed with reflected actions on the
    reflected scene end with the reflected success vector: a top-left place becomes a
    top-right one."""
    from mtopt.envs.workcell import WorkcellEnv
    from mtopt.envs.scripted import ScriptedPickPolicy, ScriptedPlacePolicy

    task = "place-any" if place else "lift-any"
    a, b = WorkcellEnv(), WorkcellEnv()
    opts = {"grasped": place, "task": task}
    obs_a, _ = a.reset(seed=seed, options=opts)
    b.reset(seed=seed, options=opts)
    _reflect_scene(b)
    policy = ScriptedPlacePolicy() if place else ScriptedPickPolicy()
    policy.reset(np.random.default_rng(seed), task)
    sign = state_sign(a.state_dim)
    gap = []
    for _ in range(20):
        action = policy.act(obs_a)
        obs_a, _, end_a, trunc_a, info_a = a.step(action)
        obs_b, _, end_b, trunc_b, info_b = b.step(action * [-1, 1, 1, -1, 1, 1])
        gap.append(np.abs(obs_a["state"] * sign - obs_b["state"]).max())
        np.testing.assert_allclose(
            obs_b["gripper_command"], obs_a["gripper_command"] * [-1, 1, 1], atol=1e-5
        )
        assert (end_a, trunc_a) == (end_b, trunc_b)
        if end_a or trunc_a:
            break
    assert gap[0] < 1e-4  # contacts can amplify float noise later; the first step is exact
    perm = task_slot_permutation(a.task_set, MirrorConfig().task_pairs)
    names = a.task_names
    mirrored_success = {
        names[perm[a.task_set.slot(n)]]: s for n, s in zip(names, info_a["success"], strict=True)
    }
    assert [mirrored_success[n] for n in names] == list(info_b["success"])
    assert info_a["success"][a.task_set.slot(succeeded)]
