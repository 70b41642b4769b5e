"""Task impersonation (paper Sec. 3.2, Alg. 1, App. 7.3).

An impersonation function routes an episode collected for task T_i to a set of tasks, each with
its own success label given by an injected *success labeller* (ground truth only under
``rewards: oracle``; a learned success detector otherwise). The functions here never call back
into an environment; they see only the episode's task and the labels.

* ``orig``  – f_orig: the episode trains only the task it was collected for.
* ``all``   – f_all: the episode trains every task.
* ``skill`` – f_skill(p_s, p_f): the episode trains the tasks of its own skill; an impersonated
  (other-task) candidate is kept with probability p_s if it is a success for that task and
  p_f if it is a failure. The episode's own task is always kept.
* ``cds`` – conservative data sharing (Yu et al. 2021): the episode is routed to every task,
  relabelled by the labeller, like f_all; the trainer then keeps an impersonated transition
  for a task only when its conservative Q-value for that task reaches the chosen percentile
  of the task's own transitions in the batch (:func:`mtopt.learning.cds.cds_keep_mask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from mtopt.tasks import TaskSet

IMPERSONATION_KINDS = ("orig", "all", "skill", "cds")
"""Names of the impersonation functions."""


class SuccessLabeller(Protocol):
    """Labels an episode's final outcome for a set of tasks."""

    def __call__(self, episode: object, tasks: Sequence[str]) -> np.ndarray:
        """Return a bool array: success of ``episode`` for each of ``tasks``."""
        ...


@dataclass(frozen=True)
class ImpersonationConfig:
    """Which impersonation function routes episodes to tasks."""

    kind: Literal["orig", "all", "skill", "cds"] = "skill"
    """``orig`` (no sharing), ``all`` (every task), ``skill`` (tasks of the same skill) or
    ``cds`` (every task, filtered by the trainer's conservative Q-values: CDS)."""
    p_success: float = 1.0
    """f_skill: probability of keeping an impersonated candidate that is a success."""
    p_failure: float = 1.0
    """f_skill: probability of keeping an impersonated candidate that is a failure."""
    percentile: float = 50.0
    """``cds``: an impersonated transition trains a task when its Q-value for that task is at
    least this percentile (0-100) of the Q-values of the task's own transitions in the batch."""

    def __post_init__(self) -> None:
        if self.kind not in IMPERSONATION_KINDS:
            raise ValueError(
                f"impersonation kind must be one of {IMPERSONATION_KINDS}, got {self.kind!r}"
            )
        for name in ("p_success", "p_failure"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p!r}")
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile!r}")

    @property
    def name(self) -> str:
        """Short name, e.g. ``skill-1-0.15`` or ``cds-50``."""
        if self.kind == "skill":
            return f"skill-{self.p_success:g}-{self.p_failure:g}"
        if self.kind == "cds":
            return f"cds-{self.percentile:g}"
        return self.kind

    @property
    def cds_percentile(self) -> float | None:
        """The trainer's CDS percentile, or ``None`` when the strategy is not ``cds``."""
        return self.percentile if self.kind == "cds" else None


class Impersonation:
    """An impersonation function f_I bound to a task set, a labeller and a seeded generator."""

    def __init__(
        self,
        config: ImpersonationConfig,
        task_set: TaskSet,
        labeller: SuccessLabeller,
        rng: np.random.Generator,
        tasks: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.task_set = task_set
        self.labeller = labeller
        self.rng = rng
        self.tasks = tuple(task_set.validate(tasks)) if tasks else task_set.names

    def candidates(self, task: str) -> tuple[str, ...]:
        """Tasks an episode collected for ``task`` may be routed to (own task first)."""
        if task not in self.task_set:
            raise ValueError(f"episode task {task!r} is not in the task set {self.task_set.names}")
        kind = self.config.kind
        if kind == "orig":
            pool: tuple[str, ...] = (task,)
        elif kind in ("all", "cds"):
            pool = self.tasks
        else:
            skill = self.task_set[task].skill
            pool = tuple(t for t in self.tasks if self.task_set[t].skill == skill)
        own = (task,) if task in self.tasks else ()
        return own + tuple(t for t in pool if t != task)

    def __call__(self, episode: object, task: str) -> list[tuple[str, bool]]:
        """Route ``episode`` (collected for ``task``) to tasks: ``[(task, success), ...]``."""
        cands = self.candidates(task)
        if not cands:
            return []
        labels = np.asarray(self.labeller(episode, cands), dtype=bool)
        if labels.shape != (len(cands),):
            raise ValueError(
                f"success labeller returned shape {labels.shape}, expected ({len(cands)},)"
            )
        routed = []
        for t, ok in zip(cands, labels.tolist(), strict=True):
            if t != task:
                p = self.config.p_success if ok else self.config.p_failure
                if p < 1.0 and self.rng.random() >= p:
                    continue
            routed.append((t, bool(ok)))
        return routed


class OracleLabeller:
    """Ground-truth labels from the episode's success vector (``rewards: oracle`` only)."""

    def __call__(self, episode: object, tasks: Sequence[str]) -> np.ndarray:
        names = list(episode.success_tasks)  # type: ignore[attr-defined]
        missing = [t for t in tasks if t not in names]
        if missing:
            raise ValueError(f"episode has no ground-truth label for tasks {missing}")
        succ = np.asarray(episode.success, dtype=bool)  # type: ignore[attr-defined]
        return np.array([succ[names.index(t)] for t in tasks], dtype=bool)
