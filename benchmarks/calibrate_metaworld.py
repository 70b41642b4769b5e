"""Calibrate Meta-World's bootstrap: per task, the expert's action noise that makes it succeed
about a quarter of the time (issue 32: 10-40 %; MT-Opt's learner must improve on weak data).

For every setting of the grid ``--noise`` x ``--random`` (Gaussian std, probability of a
uniformly random action per step) the noisy expert (``mtopt.envs.metaworld``) attempts every
task of ``--tasks`` (default: the benchmark's) ``--episodes`` times under the evaluation
protocol (attempt k at goal k, success if the flag was ever 1). First the plain expert is
measured at every factor of ``--scales`` on its translation command; a task whose expert fails
at factor 1 (below ``EXPERT_SCALE_BELOW``) is calibrated with its best factor, the
``EXPERT_SCALE`` table. Per task the report picks the setting whose rate is closest to
``--target`` (ties: the least noise) and prints the table to paste into ``BOOTSTRAP_NOISE``.

    python benchmarks/calibrate_metaworld.py --benchmark mt10 --episodes 50 --seed 0
    python benchmarks/calibrate_metaworld.py --tasks push-v3 --noise 0.1 0.2 --random 0 0.1
    python benchmarks/calibrate_metaworld.py --benchmark mt50 --scales 1 0.5 0.3 --episodes 20
    python benchmarks/calibrate_metaworld.py --smoke     # a few episodes: checks the code path
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import tyro

from mtopt.envs.metaworld import (
    EXPERT_SCALE_BELOW,
    MetaWorldConfig,
    MetaWorldSpec,
    NoisyExpertPolicy,
)
from mtopt.evaluation.protocol import ProtocolConfig, evaluate


@dataclass(frozen=True)
class Args:
    """Calibration of Meta-World's noisy experts."""

    benchmark: str = "mt10"
    """``mt10`` or ``mt50``."""
    noise: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    """Gaussian noise levels (action units) to measure."""
    random: tuple[float, ...] = (0.1,)
    """Probabilities of a uniformly random action per step to measure (with every noise
    level)."""
    tasks: tuple[str, ...] = ()
    """Tasks to calibrate (default: every task of the benchmark)."""
    episodes: int = 50
    """Attempts per task and noise level (50: one per goal position)."""
    seed: int = 0
    """Seed of the attempts (the evaluation protocol's base seed)."""
    target: float = 0.25
    """Bootstrap success rate to aim for."""
    scales: tuple[float, ...] = (1.0,)
    """Factors on the expert's translation command to measure (first, without noise). A task
    whose expert succeeds less than ``EXPERT_SCALE_BELOW`` at factor 1 takes the factor under
    which it succeeds most (ties: the larger), and its noise is calibrated with that factor:
    the ``EXPERT_SCALE`` table."""
    env: MetaWorldConfig = field(default_factory=MetaWorldConfig)
    """Episode settings (``action_repeat``, ``terminate_on_success``, ...)."""
    out: str = ""
    """Write the report as JSON here ('' : no file)."""
    smoke: bool = False
    """A tiny run (2 tasks, 2 attempts, 2 levels, factors 1 and 0.5): checks the code path."""


def rates(
    spec: MetaWorldSpec,
    episodes: int,
    seed: int,
    tasks: tuple[str, ...],
    noise: float,
    random: float,
    scale: dict[str, float],
) -> dict[str, float]:
    """Per task, the success rate over ``episodes`` attempts of the expert with translation
    factor ``scale[task]``, Gaussian noise ``noise`` and random-action probability ``random``."""
    protocol = ProtocolConfig(episodes_per_task=episodes, seed=seed, tasks=tasks, progress=False)
    result = evaluate(
        lambda task: NoisyExpertPolicy(task, noise, random, scale[task]), protocol, spec
    )
    return {task: r["success_rate"] for task, r in result["tasks"].items()}


def choose_scale(expert: dict[float, float], below: float = EXPERT_SCALE_BELOW) -> float:
    """The factor of one task from its expert's rate per factor: 1 if the rate at 1 is at least
    ``below``, else the factor with the highest rate (ties: the larger factor)."""
    if expert.get(1.0, 0.0) >= below:
        return 1.0
    return max(expert, key=lambda s: (expert[s], s))


def expert_column(factor: float) -> str:
    """Column name of the plain expert at one factor, e.g. ``expert x0.5``."""
    return "expert" if factor == 1.0 else f"expert x{factor:g}"


def setting_name(noise: float, random: float) -> str:
    """Column name of one grid setting, e.g. ``0.5/0.1``."""
    return f"{noise:g}/{random:g}"


def main(argv: list[str] | None = None) -> dict:
    args = tyro.cli(Args, args=argv)
    if args.smoke:
        args = replace(
            args, episodes=2, noise=args.noise[:2], random=args.random[:1], scales=(1.0, 0.5)
        )
    logging.basicConfig(level=logging.WARNING)
    base = MetaWorldSpec(benchmark=args.benchmark, config=args.env)  # type: ignore[arg-type]
    base.task_set.validate(args.tasks)
    tasks = args.tasks or base.task_set.names
    if args.smoke:
        tasks = tasks[:2]
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print("command: python benchmarks/calibrate_metaworld.py " + " ".join(sys.argv[1:]))
    t0 = time.time()
    table: dict[str, dict[str, float]] = {}
    scales = tuple(dict.fromkeys((1.0, *args.scales)))
    for factor in scales:
        table[expert_column(factor)] = rates(
            base, args.episodes, args.seed, tasks, 0.0, 0.0, dict.fromkeys(tasks, factor)
        )
    scale = {
        task: choose_scale({f: table[expert_column(f)][task] for f in scales}) for task in tasks
    }
    grid = {setting_name(n, r): (n, r) for r in args.random for n in args.noise}
    for name, (noise, random) in grid.items():
        table[name] = rates(base, args.episodes, args.seed, tasks, noise, random, scale)
    chosen = {}
    for task in tasks:
        chosen[task] = min(grid, key=lambda c: (abs(table[c][task] - args.target), grid[c]))
    cols = list(table)
    w = max(len(t) for t in tasks) + 2
    cw = max(9, *(len(c) + 2 for c in cols))
    lines = [f"{'task':<{w}}" + "".join(f"{c:>{cw}}" for c in cols) + f"{'chosen':>{cw}}"]
    for task in tasks:
        row = "".join(f"{table[c][task]:>{cw}.2f}" for c in cols)
        pick = chosen[task] + (f" x{scale[task]:g}" if scale[task] != 1.0 else "")
        lines.append(f"{task:<{w}}{row}{pick:>{cw}}")
    print(f"success rate by noise/random ({args.episodes} attempts each, action_repeat "
          f"{args.env.action_repeat})")  # fmt: skip
    print("\n".join(lines))
    print(f"wall time: {time.time() - t0:.0f} s")
    report = {
        "args": {**vars(args), "env": vars(args.env)},
        "rates": table,
        "chosen": {t: list(grid[c]) for t, c in chosen.items()},
        "scale": {t: f for t, f in scale.items() if f != 1.0},
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
