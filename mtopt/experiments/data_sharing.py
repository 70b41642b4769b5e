"""``mtopt experiment data-sharing``: the data-sharing ablation of paper Table 4 in simulation.

The strategies are trained on the *same* offline episode log with the *same* compute budget
(``steps`` gradient steps of the learner's batch size each) and evaluated with the standard
protocol (``eval_episodes_per_task`` attempts per task, identical scenes for all strategies):

* ``qtopt-single``: single-task QT-Opt; one policy per task, each trained only on the episodes
  collected for it (f_orig, uniform sampling). The budget is split evenly over the 12 policies,
  so the total number of gradient steps equals the other strategies';
* ``orig-*``, ``all-*``, ``skill-1-1-*``: one 12-task policy with f_orig, f_all or
  f_skill(1, 1) impersonation and uniform or re-balanced sampling;
* ``skill-1-0.15-rebalanced``: f_skill(1, 0.15) with re-balanced sampling;
* ``cds-rebalanced``: a ninth column beside the paper's eight, conservative data sharing
  (:mod:`mtopt.learning.cds`) with re-balanced sampling.

The learner (network, optimiser, Bellman updater, batch size, replay) comes from the nested
``train`` config, or from a ``mtopt train`` YAML given as ``learner_config``, so improvements to
the learner flow in by config. The run is crash-safe and resumable: training resumes from the
newest checkpoint, a finished training is recorded in ``train_result.json`` and a finished
strategy in ``OUT/strategies/NAME/result.json``; neither is recomputed on restart. Results of a
different config are refused rather than mixed.

Outputs: ``OUT/table.json`` (layout in the issue), ``OUT/table.md``, ``OUT/table.png``,
``OUT/dataset_stats.json``, ``OUT/config.yaml``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from mtopt.config import from_dict, load_config, save_config, to_dict
from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.data.stats import dataset_stats, write_stats_json
from mtopt.envs import EnvConfig
from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.evaluation.summary import low_data_tasks, summarize
from mtopt.experiments.data_sharing_table import (
    build_table,
    format_markdown,
    format_seed_markdown,
    plot_seed_table,
    plot_table,
    seed_table,
)
from mtopt.experiments.runtime import set_torch_threads
from mtopt.jsonio import write_json
from mtopt.policies import PolicyConfig
from mtopt.spec import EnvSpec
from mtopt.system.training import train
from mtopt.system.training_config import LearnerConfig, TrainConfig, state_learner_config
from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)

SINGLE_TASK = "qtopt-single"
"""Name of the single-task QT-Opt baseline."""

STRATEGIES: dict[str, tuple[ImpersonationConfig, str]] = {
    SINGLE_TASK: (ImpersonationConfig(kind="orig"), "uniform"),
    "orig-uniform": (ImpersonationConfig(kind="orig"), "uniform"),
    "orig-rebalanced": (ImpersonationConfig(kind="orig"), "rebalanced"),
    "all-uniform": (ImpersonationConfig(kind="all"), "uniform"),
    "all-rebalanced": (ImpersonationConfig(kind="all"), "rebalanced"),
    "skill-1-0.15-rebalanced": (
        ImpersonationConfig(kind="skill", p_success=1.0, p_failure=0.15),
        "rebalanced",
    ),
    "skill-1-1-uniform": (ImpersonationConfig(kind="skill"), "uniform"),
    "skill-1-1-rebalanced": (ImpersonationConfig(kind="skill"), "rebalanced"),
    "cds-rebalanced": (ImpersonationConfig(kind="cds"), "rebalanced"),
}
"""Strategy name -> (impersonation function, sampler), in the paper's column order; then
conservative data sharing (Yu et al. 2021, not in the paper), the closest published
alternative to MT-Opt's data sharing."""

STRATEGY_NAMES = tuple(STRATEGIES)


def _learner() -> LearnerConfig:
    """The learner of ``configs/train/state.yaml`` (object-centric state MLP)."""
    # ground-truth labels: this compares data sharing, not reward sources
    return state_learner_config(rewards="oracle")


