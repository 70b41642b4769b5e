"""Throughput of the Q-networks on this machine: Bellman updater, trainer step, FLOP/s.

For the state MLP, the conv Q-network (64x64 images) and the adopted learner (``learner``:
the network, batch and Bellman-updater CEM of ``--learner-config``'s ``train`` section,
``configs/demo/learning.yaml`` by default) it measures

(a) Bellman-updater throughput: transitions/s through ``bellman_targets`` (CEM 2 x 64 over target
    net 1, then Q of both target nets at a*);
(b) trainer throughput: samples/s of forward + backward + Adam step on the log loss;
(c) achieved FLOP/s of (a) and (b) -- FLOPs counted with ``torch.utils.flop_counter`` (matmul
    and conv FLOPs, forward and backward; element-wise work and Adam are not counted) -- as a
    fraction of what a large float32 ``torch.matmul`` reaches in the same run.

Usage::

    python benchmarks/bench_q_network.py [--threads N] [--seed 0] [--conv-batch 64]
    python benchmarks/bench_q_network.py --threads 1 --only learner --architectures care
    python benchmarks/bench_q_network.py --smoke    # tiny batches and windows: checks the code path

The small MLP kernels are latency-bound: if other processes load the CPU, OpenMP threads wait on
each other and MLP throughput with 2 threads can drop 10-50x (use ``--threads 1`` then). The
load average is printed so a contended run is visible.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from mtopt.config import load_config
from mtopt.envs import make_spec
from mtopt.experiments.demo import DemoConfig
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import NetworkShape, QNetworkConfig, network_shape, resolve_network
from mtopt.learning.targets import bellman_targets, q_log_loss

WORKCELL = make_spec("workcell")
"""The networks are benchmarked at the workcell's sizes (state 150, image 64, 16 task slots)."""


REPEATS = 3
"""Timing windows per entry; the fastest is reported (this VM's throughput is noisy)."""

SMOKE = {
    "min_seconds": 0.0,
    "repeats": 1,
    "matmul_sizes": [128],
    "mlp_batch": 8,
    "conv_batch": 2,
    "mlp_bellman_batch": 4,
    "conv_bellman_batch": 2,
    "conv_channels": 8,
}
"""``--smoke``: one short window per entry, tiny batches and a narrow conv net."""


