"""CPU cost of one data-sharing strategy: data loading, a training step, an evaluation episode.

Planning numbers for ``mtopt experiment data-sharing`` on a shared machine, where CPU time
(``time.process_time``, one torch thread) predicts an idle machine's wall time better than
wall time does. Uses the experiment's default learner (configs/experiment/default.yaml).

    python benchmarks/bench_data_sharing_cost.py --data runs/imbalanced/log \
        --checkpoint CKPT [--steps 200] [--episodes-per-task 5]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.experiments.data_sharing import DataSharingConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.training import TrainingRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="episode-log directory")
    parser.add_argument("--checkpoint", required=True, help="checkpoint to evaluate")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--episodes-per-task", type=int, default=5, help="timed eval attempts")
    parser.add_argument("--out", default="/tmp/bench-data-sharing", help="scratch run dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    learner = DataSharingConfig().train
    cfg = replace(learner, data=args.data, out=args.out, progress=False)
    t = time.process_time()
    run = TrainingRun(cfg)
    run.load_data()
    run.build()
    print(f"load: {time.process_time() - t:.1f} s CPU, {len(run.replay)} transitions")
    assert run.trainer is not None and run.updater is not None
    for _ in range(5):  # warm-up
        run.trainer.train_step(run.updater(run.replay.sample(cfg.batch_size)))
    t, w = time.process_time(), time.time()
    for _ in range(args.steps):
        run.trainer.train_step(run.updater(run.replay.sample(cfg.batch_size)))
    cpu, wall = time.process_time() - t, time.time() - w
    print(
        f"train step (batch {cfg.batch_size}): {cpu / args.steps * 1e3:.1f} ms CPU, "
        f"{wall / args.steps * 1e3:.1f} ms wall"
    )
    policy = load_q_policy(args.checkpoint, 0.0, "cpu")
    protocol = ProtocolConfig(episodes_per_task=args.episodes_per_task, progress=False)
    t, w = time.process_time(), time.time()
    evaluate(lambda task: policy, protocol)
    n = 12 * args.episodes_per_task
    print(
        f"eval episode: {(time.process_time() - t) / n * 1e3:.1f} ms CPU, "
        f"{(time.time() - w) / n * 1e3:.1f} ms wall"
    )


if __name__ == "__main__":
    main()