@dataclass(frozen=True)
class DataSharingConfig:
    """Paper Table 4: data-sharing strategies trained on one offline dataset, same compute."""

    data: str = "runs/imbalanced/log"
    """Episode-log directory of the offline dataset (``mtopt data imbalanced`` writes OUT/log)."""
    out: str = "runs/data-sharing"
    """Output directory (table.json, table.md, table.png, one subdirectory per strategy)."""
    strategies: tuple[str, ...] = STRATEGY_NAMES
    """Strategies to run, in table column order."""
    steps: int = 12_000
    """Gradient steps per strategy (qtopt-single: split evenly over its per-task policies)."""
    seed: int = 0
    """Seed of every strategy's training (network init, impersonation, sampling, CEM)."""
    seeds: tuple[int, ...] = ()
    """Several training seeds: each runs the whole experiment into OUT/seed-S (``seed`` is
    then unused), and OUT/seeds.md / seeds.json rank the strategies by their mean over the
    seeds with 95 % t-intervals. Empty: the one ``seed``, into OUT."""
    train: LearnerConfig = field(default_factory=_learner)
    """Learner settings (network, optimiser, batch size, replay, CEM, γ). ``tasks``,
    ``impersonation`` and ``replay.sampler`` are set per strategy."""
    learner_config: str | None = None
    """A ``mtopt train`` YAML (or a ``mtopt demo`` YAML, whose ``train:`` section is used) whose
    learner settings replace ``train``, e.g. configs/train/state.yaml or
    configs/demo/learning.yaml, so the experiment runs the current learner. Its ``steps``,
    ``data``, ``out`` and ``seed`` are ignored (the experiment sets them)."""
    eval_episodes_per_task: int = 100
    """Evaluation attempts per task and strategy (paper: 100)."""
    eval_seed: int = 10_000
    """Base seed of the evaluation scenes (the same scenes for every strategy)."""
    low_data_k: int = 6
    """Number of low-data tasks (fewest collected episodes) in the summary (paper: 6)."""
    torch_threads: int = 1
    """Torch intra-op threads for training and evaluation in this process; 0 keeps torch's
    default. 1 is much faster on a shared 2-core machine, where more threads oversubscribe."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the dataset was collected in (the evaluation runs there too)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(
                f"strategies must be a non-empty subset of {STRATEGY_NAMES}, got {self.strategies}"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat, got {self.seeds}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies must not repeat, got {self.strategies}")
        n_tasks = len(self.env.spec().task_set)
        if not isinstance(self.steps, int) or self.steps < n_tasks:
            raise ValueError(
                f"steps must be an integer >= {n_tasks} (one per single-task policy), "
                f"got {self.steps!r}"
            )
        if not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0, got {self.torch_threads!r}")
        for name in ("eval_episodes_per_task", "low_data_k"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.learner_config is not None and not Path(self.learner_config).is_file():
            raise ValueError(f"learner_config {self.learner_config!r} is not a file")

    @classmethod
    def quick(cls) -> DataSharingConfig:
        """The ``--quick`` preset (configs/experiment/quick.yaml): minutes, for CI."""
        learner = _learner()
        return cls(
            steps=48,
            train=replace(learner, batch_size=32),
            eval_episodes_per_task=2,
        )

    def learner(self) -> LearnerConfig:
        """The learner settings: ``learner_config`` if given, else ``train``."""
        if self.learner_config is None:
            return self.train
        data = yaml.safe_load(Path(self.learner_config).read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("train"), dict):
            data = data["train"]  # a `mtopt demo` config: its training section
        run_only = {f.name for f in fields(TrainConfig)} - {f.name for f in fields(LearnerConfig)}
        data = {k: v for k, v in data.items() if k.replace("-", "_") not in run_only}
        return from_dict(LearnerConfig, data, "learner_config")


def step_shares(steps: int, parts: int) -> list[int]:
    """Split ``steps`` over ``parts`` policies as evenly as possible (sums to ``steps``)."""
    base, extra = divmod(steps, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def trainable_tasks(
    impersonation: ImpersonationConfig, train_episodes: dict[str, int], task_set: TaskSet
) -> tuple[str, ...]:
    """Tasks that receive at least one episode under ``impersonation`` (a task with no own
    episodes gets none under f_orig, and none under f_skill if its whole skill has none)."""
    have = {t for t, n in train_episodes.items() if n > 0}
    if impersonation.kind == "orig":
        ok = have
    elif impersonation.kind == "all":
        ok = set(task_set.names) if have else set()
    else:
        skills = {task_set[t].skill for t in have if t in task_set}
        ok = {t for t in task_set.names if task_set[t].skill in skills}
    return tuple(t for t in task_set.names if t in ok)


def strategy_runs(
    config: DataSharingConfig, name: str, train_episodes: dict[str, int], task_set: TaskSet
) -> dict[str, TrainConfig]:
    """The training runs of a strategy: ``{part: TrainConfig}`` (part = task or ``multi``).

    Tasks that no episode is routed to cannot be trained: the multi-task policy is trained on
    the others (its slot for such a task stays untrained) and qtopt-single has no policy for
    them.
    """
    learner = config.learner()
    impersonation, sampler = STRATEGIES[name]
    base = TrainConfig.from_learner(
        replace(
            learner, impersonation=impersonation, replay=replace(learner.replay, sampler=sampler)
        ),
        data=config.data,
        seed=config.seed,
        init=None,
        resume=False,
        progress=config.progress,
    )
    sdir = Path(config.out) / "strategies" / name
    names = task_set.names
    tasks = trainable_tasks(impersonation, train_episodes, task_set)
    if not tasks:
        raise ValueError(f"strategy {name!r}: no task receives any episode of {config.data!r}")
    if name != SINGLE_TASK:
        trained = () if tasks == names else tasks
        return {"multi": replace(base, out=str(sdir / "train"), steps=config.steps, tasks=trained)}
    data_dir = sdir / "data"  # per-task logs, written by split_by_task before training
    return {
        t: replace(base, data=str(data_dir / t), out=str(sdir / t), steps=n, tasks=(t,))
        for t, n in zip(tasks, step_shares(config.steps, len(tasks)), strict=True)
    }


def split_by_task(data: str | Path, out: str | Path) -> dict[str, str]:
    """Copy the episodes of log ``data`` into one episode log per collected task under ``out``.

    qtopt-single trains each task's policy on that task's own episodes; reading a per-task log
    instead of the whole log twelve times saves most of its data-loading time. The split is
    written to ``out.tmp`` and renamed when complete, so a crash never leaves a partial split
    that would be mistaken for a finished one. Returns ``{task: log directory}``.
    """
    out = Path(out)
    if not out.is_dir():
        tmp = out.with_name(out.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        writers: dict[tuple[str, int], EpisodeLogWriter] = {}
        log_cfg = EpisodeLogConfig(shard_episodes=64, fsync=False)
        try:
            for ep in EpisodeLogReader(data).episodes():
                key = (ep.task, ep.robot_id)
                if key not in writers:
                    writers[key] = EpisodeLogWriter(tmp / ep.task, ep.robot_id, log_cfg)
                writers[key].append(ep)
        finally:
            for w in writers.values():
                w.close()
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    return {p.name: str(p) for p in sorted(out.iterdir()) if p.is_dir()}


def _fingerprint(cfg: TrainConfig) -> dict[str, Any]:
    d = to_dict(cfg)
    for key in ("out", "progress", "resume", "data"):
        d.pop(key, None)
    return d


def _finished(path: Path, fingerprint: Any, what: str) -> dict[str, Any] | None:
    """The finished record at ``path`` if there is one; refuse one from a different config."""
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    if done["fingerprint"] != fingerprint:
        raise ValueError(f"{what!r} holds results of a different config; use another --out")
    return done


def _train_part(cfg: TrainConfig, spec: EnvSpec) -> dict[str, Any]:
    """Train one part (or reuse its finished result); returns its training record."""
    out = Path(cfg.out)
    done_path = out / "train_result.json"
    fp = _fingerprint(cfg)
    done = _finished(done_path, fp, str(out))
    if done is not None:
        logger.info("%s: training already finished, reused", out)
        return done
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if resume and _fingerprint(load_config(TrainConfig, out / "config.yaml")) != fp:
        raise ValueError(f"{str(out)!r} holds checkpoints of a different config; use another --out")
    t = time.time()
    res = train(replace(cfg, resume=resume), spec)
    record = {
        "checkpoint": res["checkpoint"],
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "loop_wall_time_s": res["wall_time_s"],
        "wall_time_s": time.time() - t,
        "steps_per_s": res["steps_per_s"],
        "samples_per_s": res["samples_per_s"],
        "resumed": resume,
        "final_loss": res.get("loss"),
        "fingerprint": fp,
    }
    write_json(record, done_path)
    return record


def run_strategy(
    config: DataSharingConfig, name: str, train_episodes: dict[str, int], spec: EnvSpec
) -> dict[str, Any]:
    """Train and evaluate one strategy, or return its finished result."""
    from mtopt.policies.q_policy import load_q_policy

    sdir = Path(config.out) / "strategies" / name
    sdir.mkdir(parents=True, exist_ok=True)
    task_set = spec.task_set
    runs = strategy_runs(config, name, train_episodes, task_set)
    fingerprint = {
        "train": {part: _fingerprint(c) for part, c in runs.items()},
        "eval": [config.eval_episodes_per_task, config.eval_seed],
    }
    result_path = sdir / "result.json"
    done = _finished(result_path, fingerprint, str(result_path))
    if done is not None:
        logger.info("strategy %s already finished, reused", name)
        return done
    t0 = time.time()
    if name == SINGLE_TASK and not all((sdir / p / "train_result.json").exists() for p in runs):
        split_by_task(config.data, sdir / "data")
    records = {part: _train_part(c, spec) for part, c in runs.items()}
    train_wall = time.time() - t0
    device = runs[next(iter(runs))].trainer.device
    policies: dict[str, Any] = {}

    def policy_for(task: str) -> Any:
        part = "multi" if "multi" in records else task
        if part not in policies:
            greedy = PolicyConfig(epsilon=0.0, device=device)
            policies[part] = load_q_policy(records[part]["checkpoint"], spec, greedy)
        return policies[part]

    evaluated = tuple(t for t in task_set.names if "multi" in records or t in records)
    protocol = ProtocolConfig(
        episodes_per_task=config.eval_episodes_per_task,
        seed=config.eval_seed,
        tasks=evaluated,
        low_data_k=config.low_data_k,
        progress=config.progress,
    )
    t1 = time.time()
    result = evaluate(policy_for, protocol, spec, train_episodes)
    untrained = [t for t in task_set.names if t not in evaluated]
    if untrained:  # qtopt-single has no policy for a task without data: success 0 (paper: N/A)
        evaluation = result["tasks"]
        result["tasks"] = {
            t: evaluation.get(t)
            or {
                "success_rate": 0.0,
                "episodes": 0,
                "successes": 0,
                "ci95": [0.0, 1.0],
                "train_episodes": 0,
                "untrained": True,
            }
            for t in task_set.names
        }
        low = low_data_tasks(train_episodes, config.low_data_k)
        rates = {t: r["success_rate"] for t, r in result["tasks"].items()}
        result["summary"] = summarize(rates, low)
        result["low_data_tasks"] = low
    steps = sum(r["steps"] for r in records.values())
    loop_wall = sum(r["loop_wall_time_s"] for r in records.values())
    result.update(
        strategy=name,
        impersonation=STRATEGIES[name][0].name,
        sampler=STRATEGIES[name][1],
        training={
            "steps": steps,
            "batch_size": runs[next(iter(runs))].batch_size,
            "policies": len(records),
            "wall_time_s": sum(r["wall_time_s"] for r in records.values()),
            "loop_wall_time_s": loop_wall,
            "steps_per_s": steps / loop_wall if loop_wall > 0 else float("nan"),
            "samples_per_s": steps * runs[next(iter(runs))].batch_size / loop_wall
            if loop_wall > 0
            else float("nan"),
            "this_session_wall_time_s": train_wall,
            "parts": records,
        },
        eval_wall_time_s=time.time() - t1,
        fingerprint=fingerprint,
    )
    write_json(result, result_path)
    logger.info(
        "strategy %s: mean %.3f, low-data mean %.3f",
        name,
        result["summary"]["mean"],
        result["summary"]["mean_low_data"],
    )
    return result


def run_data_sharing(config: DataSharingConfig) -> dict[str, Any]:
    """Run (or resume) every strategy; write and return the table (``markdown`` included).
    With ``seeds``: the whole experiment per seed, then the strategies ranked over seeds."""
    if config.seeds:
        out = Path(config.out)
        tables = {
            s: run_data_sharing(replace(config, seed=s, seeds=(), out=str(out / f"seed-{s}")))
            for s in config.seeds
        }
        combined = seed_table(tables)
        markdown = format_seed_markdown(combined)
        write_json(combined, out / "seeds.json")
        (out / "seeds.md").write_text(markdown + "\n")
        plot_seed_table(combined, out / "seeds.png")
        return {**combined, "markdown": markdown}
    data = Path(config.data)
    if not data.is_dir():
        raise ValueError(f"data {str(data)!r} is not an episode-log directory")
    set_torch_threads(config.torch_threads)
    spec = config.env.spec()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    save_config(config.learner(), out / "learner.yaml")
    stats = dataset_stats(data, spec.task_set.names)
    if stats["episodes"] == 0:
        raise ValueError(f"the episode log {str(data)!r} holds no episodes")
    dataset = {"data": str(data.resolve()), "episodes": stats["episodes"]}
    marker = out / "dataset.json"
    if marker.exists() and json.loads(marker.read_text()) != dataset:
        raise ValueError(
            f"{str(out)!r} holds results for the dataset {marker.read_text().strip()}, not "
            f"{dataset}; use another --out"
        )
    write_json(dataset, marker)
    write_stats_json(stats, out / "dataset_stats.json")
    train_episodes = {t: e["episodes"] for t, e in stats["tasks"].items()}
    t0 = time.time()
    results = {}
    for name in config.strategies:
        logger.info("strategy %s", name)
        results[name] = run_strategy(config, name, train_episodes, spec)
    table = build_table(results, train_episodes, config.low_data_k)
    for res in table["strategies"].values():
        res.pop("fingerprint", None)
        for part in res.get("training", {}).get("parts", {}).values():
            part.pop("fingerprint", None)
    table["data"] = str(data)
    table["dataset_episodes"] = stats["episodes"]
    table["wall_time_s_this_session"] = time.time() - t0
    markdown = format_markdown(table)
    write_json(table, out / "table.json")
    (out / "table.md").write_text(markdown + "\n")
    plot_table(table, out / "table.png")
    return {**table, "markdown": markdown}
