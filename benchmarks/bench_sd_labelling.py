"""Success-detector labelling throughput (episodes/s) on this CPU.

Measures the two ways an SD labels episodes of an episode log:

* ``per-episode``: :class:`SuccessDetectorLabeller` called once per episode for the tasks of its
  skill, as log replay / impersonation do (one forward pass per episode);
* ``batched``: :meth:`SuccessDetector.label` on batches of episodes (one forward per batch);
* ``log_replay_primed``: what log replay does: ``prime`` a poll's episodes in batches, then the
  per-episode calls of impersonation read the primed labels.

Reading the log is not timed (the final states / views are loaded first).

    PYTHONPATH=. python benchmarks/bench_sd_labelling.py --checkpoint runs/sd-state --log runs/log \
        [--episodes 2000] [--threads 1]
    python benchmarks/bench_sd_labelling.py --smoke     # checks the code path

``--smoke`` writes a small log of fake episodes (``tests/fakes.py``) and trains a small state
detector on it for a few steps, then times labelling that log.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.envs.workcell_tasks import workcell_task_set
from mtopt.success.detector import SuccessDetector, SuccessDetectorLabeller
from mtopt.success.labelling import read_log_episodes
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, train_success_detector

SMOKE = {"episodes": 48, "batch_size": 16}
"""``--smoke``: episodes of the fake log (all labelled) and the labelling batch size."""


def smoke_inputs(tmp: str, episodes: int, seed: int = 0) -> tuple[str, str]:
    """A log of fake episodes in ``tmp`` and a state detector trained on it for a few steps."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes import FakeSpec, make_fake_episode

    rng = np.random.default_rng(seed)
    log = f"{tmp}/log"
    for robot in (0, 1):
        with EpisodeLogWriter(log, robot, EpisodeLogConfig(shard_episodes=8, fsync=False)) as w:
            for _ in range(episodes // 2):
                w.append(make_fake_episode(rng, robot_id=robot, num_steps=4))
    report = train_success_detector(
        SDTrainConfig(
            log=log,
            out=f"{tmp}/sd",
            steps=2,
            batch_size=8,
            network=SDNetworkConfig(kind="state", state_encoder="flat", width=16),
            progress=False,
            device="cpu",
        ),
        FakeSpec(),
    )
    return report["checkpoint"], log


def measure(args: argparse.Namespace) -> dict:
    task_set = workcell_task_set()
    detector = SuccessDetector.load(args.checkpoint, task_set, "cpu")
    episodes = read_log_episodes(args.log, detector.needs_views)[: args.episodes]
    labeller = SuccessDetectorLabeller(detector)
    skill_tasks = {s: task_set.tasks_of_skill(s) for s in task_set.skills}
    t0 = time.perf_counter()
    for ep in episodes:
        labeller(ep, skill_tasks[task_set[ep.task].skill])
    per_episode = len(episodes) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(episodes), args.batch_size):
        detector.label(episodes[i : i + args.batch_size], task_set.names)
    batched = len(episodes) / (time.perf_counter() - t0)
    primed = SuccessDetectorLabeller(detector, args.batch_size)
    t0 = time.perf_counter()
    primed.prime(episodes)  # what log replay does with every poll's new episodes
    for ep in episodes:
        primed(ep, skill_tasks[task_set[ep.task].skill])
    log_replay = len(episodes) / (time.perf_counter() - t0)
    return {
        "kind": detector.config.kind,
        "episodes": len(episodes),
        "threads": args.threads,
        "per_episode_episodes_per_s": round(per_episode, 1),
        "batched_episodes_per_s": round(batched, 1),
        "log_replay_primed_episodes_per_s": round(log_replay, 1),
        "batch_size": args.batch_size,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report (JSON) and return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="SD checkpoint (required unless --smoke)")
    parser.add_argument("--log", help="episode log (required unless --smoke)")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if not args.smoke and (args.checkpoint is None or args.log is None):
        parser.error("--checkpoint and --log are required (or give --smoke)")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        if args.smoke:
            vars(args).update(SMOKE)
            with tempfile.TemporaryDirectory() as tmp:
                args.checkpoint, args.log = smoke_inputs(tmp, args.episodes)
                torch.set_num_threads(args.threads)  # training sets its own
                report = measure(args)
        else:
            report = measure(args)
    finally:
        torch.set_num_threads(threads)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
