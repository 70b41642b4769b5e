"""Episode log: round trip, atomic shards, corruption handling, tailing, directory errors."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import assert_episodes_equal, make_fake_episode

from mtopt.data import log as log_module
from mtopt.data import shards as shards_module
from mtopt.data.episode import Episode
from mtopt.data.log import (
    EpisodeLogConfig,
    EpisodeLogReader,
    EpisodeLogTailer,
    EpisodeLogWriter,
    SchemaVersionError,
    remove_stale_temp_files,
)
from mtopt.data.shards import METADATA_SCHEMA, ShardName, episodes_to_table, write_shard_atomically


def mixed_episodes(rng: np.random.Generator, n: int, robot_id: int = 0) -> list[Episode]:
    """Episodes with and without images, side images, final images, chaining and extra
    metadata."""
    return [
        make_fake_episode(
            rng,
            robot_id=robot_id,
            image_size=12 if i % 2 else None,
            side_images=i % 3 == 0,
            final_image=i % 3 == 0 and i % 2 == 0,
            chained_from=f"{robot_id:03d}-prev{i}" if i % 4 == 1 else None,
            extra={"scene": "eval", "objects": 9, "light": 0.5} if i % 5 == 0 else None,
        )
        for i in range(n)
    ]


def write(directory: Path, episodes: list[Episode], robot_id: int = 0, shard: int = 3) -> None:
    with EpisodeLogWriter(directory, robot_id, EpisodeLogConfig(shard_episodes=shard)) as w:
        for ep in episodes:
            w.append(ep)


# -- round trip ---------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["zstd", "none", "snappy"])
def test_round_trip_exact(tmp_path: Path, compression: str) -> None:
    episodes = mixed_episodes(np.random.default_rng(0), 8)
    config = EpisodeLogConfig(shard_episodes=3, compression=compression)
    durable: list[str] = []
    with EpisodeLogWriter(tmp_path, 0, config) as writer:
        for ep in episodes:
            durable += writer.append(ep)
        assert durable == [e.episode_id for e in episodes[:6]]
        assert writer.buffered == 2
    reader = EpisodeLogReader(tmp_path)
    assert len(reader.shard_paths()) == 3
    got = list(reader.episodes())
    assert len(got) == len(episodes)
    for want, have in zip(episodes, got, strict=True):
        assert_episodes_equal(want, have)
    assert reader.corrupt_shards == 0


def test_flush_and_close_return_written_ids(tmp_path: Path) -> None:
    episodes = mixed_episodes(np.random.default_rng(1), 3)
    writer = EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(shard_episodes=10))
    assert writer.append(episodes[0]) == []
    assert writer.flush() == [episodes[0].episode_id]
    assert writer.flush() == []
    writer.append(episodes[1])
    writer.append(episodes[2])
    assert writer.close() == [episodes[1].episode_id, episodes[2].episode_id]
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(episodes[0])
    assert len(EpisodeLogReader(tmp_path).shard_paths()) == 2


def test_context_manager_keeps_buffer_on_error(tmp_path: Path) -> None:
    ep = make_fake_episode(np.random.default_rng(2))
    with pytest.raises(KeyError), EpisodeLogWriter(tmp_path, 0) as writer:
        writer.append(ep)
        raise KeyError("robot failed")
    assert [e.episode_id for e in EpisodeLogReader(tmp_path).episodes()] == [ep.episode_id]


def test_load_images_false_skips_images(tmp_path: Path) -> None:
    episodes = mixed_episodes(np.random.default_rng(3), 4)
    write(tmp_path, episodes)
    got = list(EpisodeLogReader(tmp_path).episodes(load_images=False))
    for want, have in zip(episodes, got, strict=True):
        assert "image" not in have.observations and have.final_side_images is None
        assert have.final_image is None
        np.testing.assert_array_equal(want.observations["state"], have.observations["state"])
        np.testing.assert_array_equal(want.actions, have.actions)


def test_metadata_scalar_columns(tmp_path: Path) -> None:
    assert EpisodeLogReader(tmp_path).metadata().schema == METADATA_SCHEMA
    episodes = mixed_episodes(np.random.default_rng(4), 7, robot_id=5)
    write(tmp_path, episodes, robot_id=5)
    table = EpisodeLogReader(tmp_path).metadata()
    assert table.schema.names == METADATA_SCHEMA.names
    rows = table.to_pylist()
    assert [r["episode_id"] for r in rows] == [e.episode_id for e in episodes]
    for row, ep in zip(rows, episodes, strict=True):
        assert row["robot_id"] == 5 and row["task"] == ep.task and row["policy"] == ep.policy
        assert row["num_steps"] == ep.num_steps and row["seed"] == ep.seed
        assert row["epsilon"] == ep.epsilon and row["end_time"] == ep.end_time
        assert row["success"] == ep.success.tolist()
        assert json.loads(row["extra"]) == ep.extra
        assert tuple(row["success_tasks"]) == ep.success_tasks
        assert row["chained_from"] == ep.chained_from


def test_shards_are_plain_parquet(tmp_path: Path) -> None:
    """A generic Parquet reader gets the arrays back from the documented columns."""
    ep = make_fake_episode(np.random.default_rng(5), image_size=6, side_images=True)
    write(tmp_path, [ep])
    (path,) = EpisodeLogReader(tmp_path).shard_paths()
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        == ShardName.parse(path.name).sha256_prefix
    )
    table = pq.read_table(path)
    assert table.schema.metadata[b"mtopt.schema_version"] == b"1"
    row = table.to_pylist()[0]
    state = np.array(row["obs.state"], np.float32).reshape(row["obs.state.shape"])
    np.testing.assert_array_equal(state, ep.observations["state"])
    image = np.frombuffer(row["obs.image"], np.uint8).reshape(row["obs.image.shape"])
    np.testing.assert_array_equal(image, ep.observations["image"])
    actions = np.array(row["actions"], np.float32).reshape(row["actions.shape"])
    np.testing.assert_array_equal(actions, ep.actions)


# -- writer rules -------------------------------------------------------------------------
def test_writer_rejects_wrong_robot_duplicates_and_non_episodes(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    writer = EpisodeLogWriter(tmp_path, 1)
    with pytest.raises(ValueError, match="has robot_id 2, but this writer belongs to robot 1"):
        writer.append(make_fake_episode(rng, robot_id=2))
    ep = make_fake_episode(rng, robot_id=1)
    writer.append(ep)
    with pytest.raises(ValueError, match="already appended"):
        writer.append(ep)
    with pytest.raises(TypeError, match="takes an Episode"):
        writer.append({"episode_id": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="robot_id must be a non-negative integer"):
        EpisodeLogWriter(tmp_path, -1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shard_episodes": 0}, "shard_episodes must be an integer >= 1, got 0"),
        ({"compression": "lzma"}, "compression must be one of zstd, .*got 'lzma'"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpisodeLogConfig(**kwargs)


# -- atomicity and names ------------------------------------------------------------------
def test_temp_files_invisible_while_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    first, second = mixed_episodes(rng, 2)
    write(tmp_path, [first])
    seen: list[tuple[list[str], list[str], int]] = []
    real_fsync = os.fsync

    def spying_fsync(fd: int) -> None:
        # called while the new shard exists only under its temp name
        reader = EpisodeLogReader(tmp_path)
        ids = [e.episode_id for e in reader.episodes()]
        seen.append((sorted(os.listdir(tmp_path)), ids, len(reader.shard_paths())))
        real_fsync(fd)

    monkeypatch.setattr(shards_module.os, "fsync", spying_fsync)
    write(tmp_path, [second])
    listing, ids, n_shards = seen[0]
    assert any(name.startswith(".tmp-") for name in listing)
    assert ids == [first.episode_id] and n_shards == 1
    monkeypatch.undo()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    assert len(list(EpisodeLogReader(tmp_path).episodes())) == 2


def test_failed_write_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = mixed_episodes(np.random.default_rng(8), 2)
    writer = EpisodeLogWriter(tmp_path, 0, EpisodeLogConfig(shard_episodes=5))
    for ep in episodes:
        writer.append(ep)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shards_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        writer.flush()
    assert writer.buffered == 2 and os.listdir(tmp_path) == []
    monkeypatch.undo()
    assert writer.flush() == [e.episode_id for e in episodes]


def test_stale_temp_files_removed_fresh_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".tmp-dead-000001-1.parquet", tmp_path / ".tmp-live-000001-2.parquet"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    write(tmp_path, mixed_episodes(np.random.default_rng(15), 1))
    assert not stale.exists() and fresh.exists()
    assert remove_stale_temp_files(tmp_path, older_than=-1.0) == [fresh]
    assert len(EpisodeLogReader(tmp_path).shard_paths()) == 1


def test_two_writers_same_robot_unique_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    config = EpisodeLogConfig(shard_episodes=1, fsync=False)
    a, b = EpisodeLogWriter(tmp_path, 3, config), EpisodeLogWriter(tmp_path, 3, config)
    episodes = mixed_episodes(rng, 10, robot_id=3)
    for i, ep in enumerate(episodes):
        (a if i % 2 else b).append(ep)
    names = [p.name for p in EpisodeLogReader(tmp_path).shard_paths()]
    assert len(names) == len(set(names)) == 10
    got = sorted(e.episode_id for e in EpisodeLogReader(tmp_path).episodes())
    assert got == sorted(e.episode_id for e in episodes)


def test_existing_shard_never_overwritten(tmp_path: Path) -> None:
    name = ShardName(1, 0, "0123abcd", 0, "0" * 16)
    write_shard_atomically(tmp_path, name, b"first", fsync=False)
    with pytest.raises(FileExistsError, match="already exists"):
        write_shard_atomically(tmp_path, name, b"second", fsync=False)
    assert (tmp_path / name.filename).read_bytes() == b"first"
    assert os.listdir(tmp_path) == [name.filename]


def test_shard_order_is_creation_time_then_robot(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    for robot in (2, 0, 1):
        write(tmp_path, mixed_episodes(rng, 1, robot_id=robot), robot_id=robot)
    (tmp_path / "notes.txt").write_text("not a shard")
    (tmp_path / "other.parquet").write_bytes(b"foreign")
    reader = EpisodeLogReader(tmp_path)
    assert [ShardName.parse(p.name).robot_id for p in reader.shard_paths()] == [2, 0, 1]
    assert reader.metadata()["robot_id"].to_pylist() == [2, 0, 1]
    assert reader.corrupt_shards == 0


# -- corruption ---------------------------------------------------------------------------
def write_raw_shard(directory: Path, table: pa.Table, robot_id: int = 9) -> Path:
    """A shard with a *valid* checksum but arbitrary content."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    name = ShardName(time.time_ns(), robot_id, "feedbeef", 0, hashlib.sha256(data).hexdigest()[:16])
    return write_shard_atomically(directory, name, data, fsync=False)


