"""The episode log: crash-safe, append-only storage of episodes on disk.

Each robot process owns one :class:`EpisodeLogWriter`; it buffers episodes and writes them in
immutable Parquet *shards* (see :mod:`mtopt.data.shards` and ``docs/episode-format.md``). A
shard becomes visible only once it is complete and fsync'd, so a robot killed at any moment
loses at most its buffered episodes and never leaves a partial shard behind.

:class:`EpisodeLogReader` reads the whole log (or only its scalar metadata, fast);
:class:`EpisodeLogTailer` is used by log replay to pick up shards as they appear. Both verify
every shard's checksum and skip (and count, and log) damaged shards instead of failing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from mtopt.data.episode import Episode
from mtopt.data.shards import (
    IMAGE_ARRAYS,
    METADATA_SCHEMA,
    SCHEMA_VERSION,
    TEMP_PREFIX,
    CorruptShardError,
    SchemaVersionError,
    ShardName,
    encode_shard,
    read_shard_table,
    table_to_episodes,
    write_shard_atomically,
)

__all__ = [
    "CorruptShardError",
    "EpisodeLogConfig",
    "EpisodeLogReader",
    "EpisodeLogTailer",
    "EpisodeLogWriter",
    "SchemaVersionError",
    "in_robot_order",
    "remove_stale_temp_files",
]

logger = logging.getLogger(__name__)

COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "brotli", "none")
"""Parquet compression codecs accepted by :class:`EpisodeLogConfig`."""
DISCARDED_KEY = "mtopt.discarded_episodes"
"""Shard metadata key: episodes the writer's robot discarded since its previous shard."""
IMAGE_COLUMNS = tuple(c for name in IMAGE_ARRAYS for c in (name, f"{name}.shape"))
"""Columns skipped when episodes are read with ``load_images=False``."""


@dataclass(frozen=True)
class EpisodeLogConfig:
    """How a robot's :class:`EpisodeLogWriter` writes shards."""

    shard_episodes: int = 16
    """Episodes buffered per shard; a crash loses at most this many minus one."""
    compression: str = "zstd"
    """Parquet compression codec: one of zstd, snappy, lz4, gzip, brotli, none."""
    fsync: bool = True
    """fsync each shard and its directory before it counts as written (durability on power loss)."""

    def __post_init__(self) -> None:
        n = self.shard_episodes
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"EpisodeLogConfig.shard_episodes must be an integer >= 1, got {n!r}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"EpisodeLogConfig.compression must be one of {', '.join(COMPRESSIONS)}, "
                f"got {self.compression!r}"
            )
        if self.compression != "none" and not pa.Codec.is_available(self.compression):
            raise ValueError(f"compression {self.compression!r} is not available in this pyarrow")


def _prepare_directory(directory: str | Path) -> Path:
    """Create ``directory`` if needed and check that shards can be written in it."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"episode log directory {path} is an existing file, not a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NotADirectoryError(f"cannot create episode log directory {path}: {err}") from err
    probe = path / f"{TEMP_PREFIX}probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"episode log directory {path} is not writable: {err}") from err
    return path


def remove_stale_temp_files(directory: str | Path, older_than: float = 3600.0) -> list[Path]:
    """Delete ``.tmp-`` files older than ``older_than`` seconds (left by killed writers).

    A shard write takes seconds, so an hour-old temp file belongs to a dead writer. Returns
    the removed paths. Called by every :class:`EpisodeLogWriter` when it starts.
    """
    removed = []
    now = time.time()
    for entry in os.scandir(directory):
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            if now - entry.stat().st_mtime > older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            continue
    if removed:
        logger.info("removed %d stale temp files from %s", len(removed), directory)
    return removed


def _list_shards(directory: Path) -> list[tuple[ShardName, Path]]:
    """Final shards in ``directory`` in creation order (temp and foreign files ignored)."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    shards = []
    for entry in entries:
        name = ShardName.parse(entry)
        if name is not None:
            shards.append((name, directory / entry))
    shards.sort()
    return shards


