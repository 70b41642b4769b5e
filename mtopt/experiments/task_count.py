"""``mtopt experiment task-count``: paper Table 1 (Sec. 5.3) in simulation.

Does learning more tasks help the tasks themselves? The 12-task policy and a 2-task policy
(``lift-any``, ``place-any``) are trained on the *same* offline episode log with the same
impersonation (f_skill: the 10 narrower tasks' episodes reach the two broad tasks relabelled),
the same sampler and the same number of gradient steps, without on-policy fine-tuning, so
data-wise the runs are identical. Both are evaluated on ``lift-any`` and ``place-any``. The
paper (real robots): 0.89 / 0.85 for the 12-task policy against 0.82 / 0.63.

Every variant runs once per training seed (:mod:`mtopt.experiments.seeded`); the table gives
the mean over seeds with its 95 % t-interval, and the 2-task policy against the 12-task one.
Outputs: ``OUT/table.json``, ``OUT/table.md``, ``OUT/config.yaml``, one directory per variant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mtopt.experiments.seeded import SeededExperimentConfig, Variant

TWO_TASKS = ("lift-any", "place-any")
"""The two broad tasks of the comparison (paper Table 1)."""


@dataclass(frozen=True)
class TaskCountConfig(SeededExperimentConfig):
    """Paper Table 1: the 12-task and a 2-task policy on one offline dataset, same compute."""

    out: str = "runs/task-count"
    """Output directory (table.json, table.md, one subdirectory per policy and seed)."""
    few_tasks: tuple[str, ...] = TWO_TASKS
    """The tasks of the smaller policy; both policies are evaluated on them."""

    def __post_init__(self) -> None:
        super().__post_init__()
        names = self.env.spec().task_set.names
        self.env.spec().task_set.validate(self.few_tasks)
        if not self.few_tasks or len(self.few_tasks) >= len(names):
            raise ValueError(
                f"few_tasks must be fewer than the task set's {len(names)} tasks, got "
                f"{list(self.few_tasks)}"
            )


def run_task_count(config: TaskCountConfig) -> dict[str, Any]:
    """Run (or resume) both policies on every seed; write and return the table."""
    spec = config.start()
    n, k = len(spec.task_set), len(config.few_tasks)
    variants = [
        Variant(f"{n}-task", replace(config.train, tasks=())),
        Variant(f"{k}-task", replace(config.train, tasks=config.few_tasks)),
    ]
    title = f"Table 1: {n} tasks against {k} on the same data"
    return config.run(variants, config.few_tasks, spec, title)
