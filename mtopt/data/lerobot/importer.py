"""Import of a LeRobot v3.0 dataset into a new episode log (``mtopt data import``).

An episode of ``N`` frames gives ``N`` observations and its first ``N - 1`` actions (the last
frame's action is the export's padding). A dataset exported by mtopt carries every episode field
in ``meta/mtopt/episodes.parquet``; one recorded elsewhere gets its fields from the import's
options. The layout is in :mod:`mtopt.data.lerobot.layout`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from mtopt.data.lerobot.layout import (
    IMAGE_KEY,
    INFO,
    MTOPT_PATH,
    VIDEO_PATH,
    LeRobotFormatError,
    _column,
    _out_is_free,
    _publish,
)
from mtopt.data.lerobot.video import _VideoReader
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec

logger = logging.getLogger(__name__)

LOG_CONFIG = EpisodeLogConfig(shard_episodes=64)
"""Shards of an imported log: larger than a robot's (a whole dataset is written at once)."""


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


def _obs_dtype(key: str, dtype: str) -> np.dtype:
    """The episode log's dtype for an observation: its known one, else the dataset's if the
    log takes it, else float32."""
    if key in OBSERVATION_DTYPES:
        return OBSERVATION_DTYPES[key]
    return np.dtype(dtype) if np.dtype(dtype) in EXTRA_OBSERVATION_DTYPES else np.dtype("float32")


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
