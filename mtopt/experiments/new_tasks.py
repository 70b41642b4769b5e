"""``mtopt experiment new-tasks``: paper Sec. 5.6 in simulation, learning two new tasks.

MT-Opt acquires a new task by reusing what it knows. The run starts from the final 12-task
checkpoint and its episode log, in which no episode shows the new object: the workcell's cloth
(:data:`mtopt.envs.scene.CLOTH`). Two tasks new in kind are added in reserved slots:
``lift-cloth`` (object acquisition; it implies ``lift-any``) and ``cover-object`` (object
manipulation: leave the cloth resting over another object in the object bin). From then on every
scene holds one cloth (``WorkcellConfig.cloths``), and a place-skill episode starts with it in
hand. Then, per training seed, as in the paper:

1. **First collection with the broad tasks' policies.** The 12-task policy runs ``lift-any``
   and ``place-any`` (ε-greedy) on the cloth scenes. Their episodes reach the new tasks through
   skill impersonation: an episode that happened to lift the cloth is a ``lift-cloth`` success.
2. **Fine-tuning of the 14-task model** on the old log plus every new episode, initialised from
   the previous model (the 12-task checkpoint the first time; only the new slots start fresh).
3. **Evaluation** of the new tasks on the evaluation scene (with its cloth).
4. **Later rounds** collect each new task with the new policy once it is at parity: once its
   evaluated success reaches the rate at which the broad task's episodes of the first round
   succeeded at it; until then the broad task's policy collects again.

The comparison (paper: 0.33 / 0.05) is a 2-task policy (``lift-cloth``, ``cover-object``)
trained from scratch on the same new episodes only, with as many gradient steps as all rounds'
fine-tuning together. Rewards come from ``train.rewards`` (ground truth by default, as in the
other seeded experiments; the workcell judges both new tasks).

Resumable: each finished round writes ``OUT/seed-S/round-R/round.json``; a collection cut short
is discarded and redone (its episodes live in ``log.partial`` until complete), a training cut
short resumes from its newest checkpoint; more ``rounds`` extend a finished run (the comparison,
which sees all rounds' episodes, is trained again into ``two-task-R-rounds``). Outputs:
``OUT/table.json``, ``OUT/table.md`` (success against new episodes, mean over seeds with 95 %
t-intervals), ``OUT/config.yaml``, ``OUT/tasks.json`` (the added tasks, for ``--env.tasks``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from mtopt.added_tasks import AddedTask, add_tasks, write_task_file
from mtopt.config import save_config, to_dict
from mtopt.data.log import EpisodeLogReader
from mtopt.envs import EnvConfig
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.envs.workcell_tasks import (
    COVER_OBJECT,
    LIFT_CLOTH,
    OBJECT_ACQUISITION,
    OBJECT_CATEGORIES,
    OBJECT_MANIPULATION,
    lift_task,
)
from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.evaluation.seeds import seed_interval
from mtopt.experiments.demo import demo_policy
from mtopt.experiments.runtime import set_torch_threads
from mtopt.experiments.seeded import adopted_learner, check_seeds_and_counts
from mtopt.jsonio import write_json
from mtopt.learning.checkpoint import latest_checkpoint
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.policies.q_policy import load_q_policy
from mtopt.spec import EnvSpec
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import train
from mtopt.system.training_config import LearnerConfig, TrainConfig

logger = logging.getLogger(__name__)

NEW_TASKS = (
    AddedTask(
        LIFT_CLOTH,
        OBJECT_ACQUISITION,
        implies=("lift-any",),
        excludes=tuple(lift_task(c) for c in OBJECT_CATEGORIES),
    ),
    AddedTask(COVER_OBJECT, OBJECT_MANIPULATION),
)
"""The two new tasks, in the order they take the reserved slots 12 and 13."""
CARRIERS = {LIFT_CLOTH: "lift-any", COVER_OBJECT: "place-any"}
"""The broad task whose policy collects a new task's first episodes."""


def cloth_workcell() -> EnvConfig:
    """The workcell with one cloth in every scene (one task object fewer, to free its slot)."""
    return EnvConfig(workcell=WorkcellConfig(cloths=1, max_objects=7))


