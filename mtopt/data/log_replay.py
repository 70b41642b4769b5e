"""Log replay (paper Fig. 10): tail the episode log, label and impersonate, fill the task replay.

Every new episode is labelled by the injected success labeller for the tasks the impersonation
function routes it to, then its transitions are filed in the task replay's per-task success
and failure buckets. Log replay never calls back into an environment.

One log replay can read several log directories (e.g. a frozen offline log and the episodes of
a collection round, kept apart): each poll reads them in the order given, each one's new
episodes in robot order, so the same directories give the same replay.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mtopt.data.impersonation import Impersonation
from mtopt.data.log import EpisodeLogTailer, in_robot_order
from mtopt.data.replay import TaskReplay

logger = logging.getLogger(__name__)


class LogReplay:
    """Feeds a :class:`TaskReplay` from an episode-log directory (and ``more_directories``,
    read after it in this order), one poll at a time."""

    def __init__(
        self,
        directory: str | Path,
        impersonation: Impersonation,
        replay: TaskReplay,
        more_directories: Sequence[str | Path] = (),
    ) -> None:
        self.directory = Path(directory)
        self.tailer = EpisodeLogTailer(self.directory)
        self.more_tailers = [EpisodeLogTailer(Path(d)) for d in more_directories]
        """Tailers of ``more_directories``, polled after :attr:`tailer`."""
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
        """Shards the tailers skipped as corrupt."""
        return sum(t.corrupt_shards for t in (self.tailer, *self.more_tailers))

    def poll(self) -> int:
        """Ingest every episode that appeared in the log directories since the last poll."""
        new = [e for t in (self.tailer, *self.more_tailers) for e in in_robot_order(t.poll())]
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
