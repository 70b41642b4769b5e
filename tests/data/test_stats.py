import json

import numpy as np
from fakes import TASK_SET, make_fake_episode

from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.stats import dataset_stats, format_stats_table, write_stats_json


def test_stats_count_by_collected_task_and_policy(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        make_fake_episode(rng, task=t, policy=p, epsilon=e)
        for t, p, e in [
            ("lift-any", "scripted-pick", 0.0),
            ("lift-any", "scripted-pick", 0.0),
            ("lift-any", "checkpoint:abc", 0.2),
            ("place-any", "scripted-place", 0.0),
        ]
    ]
    with EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(shard_episodes=3, fsync=False)) as w:
        for e in episodes:
            w.append(e)
    stats = dataset_stats(tmp_path, TASK_SET.names)
    assert stats["episodes"] == 4 and stats["corrupt_shards"] == 0 and stats["shards"] == 2
    lift = stats["tasks"]["lift-any"]
    expected = sum(e.success_for("lift-any") for e in episodes[:3])
    assert lift["episodes"] == 3 and lift["successes"] == expected
    assert lift["by_policy"]["scripted-pick"]["episodes"] == 2
    assert lift["by_policy"]["checkpoint:abc (eps=0.2)"]["episodes"] == 1
    assert stats["tasks"]["lift-can"]["episodes"] == 0  # tasks without data are listed
    table = format_stats_table(stats)
    assert "lift-any" in table and "4 episodes in 2 shards" in table
    write_stats_json(stats, tmp_path / "s.json")
    loaded = json.loads((tmp_path / "s.json").read_text())
    assert loaded["tasks"]["lift-can"]["success_rate"] is None
    assert set(loaded) >= {"episodes", "corrupt_shards", "tasks"}
    assert set(loaded["tasks"]["lift-any"]) >= {"episodes", "successes", "by_policy"}


def test_corrupt_shard_is_counted(tmp_path):
    rng = np.random.default_rng(1)
    with EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(shard_episodes=2, fsync=False)) as w:
        for _ in range(4):
            w.append(make_fake_episode(rng))
    shard = sorted(tmp_path.glob("[0-9]*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    stats = dataset_stats(tmp_path)
    assert stats["corrupt_shards"] == 1 and stats["episodes"] == 2


def test_discarded_episodes_are_counted_from_the_shard_metadata(tmp_path):
    """Episodes discarded for unstable physics are not in the log; the writer records their
    count in the next shard's metadata and the statistics report it."""
    rng = np.random.default_rng(1)
    with EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(shard_episodes=2, fsync=False)) as w:
        w.note_discarded(2)
        w.append(make_fake_episode(rng, robot_id=0))
        w.note_discarded()
        w.append(make_fake_episode(rng, robot_id=0))  # shard 1: 3 discarded
        w.append(make_fake_episode(rng, robot_id=0))  # shard 2 (on close): 0 discarded
    with EpisodeLogWriter(tmp_path, 1, EpisodeLogConfig(shard_episodes=2, fsync=False)) as w:
        w.note_discarded(4)
        w.append(make_fake_episode(rng, robot_id=1))
    stats = dataset_stats(tmp_path)
    assert stats["episodes"] == 4 and stats["discarded_episodes"] == 7
    assert "7 episode(s) discarded for unstable physics" in format_stats_table(stats)


def test_env_steps_count_an_episodes_recorded_simulator_steps(tmp_path):
    rng = np.random.default_rng(1)
    repeated = make_fake_episode(rng, task="lift-any")
    repeated.extra = {"env_steps": 10 * repeated.num_steps - 3}  # action repeat 10, cut short
    plain = make_fake_episode(rng, task="lift-any")  # one simulator step per policy step
    with EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(fsync=False)) as w:
        w.append(repeated)
        w.append(plain)
    stats = dataset_stats(tmp_path, TASK_SET.names)
    policy_steps = repeated.num_steps + plain.num_steps
    env_steps = 10 * repeated.num_steps - 3 + plain.num_steps
    assert stats["tasks"]["lift-any"]["env_steps"] == stats["env_steps"] == env_steps
    assert stats["policy_steps"] == policy_steps
    assert f"{env_steps} environment steps in {policy_steps} policy steps" in format_stats_table(
        stats
    )
