"""``mtopt experiment bootstrap``: paper Sec. 5.5, easier tasks bootstrapping a harder one.

Can a broad, easier task (``lift-any``) supply the data of a narrow, hard one (a specific
lift)? Two learners are trained on the same offline episode log with the same gradient steps:

* ``mt-opt``: the multi-task policy over every task with f_skill impersonation, successes *and*
  failures shared within the skill (f_skill(1, 1)), re-balanced;
* ``single-task``: a policy of the hard task alone, trained on its own episodes plus every
  success of it that f_skill routes from the other lifts (f_skill(1, 0): the same successes as
  MT-Opt's, none of the other tasks' failures).

Both are evaluated on the hard task. The paper (real robots, *lift-sausage*): 0.39 against
0.03. The hard task defaults to the semantic lift whose own episodes in the log succeed least
often (dataset statistics; ``--task`` chooses another). The report also gives the data each
learner sees for it (its own successes and failures, the successes routed from other tasks;
counted from the log's ground truth, for the analysis only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtopt.config import save_config
from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.log import EpisodeLogReader
from mtopt.data.stats import dataset_stats
from mtopt.envs import EnvConfig
from mtopt.experiments.demo import demo_policy
from mtopt.experiments.runtime import set_torch_threads
from mtopt.experiments.seeded import SeededPlan, Variant, format_markdown, run_variants, summarise
from mtopt.experiments.task_count import adopted_learner
from mtopt.jsonio import write_json
from mtopt.policies import PolicyConfig
from mtopt.spec import EnvSpec
from mtopt.system.training_config import LearnerConfig


@dataclass(frozen=True)
class HardTaskConfig:
    """Paper Sec. 5.5: MT-Opt against a single-task policy on the same successes of a hard
    task."""

    data: str = "runs/bootstrap/log"
    """Episode-log directory of the offline dataset."""
    out: str = "runs/hard-task"
    """Output directory (table.json, table.md, one subdirectory per variant and seed)."""
    task: str | None = None
    """The hard task (None: the semantic lift of ``broad_task``'s skill whose own episodes
    succeed least often in the log)."""
    broad_task: str = "lift-any"
    """The easier task whose skill the hard task shares."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds; every variant runs once per seed."""
    steps: int = 4000
    """Gradient steps of every training run."""
    eval_episodes_per_task: int = 100
    """Evaluation attempts of the hard task."""
    eval_seed: int = 10_000
    """Base seed of the evaluation scenes (``eval_seed + S`` for training seed ``S``)."""
    train: LearnerConfig = field(default_factory=adopted_learner)
    """The learner of both policies; ``tasks`` and ``impersonation`` are set per policy."""
    policy: PolicyConfig = field(default_factory=demo_policy)
    """The action search of the greedy evaluation (ε is set to 0)."""
    torch_threads: int = 1
    """Torch intra-op threads (0 keeps torch's default)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the dataset was collected in (the evaluation runs there too)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be non-empty and distinct, got {self.seeds}")
        for name in ("steps", "eval_episodes_per_task"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        task_set = self.env.spec().task_set
        task_set.validate([self.broad_task])
        if self.task is not None:
            task_set.validate([self.task])
            if self.task == self.broad_task or (
                task_set[self.task].skill != task_set[self.broad_task].skill
            ):
                raise ValueError(
                    f"task {self.task!r} must be another task of {self.broad_task!r}'s skill "
                    f"{task_set[self.broad_task].skill!r}: "
                    f"{list(task_set.tasks_of_skill(task_set[self.broad_task].skill))}"
                )

    @classmethod
    def quick(cls) -> HardTaskConfig:
        """The ``--quick`` preset: a few steps and attempts, for the tests (minutes)."""
        return cls(
            seeds=(0, 1),
            steps=8,
            eval_episodes_per_task=2,
            train=replace(adopted_learner(), batch_size=32, checkpoint_every=8),
        )


def task_data(data: str, spec: EnvSpec, task: str) -> dict[str, Any]:
    """Ground-truth counts (analysis only) of what each learner sees of ``task``: its own
    episodes' successes and failures, and the successes of it in other episodes of its skill
    (routed to it by f_skill), by the episode's task."""
    skill = spec.task_set[task].skill
    own = {"successes": 0, "failures": 0}
    routed: dict[str, int] = {}
    for row in EpisodeLogReader(data).metadata().to_pylist():
        if row["task"] not in spec.task_set or spec.task_set[row["task"]].skill != skill:
            continue
        names = list(row["success_tasks"])
        success = task in names and bool(row["success"][names.index(task)])
        if row["task"] == task:
            own["successes" if success else "failures"] += 1
        elif success:
            routed[row["task"]] = routed.get(row["task"], 0) + 1
    return {
        "own": own,
        "routed_successes": routed,
        "successes": own["successes"] + sum(routed.values()),
    }


def hardest_task(data: str, spec: EnvSpec, broad_task: str) -> str:
    """The task of ``broad_task``'s skill (other than it) whose own episodes in the log have
    the lowest success rate; ``ValueError`` when none of them has episodes."""
    skill = spec.task_set[broad_task].skill
    stats = dataset_stats(data, spec.task_set.names)["tasks"]
    rates = {
        t: stats[t]["successes"] / stats[t]["episodes"]
        for t in spec.task_set.tasks_of_skill(skill)
        if t != broad_task and stats[t]["episodes"]
    }
    if not rates:
        raise ValueError(
            f"the log {data!r} holds no episodes of {skill!r} tasks but {broad_task!r}"
        )
    return min(rates, key=lambda t: (rates[t], t))


def run_hard_task(config: HardTaskConfig) -> dict[str, Any]:
    """Run (or resume) both policies on every seed; write and return the table."""
    if not Path(config.data).is_dir():
        raise ValueError(f"data {config.data!r} is not an episode-log directory")
    set_torch_threads(config.torch_threads)
    spec = config.env.spec()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    task = config.task or hardest_task(config.data, spec, config.broad_task)
    variants = [
        Variant(
            "mt-opt",
            replace(config.train, tasks=(), impersonation=ImpersonationConfig(kind="skill")),
        ),
        Variant(
            "single-task",
            replace(
                config.train,
                tasks=(task,),
                impersonation=ImpersonationConfig(kind="skill", p_success=1.0, p_failure=0.0),
            ),
        ),
    ]
    plan = SeededPlan(
        data=config.data,
        out=str(out),
        seeds=config.seeds,
        steps=config.steps,
        eval_tasks=(task,),
        eval_episodes_per_task=config.eval_episodes_per_task,
        eval_seed=config.eval_seed,
        policy=config.policy,
        progress=config.progress,
    )
    summary = summarise(run_variants(variants, plan, spec), (task,))
    summary["task"] = task
    summary["task_data"] = task_data(config.data, spec, task)
    d = summary["task_data"]
    title = (
        f"Sec. 5.5: {task} (own {d['own']['successes']} successes / {d['own']['failures']} "
        f"failures; {d['successes'] - d['own']['successes']} successes routed from other tasks)"
    )
    markdown = format_markdown(summary, title)
    write_json(summary, out / "table.json")
    (out / "table.md").write_text(markdown)
    return {**summary, "markdown": markdown}
