"""Adding a task to a run (paper Sec. 5.6): ``mtopt task add``.

A new task is defined by examples of its outcome. Adding it

1. takes the next reserved one-hot slot of the run's task set and records the task in the run's
   task file (:mod:`mtopt.added_tasks`), which every later command reads via ``--env.tasks``;
2. trains the success detector for the grown task set: by default it fine-tunes the run's
   detector, whose head already spans every slot, on the new task's examples plus the log's
   labelled episodes (so the old tasks are not forgotten);
3. relabels the existing episode log for the new task with that detector and reports what it
   found (the paper's new tasks had no logged success before their collection began).

Q-function checkpoints trained before the addition load unchanged into the grown task set (the
new slot's input weights were never trained); a learner that starts from one (``--init``) and
lists the new task among its tasks learns it from the relabelled log and new episodes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from mtopt.added_tasks import (
    AddedTask,
    add_tasks,
    read_task_file,
    task_file_env,
    write_task_file,
)
from mtopt.jsonio import write_json
from mtopt.spec import EnvSpec
from mtopt.success.dataset import SUCCESS, align_examples, load_examples
from mtopt.success.detector import SuccessDetector
from mtopt.success.labelling import read_log_episodes
from mtopt.success.training import SDTrainConfig, train_success_detector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewTaskConfig:
    """Add a task to a run: its slot, its success detector and the log's relabelling."""

    name: tyro.conf.Positional[str]
    """Name of the new task (unique in the task set), e.g. ``cover-object``."""
    skill: str
    """The environment skill the task belongs to (its episodes start like that skill's, and
    skill impersonation shares episodes within it)."""
    examples: tuple[str, ...]
    """Outcome-example directories (``mtopt sd examples`` layout) labelling the new task: at
    least one success of it in all."""
    tasks_file: str = "tasks.json"
    """The run's task file; created when it does not exist, grown otherwise."""
    implies: tuple[str, ...] = ()
    """Tasks that certainly succeeded whenever the new one did (label sharing)."""
    excludes: tuple[str, ...] = ()
    """Tasks that certainly failed whenever the new one did."""
    attributes: tuple[str, ...] = ()
    """Words describing the new task (verb, object, its properties), the ``care`` Q-network's
    task metadata; none: the environment's own words for a task it knows (the workcell's
    ``lift-cloth``, ``cover-object``), else the words of its name and skill."""
    success_detector: SDTrainConfig = field(default_factory=lambda: SDTrainConfig(out="sd"))
    """How the detector of the grown task set is trained: ``init`` the run's detector to
    fine-tune (recommended), ``log`` the run's episode log (labelled within ``budget`` for the
    old tasks, and relabelled for the new one afterwards), ``out`` where it goes. Its
    ``examples`` are joined by every added task's examples."""

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError(
                f"task {self.name!r} needs --examples DIR: outcome examples that show when it "
                "succeeded (make them with 'mtopt sd examples')"
            )
        sd = self.success_detector
        if sd.init is None and sd.log is None:
            raise ValueError(
                f"the detector of the grown task set must still know the other tasks: give "
                f"--success-detector.init (the run's detector, fine-tuned) and/or "
                f"--success-detector.log (the run's log, labelled within the budget); the "
                f"examples of {self.name!r} alone label no other task"
            )


def add_task(config: NewTaskConfig, base: EnvSpec) -> dict[str, Any]:
    """Add ``config.name`` to the run whose environment (without added tasks) is ``base``;
    returns the report written next to the detector (``OUT/new-task.json``)."""
    path = Path(config.tasks_file)
    existing = read_task_file(path) if path.exists() else ()
    if path.exists() and task_file_env(path) not in (None, base.name):
        raise ValueError(
            f"task file {str(path)!r} adds tasks to env {task_file_env(path)!r}, not to "
            f"{base.name!r}; pass --env {task_file_env(path)} or another --tasks-file"
        )
    task = AddedTask(
        config.name,
        config.skill,
        config.implies,
        config.excludes,
        config.examples,
        config.attributes,
    )
    spec = add_tasks(base, (*existing, task))  # refuses a taken name, a full set, bad relations
    slot = spec.task_set.slot(task.name)
    successes = _example_successes(config.examples, task.name, spec)
    sd_cfg = config.success_detector
    examples = tuple(
        dict.fromkeys((*sd_cfg.examples, *(d for t in (*existing, task) for d in t.examples)))
    )
    sd_cfg = replace(sd_cfg, examples=examples)
    report = train_success_detector(sd_cfg, spec, spec.camera_projections())
    relabel = None
    if sd_cfg.log is not None:
        relabel = relabel_log(sd_cfg.log, report["checkpoint"], spec, task.name)
    # the task file changes last: a failed training leaves the run's task set as it was
    write_task_file(path, base.name, (*existing, task))
    out = {
        "task": task.name,
        "slot": slot,
        "skill": task.skill,
        "task_file": str(path),
        "tasks": list(spec.task_set.names),
        "example_successes": successes,
        "success_detector": report["checkpoint"],
        "sd_train": {k: v for k, v in report.items() if k != "checkpoint"},
        "relabel": relabel,
    }
    write_json(out, Path(sd_cfg.out) / "new-task.json")
    logger.info(
        "added %s in slot %d of %d; success detector %s",
        task.name,
        slot,
        spec.task_set.capacity,
        report["checkpoint"],
    )
    return out


def _example_successes(directories: tuple[str, ...], task: str, spec: EnvSpec) -> int:
    """Successes of ``task`` among the examples; ``ValueError`` naming the directories when
    there are none (a detector cannot learn a task from failures alone)."""
    found = 0
    for directory in directories:
        ex = align_examples(
            load_examples(directory), spec.task_set.names, f"examples {directory!r}"
        )
        found += int((ex.labels[:, spec.task_set.slot(task)] == SUCCESS).sum())
    if found == 0:
        raise ValueError(
            f"examples {list(directories)} hold no success of task {task!r}: a success detector "
            "needs examples of the new task succeeding (and failing)"
        )
    return found


def relabel_log(log: str, checkpoint: str, spec: EnvSpec, task: str) -> dict[str, Any]:
    """Label every episode of ``log`` for ``task`` with the detector at ``checkpoint``;
    returns the successes found, in all and by the episode's own task and policy."""
    detector = SuccessDetector.load(checkpoint, spec.task_set)
    episodes = read_log_episodes(log, detector.needs_views)
    labels = detector.label(episodes, [task])[:, 0] if episodes else np.zeros(0, dtype=bool)
    by_task: dict[str, dict[str, int]] = {}
    by_policy: dict[str, int] = {}
    for ep, success in zip(episodes, labels, strict=True):
        row = by_task.setdefault(ep.task, {"episodes": 0, "successes": 0})
        row["episodes"] += 1
        row["successes"] += int(success)
        if success:
            by_policy[ep.policy] = by_policy.get(ep.policy, 0) + 1
    return {
        "log": log,
        "episodes": len(episodes),
        "successes": int(labels.sum()),
        "by_task": by_task,
        "successes_by_policy": by_policy,
    }
