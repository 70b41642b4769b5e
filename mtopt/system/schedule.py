"""The collection schedule: per task, scripted bootstrap until the learned policy beats it.

Paper App. 9.1: "Initially scripted policies were run collecting data [...]. Once performance
of our learned policy for these tasks out-performed the scripted policy we shifted to a mix of
epsilon greedy and pure on-policy data collection." Here, per task:

* while a task is *scripted*, robots run the scripted policy for it, except that a fraction
  ``probe`` of its episodes (once learned weights exist) run the learned ε-greedy policy, so
  the two can be compared on the same task;
* the comparison uses the **success labels of the collected episodes** for the task they were
  collected for, as given by the configured success labeller (never the ground truth unless
  ``rewards: oracle``): all scripted episodes of the task against the newest ``window``
  learned episodes of the task;
* the task switches to *learned* once the learned policy beats the scripted one (see
  :func:`learned_beats_scripted`) and then stays learned (robots run the ε-greedy policy).

The statistics are counts, so several log replays' statistics simply add up, and a restarted
run rebuilds the same schedule by re-reading the log.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mtopt.data.episode import CHECKPOINT_POLICY_PREFIX


@dataclass(frozen=True)
class ScheduleConfig:
    """When robots switch a task from the scripted to the learned ε-greedy policy."""

    probe: float = 0.2
    """Fraction of a still-scripted task's episodes run with the learned ε-greedy policy."""
    min_episodes: int = 20
    """Labelled episodes each policy needs on a task before the two are compared."""
    window: int = 200
    """The learned policy is judged on its newest this many episodes of the task."""
    z: float = 1.0
    """Learned beats scripted when the Wilson lower bound (z standard errors) of its success
    rate exceeds the scripted success rate; 0 compares the plain rates."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.probe <= 1.0:
            raise ValueError(f"schedule.probe must be in [0, 1], got {self.probe!r}")
        for name in ("min_episodes", "window"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"schedule.{name} must be a positive integer, got {v!r}")
        if self.z < 0:
            raise ValueError(f"schedule.z must be >= 0, got {self.z!r}")


def wilson_lower_bound(successes: int, n: int, z: float) -> float:
    """Lower end of the Wilson score interval of a success rate (0 for ``n == 0``)."""
    if n <= 0:
        return 0.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / denom)


def learned_beats_scripted(
    learned: tuple[int, int], scripted: tuple[int, int], min_episodes: int, z: float
) -> bool:
    """Whether ``learned = (successes, n)`` beats ``scripted = (successes, n)``.

    Both need ``min_episodes`` episodes; the learned rate's Wilson lower bound must then be
    strictly above the scripted success rate.
    """
    (ls, ln), (ss, sn) = learned, scripted
    if ln < min_episodes or sn < min_episodes:
        return False
    return wilson_lower_bound(ls, ln, z) > ss / sn


def is_learned_policy(policy: str) -> bool:
    """Episodes of a learned policy (``checkpoint:<id>``) count as the learned policy's; those of
    the bootstrap policies (scripted, or an expert under ``bootstrap: expert``) as scripted."""
    return policy.startswith(CHECKPOINT_POLICY_PREFIX)


class OutcomeStats:
    """Per-task labelled outcomes of collected episodes, split by scripted / learned policy."""

    def __init__(self, tasks: Sequence[str], window: int) -> None:
        self.scripted = {t: [0, 0] for t in tasks}
        self.learned = {t: deque(maxlen=window) for t in tasks}

    def add(self, task: str, policy: str, success: bool) -> None:
        """Record one episode collected for ``task`` by ``policy`` with its label."""
        if task not in self.scripted:
            return
        if is_learned_policy(policy):
            self.learned[task].append(bool(success))
        else:
            self.scripted[task][0] += int(success)
            self.scripted[task][1] += 1

    def counts(self) -> dict[str, dict[str, tuple[int, int]]]:
        """``{task: {"scripted": (successes, n), "learned": (successes, n)}}``."""
        return {
            t: {
                "scripted": (self.scripted[t][0], self.scripted[t][1]),
                "learned": (sum(self.learned[t]), len(self.learned[t])),
            }
            for t in self.scripted
        }


def merge_counts(
    parts: Iterable[Mapping[str, Mapping[str, tuple[int, int]]]],
) -> dict[str, dict[str, tuple[int, int]]]:
    """Add up :meth:`OutcomeStats.counts` of several log replays."""
    total: dict[str, dict[str, tuple[int, int]]] = {}
    for part in parts:
        for task, kinds in part.items():
            slot = total.setdefault(task, {"scripted": (0, 0), "learned": (0, 0)})
            for kind, (s, n) in kinds.items():
                s0, n0 = slot[kind]
                slot[kind] = (s0 + s, n0 + n)
    return total


class CollectionSchedule:
    """The set of tasks whose collection has switched to the learned policy (monotone)."""

    def __init__(self, config: ScheduleConfig, tasks: Sequence[str]) -> None:
        self.config = config
        self.tasks = tuple(tasks)
        self.learned_tasks: set[str] = set()

    def update(self, counts: Mapping[str, Mapping[str, tuple[int, int]]]) -> list[str]:
        """Switch every task whose learned policy now beats the scripted one; return them."""
        cfg = self.config
        switched = []
        for task in self.tasks:
            if task in self.learned_tasks or task not in counts:
                continue
            c = counts[task]
            if learned_beats_scripted(c["learned"], c["scripted"], cfg.min_episodes, cfg.z):
                self.learned_tasks.add(task)
                switched.append(task)
        return switched

    def state(self) -> dict[str, object]:
        """Plain-data state shipped to the robots."""
        return {
            "learned_tasks": sorted(self.learned_tasks),
            "probe": self.config.probe,
        }