def test_corrupt_shards_skipped_counted_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(11)
    episodes = mixed_episodes(rng, 12)
    write(tmp_path, episodes, shard=3)
    paths = EpisodeLogReader(tmp_path).shard_paths()
    truncated, flipped = paths[1], paths[2]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[100] ^= 0x01
    flipped.write_bytes(bytes(data))
    table = episodes_to_table(episodes[:1], {}).drop_columns(["task"])
    no_task = write_raw_shard(tmp_path, table)

    reader = EpisodeLogReader(tmp_path)
    with caplog.at_level(logging.ERROR, logger="mtopt.data.log"):
        got = [e.episode_id for e in reader.episodes()]
    expected = [e.episode_id for e in episodes[:3] + episodes[9:]]
    assert got == expected
    assert reader.corrupt_shards == 3
    messages = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    for bad in (truncated, flipped, no_task):
        assert bad.name in messages
    assert "checksum mismatch" in messages and "missing column 'task'" in messages
    # counted and logged once, however often the shards are met again
    caplog.clear()
    assert list(reader.metadata()["episode_id"].to_pylist()) == expected
    assert len(list(reader.episodes(load_images=False))) == 6
    assert reader.corrupt_shards == 3 and not caplog.records


def test_future_schema_version_refused(tmp_path: Path) -> None:
    ep = make_fake_episode(np.random.default_rng(12))
    table = episodes_to_table([ep], {}).replace_schema_metadata({"mtopt.schema_version": "99"})
    write_raw_shard(tmp_path, table)
    with pytest.raises(SchemaVersionError, match=r"schema version 99, .* up to 1; upgrade mtopt"):
        list(EpisodeLogReader(tmp_path).episodes())
    with pytest.raises(SchemaVersionError):
        EpisodeLogTailer(tmp_path).poll()


