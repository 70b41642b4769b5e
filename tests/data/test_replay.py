from types import SimpleNamespace

import numpy as np
import pytest

from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.tasks import default_task_set

TS = default_task_set()


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


def test_transitions_rewards_and_terminal_step():
    r = TaskReplay(ReplayConfig(capacity=100), TS, np.random.default_rng(0))
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


def _replay_with_online(fraction: float, seed: int = 3) -> TaskReplay:
    """lift-any: 30 offline episodes (actions from 0) and 10 online ones (actions from 100)."""
    r = TaskReplay(ReplayConfig(online_fraction=fraction), TS, np.random.default_rng(seed))
    for i in range(40):
        online = i >= 30
        r.add_episode(_episode(4, 100.0 if online else 0.0), [("lift-any", i % 2 == 0)], online)
    return r


def test_online_fraction_draws_that_share_from_the_online_episodes():
    r = _replay_with_online(0.5)
    np.testing.assert_array_equal(r.online_sizes()[TS.slot("lift-any")], [20, 20])
    online = np.concatenate([r.sample(256).action[:, 0] >= 100 for _ in range(40)]).mean()
    # half of the draws come from the online episodes, and the other half from all 40
    # episodes, of which a quarter are online: 0.5 + 0.5 * 0.25 = 0.625
    assert online == pytest.approx(0.625, abs=0.015)
    base = np.concatenate([_replay_with_online(0.0).sample(256).action[:, 0] >= 100])
    assert base.mean() == pytest.approx(0.25, abs=0.06)


def test_online_fraction_without_online_data_consumes_the_same_stream():
    def batches(fraction: float) -> list[np.ndarray]:
        r = TaskReplay(ReplayConfig(online_fraction=fraction), TS, np.random.default_rng(4))
        for i in range(10):
            r.add_episode(_episode(4, i), [("lift-any", i % 2 == 0), ("lift-can", False)])
        return [r.sample(64).action for _ in range(3)]

    for a, b in zip(batches(0.0), batches(0.5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_online_buckets_follow_eviction_and_the_fraction_is_validated():
    r = TaskReplay(ReplayConfig(capacity=8, online_fraction=1.0), TS, np.random.default_rng(0))
    r.add_episode(_episode(4, 100.0), [("lift-any", True)], online=True)
    r.add_episode(_episode(4), [("lift-any", True)])
    assert (r.sample(32).action[:, 0] >= 100).all()  # fraction 1: only the online episode
    r.add_episode(_episode(4), [("lift-any", True)])  # overwrites the online episode
    np.testing.assert_array_equal(r.online_sizes()[TS.slot("lift-any")], [0, 0])
    assert (r.sample(32).action[:, 0] < 100).all()  # no online data left: all of the bucket
    with pytest.raises(ValueError, match=r"online_fraction must be in \[0, 1\], got 1.5"):
        ReplayConfig(online_fraction=1.5)
