"""Learner variants trained on one offline dataset over several seeds, and compared.

The paper's ablations (Table 1, Sec. 5.5) train a few variants of the learner on the same
offline episode log with the same number of gradient steps and evaluate them on the same tasks.
One seed decides nothing, so every variant runs once per training seed and is summarised as

* per task and on the mean over the evaluated tasks: the mean over seeds with a 95 % Student-t
  interval (:func:`~mtopt.evaluation.seeds.seed_interval`) and all attempts pooled with a
  Wilson interval;
* against the first variant: the difference of the seed means next to both seeds' spreads
  (:func:`~mtopt.evaluation.seeds.compare_to_baseline`).

Each (variant, seed) job writes ``OUT/VARIANT/seed-S/result.json`` when it is done and is not
run again; a job cut during training resumes from its newest checkpoint. A finished job of a
different learner is refused rather than mixed in. Evaluation seed of training seed ``S`` is
``eval_seed + S``; every variant of one seed sees the same evaluation scenes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from mtopt.config import save_config, to_dict
from mtopt.envs import EnvConfig
from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.evaluation.seeds import compare_to_baseline, pooled_interval, seed_interval
from mtopt.experiments.demo import demo_learner, demo_policy
from mtopt.experiments.runtime import set_torch_threads
from mtopt.jsonio import write_json
from mtopt.learning.checkpoint import latest_checkpoint
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.spec import EnvSpec
from mtopt.system.training import train
from mtopt.system.training_config import LearnerConfig, TrainConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One learner of a comparison: its name and its complete settings (trained tasks,
    impersonation, sampler, network, ...)."""

    name: str
    learner: LearnerConfig


def adopted_learner() -> LearnerConfig:
    """The demo's learner (``configs/demo/learning.yaml``) with ground-truth rewards: these
    experiments compare what the learner is trained on, not reward sources (``--train.rewards
    success_detector --train.success-detector PATH`` uses a detector instead)."""
    return replace(demo_learner(), rewards="oracle")


def check_seeds_and_counts(config: Any, counts: Sequence[str]) -> None:
    """Refuse an experiment config whose ``seeds`` are empty or repeat, or one of whose
    ``counts`` fields is not a positive integer."""
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise ValueError(f"seeds must be non-empty and distinct, got {config.seeds}")
    for name in counts:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


