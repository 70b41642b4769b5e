"""Fault injection: damaged shards, damaged checkpoints and bad input meet a clear error or are
skipped and counted, never a traceback or a silent miscount (docs/reliability.md)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from fakes import make_fake_episode

from mtopt.cli import main
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.data.shards import ShardName
from mtopt.data.stats import dataset_stats


def _log(path, n=12, shard_episodes=4):
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(
        path, 0, EpisodeLogConfig(shard_episodes=shard_episodes, fsync=False)
    ) as w:
        for _ in range(n):
            w.append(make_fake_episode(rng, num_steps=6, image_size=16))
    return path


def _rehashed_flip(path):
    """Flip bytes in the middle of a shard (its image column) and rename it so that the
    checksum in its name matches again: only decoding the damaged column can tell."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    name = ShardName.parse(path.name)
    fresh = dataclasses.replace(name, sha256_prefix=hashlib.sha256(data).hexdigest()[:16])
    path.unlink()
    (path.parent / fresh.filename).write_bytes(bytes(data))


def test_a_directory_named_like_a_shard_is_skipped_and_counted(tmp_path, capsys):
    log = _log(tmp_path / "log")
    first = ShardName.parse(sorted(log.iterdir())[0].name)
    (log / dataclasses.replace(first, robot_id=9).filename).mkdir()  # named like a shard
    stats = dataset_stats(log)
    assert stats["episodes"] == 12 and stats["corrupt_shards"] == 1
    assert main(["data", "stats", str(log)]) == 0
    assert "1 corrupt shard(s) skipped" in capsys.readouterr().out
    assert len(list(EpisodeLogReader(log).episodes())) == 12


def test_stats_verify_finds_damage_only_decoding_shows(tmp_path):
    log = _log(tmp_path / "log")
    _rehashed_flip(sorted(log.iterdir())[1])
    quick = dataset_stats(log)
    assert quick["verified"] is False and quick["episodes"] == 12  # the damage is not read
    full = dataset_stats(log, verify=True)
    assert full["verified"] is True
    assert full["corrupt_shards"] == 1 and full["episodes"] == 8  # what training would read


def test_a_full_disk_during_collection_is_one_line_and_keeps_what_was_committed(
    tmp_path, monkeypatch
):
    """A robot whose writer meets ENOSPC reports it in one line naming the log and the
    committed episodes; the shards written before stay in the log."""
    import errno
    import os
    import queue

    import pytest

    from mtopt.envs import make_spec
    from mtopt.system import fleet

    real_append, calls = EpisodeLogWriter.append, {"n": 0}

    def append(self, episode):
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, episode)

    monkeypatch.setattr(EpisodeLogWriter, "append", append)
    config = fleet.FleetConfig(
        out=str(tmp_path / "log"),
        robots=1,
        episodes=8,
        progress=False,
        log=EpisodeLogConfig(shard_episodes=2, fsync=False),
    )
    q: queue.Queue = queue.Queue()
    with pytest.raises(OSError):
        fleet._process_main([0], [8], config, make_spec("pointmass"), "t", q, os.getppid())
    messages = [q.get_nowait() for _ in range(q.qsize())]
    (error,) = [m for m in messages if m[0] == "error"]
    assert error[3] == (
        f"disk full while writing a shard to {config.out}; this robot's 4 committed "
        "episode(s) stay in the log"
    )
    assert len(list(EpisodeLogReader(config.out).episodes())) == 4


def test_data_plot_verify_finds_damage_only_decoding_shows(tmp_path, capsys):
    """``data plot`` reads the scalar columns and says so; ``--verify`` decodes every column,
    skips and counts the damaged shard and leaves its episodes out."""
    from fakes import TASK_SET

    from mtopt.data.composition import dataset_composition

    log = _log(tmp_path / "log")
    _rehashed_flip(sorted(log.iterdir())[1])
    quick = dataset_composition(log, TASK_SET)
    assert quick["verified"] is False and quick["episodes"] == 12
    full = dataset_composition(log, TASK_SET, verify=True)
    assert full["verified"] is True and full["corrupt_shards"] == 1 and full["episodes"] == 8
    png = str(tmp_path / "c.png")
    assert main(["data", "plot", str(log), "--out", png]) == 0
    assert "12 episodes; 0 corrupt shard(s) skipped; scalar columns read" in capsys.readouterr().out
    assert main(["data", "plot", str(log), "--out", png, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "8 episodes; 1 corrupt shard(s) skipped; every column verified" in out