@dataclass(frozen=True)
class NewTasksConfig:
    """Paper Sec. 5.6: add lift-cloth and cover-object to a 12-task model and learn them."""

    data: str = "runs/imbalanced/log"
    """Episode log of the 12 tasks (collected without the cloth)."""
    checkpoint: str | None = None
    """The final 12-task checkpoint. None: train one on ``data`` (``base_steps``, seed 0) into
    ``OUT/base`` first."""
    out: str = "runs/new-tasks"
    """Output directory."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (collection, fine-tuning and the comparison each follow the seed)."""
    base_steps: int = 3000
    """Gradient steps of the 12-task model when ``checkpoint`` is None."""
    rounds: int = 3
    """Collection and fine-tuning rounds."""
    episodes_per_round: int = 1000
    """New episodes per new task and round."""
    steps_per_round: int = 1000
    """Fine-tuning steps of the 14-task model per round."""
    eval_episodes_per_task: int = 50
    """Evaluation attempts per new task after every round."""
    eval_seed: int = 10_000
    """Base seed of the evaluation scenes (``eval_seed + S`` for training seed ``S``)."""
    robots: int = 8
    """Simulated robots collecting each round."""
    robots_per_process: int = 8
    """Robots per collecting process (lockstep, one batched action search for all)."""
    train: LearnerConfig = field(default_factory=adopted_learner)
    """The learner (its ``tasks`` are set per model)."""
    collect_policy: PolicyConfig = field(default_factory=collection_policy)
    """How the collecting Q-policy acts (ε-greedy)."""
    policy: PolicyConfig = field(default_factory=demo_policy)
    """The action search of the greedy evaluation (ε is set to 0)."""
    env: EnvConfig = field(default_factory=cloth_workcell)
    """The workcell of the new tasks' scenes (``cloths`` ≥ 1); the 12-task log's own cell
    differs only in its scenes."""
    torch_threads: int = 1
    """Torch intra-op threads (0 keeps torch's default)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        counts = ("base_steps", "rounds", "episodes_per_round", "steps_per_round")
        check_seeds_and_counts(self, (*counts, "eval_episodes_per_task"))
        if self.env.name != "workcell" or self.env.workcell.cloths < 1:
            raise ValueError(
                f"the new tasks need the workcell with a cloth in its scenes (env.name workcell, "
                f"env.workcell.cloths >= 1), got env {self.env.name!r} with "
                f"cloths={self.env.workcell.cloths}"
            )
        if self.env.tasks is not None:
            raise ValueError("env.tasks must be unset: the experiment adds the new tasks itself")

    @classmethod
    def quick(cls) -> Self:
        """The ``--quick`` preset: a few episodes, steps and attempts on 2 seeds (tests)."""
        return cls(
            seeds=(0, 1),
            base_steps=8,
            rounds=2,
            episodes_per_round=4,
            steps_per_round=8,
            eval_episodes_per_task=2,
            robots=2,
            robots_per_process=2,
            train=replace(adopted_learner(), batch_size=32, checkpoint_every=8),
        )


def _train(cfg: TrainConfig, spec: EnvSpec) -> str:
    """Train (resuming a cut run) and return the final checkpoint."""
    resume = latest_checkpoint(Path(cfg.out) / "checkpoints") is not None
    cfg = replace(cfg, resume=resume, init=None if resume else cfg.init)
    return str(train(cfg, spec)["checkpoint"])


def _collect(fleet: FleetConfig, spec: EnvSpec) -> str:
    """Collect into ``fleet.out`` unless already complete; a partial collection is redone."""
    final = Path(fleet.out)
    if final.is_dir():
        return str(final)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    collect(replace(fleet, out=str(partial)), spec)
    partial.rename(final)
    return str(final)


def _evaluate(checkpoint: str, spec: EnvSpec, config: NewTasksConfig, seed: int) -> dict:
    policy = load_q_policy(checkpoint, spec, replace(config.policy, epsilon=0.0))
    protocol = ProtocolConfig(
        episodes_per_task=config.eval_episodes_per_task,
        seed=config.eval_seed + seed,
        tasks=tuple(t.name for t in NEW_TASKS),
        progress=config.progress,
    )
    result = evaluate(lambda task: policy, protocol, spec)
    return {t: [r["successes"], r["episodes"]] for t, r in result["tasks"].items()}


def _carrier_yield(log: str) -> dict[str, float]:
    """Per new task: the ground-truth rate at which its carrier's episodes in ``log`` succeeded
    at it (the experimenter's parity reference; the learner never reads it)."""
    rows = EpisodeLogReader(log).metadata().to_pylist()
    out = {}
    for task, carrier in CARRIERS.items():
        mine = [r for r in rows if r["task"] == carrier]
        wins = sum(bool(r["success"][list(r["success_tasks"]).index(task)]) for r in mine)
        out[task] = wins / len(mine) if mine else 0.0
    return out


def _base_checkpoint(config: NewTasksConfig) -> str:
    if config.checkpoint is not None:
        return config.checkpoint
    base = config.env.spec()  # the 12 tasks only
    cfg = TrainConfig.from_learner(
        replace(config.train, tasks=()),
        data=config.data,
        out=str(Path(config.out) / "base"),
        steps=config.base_steps,
        seed=0,
        progress=config.progress,
    )
    return _train(cfg, base)


def _fingerprint(config: NewTasksConfig, base: str) -> dict[str, Any]:
    d = to_dict(config)
    for key in ("out", "seeds", "progress", "torch_threads", "rounds"):
        d.pop(key)
    return {**d, "base": str(Path(base).resolve())}


def run_seed(config: NewTasksConfig, spec: EnvSpec, base: str, seed: int) -> dict[str, Any]:
    """Every round of one training seed, then the 2-task comparison; finished parts reused."""
    out = Path(config.out) / f"seed-{seed}"
    fingerprint = _fingerprint(config, base)
    rounds: list[dict[str, Any]] = []
    logs: list[str] = []
    model = base
    yield_: dict[str, float] = {}
    for r in range(1, config.rounds + 1):
        rdir = out / f"round-{r}"
        done = rdir / "round.json"
        if done.exists():
            result = json.loads(done.read_text())
            if result["fingerprint"] != fingerprint:
                raise ValueError(f"{done} was written with other settings; use another --out")
        else:
            t0 = time.time()
            collectors = {
                t.name: t.name if r > 1 and _at_parity(rounds[-1], yield_, t.name) else None
                for t in NEW_TASKS
            }
            tasks = tuple(own or CARRIERS[t] for t, own in collectors.items())
            fleet = FleetConfig(
                out=str(rdir / "log"),
                robots=config.robots,
                robots_per_process=config.robots_per_process,
                episodes=config.episodes_per_round * len(tasks),
                seed=1000 * seed + r,
                tasks=tasks,
                checkpoint=model,
                policy=config.collect_policy,
                chain_place=False,
                progress=config.progress,
            )
            log = _collect(fleet, spec)
            cfg = TrainConfig.from_learner(
                replace(config.train, tasks=()),
                data=config.data,
                extra_data=(*logs, log),
                out=str(rdir / "train"),
                steps=config.steps_per_round,
                seed=seed,
                init=model,
                progress=config.progress,
            )
            checkpoint = _train(cfg, spec)
            result = {
                "round": r,
                "collected_with": list(tasks),
                "new_episodes": config.episodes_per_round * len(NEW_TASKS) * r,
                "carrier_yield": _carrier_yield(log) if r == 1 else None,
                "tasks": _evaluate(checkpoint, spec, config, seed),
                "checkpoint": checkpoint,
                "wall_time_s": time.time() - t0,
                "fingerprint": fingerprint,
            }
            write_json(result, done)
            logger.info("seed %d round %d: %s", seed, r, result["tasks"])
        if r == 1:
            yield_ = result["carrier_yield"]
        rounds.append(result)
        logs.append(str(rdir / "log"))
        model = result["checkpoint"]
    return {"rounds": rounds, "two_task": _two_task(config, spec, seed, logs, fingerprint)}


def _at_parity(last: dict[str, Any], yield_: dict[str, float], task: str) -> bool:
    wins, n = last["tasks"][task]
    return wins / n >= yield_[task]


def _two_task(
    config: NewTasksConfig, spec: EnvSpec, seed: int, logs: list[str], fingerprint: dict
) -> dict[str, Any]:
    """The comparison: the new tasks only, from scratch, on the same new episodes."""
    # it sees every round's episodes: one per number of rounds (a longer run adds another)
    jdir = Path(config.out) / f"seed-{seed}" / f"two-task-{config.rounds}-rounds"
    done = jdir / "result.json"
    if done.exists():
        result = json.loads(done.read_text())
        if result["fingerprint"] == fingerprint:
            return result
        raise ValueError(f"{done} was written with other settings; use another --out")
    t0 = time.time()
    cfg = TrainConfig.from_learner(
        replace(config.train, tasks=tuple(t.name for t in NEW_TASKS)),
        data=logs[0],
        extra_data=tuple(logs[1:]),
        out=str(jdir / "train"),
        steps=config.steps_per_round * config.rounds,
        seed=seed,
        progress=config.progress,
    )
    checkpoint = _train(cfg, spec)
    result = {
        "tasks": _evaluate(checkpoint, spec, config, seed),
        "new_episodes": config.episodes_per_round * len(NEW_TASKS) * config.rounds,
        "checkpoint": checkpoint,
        "wall_time_s": time.time() - t0,
        "fingerprint": fingerprint,
    }
    write_json(result, done)
    return result


def summarise(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Success against new episodes, per round and for the comparison, over seeds."""
    names = [t.name for t in NEW_TASKS]
    seeds = sorted(runs)

    def stats(results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            t: seed_interval([r["tasks"][t][0] / r["tasks"][t][1] for r in results]) for t in names
        }

    n_rounds = len(runs[seeds[0]]["rounds"])
    rows = []
    for i in range(n_rounds):
        results = [runs[s]["rounds"][i] for s in seeds]
        rows.append(
            {
                "round": i + 1,
                "new_episodes": results[0]["new_episodes"],
                "collected_with": [r["collected_with"] for r in results],
                **stats(results),
            }
        )
    yields = [runs[s]["rounds"][0]["carrier_yield"] for s in seeds]
    return {
        "seeds": seeds,
        "tasks": names,
        "rounds": rows,
        "carrier_yield": {t: seed_interval([y[t] for y in yields]) for t in names},
        "two_task": {
            "new_episodes": runs[seeds[0]]["two_task"]["new_episodes"],
            **stats([runs[s]["two_task"] for s in seeds]),
        },
    }


def _cell(stat: dict[str, Any]) -> str:
    if stat["n"] < 2:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} [{stat['lo']:.2f}, {stat['hi']:.2f}]"


def format_markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (one row per round, then the comparison)."""
    names = summary["tasks"]
    seeds = ", ".join(str(s) for s in summary["seeds"])
    lines = [
        "### Sec. 5.6: new tasks, success against new episodes",
        "",
        f"Seeds {seeds}: mean over seeds [95 % t-interval].",
        "",
        "| model | new episodes | " + " | ".join(names) + " | collected with (per seed) |",
        "|---|---:|" + "---|" * len(names) + "---|",
    ]
    for row in summary["rounds"]:
        with_ = " / ".join(",".join(c) for c in row["collected_with"])
        cells = " | ".join(_cell(row[t]) for t in names)
        lines.append(
            f"| 14-task, round {row['round']} | {row['new_episodes']} | {cells} | {with_} |"
        )
    two = summary["two_task"]
    cells = " | ".join(_cell(two[t]) for t in names)
    lines.append(f"| 2-task, new data only | {two['new_episodes']} | {cells} | (same episodes) |")
    y = summary["carrier_yield"]
    lines.append("")
    lines.append(
        "First-round yield of the broad tasks' policies (ground truth, analysis only): "
        + ", ".join(f"{t} {_cell(y[t])}" for t in names)
    )
    return "\n".join(lines) + "\n"


def run_new_tasks(config: NewTasksConfig) -> dict[str, Any]:
    """Run (or resume) every seed; write and return the table."""
    if not Path(config.data).is_dir():
        raise ValueError(f"data {config.data!r} is not an episode-log directory")
    set_torch_threads(config.torch_threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    write_task_file(out / "tasks.json", config.env.name, NEW_TASKS)
    base = _base_checkpoint(config)
    spec = add_tasks(config.env.spec(), NEW_TASKS)
    runs = {s: run_seed(config, spec, base, s) for s in config.seeds}
    summary = summarise(runs)
    markdown = format_markdown(summary)
    write_json(summary, out / "table.json")
    (out / "table.md").write_text(markdown)
    return {**summary, "markdown": markdown}