@dataclass(frozen=True)
class SeededExperimentConfig:
    """What every comparison of learners over seeds on one offline dataset is configured by."""

    data: str = "runs/bootstrap/log"
    """Episode-log directory of the offline dataset (e.g. ``mtopt collect`` with the scripted
    policies, or ``mtopt data imbalanced``)."""
    out: str = "runs/experiment"
    """Output directory (table.json, table.md, one subdirectory per learner and seed)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds; every learner runs once per seed."""
    steps: int = 4000
    """Gradient steps of every training run."""
    eval_episodes_per_task: int = 100
    """Evaluation attempts per evaluated task (paper: 100)."""
    eval_seed: int = 10_000
    """Base seed of the evaluation scenes (``eval_seed + S`` for training seed ``S``)."""
    train: LearnerConfig = field(default_factory=adopted_learner)
    """The learner; each compared learner sets its own ``tasks`` (and impersonation)."""
    policy: PolicyConfig = field(default_factory=demo_policy)
    """The action search of the greedy evaluation (ε is set to 0)."""
    torch_threads: int = 1
    """Torch intra-op threads (0 keeps torch's default)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the dataset was collected in (the evaluation runs there too)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        check_seeds_and_counts(self, ("steps", "eval_episodes_per_task"))

    @classmethod
    def quick(cls) -> Self:
        """The ``--quick`` preset: a few steps and attempts on 2 seeds, for the tests."""
        return cls(
            seeds=(0, 1),
            steps=8,
            eval_episodes_per_task=2,
            train=replace(adopted_learner(), batch_size=32, checkpoint_every=8),
        )

    def start(self) -> EnvSpec:
        """Check the dataset, set the torch threads, write ``OUT/config.yaml``; the spec."""
        if not Path(self.data).is_dir():
            raise ValueError(f"data {self.data!r} is not an episode-log directory")
        set_torch_threads(self.torch_threads)
        out = Path(self.out)
        out.mkdir(parents=True, exist_ok=True)
        save_config(self, out / "config.yaml")
        return self.env.spec()

    def run(
        self,
        variants: Sequence[Variant],
        eval_tasks: tuple[str, ...],
        spec: EnvSpec,
        title: str,
        **facts: Any,
    ) -> dict[str, Any]:
        """Run (or resume) every learner on every seed; write ``OUT/table.json`` and
        ``OUT/table.md`` (the summary with ``facts`` added) and return them."""
        plan = SeededPlan(
            data=self.data,
            out=self.out,
            seeds=self.seeds,
            steps=self.steps,
            eval_tasks=eval_tasks,
            eval_episodes_per_task=self.eval_episodes_per_task,
            eval_seed=self.eval_seed,
            policy=self.policy,
            progress=self.progress,
        )
        summary = {**summarise(run_variants(variants, plan, spec), eval_tasks), **facts}
        markdown = format_markdown(summary, title)
        write_json(summary, Path(self.out) / "table.json")
        (Path(self.out) / "table.md").write_text(markdown)
        return {**summary, "markdown": markdown}


@dataclass(frozen=True)
class SeededPlan:
    """What every variant of a comparison shares."""

    data: str
    """The offline episode log."""
    out: str
    """Output directory: ``OUT/VARIANT/seed-S``."""
    seeds: tuple[int, ...]
    """Training seeds."""
    steps: int
    """Gradient steps of every variant and seed."""
    eval_tasks: tuple[str, ...]
    """Tasks every variant is evaluated on."""
    eval_episodes_per_task: int
    """Evaluation attempts per task."""
    eval_seed: int
    """Base seed of the evaluation scenes (``eval_seed + S`` for training seed ``S``)."""
    policy: PolicyConfig
    """How the greedy policy searches actions (its ε is set to 0)."""
    progress: bool = True
    """Show progress bars."""


def _fingerprint(learner: LearnerConfig, plan: SeededPlan) -> dict[str, Any]:
    return {
        "learner": to_dict(learner),
        "data": str(Path(plan.data).resolve()),
        "steps": plan.steps,
        "eval_tasks": list(plan.eval_tasks),
        "eval_episodes_per_task": plan.eval_episodes_per_task,
        "eval_seed": plan.eval_seed,
        "policy": to_dict(plan.policy),
    }


def run_job(variant: Variant, seed: int, plan: SeededPlan, spec: EnvSpec) -> dict[str, Any]:
    """Train ``variant`` with ``seed`` and evaluate it (or return its finished result)."""
    job = Path(plan.out) / variant.name / f"seed-{seed}"
    done = job / "result.json"
    fingerprint = _fingerprint(variant.learner, plan)
    if done.exists():
        result = json.loads(done.read_text())
        if result.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{done} was written with other settings than this run's for variant "
                f"{variant.name!r}; use another --out or remove it"
            )
        return result
    t0 = time.time()
    run_dir = job / "train"
    resume = latest_checkpoint(run_dir / "checkpoints") is not None
    cfg = TrainConfig.from_learner(
        variant.learner,
        data=plan.data,
        out=str(run_dir),
        steps=plan.steps,
        seed=seed,
        resume=resume,
        progress=plan.progress,
    )
    report = train(cfg, spec)
    policy = load_q_policy(report["checkpoint"], spec, replace(plan.policy, epsilon=0.0))
    protocol = ProtocolConfig(
        episodes_per_task=plan.eval_episodes_per_task,
        seed=plan.eval_seed + seed,
        tasks=plan.eval_tasks,
        progress=plan.progress,
    )
    evaluation = evaluate(lambda task: policy, protocol, spec)
    result = {
        "variant": variant.name,
        "seed": seed,
        "tasks": {t: [r["successes"], r["episodes"]] for t, r in evaluation["tasks"].items()},
        "checkpoint": report["checkpoint"],
        "trained_tasks": list(variant.learner.tasks) or list(spec.task_set.names),
        "wall_time_s": time.time() - t0,
        "train_wall_time_s": report["wall_time_s"],
        # steps this process took (a resumed job's earlier steps are not timed)
        "train_steps": round(report["steps_per_s"] * report["wall_time_s"])
        if report["wall_time_s"] > 0
        else 0,
        "fingerprint": fingerprint,
    }
    write_json(result, done)
    logger.info("%s seed %d: %s", variant.name, seed, result["tasks"])
    return result


def run_variants(
    variants: Sequence[Variant], plan: SeededPlan, spec: EnvSpec
) -> dict[str, list[dict[str, Any]]]:
    """Every (variant, seed) job, seed by seed (a cut comparison has whole seeds first)."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"variant names must be unique and non-empty, got {names}")
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    for seed in plan.seeds:
        for v in variants:
            results[v.name].append(run_job(v, seed, plan, spec))
    return results


