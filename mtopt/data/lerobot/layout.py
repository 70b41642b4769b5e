"""The LeRobot dataset v3.0 layout shared by export and import: paths, constants, the feature
schema and its arrow columns, the task and mtopt sidecar tables, and safe publishing.

Written and read with pyarrow (the videos with PyAV, :mod:`mtopt.data.lerobot.video`)::

    DIR/meta/info.json                           features, fps, counts, path templates
    DIR/meta/tasks.parquet                       task string -> task_index (pandas index)
    DIR/meta/stats.json                          per-feature min/max/mean/std/count/quantiles
    DIR/meta/episodes/chunk-000/file-000.parquet one row per episode: tasks, length, where
    DIR/data/chunk-000/file-000.parquet          one row per frame
    DIR/videos/observation.image/chunk-000/file-000.mp4   camera frames (logs with images)
    DIR/meta/mtopt/episodes.parquet              mtopt's own per-episode fields (LeRobot ignores it)

An episode of ``T`` actions becomes ``T + 1`` frames, one per observation: frame ``t`` holds
observation ``t`` and action ``t``; the last frame holds the final observation (the one success
is judged on) with the last action repeated as padding, ``next.done`` and the episode's sparse
reward (1.0 when it succeeded at its own task). Import reverses this: an episode of ``N`` frames
gives ``N`` observations and its first ``N - 1`` actions.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtopt.data.episode import Episode
from mtopt.errors import MtoptError
from mtopt.spec import EnvSpec

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO = "meta/info.json"
MTOPT_PATH = "meta/mtopt/episodes.parquet"
CHUNKS_SIZE, DATA_FILE_MB, VIDEO_FILE_MB = 1000, 100, 200
"""LeRobot's defaults: files per chunk directory, and the size at which a file is rolled over."""
DEFAULT_FPS = 10
"""Frames per second when the environment does not say its control rate."""
IMAGE_KEY = "observation.image"
"""The feature of mtopt's ``image`` observation (the over-the-shoulder camera)."""
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


class LeRobotFormatError(MtoptError):
    """A LeRobot dataset this code cannot read or that does not fit the environment."""


def control_fps(spec: EnvSpec | None) -> int:
    """The dataset fps of an environment: its control rate rounded, else :data:`DEFAULT_FPS`."""
    hz = spec.control_hz() if spec is not None else None
    return max(1, round(hz)) if hz else DEFAULT_FPS


def _next_file(chunk: int, file: int) -> tuple[int, int]:
    file += 1
    return (chunk + 1, 0) if file >= CHUNKS_SIZE else (chunk, file)


def _feature(dtype: str, shape: tuple[int, ...], names: Any = None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "names": names}


def _arrow_column(values: np.ndarray) -> pa.Array:
    """A frame column: scalars for shape (1,) features, fixed-size lists otherwise."""
    if values.ndim == 1 or values.shape[1] == 1:
        return pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _list_column(values: np.ndarray) -> pa.Array:
    """``(E, ...)`` per-episode values as a column of (nested) lists of doubles."""
    flat = pa.array(values.reshape(-1).astype(np.float64))
    for width in reversed(values.shape[1:]):
        offsets = np.arange(0, len(flat) + 1, width, dtype=np.int32)
        flat = pa.ListArray.from_arrays(pa.array(offsets), flat)
    return flat


def _hf_features(features: dict[str, dict]) -> dict[str, Any]:
    """The ``huggingface`` schema metadata of the data files (``datasets`` reads it)."""
    out: dict[str, Any] = {}
    for key, ft in features.items():
        value = {"dtype": ft["dtype"], "_type": "Value"}
        if ft["dtype"] == "image":
            out[key] = {"_type": "Image"}
        elif ft["dtype"] != "video":
            one = ft["shape"] == [1]
            out[key] = (
                value if one else {"feature": value, "length": ft["shape"][0], "_type": "List"}
            )
    return {"info": {"features": out}}


def _column(table: pa.Table, key: str, dtype: np.dtype | str) -> np.ndarray:
    """A frame column as ``(frames, width)`` values (a scalar column has width 1)."""
    col = table[key].combine_chunks()
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(col), -1).astype(dtype)
    return col.to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, 1)


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """``tasks.parquet`` as pandas writes it: the task strings are the frame's index."""
    column = {"pandas_type": "int64", "numpy_type": "int64", "metadata": None}
    pandas = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", **column},
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    table = pa.table(
        {
            "task_index": pa.array(list(tasks.values()), pa.int64()),
            "__index_level_0__": pa.array(list(tasks), pa.string()),
        }
    )
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas)}), path)


def _mtopt_row(index: int, ep: Episode) -> dict[str, Any]:
    """The sidecar row: every Episode field LeRobot's columns do not hold."""
    row: dict[str, Any] = {
        "episode_index": index,
        "episode_id": ep.episode_id,
        "robot_id": ep.robot_id,
        "task": ep.task,
        "policy": ep.policy,
        "epsilon": float(ep.epsilon),
        "seed": ep.seed,
        "start_time": float(ep.start_time),
        "end_time": float(ep.end_time),
        "success": [bool(s) for s in ep.success],
        "success_tasks": list(ep.success_tasks),
        "chained_from": ep.chained_from,
        "extra": json.dumps(ep.extra, sort_keys=True),
    }
    for name in ("final_side_images", "final_image"):
        arr = getattr(ep, name)
        row[name] = None if arr is None else np.ascontiguousarray(arr).tobytes()
        row[f"{name}.shape"] = None if arr is None else list(arr.shape)
    return row


def _out_is_free(out: Path, overwrite: bool, what: str) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        flag = " (--overwrite replaces it)" if what == "dataset" else ""
        raise FileExistsError(f"{what} directory {str(out)!r} exists and is not empty{flag}")


def _publish(tmp: Path, out: Path) -> None:
    """Move the complete ``tmp`` to ``out`` (replacing it: the old one goes only after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
