"""LeRobot v3.0 export and import (``mtopt data export / import``, docs/lerobot.md).

The round trip: a log collected by the fleet (the point mass) or made of fake workcell-like
episodes with camera views -> a LeRobot dataset -> a new log whose episodes equal the original's.
When the ``lerobot`` extra is installed, LeRobot's own reader (``lerobot-dataset``) loads the
export from its local directory (no hub).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
from fakes import FakeSpec, assert_episodes_equal, make_fake_episode

from mtopt.cli import main
from mtopt.data import lerobot
from mtopt.data.lerobot import (
    LeRobotExportConfig,
    LeRobotFormatError,
    LeRobotImportConfig,
    export_lerobot,
    import_lerobot,
)
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter, in_robot_order
from mtopt.envs import make_spec
from mtopt.system.fleet import FleetConfig, collect_in_process

HAS_AV = importlib.util.find_spec("av") is not None
HAS_LEROBOT = importlib.util.find_spec("ledataset") is not None


@pytest.fixture(scope="module")
def pointmass_log(tmp_path_factory):
    """12 point-mass episodes of 2 robots, collected by the fleet with its scripted policies."""
    log = tmp_path_factory.mktemp("pm") / "log"
    cfg = FleetConfig(out=str(log), robots=2, robots_per_process=2, episodes=12, seed=0)
    collect_in_process(cfg, make_spec("pointmass"))
    return log


def smooth_views(n: int, size: int, shift: int) -> np.ndarray:
    """Camera-like frames (a colour gradient and a moving square), which a codec keeps well;
    the fakes' random noise it does not."""
    ramp = np.linspace(0, 255, size)
    views = np.empty((n, size, size, 3), np.uint8)
    views[..., 0] = ramp[None, None, :]
    views[..., 1] = ramp[None, :, None]
    for t in range(n):
        views[t, ..., 2] = 10 * t  # each frame differs
        x = (shift + 5 * t) % (size - 12)
        views[t, 8:20, x : x + 12] = (250, 20, 20)
    return views


@pytest.fixture(scope="module")
def image_log(tmp_path_factory):
    """6 fake workcell-like episodes with 32x32 camera views, side views and a chained one."""
    log = tmp_path_factory.mktemp("img") / "log"
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(log, 3, EpisodeLogConfig(shard_episodes=4, fsync=False)) as w:
        episodes = [make_fake_episode(rng, robot_id=3, image_size=32) for _ in range(6)]
        episodes[0] = make_fake_episode(rng, robot_id=3, image_size=32, side_images=True)
        episodes[1].chained_from = episodes[0].episode_id
        episodes[1].extra = {"note": "x", "n": 2}
        for i, ep in enumerate(episodes):
            ep.observations["image"] = smooth_views(ep.num_steps + 1, 32, 3 * i)
            w.append(ep)
    return log


def episodes_of(log) -> list:
    return in_robot_order(EpisodeLogReader(log).episodes())


def round_trip(log, tmp_path, spec, **export) -> tuple[list, list, dict, dict]:
    out, back = tmp_path / "ds", tmp_path / "back"
    report = export_lerobot(LeRobotExportConfig(str(log), str(out), **export), spec)
    imported = import_lerobot(LeRobotImportConfig(str(out), str(back)), spec, spec)
    assert imported["episodes"] == report["episodes"] and imported["mtopt_metadata"]
    return episodes_of(log), episodes_of(back), report, json.loads((out / lerobot.INFO).read_text())


