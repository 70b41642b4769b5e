"""LeRobot dataset v3.0 export and import of an episode log (``mtopt data export / import``).

The dataset follows the LeRobot v3.0 layout (``docs/lerobot.md``), written and read with pyarrow
(and PyAV for the videos), so neither direction needs the ``lerobot-dataset`` package: the
``lerobot`` extra brings it, and PyAV, for the test that its ``LeRobotDataset`` reads an export::

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

import io
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tyro

from mtopt.added_tasks import AddedTask, add_tasks, read_task_file, task_file_env, write_task_file
from mtopt.data.episode import (
    EXTRA_OBSERVATION_DTYPES,
    OBSERVATION_DTYPES,
    Episode,
    new_episode_id,
)
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.data.shards import ShardName
from mtopt.errors import MtoptError
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec

logger = logging.getLogger(__name__)

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
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
BATCH_FRAMES = 20_000
"""Frames buffered before a row group is written."""
LOG_CONFIG = EpisodeLogConfig(shard_episodes=64)
"""Shards of an imported log: larger than a robot's (a whole dataset is written at once)."""


class LeRobotFormatError(MtoptError):
    """A LeRobot dataset this code cannot read or that does not fit the environment."""


@dataclass(frozen=True)
class LeRobotExportConfig:
    """Write an episode log as a LeRobot v3.0 dataset (``mtopt data export``)."""

    log: tyro.conf.Positional[str]
    """Episode-log directory to export."""
    out: str
    """Dataset directory to write (refused when it exists and is not empty, unless
    ``--overwrite``)."""
    format: Literal["lerobot"] = "lerobot"
    """Dataset format: ``lerobot`` (LeRobot dataset v3.0)."""
    overwrite: bool = False
    """Replace a non-empty ``--out`` (only once the new dataset is complete)."""
    fps: int | None = None
    """Frames per second of the timestamps and videos; none: the environment's control rate
    (the workcell's 10 Hz), else 10."""
    images: Literal["video", "image", "none"] = "video"
    """How a log's camera views are stored: ``video`` (MP4, LeRobot's default; needs PyAV, in
    the ``lerobot`` extra), ``image`` (PNG in the parquet files) or ``none`` (left out)."""
    video_codec: Literal["libsvtav1", "h264", "hevc"] = "libsvtav1"
    """Video codec (LeRobot's default is AV1; frames smaller than 32 px are encoded as h264)."""
    crf: int = 30
    """Video quality: the encoder's constant rate factor (lower is better and larger)."""
    max_episodes: int | None = None
    """Export only the first N episodes (in the canonical order: by robot, then as written)."""
    progress: bool = True
    """Show a progress bar (on a terminal)."""

    def __post_init__(self) -> None:
        if self.fps is not None and not 1 <= self.fps <= 1000:
            raise ValueError(f"fps must be in [1, 1000], got {self.fps}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1, got {self.max_episodes}")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"crf must be in [0, 63], got {self.crf}")


@dataclass(frozen=True)
class LeRobotImportConfig:
    """Read a LeRobot v3.0 dataset into a new episode log (``mtopt data import``)."""

    directory: tyro.conf.Positional[str]
    """LeRobot dataset directory (``meta/info.json`` inside)."""
    out: str
    """Episode-log directory to create (refused when it exists and is not empty)."""
    task_map: tuple[str, ...] = ()
    """``'DATASET TASK=ENV TASK'`` pairs renaming dataset task strings to the environment's
    tasks; other task strings must be task names of the environment already."""
    tasks_file: str | None = None
    """Add the dataset's unknown tasks to this task file (created if missing), in the skill
    ``--new-task-skill``: the new-task workflow's slot step (docs/new-tasks.md)."""
    new_task_skill: str | None = None
    """The skill of tasks added through ``--tasks-file``."""
    policy: str = "expert-lerobot"
    """Policy name recorded for episodes without mtopt metadata (demonstrations count as
    bootstrap data, like an expert's)."""
    robot_id: int = 0
    """Robot id recorded for episodes without mtopt metadata."""
    camera: str | None = None
    """Camera feature imported as the ``image`` observation; none: ``observation.image`` or the
    dataset's first camera. ``none`` imports no images."""
    progress: bool = True
    """Show a progress bar (on a terminal)."""


