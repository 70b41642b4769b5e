import numpy as np
from fakes import make_fake_episode

from mtopt.data.impersonation import Impersonation, ImpersonationConfig, OracleLabeller
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.log_replay import LogReplay
from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.tasks import default_task_set

TS = default_task_set()


def _log_replay(path, kind="skill"):
    rng = np.random.default_rng(0)
    imp = Impersonation(ImpersonationConfig(kind=kind), TS, OracleLabeller(), rng)
    return LogReplay(path, imp, TaskReplay(ReplayConfig(), TS, rng))


def test_log_replay_picks_up_shards_written_after_it_started(tmp_path):
    lr = _log_replay(tmp_path / "log")  # the log does not exist yet
    assert lr.poll() == 0
    rng = np.random.default_rng(5)
    cfg = EpisodeLogConfig(shard_episodes=2, fsync=False)
    with EpisodeLogWriter(tmp_path / "log", 0, cfg) as w:
        for _ in range(4):
            w.append(make_fake_episode(rng, task="lift-any", num_steps=4))
    assert lr.poll() == 4
    assert lr.poll() == 0  # each shard once
    with EpisodeLogWriter(tmp_path / "log", 1, cfg) as w:
        for _ in range(2):
            w.append(make_fake_episode(rng, robot_id=1, task="place-bottom", num_steps=4))
    assert lr.poll() == 2
    assert lr.episodes == 6 and lr.collected_for["lift-any"] == 4
    # f_skill routes lift episodes to all 8 lift tasks, place episodes to the 4 place tasks
    assert lr.routed["lift-carrot"] == 4 and lr.routed["place-any"] == 2
    assert lr.routed["place-any"] + lr.routed["lift-any"] == 6
    sizes = lr.replay.sizes()
    assert sizes[TS.slot("lift-any")].sum() == 16  # 4 episodes x 4 transitions


def test_log_replay_follows_a_writer_that_is_still_open(tmp_path):
    """Shards flushed while a robot keeps writing are ingested between trainer steps."""
    lr = _log_replay(tmp_path / "log", kind="orig")
    rng = np.random.default_rng(9)
    cfg = EpisodeLogConfig(shard_episodes=3, fsync=False)
    seen = []
    with EpisodeLogWriter(tmp_path / "log", 0, cfg) as w:
        for i in range(9):
            w.append(make_fake_episode(rng, task="lift-box", num_steps=2))
            seen.append(lr.poll())
            if i % 3 == 2:  # a shard was just completed
                assert lr.episodes == i + 1
        w.append(make_fake_episode(rng, task="lift-box", num_steps=2))
        assert lr.poll() == 0  # buffered, not yet a shard
    assert lr.poll() == 1  # closing flushed the last partial shard
    assert seen == [0, 0, 3] * 3
    assert lr.routed["lift-box"] == 10 and lr.routed["lift-any"] == 0
    assert lr.replay.sizes()[TS.slot("lift-box")].sum() == 20