def test_a_collected_log_round_trips_exactly(pointmass_log, tmp_path):
    spec = make_spec("pointmass")
    before, after, report, info = round_trip(pointmass_log, tmp_path, spec)
    assert len(after) == len(before) == 12
    for a, b in zip(before, after, strict=True):
        assert_episodes_equal(a, b)  # states, actions, tasks, successes, every other field
    frames = sum(e.num_steps + 1 for e in before)
    assert report["frames"] == frames and report["episodes_per_s"] > 0
    assert info["codebase_version"] == "v3.0" and info["fps"] == lerobot.DEFAULT_FPS
    assert info["total_episodes"] == 12 and info["total_frames"] == frames
    assert info["robot_type"] == "pointmass" and info["video_path"] is None
    features = info["features"]
    assert features["observation.state"] == {"dtype": "float32", "shape": [10], "names": None}
    assert features["action"]["shape"] == [3] and features["next.done"]["dtype"] == "bool"
    assert set(lerobot.INDEX_FEATURES) | {"next.reward"} <= set(features)
    ds = tmp_path / "ds"
    tasks = pq.read_table(ds / "meta/tasks.parquet")  # the task strings are pandas' index
    assert sorted(tasks.column("__index_level_0__").to_pylist()) == sorted({e.task for e in before})
    frames_table = pq.read_table(ds / "data/chunk-000/file-000.parquet")
    assert frames_table.num_rows == frames
    first = before[0]
    rows = frames_table.slice(0, first.num_steps + 1).to_pylist()
    np.testing.assert_array_equal(rows[-1]["observation.state"], first.observations["state"][-1])
    assert [r["next.done"] for r in rows] == [False] * first.num_steps + [True]
    assert rows[-1]["next.reward"] == float(first.success_for(first.task))
    assert rows[1]["timestamp"] == pytest.approx(1 / lerobot.DEFAULT_FPS)


def test_the_workcell_exports_at_its_control_rate():
    assert lerobot.control_fps(make_spec("workcell")) == 10  # 20 substeps of 5 ms
    assert lerobot.control_fps(make_spec("pointmass")) == lerobot.DEFAULT_FPS


@pytest.mark.skipif(not HAS_AV, reason="video export needs PyAV (the lerobot extra)")
def test_camera_views_go_in_as_video(image_log, tmp_path):
    spec = FakeSpec(image_size=32)
    before, after, report, info = round_trip(image_log, tmp_path, spec)
    assert report["images"] == "video" and info["video_path"] == lerobot.VIDEO_PATH
    video = info["features"][lerobot.IMAGE_KEY]
    assert video["dtype"] == "video" and video["shape"] == [32, 32, 3]
    assert video["info"]["video.codec"] == "av1" and video["info"]["video.fps"] == 10
    assert (tmp_path / "ds/videos/observation.image/chunk-000/file-000.mp4").is_file()
    for a, b in zip(before, after, strict=True):
        original, decoded = a.observations.pop("image"), b.observations.pop("image")
        assert decoded.shape == original.shape and decoded.dtype == np.uint8
        error = np.abs(decoded[:, None].astype(int) - original[None]).mean(axis=(2, 3, 4))
        assert error.diagonal().max() < 16  # AV1 at crf 30 on 32x32 frames is lossy, and
        np.testing.assert_array_equal(error.argmin(axis=1), np.arange(len(original)))  # in step
        assert_episodes_equal(a, b)


