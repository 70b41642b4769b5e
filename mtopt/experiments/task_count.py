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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtopt.config import save_config
from mtopt.envs import EnvConfig
from mtopt.experiments.demo import demo_learner, demo_policy
from mtopt.experiments.runtime import set_torch_threads
from mtopt.experiments.seeded import SeededPlan, Variant, format_markdown, run_variants, summarise
from mtopt.jsonio import write_json
from mtopt.policies import PolicyConfig
from mtopt.system.training_config import LearnerConfig

TWO_TASKS = ("lift-any", "place-any")
"""The two broad tasks of the comparison (paper Table 1)."""


def adopted_learner() -> LearnerConfig:
    """The demo's learner (``configs/demo/learning.yaml``) with ground-truth rewards: these
    experiments compare what the learner is trained on, not reward sources (``--train.rewards
    success_detector --train.success-detector PATH`` uses a detector instead)."""
    return replace(demo_learner(), rewards="oracle")


@dataclass(frozen=True)
class TaskCountConfig:
    """Paper Table 1: the 12-task and a 2-task policy on one offline dataset, same compute."""

    data: str = "runs/bootstrap/log"
    """Episode-log directory of the offline dataset (e.g. ``mtopt collect`` with the scripted
    policies)."""
    out: str = "runs/task-count"
    """Output directory (table.json, table.md, one subdirectory per variant and seed)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds; every variant runs once per seed."""
    steps: int = 4000
    """Gradient steps of every training run."""
    few_tasks: tuple[str, ...] = TWO_TASKS
    """The tasks of the smaller policy; both policies are evaluated on them."""
    eval_episodes_per_task: int = 100
    """Evaluation attempts per task (paper: 100)."""
    eval_seed: int = 10_000
    """Base seed of the evaluation scenes (``eval_seed + S`` for training seed ``S``)."""
    train: LearnerConfig = field(default_factory=adopted_learner)
    """The learner of both policies (impersonation, sampler, network, ...); ``tasks`` is set
    per policy."""
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
        names = self.env.spec().task_set.names
        self.env.spec().task_set.validate(self.few_tasks)
        if not self.few_tasks or len(self.few_tasks) >= len(names):
            raise ValueError(
                f"few_tasks must be fewer than the task set's {len(names)} tasks, got "
                f"{list(self.few_tasks)}"
            )

    @classmethod
    def quick(cls) -> TaskCountConfig:
        """The ``--quick`` preset: a few steps and attempts, for the tests (minutes)."""
        return cls(
            seeds=(0, 1),
            steps=8,
            eval_episodes_per_task=2,
            train=replace(adopted_learner(), batch_size=32, checkpoint_every=8),
        )


def run_task_count(config: TaskCountConfig) -> dict[str, Any]:
    """Run (or resume) both policies on every seed; write and return the table."""
    if not Path(config.data).is_dir():
        raise ValueError(f"data {config.data!r} is not an episode-log directory")
    set_torch_threads(config.torch_threads)
    spec = config.env.spec()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    n = len(spec.task_set)
    variants = [
        Variant(f"{n}-task", replace(config.train, tasks=())),
        Variant(f"{len(config.few_tasks)}-task", replace(config.train, tasks=config.few_tasks)),
    ]
    plan = SeededPlan(
        data=config.data,
        out=str(out),
        seeds=config.seeds,
        steps=config.steps,
        eval_tasks=config.few_tasks,
        eval_episodes_per_task=config.eval_episodes_per_task,
        eval_seed=config.eval_seed,
        policy=config.policy,
        progress=config.progress,
    )
    summary = summarise(run_variants(variants, plan, spec), config.few_tasks)
    title = f"Table 1: {n} tasks against {len(config.few_tasks)} on the same data"
    markdown = format_markdown(summary, title)
    write_json(summary, out / "table.json")
    (out / "table.md").write_text(markdown)
    return {**summary, "markdown": markdown}
