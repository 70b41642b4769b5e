"""Log replay (paper Fig. 10): tail the episode log, label and impersonate, fill the task replay.

Every new episode is labelled by the injected success labeller for the tasks the impersonation
function routes it to, then its transitions are filed in the task replay's per-task success
and failure buckets. Log replay never calls back into an environment.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from mtopt.data.impersonation import Impersonation
from mtopt.data.log import EpisodeLogTailer, in_robot_order
from mtopt.data.replay import TaskReplay

logger = logging.getLogger(__name__)


class LogReplay:
    """Feeds a :class:`TaskReplay` from an episode-log directory, one poll at a time."""

    def __init__(
        self, directory: str | Path, impersonation: Impersonation, replay: TaskReplay
    ) -> None:
        self.directory = Path(directory)
        self.tailer = EpisodeLogTailer(self.directory)
        self.impersonation = impersonation
        self.replay = replay
        self.episodes = 0
        """Episodes read from the log."""
        self.collected_for: Counter[str] = Counter()
        """Episodes per task they were collected for (the paper's "#Eps." column)."""
        self.routed: Counter[str] = Counter()
        """Episodes routed to each task by impersonation (own task included)."""
        self.routed_successes: Counter[str] = Counter()
        """Routed episodes labelled a success for that task."""

    @property
    def corrupt_shards(self) -> int:
        """Shards the tailer skipped as corrupt."""
        return self.tailer.corrupt_shards

    def poll(self) -> int:
        """Ingest every episode that appeared in the log since the last poll."""
        new = in_robot_order(self.tailer.poll())
        prime = getattr(self.impersonation.labeller, "prime", None)
        if prime is not None:  # batched labelling (e.g. the success detector)
            prime([ep for ep in new if ep.task in self.impersonation.task_set])
        for episode in new:
            self.add(episode)
        return len(new)

    def add(self, episode: object) -> list[tuple[str, bool]]:
        """Label, impersonate and store one episode; returns its routed ``(task, success)``."""
        task = episode.task  # type: ignore[attr-defined]
        self.episodes += 1
        self.collected_for[task] += 1
        if task not in self.impersonation.task_set:
            logger.warning("episode collected for unknown task %r skipped", task)
            return []
        routed = self.impersonation(episode, task)
        self.replay.add_episode(episode, routed)
        for t, ok in routed:
            self.routed[t] += 1
            self.routed_successes[t] += int(ok)
        return routed
