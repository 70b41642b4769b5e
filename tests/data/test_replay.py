from types import SimpleNamespace

import numpy as np
import pytest

from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.envs.workcell_tasks import workcell_task_set

TS = workcell_task_set()


def _episode(steps: int, start: float = 0.0):
    t = np.arange(steps + 1, dtype=np.float32) + start
    return SimpleNamespace(
        observations={
            "state": np.stack([t, -t], axis=1),
            "gripper_status": t[:, None] * 0,
            "gripper_height": t[:, None],
        },
        actions=np.tile(np.arange(6, dtype=np.float32), (steps, 1)) + start,
    )


def test_one_step_transitions_rewards_and_terminal_step():
    r = TaskReplay(ReplayConfig(capacity=100, n_step=1), TS, np.random.default_rng(0))
    r.add_episode(_episode(3), [("lift-any", True), ("lift-can", False)])
    np.testing.assert_array_equal(r.sizes()[TS.slot("lift-any")], [3, 0])
    np.testing.assert_array_equal(r.sizes()[TS.slot("lift-can")], [0, 3])
    b = r.sample(400)
    assert len(b) == 400
    # next_obs is obs shifted by one step; only the last step is terminal and rewarded
    np.testing.assert_array_equal(b.next_obs["state"][:, 0], b.obs["state"][:, 0] + 1)
    last = b.obs["state"][:, 0] == 2
    np.testing.assert_array_equal(b.done, last.astype(np.float32))
    lift_any = b.task == TS.slot("lift-any")
    np.testing.assert_array_equal(b.reward, (last & lift_any).astype(np.float32))
    assert set(b.task.tolist()) == {TS.slot("lift-any"), TS.slot("lift-can")}
    # the Monte-Carlo return's ingredients: the task label and the steps to the last step
    np.testing.assert_array_equal(b.label, lift_any.astype(np.float32))
    np.testing.assert_array_equal(b.steps_to_go, 2 - b.obs["state"][:, 0])


def test_n_step_sampling_looks_ahead_within_the_episode():
    r = TaskReplay(ReplayConfig(capacity=100, n_step=3), TS, np.random.default_rng(0))
    r.add_episode(_episode(5, start=100.0), [("lift-any", False)])  # a neighbour in the ring
    r.add_episode(_episode(5), [("lift-any", True)])
    b = r.sample(500)
    t = b.obs["state"][:, 0] % 100  # the step index within its episode
    to_go = 4 - t
    np.testing.assert_array_equal(b.steps_to_go, to_go)
    # k = min(3, to_go + 1) steps ahead, never past the episode's final state
    k = np.minimum(3, to_go + 1)
    np.testing.assert_array_equal(b.steps, k)
    np.testing.assert_array_equal(b.next_obs["state"][:, 0], b.obs["state"][:, 0] + k)
    assert b.next_obs["state"][:, 0].max() <= 105
    # the episode ends within 3 steps from steps 2, 3 and 4; only the success is rewarded
    np.testing.assert_array_equal(b.done, (to_go < 3).astype(np.float32))
    np.testing.assert_array_equal(b.reward, ((to_go < 3) & (b.label == 1)).astype(np.float32))
    assert set(k.tolist()) == {1, 2, 3}
    assert ReplayConfig().n_step == 5  # the default learner's look-ahead
    with pytest.raises(ValueError, match="n_step must be an integer >= 1, got 0"):
        ReplayConfig(n_step=0)


def test_rebalanced_sampling_task_and_success_proportions():
    r = TaskReplay(
        ReplayConfig(capacity=10_000, success_fraction=0.25), TS, np.random.default_rng(1)
    )
    for i in range(200):  # lift-any: 200 episodes, 10 % successes
        r.add_episode(_episode(5, i), [("lift-any", i % 10 == 0)])
    for i in range(10):  # lift-box: 10 episodes, half successes
        r.add_episode(_episode(5, i), [("lift-box", i % 2 == 0)])
    counts = sum(r.sample(512).bucket_counts for _ in range(100))
    frac = counts / counts.sum()
    a, b = TS.slot("lift-any"), TS.slot("lift-box")
    assert frac[a].sum() == pytest.approx(0.5, abs=0.01)
    assert frac[a, 0] / frac[a].sum() == pytest.approx(0.25, abs=0.02)
    assert frac[b, 0] / frac[b].sum() == pytest.approx(0.25, abs=0.02)


def test_uniform_sampling_follows_data():
    r = TaskReplay(ReplayConfig(sampler="uniform"), TS, np.random.default_rng(2))
    for i in range(30):
        r.add_episode(_episode(4, i), [("lift-any", False)])
    r.add_episode(_episode(4), [("lift-box", True)])
    counts = sum(r.sample(256).bucket_counts for _ in range(100))
    assert counts[TS.slot("lift-box"), 0] / counts.sum() == pytest.approx(1 / 31, abs=0.005)


def test_fifo_eviction_drops_oldest_from_buckets():
    r = TaskReplay(ReplayConfig(capacity=8), TS, np.random.default_rng(0))
    r.add_episode(_episode(4, 0), [("lift-box", True)])
    r.add_episode(_episode(4, 100), [("lift-any", False)])
    r.add_episode(_episode(4, 200), [("lift-any", False)])  # overwrites the lift-box episode
    assert r.sizes()[TS.slot("lift-box")].sum() == 0
    assert len(r) == 8
    b = r.sample(100)
    assert set(b.task.tolist()) == {TS.slot("lift-any")}
    assert b.obs["state"][:, 0].min() >= 100


def test_missing_observation_and_empty():
    r = TaskReplay(ReplayConfig(obs_keys=("image",)), TS, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no observation 'image'"):
        r.add_episode(_episode(2), [("lift-any", True)])
    with pytest.raises(ValueError, match="empty"):
        r.sample(4)
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        ReplayConfig(capacity=0)


def test_rows_impersonated_from_another_tasks_episode_are_marked_shared():
    r = TaskReplay(ReplayConfig(capacity=100, n_step=1), TS, np.random.default_rng(0))
    own = _episode(3)
    own.task = "lift-can"
    r.add_episode(own, [("lift-can", True), ("lift-any", True)])
    other = _episode(2, start=10.0)
    other.task = "place-any"
    r.add_episode(other, [("place-any", False), ("lift-can", False)])
    b = r.sample(300)
    from_other = b.obs["state"][:, 0] >= 10
    want = (b.task == TS.slot("lift-any")) | (from_other & (b.task == TS.slot("lift-can")))
    np.testing.assert_array_equal(b.shared, want)
    assert want.any() and (~want).any()