class EpisodeLogWriter:
    """Appends one robot's episodes to the log directory, one atomic shard at a time.

    Shard names hold the creation time, the robot id, a random per-writer token and a
    sequence number, so writers for different robots, or for the same robot in a resumed
    run, never collide; an existing shard is never overwritten.
    """

    def __init__(
        self,
        directory: str | Path,
        robot_id: int,
        config: EpisodeLogConfig = EpisodeLogConfig(),
    ) -> None:
        if isinstance(robot_id, bool) or not isinstance(robot_id, int) or robot_id < 0:
            raise ValueError(f"robot_id must be a non-negative integer, got {robot_id!r}")
        self.directory = _prepare_directory(directory)
        remove_stale_temp_files(self.directory)
        self.robot_id = robot_id
        self.config = config
        # Not an experiment random draw: must differ between runs so names never collide.
        self._token = secrets.token_hex(4)
        self._sequence = 0
        self._buffer: list[Episode] = []
        self._seen_ids: set[str] = set()
        self._discarded = 0
        self._closed = False

    @staticmethod
    def check_directory(directory: str | Path) -> Path:
        """Create ``directory`` if needed and check shards can be written there.

        Raises ``NotADirectoryError`` (an existing file, or cannot be created) or
        ``PermissionError`` (not writable), naming the path. Returns the path.
        """
        return _prepare_directory(directory)

    @property
    def buffered(self) -> int:
        """Episodes appended but not yet durable."""
        return len(self._buffer)

    def note_discarded(self, count: int = 1) -> None:
        """Record ``count`` episodes the robot ran but discarded (e.g. unstable physics).

        The count is stored in the metadata of the next shard this writer writes
        (``mtopt.discarded_episodes``), so it is as durable as the episodes around it; see
        :meth:`EpisodeLogReader.discarded_episodes`. Discards after the last written episode of
        a writer are not recorded (a shard is never written without an episode).
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"discarded count must be a non-negative integer, got {count!r}")
        self._discarded += count

    def append(self, episode: Episode) -> list[str]:
        """Buffer ``episode``; write a shard when the buffer is full.

        Returns the ids of the episodes made durable by this call (``[]`` if still buffered).
        """
        if self._closed:
            raise RuntimeError(f"episode log writer for robot {self.robot_id} is closed")
        if not isinstance(episode, Episode):
            raise TypeError(f"append() takes an Episode, got {type(episode).__name__}")
        episode.validate()
        if episode.robot_id != self.robot_id:
            raise ValueError(
                f"episode {episode.episode_id} has robot_id {episode.robot_id}, but this "
                f"writer belongs to robot {self.robot_id}"
            )
        if episode.episode_id in self._seen_ids:
            raise ValueError(f"episode id {episode.episode_id!r} was already appended")
        self._seen_ids.add(episode.episode_id)
        self._buffer.append(episode)
        if len(self._buffer) >= self.config.shard_episodes:
            return self.flush()
        return []

    def flush(self) -> list[str]:
        """Write the buffered episodes as one shard atomically; return their ids.

        On failure the episodes stay buffered (nothing is lost) and the error propagates.
        """
        if not self._buffer:
            return []
        created_ns = time.time_ns()
        meta = {
            "mtopt.robot_id": str(self.robot_id),
            "mtopt.writer": self._token,
            "mtopt.sequence": str(self._sequence),
            "mtopt.created_unix_ns": str(created_ns),
            "mtopt.num_episodes": str(len(self._buffer)),
            DISCARDED_KEY: str(self._discarded),
        }
        data = encode_shard(self._buffer, meta, self.config.compression)
        name = ShardName(
            created_ns,
            self.robot_id,
            self._token,
            self._sequence,
            hashlib.sha256(data).hexdigest()[:16],
        )
        path = write_shard_atomically(self.directory, name, data, self.config.fsync)
        self._sequence += 1
        self._discarded = 0
        ids = [e.episode_id for e in self._buffer]
        self._buffer = []
        logger.debug("wrote %d episodes (%d bytes) to %s", len(ids), len(data), path)
        return ids

    def close(self) -> list[str]:
        """Flush and refuse further appends; returns the ids written by the final flush."""
        if self._closed:
            return []
        ids = self.flush()
        if self._discarded:
            logger.debug(
                "robot %d: %d discarded episodes after the last shard are not recorded",
                self.robot_id,
                self._discarded,
            )
        self._closed = True
        return ids

    def __enter__(self) -> EpisodeLogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # The buffered episodes are complete and valid: keep them even if the caller failed,
        # but never hide the caller's exception behind a flush error.
        try:
            self.close()
        except Exception:
            logger.exception("could not flush %d buffered episodes on error exit", self.buffered)


class _ShardSource:
    """Shared verify-skip-count logic of the reader and the tailer."""

    def __init__(self, directory: str | Path, must_exist: bool) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(
                f"episode log directory {self.directory} is an existing file, not a directory"
            )
        if must_exist and not self.directory.exists():
            raise FileNotFoundError(f"episode log directory {self.directory} does not exist")
        self._corrupt: set[str] = set()

    @property
    def corrupt_shards(self) -> int:
        """Number of distinct shards skipped because they failed verification."""
        return len(self._corrupt)

    def _read(
        self, path: Path, columns: list[str] | None = None, load_images: bool = True
    ) -> pa.Table | list[Episode] | None:
        """Verified table (columns) or episodes of ``path``; ``None`` if corrupt or gone."""
        try:
            if columns is not None:
                table = read_shard_table(path, columns=columns)
                if table.schema.remove_metadata() != METADATA_SCHEMA:
                    raise CorruptShardError(f"metadata columns have schema {table.schema}")
                return table
            exclude = () if load_images else IMAGE_COLUMNS
            return table_to_episodes(read_shard_table(path, exclude=exclude), load_images)
        except SchemaVersionError:
            raise  # valid data from a newer mtopt: refuse loudly rather than skip
        except (CorruptShardError, pa.ArrowException, ValueError, KeyError, IndexError) as err:
            if path.name not in self._corrupt:
                self._corrupt.add(path.name)
                logger.error("skipping corrupt episode log shard %s: %s", path, err)
            return None
        except FileNotFoundError:
            logger.warning("episode log shard %s disappeared before it could be read", path)
            return None
        except (IsADirectoryError, PermissionError) as err:  # a shard's name, not a shard
            if path.name not in self._corrupt:
                self._corrupt.add(path.name)
                logger.error("skipping %s, which is not a readable shard: %s", path, err)
            return None


def in_robot_order(episodes: Iterable[Episode]) -> list[Episode]:
    """``episodes`` sorted by robot id, each robot's in the order it wrote them.

    Shards are listed in creation order, and how the shards of several robots interleave
    depends on their timing, not on the seed. Anything whose result depends on the order of a
    batch of episodes (the task replay's transition ids, a per-task labelling budget) reads
    them in this order, so that the same log gives the same result."""
    return sorted(episodes, key=lambda e: e.robot_id)


class EpisodeLogReader(_ShardSource):
    """Reads every complete, verified shard of an episode log directory."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__(directory, must_exist=True)
        self._metadata_cache: dict[str, pa.Table] = {}

    def shard_paths(self) -> list[Path]:
        """Paths of the visible shards in creation order (temp files are never listed)."""
        return [path for _, path in _list_shards(self.directory)]

    def episodes(self, load_images: bool = True) -> Iterator[Episode]:
        """Every episode of every valid shard, in shard order then append order.

        With ``load_images=False`` the ``image`` observation and ``final_side_images`` are
        not decoded (the checksum is still verified on the whole shard).
        """
        for path in self.shard_paths():
            episodes = self._read(path, load_images=load_images)
            if episodes is not None:
                yield from episodes

    def _metadata_tables(self) -> list[pa.Table]:
        """The scalar columns (with the shard's key-value metadata) of every valid shard."""
        tables = []
        for path in self.shard_paths():
            table = self._metadata_cache.get(path.name)
            if table is None and path.name not in self._corrupt:
                table = self._read(path, columns=METADATA_SCHEMA.names)
                if table is not None:
                    self._metadata_cache[path.name] = table
            if table is not None:
                tables.append(table)
        return tables

    def metadata(self) -> pa.Table:
        """Scalar columns of every episode, without decoding observations.

        Columns: ``episode_id, robot_id, task, policy, epsilon, seed, start_time, end_time,
        num_steps, success (list<bool>), success_tasks (list<string>), chained_from, extra``
        (``Episode.extra`` as a JSON object string). Shards
        are immutable, so each is read once per reader and cached.
        """
        tables = self._metadata_tables()
        if not tables:
            return METADATA_SCHEMA.empty_table()
        return pa.concat_tables(tables).replace_schema_metadata(
            {"mtopt.schema_version": str(SCHEMA_VERSION)}
        )

    def discarded_episodes(self) -> int:
        """Episodes the robots ran but discarded (unstable physics), so not in the log.

        The sum of the shards' ``mtopt.discarded_episodes`` metadata (written by
        :meth:`EpisodeLogWriter.note_discarded`; absent, i.e. 0, in older shards). Corrupt
        shards are not counted.
        """
        total = 0
        for table in self._metadata_tables():
            raw = (table.schema.metadata or {}).get(DISCARDED_KEY.encode())
            if raw is None:
                continue
            try:
                total += int(raw.decode())
            except (UnicodeDecodeError, ValueError):
                logger.warning(
                    "ignoring unreadable %s %r in %s", DISCARDED_KEY, raw, self.directory
                )
        return total


class EpisodeLogTailer(_ShardSource):
    """Yields episodes from shards as they appear (used by log replay).

    Each shard is read exactly once; a corrupt shard is logged and counted once. The
    directory may not exist yet when the tailer starts.
    """

    def __init__(
        self,
        directory: str | Path,
        poll_interval: float = 0.5,
        partition: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(directory, must_exist=False)
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        if partition is not None and not 0 <= partition[0] < partition[1]:
            raise ValueError(
                f"partition must be (index, count) with 0 <= index < count, got {partition!r}"
            )
        self.poll_interval = float(poll_interval)
        self.partition = partition
        """``(i, n)``: read only the shards of robots with ``robot_id % n == i`` (so ``n``
        log replays can share one log without reading any episode twice)."""
        self._done: set[str] = set()

    def poll(self) -> list[Episode]:
        """Episodes of the shards that appeared since the last poll, in shard order."""
        out: list[Episode] = []
        for name, path in _list_shards(self.directory):
            if path.name in self._done:
                continue
            if self.partition and name.robot_id % self.partition[1] != self.partition[0]:
                continue
            try:
                episodes = self._read(path)
            except SchemaVersionError:
                if out:  # hand over what was read; the next poll refuses again
                    return out
                raise
            self._done.add(path.name)
            if episodes is not None:
                out.extend(episodes)
        return out

    def follow(
        self, stop: Callable[[], bool] | None = None, timeout: float | None = None
    ) -> Iterator[Episode]:
        """Poll every ``poll_interval`` s and yield new episodes.

        Ends when ``stop()`` returns true (checked before each poll) or once ``timeout``
        seconds have passed since the call (after a final poll); runs forever otherwise.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if stop is not None and stop():
                return
            yield from self.poll()
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                time.sleep(min(self.poll_interval, remaining))
            else:
                time.sleep(self.poll_interval)