# ---------------------------------------------------------------------------------------------
# export


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


STAT_NAMES = ("min", "max", "mean", "std", *(f"q{round(q * 100):02d}" for q in QUANTILES))
"""LeRobot's statistics of a feature, besides ``count``."""


def _stats(x: np.ndarray) -> np.ndarray:
    """The :data:`STAT_NAMES` rows of ``x`` (frames x values), one column per value."""
    return np.vstack(
        [
            x.min(axis=0),
            x.max(axis=0),
            x.mean(axis=0),
            x.std(axis=0),
            *np.quantile(x, QUANTILES, axis=0),
        ]
    )


def _aggregate(stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Episodes' stats ``(E, 9, K)`` combined as LeRobot does: extremes, the pooled mean and
    std, count-weighted quantiles."""
    w = counts[:, None] / counts.sum()
    mean = (stats[:, 2] * w).sum(axis=0)
    var = ((stats[:, 3] ** 2 + (stats[:, 2] - mean) ** 2) * w).sum(axis=0)
    quantiles = (stats[:, 4:] * w[:, :, None]).sum(axis=0)
    return np.vstack(
        [stats[:, 0].min(axis=0), stats[:, 1].max(axis=0), mean, np.sqrt(var), quantiles]
    )


def _image_stats(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-channel stats in [0, 1] of about 10 of an episode's frames, and their number."""
    sample = images[:: max(1, len(images) // 10)]
    return _stats(sample.reshape(-1, 3).astype(np.float64) / 255.0), len(sample)


class _VideoWriter:
    """One camera's MP4 files: episodes appended to one stream, rolled over at 200 MB."""

    def __init__(self, root: Path, key: str, fps: int, codec: str, crf: int) -> None:
        import av  # the lerobot extra; checked before the export starts

        self.av, self.root, self.key, self.fps, self.crf = av, root, key, fps, crf
        self.codec = codec
        self.chunk, self.file, self.frames, self.bytes = 0, 0, 0, 0
        self.container: Any = None
        self.stream: Any = None
        self.info: dict[str, Any] = {}

    def _open(self, height: int, width: int) -> None:
        path = self.root / VIDEO_PATH.format(
            video_key=self.key, chunk_index=self.chunk, file_index=self.file
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"g": "2", "crf": str(self.crf)}
        if self.codec == "libsvtav1":
            options["preset"] = "12"
        self.container = self.av.open(str(path), "w")
        self.stream = self.container.add_stream(self.codec, rate=self.fps, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.frames = self.bytes = 0
        self.info = {
            "video.height": height,
            "video.width": width,
            "video.codec": {"libsvtav1": "av1", "hevc": "hevc"}.get(self.codec, "h264"),
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": self.fps,
            "video.channels": 3,
            "has_audio": False,
        }

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            self.container = None

    def add(self, frames: np.ndarray) -> dict[str, Any]:
        """Encode one episode's ``(N, H, W, 3)`` frames; returns its episode-metadata columns."""
        if self.container is not None and self.bytes >= VIDEO_FILE_MB * 2**20:
            self.close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self.container is None:
            self._open(frames.shape[1], frames.shape[2])
        start = self.frames
        for img in frames:
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in self.stream.encode(frame):
                self.bytes += packet.size
                self.container.mux(packet)
        self.frames += len(frames)
        p = f"videos/{self.key}/"
        return {
            p + "chunk_index": self.chunk,
            p + "file_index": self.file,
            p + "from_timestamp": start / self.fps,
            p + "to_timestamp": self.frames / self.fps,
        }


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class _RobotOrderReader(EpisodeLogReader):
    """Reads shards by robot id, each robot's in the order written: the canonical order
    (:func:`mtopt.data.log.in_robot_order`) without holding the log in memory."""

    def shard_paths(self) -> list[Path]:
        paths = super().shard_paths()
        return sorted(paths, key=lambda p: ShardName.parse(p.name).robot_id)  # type: ignore[union-attr]


def _own_success(ep: Episode) -> bool:
    return (
        bool(ep.success[ep.success_tasks.index(ep.task)]) if ep.task in ep.success_tasks else False
    )


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


def control_fps(spec: EnvSpec | None) -> int:
    """The dataset fps of an environment: its control rate rounded, else :data:`DEFAULT_FPS`."""
    hz = spec.control_hz() if spec is not None else None
    return max(1, round(hz)) if hz else DEFAULT_FPS


def export_lerobot(config: LeRobotExportConfig, spec: EnvSpec | None = None) -> dict[str, Any]:
    """Write the episode log ``config.log`` as a LeRobot v3.0 dataset in ``config.out``.

    ``spec`` (the log's environment) gives the fps (its control rate) and ``robot_type``. The
    dataset is built in a temporary sibling directory and renamed into place once complete, so
    an interrupted export leaves no dataset that looks complete. Returns a report with the
    episodes, frames, tasks, seconds and episodes per second."""
    out = Path(config.out)
    _out_is_free(out, config.overwrite, "dataset")
    fps = config.fps or control_fps(spec)
    if config.images == "video":
        try:
            import av  # noqa: F401
        except ImportError:
            raise MtoptError(
                "video export needs PyAV: pip install 'mtopt[lerobot]' (or pass --images image "
                "to store the camera views as PNG frames, or --images none)"
            ) from None
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1's banner: errors only
    reader = _RobotOrderReader(config.log)
    # the footers' row counts, for the progress bar (the episodes are verified as they are read)
    total = sum(pq.read_metadata(p).num_rows for p in reader.shard_paths())
    total = min(total, config.max_episodes or total)
    if total == 0:
        raise MtoptError(f"episode log {config.log!r} has no episodes to export")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    try:
        writer = _DatasetWriter(tmp, config, fps)
        bar = progress_bar(total, "export", "episode", enabled=config.progress)
        for ep in reader.episodes():
            if writer.episodes >= total:
                break
            writer.add(ep)
            bar.update(1)
        bar.close()
        if writer.episodes == 0:
            raise MtoptError(f"episode log {config.log!r} has no readable episode to export")
        report = writer.finish(spec.name if spec is not None else None)
        report["corrupt_shards"] = reader.corrupt_shards  # skipped, and logged, by the reader
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    report.update(out=str(out), seconds=seconds, episodes_per_s=report["episodes"] / seconds)
    logger.info(
        "exported %d episodes (%d frames) to %s in %.1f s (%.1f episodes/s)",
        report["episodes"],
        report["frames"],
        out,
        seconds,
        report["episodes_per_s"],
    )
    return report


class _DatasetWriter:
    """Writes the frames, videos and metadata of a dataset, episode by episode."""

    def __init__(self, root: Path, config: LeRobotExportConfig, fps: int) -> None:
        self.root, self.config, self.fps = root, config, fps
        self.features: dict[str, dict] = {}
        self.columns: dict[str, slice] = {}  # numeric feature -> its columns in the stats
        self.obs_keys: list[str] = []
        self.tasks: dict[str, int] = {}
        self.episode_rows: list[dict[str, Any]] = []
        self.mtopt_rows: list[dict[str, Any]] = []
        self.stats: list[np.ndarray] = []
        self.image_stats: list[np.ndarray] = []
        self.image_counts: list[int] = []
        self.batch: list[dict[str, np.ndarray]] = []
        self.batch_frames = 0
        self.writer: pq.ParquetWriter | None = None
        self.videos: _VideoWriter | None = None
        self.chunk = self.file = self.frames = self.episodes = 0

    def _define(self, ep: Episode) -> None:
        """The features, from the first episode (a log's episodes share their layout)."""
        obs = ep.observations
        vectors = sorted(k for k, v in obs.items() if k not in ("state", "image") and v.ndim == 2)
        self.obs_keys = ["state", *vectors]
        skipped = [k for k, v in obs.items() if k != "image" and v.ndim != 2]
        if skipped:
            logger.warning("observations %s are not one vector per step: not exported", skipped)
        f = self.features
        for k in self.obs_keys:
            f[f"observation.{k}"] = _feature(str(obs[k].dtype), (obs[k].shape[1],))
        if "image" in obs and self.config.images != "none":
            h, w = obs["image"].shape[1:3]
            dtype = "video" if self.config.images == "video" else "image"
            f[IMAGE_KEY] = _feature(dtype, (h, w, 3), ["height", "width", "channels"])
            if dtype == "video":
                if h % 2 or w % 2:
                    raise MtoptError(
                        f"video frames need an even height and width, the log's images are "
                        f"{h}x{w}; pass --images image"
                    )
                codec = self.config.video_codec
                if codec == "libsvtav1" and min(h, w) < 32:  # SVT-AV1 crashes on tiny frames
                    logger.info("libsvtav1 needs frames of 32 px or more: encoding h264")
                    codec = "h264"
                self.videos = _VideoWriter(self.root, IMAGE_KEY, self.fps, codec, self.config.crf)
        f["action"] = _feature("float32", (ep.actions.shape[1],))
        f["next.reward"] = _feature("float32", (1,))
        f["next.done"] = _feature("bool", (1,))
        for key in INDEX_FEATURES:
            f[key] = _feature("float32" if key == "timestamp" else "int64", (1,))
        start = 0
        for key, ft in f.items():
            if ft["dtype"] not in ("video", "image"):
                self.columns[key] = slice(start, start + ft["shape"][0])
                start += ft["shape"][0]

    def add(self, ep: Episode) -> None:
        if not self.features:
            self._define(ep)
        n, e = ep.num_steps + 1, self.episodes
        task_index = self.tasks.setdefault(ep.task, len(self.tasks))
        pad = ep.actions[-1:] if ep.num_steps else np.zeros((1, ep.actions.shape[1]), np.float32)
        frame_index = np.arange(n, dtype=np.int64)
        cols: dict[str, np.ndarray] = {}
        for k in self.obs_keys:
            if k not in ep.observations:
                raise MtoptError(f"episode {ep.episode_id} has no {k!r} observation")
            cols[f"observation.{k}"] = ep.observations[k]
        cols["action"] = np.concatenate([ep.actions, pad])
        cols["next.reward"] = np.zeros(n, np.float32)
        cols["next.reward"][-1] = float(_own_success(ep))
        cols["next.done"] = frame_index == n - 1
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(n, e, np.int64)
        cols["index"] = frame_index + self.frames
        cols["task_index"] = np.full(n, task_index, np.int64)
        x = np.empty((n, next(reversed(self.columns.values())).stop))
        for key, sl in self.columns.items():
            x[:, sl] = cols[key].reshape(n, -1)
        self.stats.append(_stats(x))
        row: dict[str, Any] = {
            "episode_index": e,
            "tasks": [ep.task],
            "length": n,
            "data/chunk_index": self.chunk,
            "data/file_index": self.file,
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + n,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
        }
        if IMAGE_KEY in self.features:
            if "image" not in ep.observations:
                raise MtoptError(f"episode {ep.episode_id} has no image (the log's first has)")
            images = ep.observations["image"]
            if self.videos is not None:
                row.update(self.videos.add(images))
            else:
                cols[IMAGE_KEY] = np.array([_png(img) for img in images], dtype=object)
            s, count = _image_stats(images)
            self.image_stats.append(s)
            self.image_counts.append(count)
        self.episode_rows.append(row)
        self.mtopt_rows.append(_mtopt_row(e, ep))
        self.batch.append(cols)
        self.frames += n
        self.episodes += 1
        self.batch_frames += n
        if self.batch_frames >= BATCH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered frames as a row group; roll the file over at 100 MB."""
        if not self.batch:
            return
        arrays = {}
        for key in self.batch[0]:
            values = np.concatenate([b[key] for b in self.batch])
            if key == IMAGE_KEY:
                arrays[key] = pa.array([{"bytes": v, "path": None} for v in values])
            else:
                arrays[key] = _arrow_column(values)
        table = pa.table(arrays).replace_schema_metadata(
            {"huggingface": json.dumps(_hf_features(self.features))}
        )
        if self.writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        self.writer.write_table(table)
        self.batch, self.batch_frames = [], 0
        if os.path.getsize(self.writer.where) >= DATA_FILE_MB * 2**20:
            self.writer.close()
            self.writer = None
            self.chunk, self.file = _next_file(self.chunk, self.file)

    def finish(self, robot_type: str | None) -> dict[str, Any]:
        """Flush the frames and videos, then write the metadata, ``info.json`` last."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
        if self.videos is not None:
            self.videos.close()
            self.features[IMAGE_KEY]["info"] = self.videos.info
        meta = self.root / "meta"
        (meta / "mtopt").mkdir(parents=True, exist_ok=True)
        stats = np.stack(self.stats)
        counts = np.array([r["length"] for r in self.episode_rows], np.float64)
        total = _aggregate(stats, counts)
        episodes = pa.Table.from_pylist(self.episode_rows)
        summary: dict[str, dict[str, Any]] = {}
        for key, sl in self.columns.items():
            for i, name in enumerate(STAT_NAMES):
                episodes = episodes.append_column(
                    f"stats/{key}/{name}", _list_column(stats[:, i, sl])
                )
            episodes = episodes.append_column(
                f"stats/{key}/count", _list_column(counts[:, None]).cast(pa.list_(pa.int64()))
            )
            summary[key] = {name: total[i, sl].tolist() for i, name in enumerate(STAT_NAMES)}
            summary[key]["count"] = [int(counts.sum())]
        if self.image_stats:
            img = np.stack(self.image_stats)  # (E, 9, 3): per channel, shaped (3, 1, 1)
            img_counts = np.array(self.image_counts, np.float64)
            img_total = _aggregate(img, img_counts)
            for i, name in enumerate(STAT_NAMES):
                col = _list_column(img[:, i, :, None, None])
                episodes = episodes.append_column(f"stats/{IMAGE_KEY}/{name}", col)
            col = _list_column(img_counts[:, None]).cast(pa.list_(pa.int64()))
            episodes = episodes.append_column(f"stats/{IMAGE_KEY}/count", col)
            summary[IMAGE_KEY] = {
                name: img_total[i][:, None, None].tolist() for i, name in enumerate(STAT_NAMES)
            }
            summary[IMAGE_KEY]["count"] = [int(img_counts.sum())]
        # episode files of about 100 MB (uncompressed), like LeRobot's
        row_bytes = max(1, episodes.nbytes // max(1, episodes.num_rows))
        per_file = max(1, DATA_FILE_MB * 2**20 // row_bytes)
        chunk = file = 0
        for start in range(0, episodes.num_rows, per_file):
            part = episodes.slice(start, per_file)
            part = part.set_column(
                part.schema.get_field_index("meta/episodes/chunk_index"),
                "meta/episodes/chunk_index",
                pa.array(np.full(part.num_rows, chunk, np.int64)),
            )
            part = part.set_column(
                part.schema.get_field_index("meta/episodes/file_index"),
                "meta/episodes/file_index",
                pa.array(np.full(part.num_rows, file, np.int64)),
            )
            path = self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path, compression="snappy")
            chunk, file = _next_file(chunk, file)
        pq.write_table(pa.Table.from_pylist(self.mtopt_rows), self.root / MTOPT_PATH)
        _write_tasks(meta / "tasks.parquet", self.tasks)
        (meta / "stats.json").write_text(json.dumps(summary, indent=2))
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": self.episodes,
            "total_frames": self.frames,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILE_MB,
            "video_files_size_in_mb": VIDEO_FILE_MB,
            "fps": self.fps,
            "splits": {"train": f"0:{self.episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.videos is not None else None,
            "features": self.features,
        }
        (self.root / INFO).write_text(json.dumps(info, indent=4))
        images = self.features.get(IMAGE_KEY, {}).get("dtype", "none")
        return {
            "episodes": self.episodes,
            "frames": self.frames,
            "tasks": list(self.tasks),
            "fps": self.fps,
            "images": images,
        }


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


# ---------------------------------------------------------------------------------------------
# import


def _column(table: pa.Table, key: str, dtype: np.dtype | str) -> np.ndarray:
    """A frame column as ``(frames, width)`` values (a scalar column has width 1)."""
    col = table[key].combine_chunks()
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(col), -1).astype(dtype)
    return col.to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, 1)


def _obs_dtype(key: str, dtype: str) -> np.dtype:
    """The episode log's dtype for an observation: its known one, else the dataset's if the
    log takes it, else float32."""
    if key in OBSERVATION_DTYPES:
        return OBSERVATION_DTYPES[key]
    return np.dtype(dtype) if np.dtype(dtype) in EXTRA_OBSERVATION_DTYPES else np.dtype("float32")


class _VideoReader:
    """Decodes one camera's frames episode by episode, in file order."""

    def __init__(self, root: Path, template: str, key: str, fps: int) -> None:
        import av

        self.av, self.root, self.template, self.key, self.fps = av, root, template, key, fps
        self.path: Path | None = None
        self.container: Any = None
        self.frames: Iterator[Any] = iter(())
        self.pending: list[tuple[int, np.ndarray]] = []

    def episode(self, chunk: int, file: int, start: float, stop: float) -> np.ndarray:
        """The frames of ``[start, stop)`` seconds of file ``(chunk, file)``."""
        path = self.root / self.template.format(
            video_key=self.key, chunk_index=chunk, file_index=file
        )
        first, end = round(start * self.fps), round(stop * self.fps)
        if path != self.path or (self.pending and self.pending[0][0] > first):
            self.close()
            self.path, self.container = path, self.av.open(str(path))
            self.frames = self.container.decode(video=0)
        out = [img for i, img in self.pending if first <= i < end]
        self.pending = []
        for frame in self.frames:
            i = round(frame.time * self.fps)
            if i >= end:
                self.pending = [(i, frame.to_ndarray(format="rgb24"))]
                break
            if i >= first:
                out.append(frame.to_ndarray(format="rgb24"))
        if len(out) != end - first:
            raise LeRobotFormatError(f"{path}: expected {end - first} frames, decoded {len(out)}")
        return np.stack(out)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def _map_tasks(
    strings: list[str], config: LeRobotImportConfig, spec: EnvSpec
) -> tuple[dict[str, str], list[AddedTask]]:
    """Dataset task string -> environment task, and the tasks to add to the task file."""
    mapping = {}
    for pair in config.task_map:
        src, sep, dst = pair.rpartition("=")
        if not sep or not src or not dst:
            raise ValueError(f"--task-map takes 'DATASET TASK=ENV TASK' pairs, got {pair!r}")
        mapping[src] = dst
    named = {s: mapping.get(s, s) for s in strings}
    unknown = list(dict.fromkeys(t for t in named.values() if t not in spec.task_set))
    if not unknown:
        return named, []
    if config.tasks_file is None or config.new_task_skill is None:
        raise LeRobotFormatError(
            f"the dataset's task(s) {unknown} are not tasks of env {spec.name!r} (its tasks: "
            f"{list(spec.task_set.names)}); map them with --task-map 'NAME=TASK', or add them: "
            f"'mtopt task add NAME --skill SKILL --examples DIR --tasks-file FILE --env "
            f"{spec.name} ...' then import with --env.tasks FILE, or pass --tasks-file FILE "
            "--new-task-skill SKILL to add them here (docs/new-tasks.md)"
        )
    return named, [AddedTask(t, config.new_task_skill) for t in unknown]


class _DatasetReader:
    """A LeRobot v3.0 dataset checked against an environment, read episode by episode."""

    def __init__(self, config: LeRobotImportConfig, spec: EnvSpec) -> None:
        self.config, self.root = config, Path(config.directory)
        root = self.root
        if not (root / INFO).is_file():
            raise FileNotFoundError(f"{str(root)!r} is not a LeRobot dataset: no {INFO}")
        self.info = info = json.loads((root / INFO).read_text())
        version = str(info.get("codebase_version", "?"))
        if not version.startswith("v3."):
            raise LeRobotFormatError(
                f"dataset {str(root)!r} is LeRobot {version}; this reads v3.x (LeRobot converts "
                "v2.1 datasets with lerobot.datasets.v30.convert_dataset_v21_to_v30)"
            )
        self.features: dict[str, dict] = info["features"]
        self.fps = int(info["fps"])
        wanted = {
            "observation.state": ("state", spec.observation.state_dim),
            "action": ("action", spec.action.dim),
            **{f"observation.{k}": (k, w) for k, w in spec.observation.proprio},
            **{f"observation.{k}": (k, w) for k, w in spec.observation.extra},
        }
        for key, (what, width) in wanted.items():
            if key not in self.features:
                if what in ("state", "action"):
                    raise LeRobotFormatError(f"dataset {str(root)!r} has no {key!r} feature")
                logger.warning("dataset has no %r: networks that read %s cannot use it", key, what)
                continue
            got = tuple(self.features[key]["shape"])
            if got != (width,):
                raise LeRobotFormatError(
                    f"dataset {str(root)!r}: {key} has shape {got}, but env {spec.name!r} "
                    f"expects {what} of shape ({width},)"
                )
        self.obs_keys: dict[str, str] = {}  # feature -> observation key
        for key, ft in self.features.items():
            name = key.removeprefix("observation.")
            if key == name or ft["dtype"] in ("video", "image", "string"):
                continue
            if re.fullmatch(r"[a-z0-9_]+", name) and len(ft["shape"]) == 1:
                self.obs_keys[key] = name
            else:
                logger.warning("feature %r is not an episode-log observation: not imported", key)
        cameras = [k for k, ft in self.features.items() if ft["dtype"] in ("video", "image")]
        camera = config.camera or (IMAGE_KEY if IMAGE_KEY in cameras else next(iter(cameras), None))
        if camera is not None and camera != "none" and camera not in cameras:
            raise LeRobotFormatError(f"camera {camera!r} is not one of the dataset's {cameras}")
        self.camera = None if camera == "none" else camera
        self.video = None
        if self.camera is not None and self.features[self.camera]["dtype"] == "video":
            template = info.get("video_path") or VIDEO_PATH
            self.video = _VideoReader(root, template, self.camera, self.fps)
        table = pq.read_table(root / "meta/tasks.parquet")
        names = [c for c in table.column_names if c != "task_index"]
        column = table["task" if "task" in names else names[0]].to_pylist()
        self.tasks = dict(zip(table["task_index"].to_pylist(), column, strict=True))
        self.names: dict[str, str] = {}
        self.mtopt: dict[int, dict[str, Any]] = {}
        if (root / MTOPT_PATH).is_file():
            for r in pq.read_table(root / MTOPT_PATH).to_pylist():
                self.mtopt[r["episode_index"]] = r
        paths = sorted(root.glob("meta/episodes/*/*.parquet"))
        if not paths:
            raise LeRobotFormatError(f"dataset {str(root)!r} has no meta/episodes files")
        columns = [c for c in pq.read_schema(paths[0]).names if not c.startswith("stats/")]
        self.episodes = pa.concat_tables(
            [pq.read_table(p, columns=columns) for p in paths], promote_options="permissive"
        ).sort_by("episode_index")

    def __iter__(self) -> Iterator[Episode]:
        where, table, ids = None, None, np.zeros(0, np.int64)
        for row in self.episodes.to_pylist():
            if (row["data/chunk_index"], row["data/file_index"]) != where:
                where = (row["data/chunk_index"], row["data/file_index"])
                path = self.info["data_path"].format(chunk_index=where[0], file_index=where[1])
                table = pq.read_table(self.root / path).sort_by("index")
                ids = table["index"].to_numpy()
            assert table is not None
            lo, hi = np.searchsorted(ids, [row["dataset_from_index"], row["dataset_to_index"]])
            yield self._episode(row, table.slice(lo, hi - lo).sort_by("frame_index"))
        if self.video is not None:
            self.video.close()

    def _episode(self, row: dict[str, Any], frames: pa.Table) -> Episode:
        index, n = row["episode_index"], frames.num_rows
        if n < 1 or n != row["length"]:
            raise LeRobotFormatError(
                f"episode {index}: {n} frames, its metadata says {row['length']}"
            )
        obs = {}
        for key, name in self.obs_keys.items():
            obs[name] = _column(frames, key, _obs_dtype(name, self.features[key]["dtype"]))
        if self.camera is not None and self.video is not None:
            p = f"videos/{self.camera}/"
            start, stop = row[p + "from_timestamp"], row[p + "to_timestamp"]
            obs["image"] = self.video.episode(
                row[p + "chunk_index"], row[p + "file_index"], start, stop
            )
        elif self.camera is not None:
            from PIL import Image

            cells = frames[self.camera].to_pylist()
            obs["image"] = np.stack(
                [np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in cells]
            )
        actions = _column(frames, "action", "float32")[:-1]  # the last frame's is padding
        task_ids = frames["task_index"].to_numpy()
        if len(set(task_ids.tolist())) > 1:
            logger.warning("episode %d has several tasks: recorded as its first frame's", index)
        task = self.names[self.tasks[int(task_ids[0])]]
        mine = self.mtopt.get(index)
        if mine is not None:  # an mtopt export: every field as it was
            finals = {
                name: None
                if mine.get(name) is None
                else np.frombuffer(mine[name], np.uint8).reshape(mine[f"{name}.shape"]).copy()
                for name in ("final_side_images", "final_image")
            }
            return Episode(
                episode_id=mine["episode_id"],
                robot_id=mine["robot_id"],
                task=task,
                policy=mine["policy"],
                epsilon=mine["epsilon"],
                seed=mine["seed"],
                start_time=mine["start_time"],
                end_time=mine["end_time"],
                observations=obs,
                actions=actions,
                success=np.array(mine["success"], dtype=bool),
                success_tasks=tuple(self.names.get(t, t) for t in mine["success_tasks"]),
                chained_from=mine["chained_from"],
                extra=json.loads(mine["extra"]),
                **finals,
            )
        success, success_tasks = np.zeros(0, bool), ()  # unknown without a reward
        if "next.reward" in self.features:
            reward = _column(frames, "next.reward", "float64")
            success, success_tasks = np.array([reward.sum() > 0]), (task,)
        return Episode(
            episode_id=new_episode_id(self.config.robot_id, index),
            robot_id=self.config.robot_id,
            task=task,
            policy=self.config.policy,
            epsilon=0.0,
            seed=index,
            start_time=0.0,
            end_time=(n - 1) / self.fps,
            observations=obs,
            actions=actions,
            success=success,
            success_tasks=success_tasks,
            extra={"lerobot_episode": index},
        )


def import_lerobot(config: LeRobotImportConfig, base: EnvSpec, spec: EnvSpec) -> dict[str, Any]:
    """Read the LeRobot v3.0 dataset ``config.directory`` into a new episode log ``config.out``.

    ``spec`` is the environment (with ``--env.tasks``' added tasks), ``base`` the same without
    them (tasks added through ``config.tasks_file`` grow it). Refuses a dataset whose state or
    action width differs from the environment's, naming both shapes, and task strings that are
    not the environment's tasks (unless mapped or added). The log is written to a temporary
    sibling directory and renamed into place when complete; the task file changes after it."""
    out = Path(config.out)
    _out_is_free(out, False, "episode log")
    reader = _DatasetReader(config, spec)
    reader.names, added = _map_tasks(list(reader.tasks.values()), config, spec)
    existing: tuple[AddedTask, ...] = ()
    if added:
        path = Path(config.tasks_file or "")
        if path.exists():
            existing = read_task_file(path)
            if task_file_env(path) not in (None, base.name):
                raise ValueError(
                    f"task file {str(path)!r} adds tasks to env {task_file_env(path)!r}"
                )
        add_tasks(base, (*existing, *added))  # refuses a full task set or an unknown skill
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    writers: dict[int, EpisodeLogWriter] = {}
    counts: dict[str, int] = {}
    bar = progress_bar(reader.episodes.num_rows, "import", "episode", enabled=config.progress)
    try:
        for ep in reader:
            if ep.robot_id not in writers:
                writers[ep.robot_id] = EpisodeLogWriter(tmp, ep.robot_id, LOG_CONFIG)
            writers[ep.robot_id].append(ep)
            counts[ep.task] = counts.get(ep.task, 0) + 1
            bar.update(1)
        for writer in writers.values():
            writer.close()
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    if added:  # the task file changes last, once the log is complete
        write_task_file(config.tasks_file or "", base.name, (*existing, *added))
    report = {
        "episodes": sum(counts.values()),
        "log": str(out),
        "tasks": counts,
        "added_tasks": [t.name for t in added],
        "images": reader.camera,
        "mtopt_metadata": bool(reader.mtopt),
    }
    logger.info("imported %d episodes from %s into %s", report["episodes"], reader.root, out)
    return report


__all__ = [
    "LeRobotExportConfig",
    "LeRobotFormatError",
    "LeRobotImportConfig",
    "control_fps",
    "export_lerobot",
    "import_lerobot",
]
