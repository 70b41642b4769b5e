"""Tasks, skills and task sets.

A *task* is what a robot is asked to do in one episode (``lift-carrot``); it owns a fixed
*one-hot slot* in the Q-network's task input. A *skill* groups tasks that share semantics and
dynamics (paper Sec. 3.2); skill-based task impersonation routes an episode only to the tasks
of its skill.

A :class:`TaskSet` reserves more one-hot slots than it has tasks (paper Sec. 5.6): adding a task
takes the next free slot and never moves an existing one, so a trained Q-function keeps its
meaning when the task set grows.

Task *relations* are facts about outcomes, used by impersonation and by success-detector label
sharing (paper App. 8): a ``lift-carrot`` success *implies* a ``lift-any`` success and
*excludes* success on every other semantic lift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

DEFAULT_CAPACITY = 16
"""One-hot slots of the default task set: the 12 evaluation tasks plus 4 reserved."""


@dataclass(frozen=True)
class Task:
    """One task: a name, a one-hot slot, a skill and its outcome relations."""

    name: str
    """Unique task name, e.g. ``lift-carrot``."""
    slot: int
    """Index of this task in the one-hot task vector; never changes once assigned."""
    skill: str
    """Name of the skill the task belongs to (used by skill impersonation)."""
    implies: tuple[str, ...] = ()
    """Tasks that certainly succeeded whenever this task succeeded."""
    excludes: tuple[str, ...] = ()
    """Tasks that certainly failed whenever this task succeeded."""
    attributes: tuple[str, ...] = ()
    """Hand-written words describing the task (verb, object, its properties, the motion),
    lower case, e.g. ``("lift", "grasp", "carrot", "vegetable")``: the task metadata of the
    ``care`` Q-network (:mod:`mtopt.learning.care`). :meth:`TaskSet.add` fills in
    :func:`default_attributes` when an environment gives none."""


def default_attributes(name: str, skill: str) -> tuple[str, ...]:
    """The words of a task's name and skill, lower case, in order, without repeats and version
    suffixes (``reach-v3``, skill ``reach`` -> ``("reach",)``)."""
    words = re.split(r"[-_\s]+", f"{name} {skill}".lower())
    return tuple(dict.fromkeys(w for w in words if w and not re.fullmatch(r"v\d+", w)))


def _attribute_words(name: str, attributes: Iterable[str]) -> tuple[str, ...]:
    """``attributes`` stripped and lower case; ValueError naming the task and the bad value
    unless each is a non-empty string."""
    if isinstance(attributes, str):
        raise ValueError(f"task {name!r}: attributes must be a list of words, got {attributes!r}")
    words = tuple(attributes)
    bad = [w for w in words if not isinstance(w, str) or not w.strip()]
    if bad:
        raise ValueError(f"task {name!r}: attributes must be non-empty words, got {bad!r}")
    return tuple(dict.fromkeys(w.strip().lower() for w in words))


class TaskSet:
    """An ordered set of tasks with a fixed one-hot capacity.

    Tasks are looked up by name; ``slot`` gives the one-hot index. Relations are stored by
    name and checked to refer to known tasks, and ``excludes`` is kept symmetric.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"task set capacity must be a positive integer, got {capacity!r}")
        self._capacity = capacity
        self._tasks: dict[str, Task] = {}

    # -- construction -------------------------------------------------------------------
    def add(
        self,
        name: str,
        skill: str,
        implies: Iterable[str] = (),
        excludes: Iterable[str] = (),
        attributes: Iterable[str] = (),
    ) -> Task:
        """Add a task in the next free one-hot slot and return it. ``attributes`` describe it
        (:attr:`Task.attributes`; none: :func:`default_attributes` of its name and skill).

        Raises ``ValueError`` if the name is taken, malformed, the set is full, a
        relation names an unknown task, or an attribute is not a word.
        """
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"task name must be a non-empty string without padding, got {name!r}")
        if name in self._tasks:
            raise ValueError(f"task {name!r} already exists (slot {self._tasks[name].slot})")
        if len(self._tasks) >= self._capacity:
            raise ValueError(
                f"cannot add task {name!r}: all {self._capacity} one-hot slots are taken; "
                "create the task set with a larger capacity"
            )
        implies = tuple(implies)
        excludes = tuple(excludes)
        for rel in implies + excludes:
            if rel not in self._tasks:
                raise ValueError(
                    f"task {name!r} relates to unknown task {rel!r}; known: {self.names}"
                )
        words = _attribute_words(name, attributes) or default_attributes(name, skill)
        task = Task(name, len(self._tasks), skill, implies, excludes, words)
        self._tasks[name] = task
        # keep "excludes" symmetric: if A excludes B, B excludes A.
        for other in excludes:
            o = self._tasks[other]
            if name not in o.excludes:
                self._tasks[other] = replace(o, excludes=(*o.excludes, name))
        return task

    # -- queries --------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Number of one-hot slots (>= number of tasks)."""
        return self._capacity

    @property
    def names(self) -> tuple[str, ...]:
        """Task names in slot order."""
        return tuple(self._tasks)

    @property
    def skills(self) -> tuple[str, ...]:
        """Skill names in order of first appearance."""
        return tuple(dict.fromkeys(t.skill for t in self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __getitem__(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(self.names)}") from None

    def slot(self, name: str) -> int:
        """One-hot slot of a task."""
        return self[name].slot

    def validate(self, names: Iterable[str]) -> tuple[str, ...]:
        """Return ``names`` as a tuple, raising ``ValueError`` that lists the known tasks if
        any name is unknown."""
        names = tuple(names)
        unknown = [n for n in names if n not in self._tasks]
        if unknown:
            raise ValueError(
                f"unknown task name(s) {unknown}; known tasks: {', '.join(self.names)}"
            )
        return names

    def attribute_table(self) -> tuple[tuple[str, ...], ...]:
        """Every one-hot slot's :attr:`Task.attributes`, in slot order (``()`` for a free
        slot): what the ``care`` Q-network reads (:attr:`mtopt.learning.networks.NetworkShape.
        task_attributes`)."""
        by_slot = {t.slot: t.attributes for t in self._tasks.values()}
        return tuple(by_slot.get(k, ()) for k in range(self._capacity))

    def tasks_of_skill(self, skill: str) -> tuple[str, ...]:
        """Names of the tasks that belong to ``skill``."""
        if skill not in self.skills:
            raise ValueError(f"unknown skill {skill!r}; known skills: {self.skills}")
        return tuple(t.name for t in self._tasks.values() if t.skill == skill)

    def one_hot(self, names: str | Sequence[str]) -> np.ndarray:
        """One-hot rows of width ``capacity`` (float32); a single name gives a 1-D vector."""
        single = isinstance(names, str)
        seq = [names] if single else list(names)
        self.validate(seq)
        out = np.zeros((len(seq), self._capacity), dtype=np.float32)
        out[np.arange(len(seq)), [self._tasks[n].slot for n in seq]] = 1.0
        return out[0] if single else out

    def implied_labels(self, name: str) -> dict[str, bool]:
        """Labels that a success on ``name`` determines for other tasks.

        Returns ``{task: True}`` for tasks implied and ``{task: False}`` for tasks excluded
        (label sharing from task relations, paper App. 8).
        """
        task = self[name]
        labels = {t: True for t in task.implies}
        labels.update({t: False for t in task.excludes})
        return labels

    def __repr__(self) -> str:
        return f"TaskSet({list(self.names)}, capacity={self._capacity})"