def timed(
    fn: Callable[[], object], min_seconds: float, warmup: int = 2, repeats: int = REPEATS
) -> float:
    """Seconds per call of ``fn``: the best of ``repeats`` windows of >= ``min_seconds``."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and calls >= 3:
                break
        best = min(best, elapsed / calls)
    return best


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_flops_per_s(
    min_seconds: float, sizes: tuple[int, ...] = (2048, 4096), repeats: int = REPEATS
) -> float:
    """Best float32 FLOP/s of a square ``torch.matmul`` over ``sizes``."""
    g = torch.Generator().manual_seed(0)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        sec = timed(lambda a=a, b=b: torch.matmul(a, b), min_seconds, repeats=repeats)
        best = max(best, 2 * n**3 / sec)
    return best


def make_obs(
    cfg: QNetworkConfig, shape: NetworkShape, batch: int, g: torch.Generator
) -> dict[str, torch.Tensor]:
    obs = {key: torch.rand(batch, width, generator=g) for key, width in shape.inputs}
    if "gripper_status" in obs:
        obs["gripper_status"] = torch.randint(0, 2, (batch, 1), generator=g).float()
    if cfg.kind == "conv":
        size = (batch, shape.image_size, shape.image_size, 3)
        obs["image"] = torch.randint(0, 256, size, generator=g, dtype=torch.uint8)
    else:
        obs["state"] = torch.randn(batch, shape.state_dim, generator=g)
    return obs


def bench(
    name: str,
    cfg: QNetworkConfig,
    train_batch: int,
    bellman_batch: int,
    args: argparse.Namespace,
    peak: float,
    cem: CEMConfig | None = None,
) -> list[tuple[str, str, int, float, float, float]]:
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    fmt = torch.channels_last if (args.channels_last and cfg.kind == "conv") else None
    cfg = resolve_network(cfg, WORKCELL)
    shape = network_shape(cfg, WORKCELL, "image" if cfg.kind == "conv" else "state")
    online = build_q_network(cfg, shape)
    t1, t2 = build_q_network(cfg, shape).eval(), build_q_network(cfg, shape).eval()
    if fmt is not None:
        for net in (online, t1, t2):
            net.to(memory_format=fmt)
    opt = torch.optim.Adam(online.parameters(), lr=1e-4)
    cem = cem or CEMConfig()

    obs = make_obs(cfg, shape, train_batch, g)
    actions = torch.rand(train_batch, 6, generator=g) * 2 - 1
    task = torch.randint(0, shape.task_capacity, (train_batch,), generator=g)
    target = torch.rand(train_batch, generator=g)

    def train_step() -> None:
        loss = q_log_loss(online.logits(obs, actions, task), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    next_obs = make_obs(cfg, shape, bellman_batch, g)
    next_task = torch.randint(0, shape.task_capacity, (bellman_batch,), generator=g)
    reward, done = torch.zeros(bellman_batch), torch.zeros(bellman_batch)
    cem_gen = torch.Generator().manual_seed(args.seed)

    def bellman() -> None:
        bellman_targets(
            t1, t2, next_obs, next_task, reward, done, cem, WORKCELL.action, cem_gen, 0.9
        )

    rows = []
    for label, fn, batch in (
        ("bellman", bellman, bellman_batch),
        ("train", train_step, train_batch),
    ):
        flops = count_flops(fn)
        sec = timed(fn, args.min_seconds, repeats=args.repeats)
        rows.append((name, label, batch, batch / sec, flops / sec, flops / sec / peak))
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its table and return it (``peak_flops_per_s`` and ``rows``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-seconds", type=float, default=1.5, help="length of a timing window")
    p.add_argument("--mlp-batch", type=int, default=256)
    p.add_argument("--conv-batch", type=int, default=64)
    p.add_argument("--mlp-bellman-batch", type=int, default=256)
    p.add_argument("--conv-bellman-batch", type=int, default=16)
    p.add_argument("--conv-channels", type=int, default=QNetworkConfig().conv_channels)
    p.add_argument("--channels-last", action="store_true", help="channels-last conv weights")
    p.add_argument("--only", choices=("mlp", "conv", "learner"), default=None)
    p.add_argument(
        "--learner-config",
        default="configs/demo/learning.yaml",
        help="demo config whose train section is the 'learner' row (network, batch, CEM)",
    )
    p.add_argument(
        "--architectures",
        nargs="*",
        default=[],
        choices=("soft-modular", "care"),
        help="also the adopted learner with these network architectures (docs/methods.md)",
    )
    p.add_argument("--repeats", type=int, default=REPEATS, help="timing windows per entry")
    p.add_argument("--matmul-sizes", type=int, nargs="+", default=[2048, 4096])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code path")
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    torch.set_num_threads(args.threads)

    print(
        "command:", " ".join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    )
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}, "
        f"channels_last {args.channels_last}" + (" (smoke)" if args.smoke else "")
    )
    print(f"load average (1 min) before the run: {os.getloadavg()[0]:.2f}")
    peak = matmul_flops_per_s(args.min_seconds, tuple(args.matmul_sizes), args.repeats)
    sizes = ", ".join(f"{n}^3" for n in args.matmul_sizes)
    print(f"float32 matmul (best of {sizes}): {peak / 1e9:.1f} GFLOP/s")

    rows = []
    if args.only in (None, "mlp"):
        mlp = QNetworkConfig(kind="mlp")  # the default learner's object-centric MLP
        rows += bench("mlp", mlp, args.mlp_batch, args.mlp_bellman_batch, args, peak)
    if args.only in (None, "learner"):  # the adopted learner, at its own batch and CEM
        learner = load_config(DemoConfig, args.learner_config).train
        batch = SMOKE["mlp_batch"] if args.smoke else learner.batch_size
        net = learner.trainer.network
        rows += bench("learner", net, batch, batch, args, peak, learner.cem)
        for arch in args.architectures:
            net_a = dataclasses.replace(net, architecture=arch)
            rows += bench(arch, net_a, batch, batch, args, peak, learner.cem)
    if args.only in (None, "conv"):
        conv = dataclasses.replace(QNetworkConfig(), conv_channels=args.conv_channels)
        rows += bench("conv64", conv, args.conv_batch, args.conv_bellman_batch, args, peak)

    print(
        f"\n{'net':12} {'stage':8} {'batch':>6} {'samples/s':>11} {'GFLOP/s':>9} {'of matmul':>10}"
    )
    for name, label, batch, sps, fps, frac in rows:
        print(f"{name:12} {label:8} {batch:6d} {sps:11.1f} {fps / 1e9:9.1f} {frac:10.1%}")
    keys = ("net", "stage", "batch", "samples_per_s", "flops_per_s", "fraction_of_matmul")
    return {"peak_flops_per_s": peak, "rows": [dict(zip(keys, r, strict=True)) for r in rows]}


if __name__ == "__main__":
    main()
