"""Tasks a run adds to its environment's task set (paper Sec. 5.6), and the task file.

MT-Opt learns a new task by giving it one of the one-hot slots the task set reserves, defining
it by examples of its successful outcome (a success detector labels the episodes) and training
the existing multi-task Q-function further. The environment keeps its own tasks; a run's added
tasks live in a *task file* (``tasks.json``, written by ``mtopt task add``) that every command
reads through ``--env.tasks FILE``. An added task takes the next free slot and never moves an
existing one, so every checkpoint trained before the addition keeps its meaning and loads into
the grown task set.

An added task names its skill (impersonation and the episode's start follow it) and, in a
simulation, may be a task the environment has a success predicate for without having it in its
task set (the workcell's ``lift-cloth`` and ``cover-object``): then the environment reports its
ground truth (for oracle rewards and the evaluation). Without one, only its success detector
knows when it succeeded.

The file is JSON (plain values only), written to a temporary name, fsync'd and renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtopt.spec import EnvSpec, EpisodePolicy, StartMode
from mtopt.tasks import TaskSet

if TYPE_CHECKING:
    import gymnasium as gym

TASK_FILE_FORMAT = 1
"""Version of the task file's layout."""


@dataclass(frozen=True)
class AddedTask:
    """One task added to an environment's task set."""

    name: str
    """Unique task name, e.g. ``cover-object``."""
    skill: str
    """The skill it belongs to: one of the environment's skills (its episodes start like that
    skill's episodes, and skill impersonation shares data within it)."""
    implies: tuple[str, ...] = ()
    """Tasks that certainly succeeded whenever this one did (label sharing)."""
    excludes: tuple[str, ...] = ()
    """Tasks that certainly failed whenever this one did."""
    examples: tuple[str, ...] = ()
    """Outcome-example directories that define the task (``mtopt sd examples`` layout)."""
    attributes: tuple[str, ...] = ()
    """Words describing the task (:attr:`mtopt.tasks.Task.attributes`, the ``care``
    Q-network's task metadata); none: the environment's own for a task it knows
    (:meth:`~mtopt.spec.EnvSpec.known_attributes`), else the words of the name and skill."""

    def __post_init__(self) -> None:
        for name in ("implies", "excludes", "examples", "attributes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"added task {self.name!r}: {name} must be a list of names")
            object.__setattr__(self, name, tuple(value))


def grow_task_set(base: TaskSet, added: Iterable[AddedTask]) -> TaskSet:
    """``base`` with ``added`` in its next free one-hot slots (same capacity).

    ``ValueError`` naming the task when a name is taken, its skill is not one of ``base``'s, a
    relation names an unknown task, or the reserved slots are used up."""
    grown = TaskSet(base.capacity)
    for task in base:  # in slot order; an exclusion of a later task is added with that task
        excludes = [t for t in task.excludes if t in grown]
        grown.add(task.name, task.skill, task.implies, excludes, task.attributes)
    for task in added:
        if task.skill not in base.skills:
            raise ValueError(
                f"added task {task.name!r}: skill {task.skill!r} is not one of the environment's "
                f"skills {list(base.skills)}"
            )
        if len(grown) >= grown.capacity:
            raise ValueError(
                f"cannot add task {task.name!r}: all {grown.capacity} one-hot slots are taken "
                f"({len(base)} environment tasks, {len(grown) - len(base)} added); the "
                "environment must reserve more slots"
            )
        grown.add(task.name, task.skill, task.implies, task.excludes, task.attributes)
    return grown


def read_task_file(path: str | Path) -> tuple[AddedTask, ...]:
    """The added tasks of a task file; ``ValueError`` naming the file when it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"task file {str(path)!r} does not exist; 'mtopt task add NAME --tasks-file FILE' "
            "creates it"
        )
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"task file {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != TASK_FILE_FORMAT:
        raise ValueError(
            f"task file {str(path)!r} has format {payload.get('format')!r} "
            f"(this mtopt reads format {TASK_FILE_FORMAT})"
            if isinstance(payload, dict)
            else f"task file {str(path)!r} does not hold a JSON object"
        )
    tasks = []
    for entry in payload.get("tasks", []):
        try:
            tasks.append(AddedTask(**entry))
        except TypeError as exc:
            raise ValueError(f"task file {str(path)!r}: bad task entry {entry!r}: {exc}") from exc
    return tuple(tasks)


def write_task_file(path: str | Path, env: str, tasks: Sequence[AddedTask]) -> Path:
    """Atomically write the task file of environment ``env`` with ``tasks`` in slot order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": TASK_FILE_FORMAT,
        "env": env,
        "tasks": [asdict(t) for t in tasks],
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def task_file_env(path: str | Path) -> str | None:
    """The environment a task file was written for (None when it does not say)."""
    payload = json.loads(Path(path).read_text())
    return payload.get("env") if isinstance(payload, dict) else None


def slot_differences(found: Sequence[str], expected: Sequence[str]) -> list[str]:
    """The one-hot slots where two task lists disagree, as ``slot K: 'a' vs 'b'`` (a missing
    task is ``(none)``)."""
    out = []
    for k in range(max(len(found), len(expected))):
        a = found[k] if k < len(found) else None
        b = expected[k] if k < len(expected) else None
        if a != b:
            out.append(f"slot {k}: {a or '(none)'!r} vs {b or '(none)'!r}")
    return out


class _CarrierPolicy:
    """A bootstrap policy of the carrier task, run for an episode of an added task."""

    def __init__(self, inner: EpisodePolicy, carrier: str) -> None:
        self.inner = inner
        self.carrier = carrier

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        del task  # the inner policy knows only the environment's own tasks
        self.inner.reset(rng, task=self.carrier)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.inner.act(obs)


class GrownSpec(EnvSpec):
    """An environment's spec with tasks added in its reserved one-hot slots.

    The environment itself knows only its own tasks. An episode of an added task runs as an
    episode of its *carrier*, the first of the environment's tasks of the same skill: it starts
    on the same kind of scene, and the environment reports ground truth for the tasks it has
    predicates for (:meth:`EnvSpec.has_ground_truth`).
    The scripted bootstrap policy of an added task is its carrier's; a learned policy acts for
    the added task's own one-hot slot. Everything else is the environment's spec."""

    def __init__(self, base: EnvSpec, added: Sequence[AddedTask]) -> None:
        self.base = base
        self.added = tuple(added)
        self.name = base.name
        described = (
            replace(t, attributes=t.attributes or base.known_attributes(t.name)) for t in self.added
        )
        self.task_set = grow_task_set(base.task_set, described)
        self.action = base.action
        self.observation = base.observation
        self.structure = base.structure
        self.horizon = base.horizon

    def carrier(self, task: str) -> str:
        """The environment task an episode of ``task`` runs as (``task`` itself if native)."""
        if task in self.base.task_set:
            return task
        return self.base.task_set.tasks_of_skill(self.task_set[task].skill)[0]

    def has_ground_truth(self, task: str) -> bool:
        return self.base.has_ground_truth(task)

    def known_attributes(self, task: str) -> tuple[str, ...]:
        return self.base.known_attributes(task)

    def make_env(self, image: bool = False, side_images: bool = False) -> gym.Env:
        return self.base.make_env(image, side_images)

    def reset_options(
        self, task: str, mode: StartMode, attempt: int | None = None
    ) -> dict[str, Any]:
        options = self.base.reset_options(self.carrier(task), mode, attempt)
        return {**options, "task": self._judged(task)}

    def _judged(self, task: str) -> str:
        """The task the environment scores the episode for: ``task`` if it has a predicate for
        it, else the carrier."""
        return task if self.base.has_ground_truth(task) else self.carrier(task)

    def _carried(
        self, task: str, make: Callable[[str], tuple[EpisodePolicy, str]]
    ) -> tuple[EpisodePolicy, str]:
        """The environment's policy ``make(carrier)``, wrapped to run for ``task``."""
        carrier = self.carrier(task)
        policy, name = make(carrier)
        return (policy, name) if carrier == task else (_CarrierPolicy(policy, carrier), name)

    def scripted_policy(self, task: str) -> tuple[EpisodePolicy, str]:
        return self._carried(task, self.base.scripted_policy)

    def expert_policy(self, task: str) -> tuple[EpisodePolicy, str]:
        return self._carried(task, self.base.expert_policy)

    def chain_skill(self, task: str) -> str | None:
        return self.base.chain_skill(self.carrier(task))

    def chain_options(self, task: str) -> dict[str, Any]:
        return {**self.base.chain_options(self.carrier(task)), "task": self._judged(task)}

    def camera_projections(self) -> Callable[[int], np.ndarray] | None:
        return self.base.camera_projections()

    def control_hz(self) -> float | None:
        return self.base.control_hz()

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "tasks": list(self.task_set.names)}


def add_tasks(spec: EnvSpec, added: Sequence[AddedTask]) -> EnvSpec:
    """``spec`` with ``added`` in its reserved slots (``spec`` itself when nothing is added)."""
    return GrownSpec(spec, added) if added else spec
