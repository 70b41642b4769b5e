"""Continuous system: Ray overhead, stage throughputs and weight staleness, in one run.

Usage: nice -n 10 python benchmarks/bench_run.py [--steps 400] [--pairs 1] [--seed 0]
       python benchmarks/bench_run.py --smoke    # 1 robot, a few steps: checks the code path

For each pair it runs the same config (``configs/run/default.yaml`` with 2 robots, 1 log
replay, 1 Bellman updater) on the local backend and on the Ray backend (a private Ray with
2 CPUs), in fresh run directories, and reports trainer steps/s over the training phase
(after the bootstrap episodes are in), the ray/local ratio, the weight staleness, and a stage
report from the local run's busy seconds (one process, so each stage's busy time is its
exact cost): collection, labelling, impersonation, targets and training throughputs, each
also as the trainer steps/s it could sustain at the configured ``episodes_per_step``; the
smallest names the bottleneck. The Ray runs join the Ray already initialised in this process,
if there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

from mtopt.config import load_config
from mtopt.envs import make_spec
from mtopt.system.run import run
from mtopt.system.run_config import RunConfig

ROOT = Path(__file__).resolve().parents[1]

SMOKE = {"steps": 6, "pairs": 1, "bootstrap": 4, "robots": 1, "batch_size": 16}
"""``--smoke``: one pair of runs of a few steps, one robot, small batches."""


def stage_report(rep: dict, cfg: RunConfig) -> list[tuple[str, float, str, float]]:
    """(stage, throughput, unit, sustainable trainer steps/s) from a local run's busy time."""
    busy = rep["busy_s"]
    eps, steps = rep["episodes_produced"], rep["step"] - rep["start_step"]
    ingested = rep["log_episodes"]
    ratio = cfg.episodes_per_step or float("nan")
    rows = []
    for stage, n, unit in (
        ("collection", eps, "episodes/s"),
        ("labelling", ingested, "episodes/s"),
        ("impersonation", ingested, "episodes/s"),
        ("log read", ingested, "episodes/s"),
        ("sampling", steps, "batches/s"),
        ("targets", steps, "batches/s"),
        ("training", steps, "steps/s"),
    ):
        rate = n / busy[stage] if busy.get(stage) else float("inf")
        per_step = rate / ratio if unit == "episodes/s" else rate
        rows.append((stage, rate, unit, per_step))
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (``runs`` and ``stages``)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--bootstrap", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--robots", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"command: nice -n 10 python benchmarks/bench_run.py --steps {args.steps} "
        f"--pairs {args.pairs} --bootstrap {args.bootstrap} --seed {args.seed} "
        f"--robots {args.robots}" + (" --smoke" if args.smoke else "")
    )
    base = load_config(RunConfig, ROOT / "configs" / "run" / "default.yaml")
    if args.batch_size is not None:
        base = replace(base, train=replace(base.train, batch_size=args.batch_size))
    base = replace(
        base,
        steps=args.steps,
        seed=args.seed,
        progress=False,
        robots=args.robots,
        updaters=1,
        log_replays=1,
        console_every_s=30.0,
        bootstrap_episodes=args.bootstrap,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for backend in ("local", "ray"):
                cfg = replace(base, backend=backend, out=f"{tmp}/{backend}-{pair}")
                rep = run(cfg, make_spec("workcell"))
                results.append((pair, backend, cfg, rep))
                print(
                    f"pair {pair} {backend:5s}: {rep['steps_per_s']:.2f} steps/s over "
                    f"{rep['train_wall_time_s']:.1f} s of training, "
                    f"{rep['episodes_produced']} episodes, wall {rep['wall_time_s']:.1f} s, "
                    f"staleness updater {rep.get('staleness_updater')}, "
                    f"robot {rep.get('staleness_robot')}, load {os.getloadavg()[0]:.2f}"
                )
    print("\nray / local training throughput:")
    for pair in range(args.pairs):
        loc = next(r for p, b, _, r in results if p == pair and b == "local")
        ray_ = next(r for p, b, _, r in results if p == pair and b == "ray")
        print(
            f"  pair {pair}: {ray_['steps_per_s']:.2f} / {loc['steps_per_s']:.2f} = "
            f"{ray_['steps_per_s'] / loc['steps_per_s']:.2f}"
        )
    _, _, cfg, loc = next(x for x in results if x[1] == "local")
    print(f"\nstage report (local run, pair 0, episodes_per_step={cfg.episodes_per_step}):")
    print("| stage | throughput | sustainable trainer steps/s |\n|---|---|---|")
    rows = stage_report(loc, cfg)
    for stage, rate, unit, per_step in rows:
        print(f"| {stage} | {rate:,.1f} {unit} | {per_step:,.1f} |")
    bottleneck = min(rows, key=lambda r: r[3])
    print(f"bottleneck: {bottleneck[0]} ({bottleneck[3]:.1f} trainer steps/s)")
    out = [
        {"pair": p, "backend": b, **{k: v for k, v in r.items() if k != "collected"}}
        for p, b, _, r in results
    ]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    stages = {s: {"rate": r, "unit": u, "trainer_steps_per_s": p} for s, r, u, p in rows}
    return {"runs": out, "stages": stages, "bottleneck": bottleneck[0]}


if __name__ == "__main__":
    main()