def test_camera_views_as_png_frames_round_trip_exactly(image_log, tmp_path):
    before, after, report, info = round_trip(
        image_log, tmp_path, FakeSpec(image_size=32), images="image"
    )
    assert report["images"] == "image" and info["video_path"] is None
    for a, b in zip(before, after, strict=True):
        assert_episodes_equal(a, b)
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    assert np.array(stats[lerobot.IMAGE_KEY]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [sum(e.num_steps + 1 for e in before)]


def test_a_dataset_recorded_elsewhere_imports_with_its_rewards(pointmass_log, tmp_path):
    spec = make_spec("pointmass")
    export_lerobot(LeRobotExportConfig(str(pointmass_log), str(tmp_path / "ds")), spec)
    (tmp_path / "ds" / lerobot.MTOPT_PATH).unlink()  # no mtopt metadata: LeRobot's fields only
    cfg = LeRobotImportConfig(str(tmp_path / "ds"), str(tmp_path / "back"), robot_id=7)
    assert not import_lerobot(cfg, spec, spec)["mtopt_metadata"]
    for a, b in zip(episodes_of(pointmass_log), episodes_of(tmp_path / "back"), strict=True):
        np.testing.assert_array_equal(a.observations["state"], b.observations["state"])
        np.testing.assert_array_equal(a.actions, b.actions)
        assert b.task == a.task and b.policy == "expert-lerobot" and b.robot_id == 7
        assert b.success_tasks == (a.task,) and b.success_for(a.task) == a.success_for(a.task)


@pytest.mark.skipif(not HAS_LEROBOT, reason="the lerobot extra is not installed")
@pytest.mark.parametrize("images", ["none", "video"])
def test_lerobots_own_reader_loads_the_export(pointmass_log, image_log, tmp_path, images):
    if images == "video" and not HAS_AV:
        pytest.skip("video export needs PyAV")
    log, spec = (pointmass_log, make_spec("pointmass")) if images == "none" else (image_log, None)
    out = tmp_path / "ds"
    export_lerobot(LeRobotExportConfig(str(log), str(out)), spec)
    seen = read_with_lerobot(out, tmp_path)
    before = episodes_of(log)
    assert seen["episodes"] == len(before) and seen["frames"] == sum(
        e.num_steps + 1 for e in before
    )
    assert seen["tasks"] == list(dict.fromkeys(e.task for e in before))
    np.testing.assert_allclose(seen["state0"], before[0].observations["state"][0], rtol=1e-6)
    assert seen["task0"] == before[0].task
    if images == "video":
        info = json.loads((out / lerobot.INFO).read_text())["features"][lerobot.IMAGE_KEY]
        assert seen["video_keys"] == [lerobot.IMAGE_KEY] and seen["video_info"] == info["info"]


READER = """
import importlib.machinery, importlib.util, json, sys, types

if importlib.util.find_spec("torchvision") is None:
    # lerobot-dataset imports torchvision at module level (transforms, and its video decoder);
    # PyPI's torchvision wheels need a CUDA torch, and this machine's is the CPU build: a stub
    # stands in for the parts that reading the frames never calls.
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.v2"):
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        mod.__path__ = []
        for attr in ("Transform", "Compose", "ToTensor"):
            setattr(mod, attr, type(attr, (), {}))
        sys.modules[name] = mod
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
from ledataset.datasets.lerobot_dataset import LeRobotDataset
from ledataset.datasets.video_utils import get_video_info

ds = LeRobotDataset("mtopt/export", root=sys.argv[1])
row = ds.hf_dataset[0]  # the frame's columns; decoding videos needs torchcodec or torchvision
keys = ds.meta.video_keys
video = ds.root / ds.meta.get_video_file_path(0, keys[0]) if keys else None
print(json.dumps({
    "episodes": ds.num_episodes,
    "frames": ds.num_frames,
    "tasks": list(ds.meta.tasks.index),
    "state0": row["observation.state"].tolist(),
    "task0": ds.meta.tasks.iloc[int(row["task_index"])].name,
    "video_keys": keys,
    "video_info": get_video_info(video) if keys else None,
}))
"""


def read_with_lerobot(root, tmp_path) -> dict:
    """What lerobot-dataset's ``LeRobotDataset`` reads from the local dataset ``root``, in a
    fresh process, offline (its caches under ``tmp_path``)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(READER), str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_refuses_a_non_empty_directory_unless_overwrite(pointmass_log, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not empty \(--overwrite replaces it\)"):
        export_lerobot(LeRobotExportConfig(str(pointmass_log), str(out)))
    assert (out / "keep.txt").read_text() == "mine"
    export_lerobot(LeRobotExportConfig(str(pointmass_log), str(out), overwrite=True))
    assert not (out / "keep.txt").exists() and (out / lerobot.INFO).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary left over


def test_an_interrupted_export_leaves_no_dataset(pointmass_log, tmp_path, monkeypatch):
    calls = []

    def fail_on_third(self, ep):
        calls.append(ep)
        if len(calls) == 3:
            raise KeyboardInterrupt
        add(self, ep)

    add = lerobot._DatasetWriter.add
    monkeypatch.setattr(lerobot._DatasetWriter, "add", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        export_lerobot(LeRobotExportConfig(str(pointmass_log), str(tmp_path / "ds")))
    assert list(tmp_path.iterdir()) == []


def test_import_names_both_shapes_when_they_do_not_match(pointmass_log, tmp_path):
    export_lerobot(LeRobotExportConfig(str(pointmass_log), str(tmp_path / "ds")))
    workcell = make_spec("workcell")
    cfg = LeRobotImportConfig(str(tmp_path / "ds"), str(tmp_path / "back"))
    with pytest.raises(
        LeRobotFormatError,
        match=r"shape \(10,\), but env 'workcell' expects state of shape \(160,\)",
    ):
        import_lerobot(cfg, workcell, workcell)
    wide = FakeSpec(state_dim=10)  # the state fits, the 3-D action does not fit its 6-D one
    with pytest.raises(
        LeRobotFormatError,
        match=r"action has shape \(3,\), but env 'fake' expects action of shape \(6,\)",
    ):
        import_lerobot(cfg, wide, wide)
    assert not (tmp_path / "back").exists()


def test_unknown_tasks_are_refused_mapped_or_added(pointmass_log, tmp_path):
    small = make_spec("pointmass")
    export_lerobot(LeRobotExportConfig(str(pointmass_log), str(tmp_path / "ds")), small)
    tasks_path = tmp_path / "ds/meta/tasks.parquet"
    table = pq.read_table(tasks_path)
    names = [f"Reach goal {t[-1]}" for t in table["__index_level_0__"].to_pylist()]
    lerobot._write_tasks(tasks_path, dict(zip(names, table["task_index"].to_pylist(), strict=True)))
    (tmp_path / "ds" / lerobot.MTOPT_PATH).unlink()  # as if recorded elsewhere
    ds, spec = str(tmp_path / "ds"), small
    with pytest.raises(LeRobotFormatError, match="mtopt task add") as err:
        import_lerobot(LeRobotImportConfig(ds, str(tmp_path / "a")), spec, spec)
    assert "'Reach goal 0'" in str(err.value) and "--task-map" in str(err.value)
    pairs = tuple(f"Reach goal {i}=reach-{i}" for i in range(4))
    report = import_lerobot(
        LeRobotImportConfig(ds, str(tmp_path / "b"), task_map=pairs), spec, spec
    )
    assert sorted(report["tasks"]) == [f"reach-{i}" for i in range(4)]
    tasks_file = tmp_path / "tasks.json"
    cfg = LeRobotImportConfig(
        ds,
        str(tmp_path / "c"),
        task_map=pairs[:2],
        tasks_file=str(tasks_file),
        new_task_skill="reach",
    )
    report = import_lerobot(cfg, spec, spec)
    assert sorted(report["added_tasks"]) == ["Reach goal 2", "Reach goal 3"]  # task_index order
    grown = json.loads(tasks_file.read_text())
    assert (
        grown["env"] == "pointmass" and [t["name"] for t in grown["tasks"]] == report["added_tasks"]
    )
    assert {e.task for e in episodes_of(tmp_path / "c")} <= {
        "reach-0",
        "reach-1",
        *report["added_tasks"],
    }


def test_the_command_line_exports_and_imports(pointmass_log, tmp_path, capsys):
    ds, back = str(tmp_path / "ds"), str(tmp_path / "back")
    args = ["data", "export", str(pointmass_log), "--format", "lerobot", "--out", ds]
    assert main([*args, "--env", "pointmass", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 12
    assert main(args) == 2  # the directory is not empty now
    assert "exists and is not empty (--overwrite replaces it)" in capsys.readouterr().err
    assert main(["data", "import", ds, "--out", back, "--env", "pointmass", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 12
    assert main(["data", "import", ds, "--out", str(tmp_path / "w"), "--env", "workcell"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtopt data import: error:") and "(10,)" in err and "(160,)" in err


def test_a_corrupt_shard_is_skipped_and_counted_not_fatal(pointmass_log, tmp_path):
    log = tmp_path / "log"
    shutil.copytree(pointmass_log, log)
    shard = sorted(log.glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:100])  # truncated: no footer
    report = export_lerobot(LeRobotExportConfig(str(log), str(tmp_path / "ds")))
    assert report["corrupt_shards"] == 1
    assert 0 < report["episodes"] < len(episodes_of(pointmass_log))
