"""LeRobot export speed: ``mtopt data export LOG --format lerobot`` in episodes/s.

Two cases: a state-only episode log (``--log``, e.g. a large workcell log; by default one the
fleet collects here) and workcell episodes with a camera image per step (collected here, at
``--image-size``), whose views go in as AV1 video. Each export is timed end to end as the
command runs it (reading and verifying the log's shards, building the frames and statistics,
encoding the videos, writing the parquet files and the metadata, renaming the directory into
place), ``--repeats`` times; the report gives the median. The import back into an episode log
is timed once per case, and the round trip is checked (same episodes, states and actions).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_lerobot_export.py \\
        --log runs/imbalanced/log --image-episodes 100 --image-size 64
    python benchmarks/bench_lerobot_export.py --smoke   # tiny logs: checks the code path
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mtopt.data.lerobot import (
    LeRobotExportConfig,
    LeRobotImportConfig,
    export_lerobot,
    import_lerobot,
)
from mtopt.data.log import EpisodeLogReader, in_robot_order
from mtopt.envs import EnvConfig
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.system.fleet import FleetConfig, collect_in_process

SMOKE = {"state_episodes": 6, "image_episodes": 2, "image_size": 32, "repeats": 1}
"""``--smoke``: two tiny workcell logs, one export each."""


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def run_case(name: str, log: Path, env: EnvConfig, args: argparse.Namespace, tmp: Path) -> dict:
    """Export ``log`` ``args.repeats`` times, import it once; print and return the speeds."""
    spec = env.spec()
    out = tmp / f"{name}-dataset"
    times, report = [], {}
    for _ in range(args.repeats):
        shutil.rmtree(out, ignore_errors=True)
        cfg = LeRobotExportConfig(str(log), str(out), max_episodes=args.episodes, progress=False)
        start = time.perf_counter()
        report = export_lerobot(cfg, spec)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    back = tmp / f"{name}-back"
    start = time.perf_counter()
    import_lerobot(LeRobotImportConfig(str(out), str(back), progress=False), spec, spec)
    import_s = time.perf_counter() - start
    images = report["images"] != "none"
    before = in_robot_order(EpisodeLogReader(log).episodes(load_images=images))
    after = in_robot_order(EpisodeLogReader(back).episodes(load_images=images))
    assert len(after) == report["episodes"] <= len(before)
    errors = []
    for a, b in zip(before, after, strict=False):
        assert a.episode_id == b.episode_id and a.task == b.task
        np.testing.assert_array_equal(a.observations["state"], b.observations["state"])
        np.testing.assert_array_equal(a.actions, b.actions)
        if images:
            diff = b.observations["image"].astype(np.int16) - a.observations["image"]
            errors.append(float(np.abs(diff).mean()))
    n, frames = report["episodes"], report["frames"]
    row = {
        "episodes": n,
        "frames": frames,
        "images": report["images"],
        "seconds": seconds,
        "export_seconds": times,
        "episodes_per_s": n / seconds,
        "frames_per_s": frames / seconds,
        "dataset_mb": dir_mb(out),
        "log_mb": dir_mb(log),
        "import_episodes_per_s": n / import_s,
        "image_mean_abs_error": statistics.fmean(errors) if errors else None,
    }
    print(
        f"{name}: {n} episodes, {frames} frames ({row['images']} images): export "
        f"{row['episodes_per_s']:.1f} episodes/s ({row['frames_per_s']:.0f} frames/s, median of "
        f"{len(times)}: {', '.join(f'{t:.2f}' for t in times)} s), dataset "
        f"{row['dataset_mb']:.1f} MB from a {row['log_mb']:.1f} MB log; import "
        f"{row['import_episodes_per_s']:.1f} episodes/s; round trip checked"
        + (f" (images: mean abs error {row['image_mean_abs_error']:.2f} of 255)" if errors else "")
    )
    return row


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (per case: episodes/s)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", help="a state-only episode log to export (default: collect one)")
    p.add_argument("--env", default="workcell", help="the environment of --log")
    p.add_argument("--episodes", type=int, default=None, help="export only the first N of --log")
    p.add_argument("--state-episodes", type=int, default=200, help="without --log: collected")
    p.add_argument("--image-episodes", type=int, default=50, help="0: no image case")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny logs: checks the code path")
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE, log=None, episodes=None)
    print(
        "command:", " ".join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    )
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average (1 min) "
        f"before the run: {os.getloadavg()[0]:.2f}" + (" (smoke)" if args.smoke else "")
    )
    cases = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = EnvConfig(name=args.env)
        log = Path(args.log) if args.log else tmp / "state-log"
        if not args.log:
            cfg = FleetConfig(out=str(log), robots=2, episodes=args.state_episodes, seed=args.seed)
            collect_in_process(cfg, env.spec())
        cases["state"] = run_case("state", log, env, args, tmp)
        if args.image_episodes:
            image_env = EnvConfig(workcell=WorkcellConfig(image_size=args.image_size))
            image_log = tmp / "image-log"
            cfg = FleetConfig(
                out=str(image_log), robots=1, episodes=args.image_episodes, seed=args.seed,
                obs="image",
            )  # fmt: skip
            collect_in_process(cfg, image_env.spec())
            cases["video"] = run_case("video", image_log, image_env, args, tmp)
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    return {"cases": cases}


if __name__ == "__main__":
    main()
