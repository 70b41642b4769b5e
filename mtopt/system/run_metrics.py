"""Metrics of the continuous system: TensorBoard scalars and a live console view.

TensorBoard (``OUT/tb``), written every ``train.log_every`` trainer steps:

* ``fleet/episodes_per_s``, ``fleet/episodes`` (episodes produced by the robots);
* ``collected_success/<task>``: success rate (by the configured success labeller) of the
  episodes collected for each task since the last write; ``collected_episodes/<task>``;
* ``queues/<stage>``: depth of each bounded queue, ``queues/log_backlog`` (episodes produced
  but not yet ingested by log replay);
* ``staleness/updater_mean|max`` and ``staleness/robot_mean|max``: trainer steps between the
  weights a target batch or an episode used and the trainer step when it was consumed;
* ``train/*`` (loss, mean Q, steps/s), ``schedule/learned_tasks``, ``busy/<stage>`` (busy
  seconds per wall second of each stage).

The console shows a progress bar of trainer steps (on a terminal) and logs a one-line report
every ``console_every_s`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.progress import progress_bar

logger = logging.getLogger(__name__)


class RunMetrics:
    """Accumulates the run's events and writes them to TensorBoard and the console."""

    def __init__(
        self, out: Path, steps: int, start_step: int, progress: bool, console_every_s: float
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out / "tb"))
        self.bar = progress_bar(steps, "run", "step", progress, initial=start_step)
        self.console_every_s = console_every_s
        self.t0 = time.time()
        self._last_write = self._last_console = self.t0
        self._episodes_at_write = 0
        self._steps_at_write = start_step
        self.produced = 0
        self.ingested = 0
        self.outcomes: dict[str, list[int]] = {}
        self.staleness = {"updater": [], "robot": []}
        self.all_staleness = {"updater": [], "robot": []}
        self.busy: Counter[str] = Counter()
        self.total_busy: Counter[str] = Counter()
        self.train: dict[str, float] = {}

    def on_collect(self, report: dict[str, Any], staleness: int | None) -> None:
        self.produced += report["produced"]
        self.on_busy(report["busy"])
        if staleness is not None:
            self.staleness["robot"].append(staleness)

    def on_poll(self, report: dict[str, Any]) -> None:
        self.ingested += report["episodes"]
        self.on_busy(report["busy"])
        for task, (s, n) in report["outcomes"].items():
            o = self.outcomes.setdefault(task, [0, 0])
            o[0] += s
            o[1] += n

    def on_train(self, report: dict[str, Any]) -> None:
        self.train = {k: v for k, v in report.items() if isinstance(v, float)}
        self.staleness["updater"].extend(report["staleness"])
        self.bar.update(len(report["staleness"]))

    def on_busy(self, busy: dict[str, float]) -> None:
        self.busy.update(busy)
        self.total_busy.update(busy)

    def maybe_write(
        self, step: int, queues: dict[str, int], learned_tasks: int, force: bool = False
    ) -> None:
        """Write the scalars (every ``log_every`` steps) and the console line when due."""
        now = time.time()
        if force and step == self._steps_at_write:
            self.all_staleness["updater"].extend(self.staleness["updater"])
            self.all_staleness["robot"].extend(self.staleness["robot"])
            return
        w = self.writer
        dt = max(now - self._last_write, 1e-9)
        w.add_scalar("fleet/episodes_per_s", (self.produced - self._episodes_at_write) / dt, step)
        w.add_scalar("fleet/episodes", self.produced, step)
        w.add_scalar("train/steps_per_s", (step - self._steps_at_write) / dt, step)
        for task, (s, n) in sorted(self.outcomes.items()):
            if n:
                w.add_scalar(f"collected_success/{task}", s / n, step)
                w.add_scalar(f"collected_episodes/{task}", n, step)
        for name, depth in queues.items():
            w.add_scalar(f"queues/{name}", depth, step)
        w.add_scalar("queues/log_backlog", max(self.produced - self.ingested, 0), step)
        for kind, values in self.staleness.items():
            if values:
                w.add_scalar(f"staleness/{kind}_mean", float(np.mean(values)), step)
                w.add_scalar(f"staleness/{kind}_max", float(np.max(values)), step)
                self.all_staleness[kind].extend(values)
        for k, v in self.train.items():
            w.add_scalar(f"train/{k}", v, step)
        for stage, seconds in self.busy.items():
            w.add_scalar(f"busy/{stage}", seconds / dt, step)
        w.add_scalar("schedule/learned_tasks", learned_tasks, step)
        eps_rate = (self.produced - self._episodes_at_write) / dt
        self.bar.set_postfix(
            eps=self.produced,
            eps_s=f"{eps_rate:.0f}",
            stale=int(np.max(self.staleness["updater"])) if self.staleness["updater"] else 0,
            q=sum(queues.values()),
            loss=f"{self.train.get('loss', float('nan')):.3f}",
        )
        if force or now - self._last_console >= self.console_every_s:
            succ = sum(s for s, _ in self.outcomes.values())
            n = sum(n for _, n in self.outcomes.values())
            logger.info(
                "step %d | %.1f steps/s | episodes %d (%.1f/s), ingested %d | collected "
                "success %s | queues %s | staleness updater %s robot %s | learned tasks %d",
                step,
                (step - self._steps_at_write) / dt,
                self.produced,
                eps_rate,
                self.ingested,
                f"{succ / n:.2f}" if n else "-",
                queues,
                _fmt(self.staleness["updater"]),
                _fmt(self.staleness["robot"]),
                learned_tasks,
            )
            self._last_console = now
        self.outcomes = {}
        self.staleness = {"updater": [], "robot": []}
        self.busy = Counter()
        self._last_write = now
        self._episodes_at_write = self.produced
        self._steps_at_write = step

    def summary(self) -> dict[str, Any]:
        """Staleness statistics over the whole run and busy seconds per stage."""
        out: dict[str, Any] = {"busy_s": dict(self.total_busy)}
        for kind, values in self.all_staleness.items():
            if values:
                out[f"staleness_{kind}"] = {
                    "mean": float(np.mean(values)),
                    "p95": float(np.percentile(values, 95)),
                    "max": int(np.max(values)),
                }
        return out

    def close(self) -> None:
        self.bar.close()
        self.writer.close()


def _fmt(values: list[int]) -> str:
    return f"{np.mean(values):.1f}/{np.max(values)}" if values else "-"
