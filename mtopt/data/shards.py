"""Episode log shards: the Parquet encoding of episodes, shard names, atomic write, verified read.

A shard is one immutable Parquet file holding one row per episode (schema in
``docs/episode-format.md``). Its final name carries the sha256 of its bytes, so a reader can
tell a complete shard from a damaged one without any side file::

    {created_unix_ns:020d}-r{robot_id:04d}-{writer token}-{sequence:06d}-{sha256[:16]}.parquet

Shards are written under a ``.tmp-`` name, fsync'd, and only then linked to the final name,
so a reader never sees a shard that is still being written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtopt.data.episode import Episode
from mtopt.errors import MtoptError

SCHEMA_VERSION = 1
"""Version of the shard schema this code writes and the newest it reads."""
VERSION_KEY = b"mtopt.schema_version"
"""Parquet key-value metadata key holding :data:`SCHEMA_VERSION`."""
TEMP_PREFIX = ".tmp-"
"""Prefix of files that are being written; readers ignore them."""
SHARD_RE = re.compile(
    r"^(?P<ns>\d{20})-r(?P<robot>\d{4,})-(?P<token>[0-9a-f]{8})-(?P<seq>\d{6,})"
    r"-(?P<sha>[0-9a-f]{16})\.parquet$"
)
"""Regular expression of a final shard name."""

SCALAR_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("robot_id", pa.int32()),
        ("task", pa.string()),
        ("policy", pa.string()),
        ("epsilon", pa.float64()),
        ("seed", pa.int64()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("num_steps", pa.int32()),
        ("success", pa.list_(pa.bool_())),
        ("success_tasks", pa.list_(pa.string())),
        ("chained_from", pa.string()),
    ]
)
"""Per-episode scalar columns, in order."""
EXTRA_COLUMN = "extra"
"""Column holding ``Episode.extra`` as a JSON object string."""
METADATA_SCHEMA = pa.schema([*SCALAR_SCHEMA, (EXTRA_COLUMN, pa.string())])
"""The scalar columns and ``extra``: the schema of ``EpisodeLogReader.metadata``."""
IMAGE_ARRAYS = ("obs.image", "final_side_images", "final_image")
"""Array columns holding images (skipped when episodes are read with ``load_images=False``)."""
FINAL_ARRAYS = ("final_side_images", "final_image")
"""Array columns holding per-episode (not per-step) images, also fields of :class:`Episode`."""
SHAPE_TYPE = pa.list_(pa.int32())
"""Type of the ``<array>.shape`` columns."""


class CorruptShardError(MtoptError):
    """A shard failed verification (checksum, Parquet, schema or episode validation)."""


class SchemaVersionError(ValueError):
    """A shard was written with a newer schema version than this code understands."""


@dataclass(frozen=True, order=True)
class ShardName:
    """The parsed parts of a final shard name; orders by creation time, then robot."""

    created_ns: int
    robot_id: int
    token: str
    sequence: int
    sha256_prefix: str

    @property
    def filename(self) -> str:
        return (
            f"{self.created_ns:020d}-r{self.robot_id:04d}-{self.token}-{self.sequence:06d}"
            f"-{self.sha256_prefix}.parquet"
        )

    @staticmethod
    def parse(filename: str) -> ShardName | None:
        """The parts of ``filename``, or ``None`` if it is not a final shard name."""
        m = SHARD_RE.match(filename)
        if m is None:
            return None
        return ShardName(int(m["ns"]), int(m["robot"]), m["token"], int(m["seq"]), m["sha"])


# -- encoding -----------------------------------------------------------------------------
def _array_column(arrays: list[np.ndarray | None]) -> tuple[pa.Array, pa.Array]:
    """Encode arrays (None = null) as a (values, shape) column pair.

    uint8 arrays (images) become raw C-order bytes in a ``large_binary`` column; everything
    else a flattened ``large_list`` of its dtype.
    """
    present = [a for a in arrays if a is not None]
    dtype = present[0].dtype
    if any(a.dtype != dtype for a in present):
        raise ValueError(f"mixed dtypes in one column: {sorted({str(a.dtype) for a in present})}")
    sizes = np.array([0 if a is None else a.size for a in arrays], dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
    flat = np.concatenate([np.ascontiguousarray(a).ravel() for a in present])
    is_null = [a is None for a in arrays]
    mask = pa.array(is_null)
    shapes = pa.array([None if a is None else list(a.shape) for a in arrays], type=SHAPE_TYPE)
    if dtype == np.uint8:
        validity = pa.array([not n for n in is_null]).buffers()[1] if any(is_null) else None
        values = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(arrays), [validity, offsets.buffers()[1], pa.py_buffer(flat)]
        )
    else:
        values = pa.LargeListArray.from_arrays(offsets, pa.array(flat), mask=mask)
    return values, shapes


def episodes_to_table(episodes: list[Episode], metadata: dict[str, str]) -> pa.Table:
    """The shard table of ``episodes`` (already validated)."""
    if not episodes:
        raise ValueError("a shard needs at least one episode")
    columns: dict[str, pa.Array] = {
        "episode_id": pa.array([e.episode_id for e in episodes], pa.string()),
        "robot_id": pa.array([e.robot_id for e in episodes], pa.int32()),
        "task": pa.array([e.task for e in episodes], pa.string()),
        "policy": pa.array([e.policy for e in episodes], pa.string()),
        "epsilon": pa.array([float(e.epsilon) for e in episodes], pa.float64()),
        "seed": pa.array([e.seed for e in episodes], pa.int64()),
        "start_time": pa.array([float(e.start_time) for e in episodes], pa.float64()),
        "end_time": pa.array([float(e.end_time) for e in episodes], pa.float64()),
        "num_steps": pa.array([e.num_steps for e in episodes], pa.int32()),
        "success": pa.array([e.success.tolist() for e in episodes], pa.list_(pa.bool_())),
        "success_tasks": pa.array([list(e.success_tasks) for e in episodes], pa.list_(pa.string())),
        "chained_from": pa.array([e.chained_from for e in episodes], pa.string()),
        EXTRA_COLUMN: pa.array([json.dumps(e.extra, sort_keys=True) for e in episodes]),
    }

    def add(name: str, arrays: list[np.ndarray | None]) -> None:
        columns[name], columns[f"{name}.shape"] = _array_column(arrays)

    add("actions", [e.actions for e in episodes])
    keys = sorted({k for e in episodes for k in e.observations})
    for key in keys:
        add(f"obs.{key}", [e.observations.get(key) for e in episodes])
    for name in FINAL_ARRAYS:
        if any(getattr(e, name) is not None for e in episodes):
            add(name, [getattr(e, name) for e in episodes])
    table = pa.table(columns)
    meta = {VERSION_KEY: str(SCHEMA_VERSION).encode()}
    meta.update({k.encode(): v.encode() for k, v in metadata.items()})
    return table.replace_schema_metadata(meta)


def encode_shard(episodes: list[Episode], metadata: dict[str, str], compression: str) -> bytes:
    """Parquet bytes of a shard holding ``episodes``."""
    table = episodes_to_table(episodes, metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, compression=compression, write_page_checksum=True, row_group_size=len(table)
    )
    return sink.getvalue().to_pybytes()


# -- decoding -----------------------------------------------------------------------------
def _decode_arrays(values: pa.Array, shapes: pa.Array) -> list[np.ndarray | None]:
    shape_list = shapes.to_pylist()
    out: list[np.ndarray | None] = []
    if pa.types.is_large_binary(values.type):
        bufs = values.buffers()
        offsets = np.frombuffer(bufs[1], np.int64)[values.offset : values.offset + len(values) + 1]
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    elif pa.types.is_large_list(values.type):
        offsets = values.offsets.to_numpy()
        data = values.values.to_numpy(zero_copy_only=False)
    else:
        raise CorruptShardError(f"unexpected array column type {values.type}")
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False))
    for i, shape in enumerate(shape_list):
        if not valid[i] or shape is None:
            if valid[i] != (shape is not None):
                raise CorruptShardError(f"row {i}: values and shape disagree on being null")
            out.append(None)
            continue
        chunk = data[offsets[i] : offsets[i + 1]]
        if chunk.size != int(np.prod(shape, dtype=np.int64)):
            raise CorruptShardError(f"row {i}: {chunk.size} values do not fill shape {shape}")
        out.append(chunk.reshape(shape).copy())
    return out


def _check_schema(table: pa.Table) -> None:
    for f in SCALAR_SCHEMA:
        if f.name not in table.column_names:
            raise CorruptShardError(f"missing column {f.name!r}")
        if table.schema.field(f.name).type != f.type:
            got = table.schema.field(f.name).type
            raise CorruptShardError(f"column {f.name!r} has type {got}, expected {f.type}")


def check_version(metadata: dict[bytes, bytes] | None, where: str) -> None:
    """Raise :class:`SchemaVersionError` for a future version, corrupt for a missing one."""
    raw = (metadata or {}).get(VERSION_KEY)
    if raw is None:
        raise CorruptShardError(f"no {VERSION_KEY.decode()} in the Parquet metadata")
    try:
        version = int(raw.decode())
    except (UnicodeDecodeError, ValueError):
        raise CorruptShardError(f"unreadable schema version {raw!r}") from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"episode log shard {where} has schema version {version}, but this mtopt reads "
            f"versions up to {SCHEMA_VERSION}; upgrade mtopt to read this log"
        )
    if version < 1:
        raise CorruptShardError(f"invalid schema version {version}")


def table_to_episodes(table: pa.Table, load_images: bool = True) -> list[Episode]:
    """Decode a shard table; raises :class:`CorruptShardError` if anything is inconsistent."""
    _check_schema(table)
    if table.num_rows == 0:
        return []
    table = table.combine_chunks()
    scalars = {f.name: table.column(f.name).to_pylist() for f in SCALAR_SCHEMA}
    extras = table.column(EXTRA_COLUMN).to_pylist() if EXTRA_COLUMN in table.column_names else None
    arrays: dict[str, list[np.ndarray | None]] = {}
    for name in table.column_names:
        if name.endswith(".shape") or not (
            name == "actions" or name in FINAL_ARRAYS or name.startswith("obs.")
        ):
            continue
        if not load_images and name in IMAGE_ARRAYS:
            continue
        if f"{name}.shape" not in table.column_names:
            raise CorruptShardError(f"array column {name!r} has no {name}.shape column")
        arrays[name] = _decode_arrays(
            table.column(name).chunk(0), table.column(f"{name}.shape").chunk(0)
        )
    if "actions" not in arrays:
        raise CorruptShardError("missing column 'actions'")
    episodes = []
    for i in range(table.num_rows):
        obs = {
            name[4:]: col[i]
            for name, col in arrays.items()
            if name.startswith("obs.") and col[i] is not None
        }
        finals = {n: arrays[n][i] if n in arrays else None for n in FINAL_ARRAYS}
        try:
            ep = Episode(
                episode_id=scalars["episode_id"][i],
                robot_id=scalars["robot_id"][i],
                task=scalars["task"][i],
                policy=scalars["policy"][i],
                epsilon=scalars["epsilon"][i],
                seed=scalars["seed"][i],
                start_time=scalars["start_time"][i],
                end_time=scalars["end_time"][i],
                observations=obs,
                actions=arrays["actions"][i],
                success=np.array(scalars["success"][i] or [], dtype=bool),
                success_tasks=tuple(scalars["success_tasks"][i] or ()),
                **finals,
                chained_from=scalars["chained_from"][i],
                extra=json.loads(extras[i]) if extras is not None else {},
            )
        except (ValueError, TypeError) as err:
            raise CorruptShardError(f"row {i} is not a valid episode: {err}") from err
        if ep.num_steps != scalars["num_steps"][i]:
            raise CorruptShardError(f"row {i}: num_steps column disagrees with actions")
        episodes.append(ep)
    return episodes


# -- files --------------------------------------------------------------------------------
def read_verified(path: Path) -> pa.BufferReader:
    """The bytes of shard ``path`` after checking them against the checksum in its name."""
    name = ShardName.parse(path.name)
    if name is None:
        raise CorruptShardError(f"{path.name} is not a shard name")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    if digest != name.sha256_prefix:
        raise CorruptShardError(
            f"checksum mismatch ({len(data)} bytes hash to {digest}, name says "
            f"{name.sha256_prefix}): truncated or corrupted"
        )
    return pa.BufferReader(data)


def read_shard_table(
    path: Path, columns: list[str] | None = None, exclude: tuple[str, ...] = ()
) -> pa.Table:
    """Verify and read shard ``path`` (optionally only some columns)."""
    source = read_verified(path)
    try:
        pf = pq.ParquetFile(source, page_checksum_verification=True)
        check_version(pf.schema_arrow.metadata, str(path))
        names = pf.schema_arrow.names
        wanted = [c for c in (columns or names) if c in names and c not in exclude]
        return pf.read(columns=wanted)
    except (pa.ArrowException, OSError) as err:
        raise CorruptShardError(f"unreadable Parquet: {err}") from err


def write_shard_atomically(directory: Path, name: ShardName, data: bytes, fsync: bool) -> Path:
    """Write ``data`` as ``directory/name`` so that it appears complete or not at all.

    Never overwrites an existing file: raises ``FileExistsError`` instead.
    """
    final = directory / name.filename
    tmp = directory / f"{TEMP_PREFIX}{name.token}-{name.sequence:06d}-{os.getpid()}.parquet"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        try:
            os.link(tmp, final)  # fails if ``final`` exists: never overwrite a shard
        except OSError as err:
            if err.errno in (errno.EEXIST,):
                raise FileExistsError(f"episode log shard {final} already exists") from err
            if final.exists():  # filesystem without hard links
                raise FileExistsError(f"episode log shard {final} already exists") from err
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    if fsync:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return final
