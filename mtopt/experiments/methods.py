"""``mtopt experiment methods``: MT-Opt's default learner against the related multi-task methods.

Every method is the adopted learner with one change, trained on the *same* offline episode log
with the same number of gradient steps, batch size and seeds, and evaluated on every task of the
task set (:mod:`mtopt.experiments.seeded`):

* ``mt-opt``: the learner as configured (f_skill impersonation, re-balanced sampling, the
  one-hot task input);
* ``pcgrad``: PCGrad's projection of conflicting per-task gradients (``trainer.gradient``);
* ``cds``: conservative data sharing instead of f_skill (``impersonation.kind: cds``);
* ``soft-modular``: soft modularization's routed modules (``network.architecture``);
* ``care``: CARE's mixture of encoders attended by task metadata (``network.architecture``).

The table gives the mean over seeds with its 95 % t-interval per task and on the mean, each
method against ``mt-opt`` beside the seeds' spreads, and the training cost: seconds per
gradient step (median over seeds) and its ratio to ``mt-opt``'s. Outputs: ``OUT/table.json``,
``OUT/table.md``, ``OUT/methods.png``, ``OUT/config.yaml``, one directory per method and seed.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import numpy as np

from mtopt.data.impersonation import ImpersonationConfig
from mtopt.experiments.seeded import SeededExperimentConfig, Variant
from mtopt.jsonio import write_json
from mtopt.system.training_config import LearnerConfig

METHODS = ("mt-opt", "pcgrad", "cds", "soft-modular", "care")
"""The compared methods, MT-Opt's default first."""


def method_learner(method: str, base: LearnerConfig, cds_percentile: float) -> LearnerConfig:
    """``base`` with the one change that makes it ``method``."""
    trainer, network = base.trainer, base.trainer.network
    if method == "mt-opt":
        return base
    if method == "pcgrad":
        return replace(base, trainer=replace(trainer, gradient="pcgrad"))
    if method == "cds":
        return replace(
            base, impersonation=ImpersonationConfig(kind="cds", percentile=cds_percentile)
        )
    if method in ("soft-modular", "care"):
        network = replace(network, architecture=method)
        return replace(base, trainer=replace(trainer, network=network))
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


@dataclass(frozen=True)
class MethodsConfig(SeededExperimentConfig):
    """MT-Opt's default against PCGrad, CDS, soft modularization and CARE on one offline
    dataset, with the same data, steps and seeds."""

    out: str = "runs/methods"
    """Output directory (table.json, table.md, methods.png, one subdirectory per method and
    seed)."""
    methods: tuple[str, ...] = METHODS
    """The methods to compare; ``mt-opt`` must be among them (the others are compared with
    it)."""
    cds_percentile: float = 50.0
    """CDS: the percentile of a task's own Q-values a shared transition must reach."""

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or len(set(self.methods)) != len(self.methods):
            raise ValueError(
                f"methods must be distinct names among {METHODS}, got {list(self.methods)}"
            )
        if "mt-opt" not in self.methods:
            raise ValueError(f"methods must include 'mt-opt', got {list(self.methods)}")
        if not 0.0 <= self.cds_percentile <= 100.0:
            raise ValueError(f"cds_percentile must be in [0, 100], got {self.cds_percentile!r}")

    @classmethod
    def quick(cls) -> Self:
        """The ``--quick`` preset: every method for a few steps on 2 seeds, for the tests."""
        base = SeededExperimentConfig.quick()
        return cls(
            seeds=base.seeds,
            steps=base.steps,
            eval_episodes_per_task=base.eval_episodes_per_task,
            train=base.train,
        )


def training_cost(out: str | Path, methods: tuple[str, ...]) -> dict[str, Any]:
    """Seconds per gradient step of each method (median over its seeds' training runs) and the
    ratio to ``mt-opt``'s, read from the finished jobs' ``result.json``."""
    cost: dict[str, Any] = {}
    for m in methods:
        per_step = []
        for path in sorted((Path(out) / m).glob("seed-*/result.json")):
            r = json.loads(path.read_text())
            if r.get("train_steps"):
                per_step.append(r["train_wall_time_s"] / r["train_steps"])
        cost[m] = {"s_per_step": statistics.median(per_step) if per_step else float("nan")}
    base = cost["mt-opt"]["s_per_step"]
    for c in cost.values():
        c["ratio"] = c["s_per_step"] / base if base == base and base > 0 else float("nan")
    return cost


def format_cost(cost: Mapping[str, Any]) -> str:
    """The training cost as a markdown table."""
    lines = ["| method | ms per step | against mt-opt |", "|---|---|---|"]
    for m, c in cost.items():
        lines.append(f"| {m} | {1000 * c['s_per_step']:.1f} | {c['ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot_methods(summary: Mapping[str, Any], path: str | Path, title: str) -> None:
    """Mean success over tasks per method (bars: mean over seeds with its 95 % t-interval,
    dots: each seed) and the per-task means over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["variants"])
    tasks = summary["tasks"]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(6 + 0.6 * len(tasks), 4.5), gridspec_kw={"width_ratios": [1, 3]}
    )
    xs = np.arange(len(names))
    stats = [summary["variants"][n]["mean"] for n in names]
    means = np.array([s["mean"] for s in stats])
    err = np.nan_to_num(
        np.stack([means - [s["lo"] for s in stats], np.array([s["hi"] for s in stats]) - means])
    )
    left.bar(xs, means, 0.6, yerr=err, capsize=3)
    for i, s in enumerate(stats):
        left.plot([i] * len(s["seeds"]), s["seeds"], "o", color="k", markersize=2.5)
    left.set_xticks(xs, names, rotation=30, ha="right")
    left.set_ylim(0, 1)
    left.set_ylabel("success rate (mean over tasks)")
    width = 0.8 / len(names)
    tx = np.arange(len(tasks))
    for i, n in enumerate(names):
        per_task = [summary["variants"][n]["tasks"][t]["mean"] for t in tasks]
        right.bar(tx + (i - (len(names) - 1) / 2) * width, per_task, width, label=n)
    right.set_xticks(tx, tasks, rotation=30, ha="right", fontsize=7)
    right.set_ylim(0, 1)
    right.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_methods(config: MethodsConfig) -> dict[str, Any]:
    """Run (or resume) every method on every seed; write and return the table, the training
    cost and the plot."""
    spec = config.start()
    methods = ("mt-opt", *(m for m in config.methods if m != "mt-opt"))
    variants = [Variant(m, method_learner(m, config.train, config.cds_percentile)) for m in methods]
    tasks = spec.task_set.names
    title = f"Multi-task methods on {spec.name}: same data, steps and seeds"
    result = config.run(variants, tasks, spec, title)
    cost = training_cost(config.out, methods)
    out = Path(config.out)
    table = {k: v for k, v in result.items() if k != "markdown"}
    write_json({**table, "training_cost": cost}, out / "table.json")
    markdown = result["markdown"] + "\n### Training cost\n\n" + format_cost(cost)
    (out / "table.md").write_text(markdown)
    plot_methods(result, out / "methods.png", title)
    return {**result, "training_cost": cost, "markdown": markdown}