def _rate(result: dict[str, Any], task: str) -> float:
    wins, n = result["tasks"][task]
    return wins / n


def summarise(results: dict[str, list[dict[str, Any]]], tasks: Sequence[str]) -> dict[str, Any]:
    """Per variant and task: seed interval and pooled interval; the mean over ``tasks`` per
    seed with its interval; each later variant against the first (module docstring)."""
    out: dict[str, Any] = {"tasks": list(tasks), "variants": {}}
    for name, runs in results.items():
        per_task = {}
        for t in tasks:
            rates = [_rate(r, t) for r in runs]
            wins = [r["tasks"][t][0] for r in runs]
            attempts = [r["tasks"][t][1] for r in runs]
            per_task[t] = {
                "seeds": rates,
                **seed_interval(rates),
                "pooled": pooled_interval(wins, attempts),
            }
        means = [sum(_rate(r, t) for t in tasks) / len(tasks) for r in runs]
        out["variants"][name] = {
            "seeds": [r["seed"] for r in runs],
            "tasks": per_task,
            "mean": {"seeds": means, **seed_interval(means)},
            "wall_time_s": sum(r["wall_time_s"] for r in runs),
        }
    names = list(results)
    base = out["variants"][names[0]]
    out["baseline"] = names[0]
    out["comparisons"] = {
        n: {
            "mean": compare_to_baseline(base["mean"]["seeds"], v["mean"]["seeds"]),
            **{
                t: compare_to_baseline(base["tasks"][t]["seeds"], v["tasks"][t]["seeds"])
                for t in tasks
            },
        }
        for n, v in out["variants"].items()
        if n != names[0]
    }
    return out


def _cell(stat: dict[str, Any]) -> str:
    if stat["n"] < 2:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} [{stat['lo']:.2f}, {stat['hi']:.2f}]"


def format_markdown(summary: dict[str, Any], title: str) -> str:
    """The summary as a markdown table: a row per variant, mean over seeds [95 % t-interval]
    per task and on the mean, the per-seed means, then each variant against the first."""
    tasks = summary["tasks"]
    head = ["variant", *tasks, "mean", "per seed"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for name, v in summary["variants"].items():
        seeds = " / ".join(f"{m:.2f}" for m in v["mean"]["seeds"])
        cells = [_cell(v["tasks"][t]) for t in tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_cell(v['mean'])} | {seeds} |")
    base = summary["baseline"]
    for name, c in summary["comparisons"].items():
        m = c["mean"]
        verdict = {1: "better beyond", -1: "worse beyond", 0: "within"}[m["beyond_spread"]]
        lines.append("")
        lines.append(
            f"{name} against {base}: {m['diff']:+.3f} on the mean, {verdict} the seeds' spreads "
            f"({m['baseline_spread']:.3f} / {m['variant_spread']:.3f})"
        )
    return "\n".join(lines) + "\n"
