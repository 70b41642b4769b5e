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
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mtopt.success.detector import SuccessDetector, SuccessDetectorLabeller
from mtopt.success.labelling import read_log_episodes
from mtopt.tasks import default_task_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task_set = default_task_set()
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
    print(
        json.dumps(
            {
                "kind": detector.config.kind,
                "episodes": len(episodes),
                "threads": args.threads,
                "per_episode_episodes_per_s": round(per_episode, 1),
                "batched_episodes_per_s": round(batched, 1),
                "log_replay_primed_episodes_per_s": round(log_replay, 1),
                "batch_size": args.batch_size,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
