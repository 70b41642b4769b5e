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

from dataclasses import dataclass, replace
from typing import Any

from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.log import EpisodeLogReader
from mtopt.data.stats import dataset_stats
from mtopt.experiments.seeded import SeededExperimentConfig, Variant
from mtopt.spec import EnvSpec


@dataclass(frozen=True)
class HardTaskConfig(SeededExperimentConfig):
    """Paper Sec. 5.5: MT-Opt against a single-task policy on the same successes of a hard
    task."""

    out: str = "runs/hard-task"
    """Output directory (table.json, table.md, one subdirectory per policy and seed)."""
    task: str | None = None
    """The hard task (None: the semantic lift of ``broad_task``'s skill whose own episodes
    succeed least often in the log)."""
    broad_task: str = "lift-any"
    """The easier task whose skill the hard task shares."""

    def __post_init__(self) -> None:
        super().__post_init__()
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
    spec = config.start()
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
    d = task_data(config.data, spec, task)
    title = (
        f"Sec. 5.5: {task} (own {d['own']['successes']} successes / {d['own']['failures']} "
        f"failures; {d['successes'] - d['own']['successes']} successes routed from other tasks)"
    )
    return config.run(variants, (task,), spec, title, task=task, task_data=d)
