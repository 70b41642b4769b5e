"""Export of an episode log as a LeRobot v3.0 dataset (``mtopt data export``).

An episode of ``T`` actions becomes ``T + 1`` frames, one per observation: frame ``t`` holds
observation ``t`` and action ``t``; the last frame holds the final observation (the one success
is judged on) with the last action repeated as padding, ``next.done`` and the episode's sparse
reward (1.0 when it succeeded at its own task). The layout is in
:mod:`mtopt.data.lerobot.layout`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tyro

from mtopt.data.episode import Episode
from mtopt.data.lerobot.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    EPISODES_PATH,
    IMAGE_KEY,
    INDEX_FEATURES,
    INFO,
    MTOPT_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    _arrow_column,
    _feature,
    _hf_features,
    _list_column,
    _mtopt_row,
    _next_file,
    _out_is_free,
    _publish,
    _write_tasks,
    control_fps,
)
from mtopt.data.lerobot.stats import STAT_NAMES, _aggregate, _image_stats, _stats
from mtopt.data.lerobot.video import _VideoWriter
from mtopt.data.log import EpisodeLogReader
from mtopt.data.shards import ShardName
from mtopt.errors import MtoptError
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec

logger = logging.getLogger(__name__)

BATCH_FRAMES = 20_000
"""Frames buffered before a row group is written."""


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


def _footer_rows(path: Path) -> int:
    """Rows in a shard's parquet footer; 0 for a shard whose footer cannot be read."""
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowException):
        return 0


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
    # the footers' row counts, for the progress bar (the episodes are verified as they are read,
    # and the reader skips a corrupt shard: it counts 0 here)
    total = sum(_footer_rows(p) for p in reader.shard_paths())
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