# -- tailer -------------------------------------------------------------------------------
def test_tailer_reads_each_new_shard_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "log"
    tailer = EpisodeLogTailer(directory, poll_interval=0.01)
    assert tailer.poll() == []  # directory does not exist yet
    rng = np.random.default_rng(13)
    first = mixed_episodes(rng, 4)
    write(directory, first, shard=2)
    assert [e.episode_id for e in tailer.poll()] == [e.episode_id for e in first]
    assert tailer.poll() == []
    second = mixed_episodes(rng, 3)
    write(directory, second, shard=2)
    bad = EpisodeLogReader(directory).shard_paths()[-1]
    bad.write_bytes(bad.read_bytes()[:-10])
    with caplog.at_level(logging.ERROR, logger="mtopt.data.log"):
        got = tailer.poll()
        assert tailer.poll() == [] and tailer.poll() == []
    assert [e.episode_id for e in got] == [e.episode_id for e in second[:2]]
    assert tailer.corrupt_shards == 1
    assert sum(bad.name in r.getMessage() for r in caplog.records) == 1


def test_follow_with_timeout_and_stop(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    before, during, late = mixed_episodes(rng, 2), mixed_episodes(rng, 6), mixed_episodes(rng, 1)
    write(tmp_path, before, shard=2)
    tailer = EpisodeLogTailer(tmp_path, poll_interval=0.02)

    def robot() -> None:
        for i in range(0, len(during), 2):
            time.sleep(0.05)
            write(tmp_path, during[i : i + 2], shard=2)

    # Follow a writer that appends while the tailer runs; stop once everything arrived. The
    # stop condition, not a wall-clock budget, ends the loop, so a loaded machine cannot
    # make the tailer miss shards (the 60 s guard only keeps a broken tailer from hanging).
    thread = threading.Thread(target=robot)
    thread.start()
    got: list[str] = []
    guard = time.monotonic() + 60.0
    want = [e.episode_id for e in before + during]
    stop = lambda: len(got) == len(want) or time.monotonic() > guard  # noqa: E731
    got.extend(e.episode_id for e in tailer.follow(stop=stop))
    thread.join()
    assert got == want
    # A timeout ends the loop after that many seconds, and nothing new means nothing yielded.
    start = time.monotonic()
    assert list(tailer.follow(timeout=0.3)) == []
    assert time.monotonic() - start >= 0.3
    # The timeout's final poll still delivers what landed before it expired.
    write(tmp_path, late, shard=3)
    assert [e.episode_id for e in tailer.follow(timeout=0.0)] == [late[0].episode_id]
    calls = []
    assert list(tailer.follow(stop=lambda: calls.append(1) or len(calls) > 3)) == []
    assert len(calls) == 4
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        EpisodeLogTailer(tmp_path, poll_interval=0)


# -- directory errors ---------------------------------------------------------------------
def test_directory_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "episodes"
    path.write_text("I am a file")
    makers = (
        lambda: EpisodeLogWriter(path, 0),
        lambda: EpisodeLogReader(path),
        lambda: EpisodeLogWriter.check_directory(path),
    )
    for make in makers:
        with pytest.raises(NotADirectoryError, match=f"{path} is an existing file"):
            make()
    with pytest.raises(NotADirectoryError, match="is an existing file"):
        EpisodeLogTailer(path)
    with pytest.raises(NotADirectoryError, match=f"cannot create episode log directory {path}/sub"):
        EpisodeLogWriter(path / "sub", 0)
    assert path.read_text() == "I am a file"


def test_directory_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(log_module.Path, "touch", refuse)
    with pytest.raises(PermissionError, match=f"episode log directory {tmp_path} is not writable"):
        EpisodeLogWriter(tmp_path, 0)


def test_check_directory_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"
    assert EpisodeLogWriter.check_directory(path) == path
    assert path.is_dir() and os.listdir(path) == []


def test_reader_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EpisodeLogReader(tmp_path / "nope")
