"""Cost of PCGrad per trainer step: ``trainer.gradient`` ``sum`` against ``pcgrad``.

Two trainers of the adopted learner (the ``train.trainer`` section of ``--learner-config``,
``configs/demo/learning.yaml`` by default: the objects-action MLP, conservative penalty) at the
workcell's sizes take steps on the same synthetic batches (random observations, actions and
targets; ``--batch`` rows spread round-robin over ``--tasks`` task slots, so every one of them
is present). Windows of ``--steps`` steps alternate between the two, in swapped order every
repetition, so that load drifts on the machine hit both alike; the report gives the median
ms/step of each over ``--repeats`` windows, the ratio of the medians and the median of the
per-repetition ratios. PCGrad adds one backward pass per task present in the batch, the
projection and the write-back of the flat gradient.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_pcgrad.py --threads 1 --steps 20 --repeats 7
    python benchmarks/bench_pcgrad.py --smoke    # tiny sizes: checks the code path
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch

from mtopt.batches import TrainBatch
from mtopt.config import load_config
from mtopt.envs import EnvConfig
from mtopt.experiments.demo import DemoConfig
from mtopt.learning.networks import NetworkShape, network_shape
from mtopt.learning.trainer import GRADIENT_KINDS, Trainer

SMOKE = {"steps": 2, "repeats": 2, "warmup": 1, "batch": 24, "tasks": 3, "batches": 2}
"""``--smoke``: two short windows per gradient kind on a small batch of 3 tasks."""


def make_batch(
    shape: NetworkShape, batch: int, tasks: int, g: torch.Generator, device: torch.device
) -> TrainBatch:
    """A synthetic training batch: random inputs, targets in [0, 1], rows over ``tasks`` slots."""
    obs = {key: torch.rand(batch, width, generator=g) for key, width in shape.inputs}
    if "gripper_status" in obs:
        obs["gripper_status"] = torch.randint(0, 2, (batch, 1), generator=g).float()
    obs["state"] = torch.randn(batch, shape.state_dim, generator=g)
    action = torch.rand(batch, shape.action_dim, generator=g) * 2 - 1
    task = torch.arange(batch) % tasks
    target = torch.rand(batch, generator=g)
    out = TrainBatch(obs, action, task, target)
    return TrainBatch(
        {k: v.to(device) for k, v in out.obs.items()},
        out.action.to(device),
        out.task.to(device),
        out.target.to(device),
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (per gradient kind: ms/step)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128, help="rows per training batch")
    p.add_argument("--tasks", type=int, default=12, help="task slots the rows are spread over")
    p.add_argument("--steps", type=int, default=20, help="trainer steps per timing window")
    p.add_argument("--repeats", type=int, default=7, help="timing windows per gradient kind")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per kind first")
    p.add_argument("--batches", type=int, default=8, help="distinct batches cycled through")
    p.add_argument(
        "--learner-config",
        default="configs/demo/learning.yaml",
        help="demo config whose train.trainer section is benchmarked",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code path")
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    torch.set_num_threads(args.threads)

    demo = load_config(DemoConfig, args.learner_config)
    spec = EnvConfig().spec()
    base = dataclasses.replace(demo.train.trainer, device="cpu")
    shape = network_shape(base.network, spec)
    if not 1 <= args.tasks <= min(shape.task_capacity, args.batch):
        raise SystemExit(f"--tasks must be in [1, {min(shape.task_capacity, args.batch)}]")
    trainers = {
        kind: Trainer(dataclasses.replace(base, gradient=kind), shape, spec.action, args.seed)
        for kind in GRADIENT_KINDS
    }
    g = torch.Generator().manual_seed(args.seed)
    device = trainers["sum"].device
    batches = [make_batch(shape, args.batch, args.tasks, g, device) for _ in range(args.batches)]
    cursor = dict.fromkeys(GRADIENT_KINDS, 0)

    def run(kind: str, steps: int) -> float:
        """Seconds per step over ``steps`` steps of trainer ``kind``."""
        start = time.perf_counter()
        for _ in range(steps):
            trainers[kind].train_step(batches[cursor[kind] % len(batches)])
            cursor[kind] += 1
        return (time.perf_counter() - start) / steps

    print(
        "command:", " ".join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    )
    params = sum(q.numel() for q in trainers["sum"].online.parameters())
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}"
        + (" (smoke)" if args.smoke else "")
    )
    print(
        f"network {base.network.kind}/{base.network.state_encoder} width "
        f"{base.network.mlp_width} ({params} parameters), batch {args.batch} over {args.tasks} "
        f"tasks, conservative weight {base.conservative_weight}"
    )
    print(f"load average (1 min) before the run: {os.getloadavg()[0]:.2f}")
    for kind in GRADIENT_KINDS:
        run(kind, args.warmup)
    windows: dict[str, list[float]] = {kind: [] for kind in GRADIENT_KINDS}
    for rep in range(args.repeats):
        for kind in GRADIENT_KINDS if rep % 2 == 0 else GRADIENT_KINDS[::-1]:
            windows[kind].append(run(kind, args.steps) * 1e3)
    ratios = [pc / s for s, pc in zip(windows["sum"], windows["pcgrad"], strict=True)]
    median = {kind: statistics.median(ms) for kind, ms in windows.items()}
    ratio = median["pcgrad"] / median["sum"]

    print(f"\n{'gradient':9} {'median ms/step':>15} {'min':>8} {'max':>8}")
    for kind, ms in windows.items():
        print(f"{kind:9} {median[kind]:15.2f} {min(ms):8.2f} {max(ms):8.2f}")
    print(
        f"pcgrad / sum: {ratio:.2f}x (ratio of medians), {statistics.median(ratios):.2f}x "
        f"(median of {args.repeats} interleaved repetitions of {args.steps} steps; "
        f"per repetition: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    return {
        "batch": args.batch,
        "tasks": args.tasks,
        "ms_per_step": median,
        "windows_ms_per_step": windows,
        "ratio": ratio,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main()
