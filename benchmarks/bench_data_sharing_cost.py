"""CPU cost of one data-sharing strategy: data loading, a training step, an evaluation episode.

Planning numbers for ``mtopt experiment data-sharing`` on a shared machine, where CPU time
(``time.process_time``, one torch thread) predicts an idle machine's wall time better than
wall time does. Uses the experiment's default learner (configs/experiment/default.yaml).

    python benchmarks/bench_data_sharing_cost.py --data runs/imbalanced/log \
        --checkpoint CKPT [--steps 200] [--episodes-per-task 5]
    python benchmarks/bench_data_sharing_cost.py --smoke    # checks the code path

``--smoke`` collects a few scripted episodes in this process, times 2 training steps and
evaluates (1 attempt per task) a checkpoint of the network it just built.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mtopt.envs import make_spec
from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.experiments.data_sharing import DataSharingConfig
from mtopt.learning.checkpoint import save_checkpoint
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.fleet import FleetConfig, collect_in_process
from mtopt.system.training import TrainingRun
from mtopt.system.training_config import TrainConfig

WORKCELL = make_spec("workcell")

SMOKE = {"steps": 2, "episodes_per_task": 1, "episodes": 6}
"""``--smoke``: timed training steps, evaluation attempts per task, collected episodes."""


def measure(args: argparse.Namespace, out: str, checkpoint: str | None) -> dict[str, float]:
    """Time loading, training steps and evaluation episodes; print and return the costs.

    Without ``checkpoint`` the network this run built is saved to ``out`` and evaluated."""
    learner = DataSharingConfig().train
    cfg = TrainConfig.from_learner(learner, data=args.data, out=out, progress=False)
    t = time.process_time()
    run = TrainingRun(cfg, WORKCELL)
    run.load_data()
    load_cpu = time.process_time() - t
    print(f"load: {load_cpu:.1f} s CPU, {len(run.replay)} transitions")
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
    if checkpoint is None:
        path = save_checkpoint(
            Path(out) / "checkpoints", run.trainer.step, run.checkpoint_payload()
        )
        checkpoint = str(path)
    policy = load_q_policy(checkpoint, WORKCELL, PolicyConfig(device="cpu"))
    protocol = ProtocolConfig(episodes_per_task=args.episodes_per_task, progress=False)
    t, w = time.process_time(), time.time()
    evaluate(lambda task: policy, protocol, WORKCELL)
    n = len(WORKCELL.task_set) * args.episodes_per_task
    eval_cpu, eval_wall = (time.process_time() - t) / n, (time.time() - w) / n
    print(f"eval episode: {eval_cpu * 1e3:.1f} ms CPU, {eval_wall * 1e3:.1f} ms wall")
    return {
        "load_cpu_s": load_cpu,
        "transitions": len(run.replay),
        "train_step_cpu_ms": cpu / args.steps * 1e3,
        "train_step_wall_ms": wall / args.steps * 1e3,
        "eval_episode_cpu_ms": eval_cpu * 1e3,
        "eval_episode_wall_ms": eval_wall * 1e3,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print its report and return it (CPU and wall costs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="episode-log directory (required unless --smoke)")
    parser.add_argument("--checkpoint", help="checkpoint to evaluate (required unless --smoke)")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--episodes-per-task", type=int, default=5, help="timed eval attempts")
    parser.add_argument("--out", default="/tmp/bench-data-sharing", help="scratch run dir")
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if not args.smoke and (args.data is None or args.checkpoint is None):
        parser.error("--data and --checkpoint are required (or give --smoke)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if not args.smoke:
            return measure(args, args.out, args.checkpoint)
        vars(args).update(SMOKE)
        print(f"smoke: {args.episodes} scripted episodes, {args.steps} steps, 1 attempt per task")
        with tempfile.TemporaryDirectory() as tmp:
            args.data = f"{tmp}/log"
            fleet = FleetConfig(out=args.data, robots=1, episodes=args.episodes)
            collect_in_process(fleet, WORKCELL)
            return measure(args, f"{tmp}/run", None)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
