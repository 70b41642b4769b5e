import numpy as np
from fakes import make_fake_episode

from mtopt.data.impersonation import Impersonation, ImpersonationConfig, OracleLabeller
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.log_replay import LogReplay
from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.envs.workcell_tasks import workcell_task_set

TS = workcell_task_set()


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


def test_the_replay_does_not_depend_on_how_robots_interleaved_their_writes(tmp_path):
    rng = np.random.default_rng(3)
    eps = {r: [make_fake_episode(rng, robot_id=r, num_steps=3) for _ in range(4)] for r in (0, 1)}
    cfg = EpisodeLogConfig(shard_episodes=1, fsync=False)
    for name, order in (("a", [0, 1, 0, 1, 0, 1, 0, 1]), ("b", [1, 1, 1, 1, 0, 0, 0, 0])):
        writers = {r: EpisodeLogWriter(tmp_path / name, r, cfg) for r in (0, 1)}
        count = {0: 0, 1: 0}
        for r in order:  # the same episodes, the robots' shards created in another order
            writers[r].append(eps[r][count[r]])
            count[r] += 1
        for w in writers.values():
            w.close()
    replays = [_log_replay(tmp_path / name) for name in ("a", "b")]
    for lr in replays:
        assert lr.poll() == 8
    a, b = (lr.replay._arrays for lr in replays)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_several_directories_are_read_in_order_each_in_robot_order(tmp_path):
    rng = np.random.default_rng(4)
    cfg = EpisodeLogConfig(shard_episodes=1, fsync=False)
    written = {}
    for name, robots in (("offline", (1, 0)), ("round", (1, 0))):
        written[name] = {}
        for r in robots:  # robot 1 writes first: the poll must still put robot 0 first
            with EpisodeLogWriter(tmp_path / name, r, cfg) as w:
                eps = [make_fake_episode(rng, robot_id=r, num_steps=3) for _ in range(2)]
                for ep in eps:
                    w.append(ep)
            written[name][r] = [ep.episode_id for ep in eps]
    rng = np.random.default_rng(0)
    imp = Impersonation(ImpersonationConfig(), TS, OracleLabeller(), rng)
    lr = LogReplay(
        tmp_path / "offline", imp, TaskReplay(ReplayConfig(), TS, rng), [tmp_path / "round"]
    )
    seen = []
    add = lr.add
    lr.add = lambda ep: (seen.append(ep.episode_id), add(ep))[1]  # type: ignore[method-assign]
    assert lr.poll() == 8
    want = [i for name in ("offline", "round") for r in (0, 1) for i in written[name][r]]
    assert seen == want
    assert lr.episodes == 8 and lr.replay.episodes == 8
    assert lr.poll() == 0  # each shard once, in every directory
    (tmp_path / "round" / "ckpt-like-junk").write_text("x")  # foreign files are ignored
    assert lr.poll() == 0 and lr.corrupt_shards == 0
