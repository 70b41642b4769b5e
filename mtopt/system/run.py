"""``mtopt run``: the continuous MT-Opt system (paper Sec. 4, Sec. 7.4 / Fig. 10, App. 9.1).

::

    fleet robots --episodes--> episode log --> log replay (labelling + impersonation)
         ^                                       --> task replay --> Bellman updaters
         |                                                              |  (s, a, task, target)
         +---------- weights, published every N trainer steps <---- trainer

:func:`build_system` makes the same worker classes on either backend
(:mod:`mtopt.system.backends`), each built with the one pipeline builder
(:mod:`mtopt.system.builder`); :class:`ContinuousRun` is the driver loop, identical for both.
It keeps every queue between stages bounded (``queue_size`` batches awaiting targets, the same
awaiting the trainer), limits collection to ``episodes_per_step`` episodes per trainer step
(after ``bootstrap_episodes``), publishes weights every ``publish_every`` steps, re-submits the
work of a robot or Bellman updater that died (Ray restarts the actor), and on start resumes
from the newest checkpoint and the existing log.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtopt.config import save_config
from mtopt.data.log import EpisodeLogWriter
from mtopt.jsonio import write_json
from mtopt.learning.checkpoint import latest_checkpoint
from mtopt.spec import EnvSpec
from mtopt.system.backends import LocalBackend, RayBackend, WorkerDiedError, make_backend
from mtopt.system.builder import PipelineBuilder, check_run_directory
from mtopt.system.run_config import RunConfig
from mtopt.system.run_metrics import RunMetrics
from mtopt.system.schedule import CollectionSchedule, merge_counts
from mtopt.system.workers import LogReplayWorker, RunRobot, TrainerWorker, UpdaterWorker

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
"""Minimum time between two polls of the log by one log replay."""


@dataclass
class System:
    """The workers of one run, on one backend."""

    backend: LocalBackend | RayBackend
    trainer: Any
    robots: list[Any]
    log_replays: list[Any]
    updaters: list[Any]


def build_system(config: RunConfig, spec: EnvSpec, backend: LocalBackend | RayBackend) -> System:
    """Make every worker of ``config`` in environment ``spec`` on ``backend`` (each worker
    makes its pieces with :class:`mtopt.system.builder.PipelineBuilder`)."""
    labeller = PipelineBuilder(config.train, spec).labeller()
    backend.check_fits(
        {
            "robot": config.robots,
            "log_replay": config.log_replays,
            "updater": config.updaters,
            "trainer": 1,
        }
    )
    threads = 1 if isinstance(backend, RayBackend) else 0
    return System(
        backend=backend,
        trainer=backend.spawn(TrainerWorker, "trainer", config, spec, threads),
        robots=[backend.spawn(RunRobot, "robot", config, i, spec) for i in range(config.robots)],
        log_replays=[
            backend.spawn(LogReplayWorker, "log_replay", config, i, labeller, spec)
            for i in range(config.log_replays)
        ],
        updaters=[
            backend.spawn(UpdaterWorker, "updater", config, i, spec) for i in range(config.updaters)
        ],
    )


@dataclass
class _Flight:
    """What is in flight between the driver and the workers, and the driver's counters."""

    robot_calls: dict[int, Any] = field(default_factory=dict)
    """In-flight ``collect`` / ``flush`` calls by robot index."""
    buffered: dict[int, int] = field(default_factory=dict)
    """Episodes each robot holds in its writer's buffer."""
    produced_by: dict[int, int] = field(default_factory=dict)
    """Episodes each robot produced in this run."""
    poll_calls: dict[int, Any] = field(default_factory=dict)
    """In-flight ``poll`` calls by log-replay index."""
    last_poll: list[float] = field(default_factory=list)
    """When each log replay was last polled."""
    targets: list[tuple[Any, Any]] = field(default_factory=list)
    """In-flight Bellman-updater calls: (targets future, sample future)."""
    ready: deque[tuple[Any, Any]] = field(default_factory=deque)
    """Finished target batches awaiting the trainer: (targets future, sample future)."""
    train_calls: list[tuple[Any, list[tuple[Any, Any]]]] = field(default_factory=list)
    """In-flight trainer calls with the target batches they consume."""
    rr_replay: int = 0
    """Round-robin counter over the log replays."""
    rr_updater: int = 0
    """Round-robin counter over the Bellman updaters."""


class ContinuousRun:
    """The driver loop of the continuous system (both backends).

    Each iteration of :meth:`_loop` runs the named steps :meth:`_collect`, :meth:`_poll_logs`,
    :meth:`_feed_learner`, then waits for any call to finish and hands it to
    :meth:`_on_robots`, :meth:`_on_polls`, :meth:`_on_targets` or :meth:`_on_training`, and
    finally :meth:`_publish_and_write`. :meth:`_drain` and :meth:`_report` end the run.

    ``hook(run)``, if given, is called once per loop iteration (tests use it to kill workers).
    After :meth:`run`, ``written`` maps each robot to the episode ids it reported as durable.
    """

    def __init__(
        self,
        config: RunConfig,
        spec: EnvSpec,
        hook: Callable[[ContinuousRun], None] | None = None,
    ):
        self.config = config
        self.spec = spec
        self.hook = hook
        self.system: System | None = None
        self.step = 0
        self.written: dict[int, list[str]] = {i: [] for i in range(config.robots)}
        self.failed_calls = {"robot": 0, "updater": 0}
        """Calls lost because a robot or Bellman updater died (their work is redone)."""
        self.flight = _Flight()
        self.schedule = CollectionSchedule(
            config.schedule, PipelineBuilder(config.train, spec).tasks
        )
        self.weights: tuple[int, Any] | None = None
        """The newest published weights: (trainer step, reference)."""
        self.counts: dict[int, Any] = {}
        self.collected_for: dict[int, dict[str, int]] = {}
        self.replay_sizes: list[int] = [0] * config.log_replays
        self.run_ids_in_log: set[str] = set()
        self.duplicates: list[str] = []
        self.log_at_start = 0
        self.train_start: float | None = None
        self.train_start_step = 0

    # -- set-up ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg = self.config
        out = check_run_directory(cfg.out)
        if not cfg.resume and latest_checkpoint(cfg.checkpoint_dir) is not None:
            raise ValueError(
                f"{str(cfg.checkpoint_dir)!r} already holds checkpoints; resume (the default) "
                "or choose a new --out"
            )
        out.mkdir(parents=True, exist_ok=True)
        EpisodeLogWriter.check_directory(cfg.log_dir)
        save_config(cfg, out / "config.yaml")

    def run(self) -> dict[str, Any]:
        """Run until the trainer reaches ``config.steps``; returns the run report."""
        self._prepare()
        backend = make_backend(self.config.backend, self.config.ray)
        try:
            self.system = build_system(self.config, self.spec, backend)
            report = self._loop(self.system)
        finally:
            backend.shutdown()
        write_json(report, Path(self.config.out) / "run.json")
        return report

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self, s: System) -> dict[str, Any]:
        cfg, b = self.config, s.backend
        t_start = time.time()
        status = b.get(b.call(s.trainer, "status"))
        self.step = self.train_start_step = start_step = status["step"]
        if status["resumed_from"]:
            logger.info("resuming from %s at step %d", status["resumed_from"], start_step)
        self.metrics = RunMetrics(
            Path(cfg.out), cfg.steps, start_step, cfg.progress, cfg.console_every_s
        )
        for lr in s.log_replays:  # ingest the existing log before anything else
            self._on_poll(b.get(b.call(lr, "poll")))
        self.log_at_start = self.metrics.ingested
        logger.info("log replay: %d episodes already in %s", self.log_at_start, cfg.log_dir)
        if start_step > 0:
            self.weights = (start_step, b.ref(b.call(s.trainer, "publish")))
        self.flight.last_poll = [time.time()] * len(s.log_replays)
        self._next_write = (self.step // cfg.train.log_every + 1) * cfg.train.log_every
        self._next_publish = (self.step // cfg.publish_every + 1) * cfg.publish_every
        while self.step < cfg.steps:
            self._collect(s)
            self._poll_logs(s)
            self._feed_learner(s)
            f = self.flight
            futures = list(f.robot_calls.values()) + list(f.poll_calls.values())
            futures += [t for t, _ in f.targets] + [t for t, _ in f.train_calls]
            done = {id(x) for x in b.wait(futures, timeout=1.0)}
            self._on_robots(s, done)
            self._on_polls(s, done)
            self._on_targets(done)
            self._on_training(s, done)
            self._publish_and_write(s)
            if self.hook is not None:
                self.hook(self)
        train_end = time.time()
        checkpoint = self._drain(s)
        return self._report(status, start_step, t_start, train_end, checkpoint)

    def _in_flight(self) -> int:
        """Episodes the robots' in-flight calls may still produce."""
        per_attempt = 2 if self.config.robot.chain_place else 1
        return len(self.flight.robot_calls) * self.config.attempts_per_call * per_attempt

    def _queues(self) -> dict[str, int]:
        f = self.flight
        return {
            "targets": len(f.targets),
            "trainer_ready": len(f.ready),
            "trainer_in_flight": sum(len(batch) for _, batch in f.train_calls),
        }

    def _collect(self, s: System) -> None:
        """Start a ``collect`` call on every idle robot while the collection budget allows; a
        paused robot flushes its buffer so its episodes become visible.

        The robot that produced the fewest episodes gets the budget first: in robot order,
        robot 0's in-flight call would reserve the little budget a few trainer steps add, and
        on the local backend (synchronous calls) robot 1 would never run again after the
        bootstrap."""
        cfg, b, f = self.config, s.backend, self.flight
        allowed = cfg.bootstrap_episodes + cfg.episodes_per_step * self.step
        order = sorted(range(len(s.robots)), key=lambda r: (f.produced_by.get(r, 0), r))
        for i in order:
            robot = s.robots[i]
            if i in f.robot_calls:
                continue
            have = self.log_at_start + self.metrics.produced + self._in_flight()
            if cfg.episodes_per_step > 0 and have >= allowed:
                if f.buffered.get(i):
                    f.robot_calls[i] = b.call(robot, "flush")
                    f.buffered[i] = 0
                continue
            f.robot_calls[i] = b.call(
                robot, "collect", cfg.attempts_per_call, [self.weights], self.schedule.state()
            )

    def _poll_logs(self, s: System) -> None:
        """Start a ``poll`` call on every idle log replay not polled for a while."""
        b, f = s.backend, self.flight
        now = time.time()
        for j, lr in enumerate(s.log_replays):
            if j not in f.poll_calls and now - f.last_poll[j] >= POLL_INTERVAL_S:
                f.poll_calls[j] = b.call(lr, "poll")
                f.last_poll[j] = now

    def _submit_targets(self, s: System, sample_future: Any) -> None:
        f = self.flight
        updater = s.updaters[f.rr_updater % len(s.updaters)]
        f.rr_updater += 1
        f.targets.append(
            (s.backend.call(updater, "targets", sample_future, [self.weights]), sample_future)
        )

    def _feed_learner(self, s: System) -> None:
        """Once the log holds the bootstrap episodes: sample -> targets -> trainer, with every
        queue bounded by ``queue_size``."""
        cfg, b, f = self.config, s.backend, self.flight
        if self.metrics.ingested < cfg.bootstrap_episodes or not all(self.replay_sizes):
            return
        if self.train_start is None:
            self.train_start, self.train_start_step = time.time(), self.step
            logger.info("training starts with %d episodes", self.metrics.ingested)
        in_train = sum(len(batch) for _, batch in f.train_calls)
        pending = self.step + in_train + len(f.targets) + len(f.ready)
        while len(f.targets) + len(f.ready) < cfg.queue_size and pending < cfg.steps:
            lr = s.log_replays[f.rr_replay % len(s.log_replays)]
            f.rr_replay += 1
            self._submit_targets(s, b.call(lr, "sample", cfg.train.batch_size))
            pending += 1
        if f.ready and len(f.train_calls) < 2:
            batch = [f.ready.popleft() for _ in range(len(f.ready))]
            call = b.call(s.trainer, "train", *(tf for tf, _ in batch))
            f.train_calls.append((call, batch))

    def _on_robots(self, s: System, done: set[int]) -> None:
        """Record the finished robot calls; a dead robot's work is redone after Ray restarts
        it."""
        b, f = s.backend, self.flight
        for i, call in list(f.robot_calls.items()):
            if id(call) not in done:
                continue
            del f.robot_calls[i]
            try:
                rep = b.get(call)
            except WorkerDiedError as exc:
                self.failed_calls["robot"] += 1
                logger.warning("robot %d died (%s); Ray restarts it", i, exc)
                continue
            self.written[i] += rep["written"]
            f.buffered[i] = rep["buffered"]
            f.produced_by[i] = f.produced_by.get(i, 0) + rep["produced"]
            v = rep["weights_version"]
            self.metrics.on_collect(rep, self.step - v if v >= 0 and rep["produced"] else None)

    def _on_poll(self, report: dict[str, Any]) -> None:
        """Fold one log replay's poll report into the metrics, counts and schedule."""
        self.metrics.on_poll(report)
        self.counts[report["index"]] = report["counts"]
        self.collected_for[report["index"]] = report["collected_for"]
        self.replay_sizes[report["index"]] = report["replay_transitions"]
        for eid in report["run_episode_ids"]:
            if eid in self.run_ids_in_log:
                self.duplicates.append(eid)
            self.run_ids_in_log.add(eid)
        for task in self.schedule.update(merge_counts(self.counts.values())):
            logger.info("collection for %s switches to the learned policy", task)

    def _on_polls(self, s: System, done: set[int]) -> None:
        for j, call in list(self.flight.poll_calls.items()):
            if id(call) in done:
                del self.flight.poll_calls[j]
                self._on_poll(s.backend.get(call))

    def _on_targets(self, done: set[int]) -> None:
        """Move finished target batches to the trainer's queue (not fetched here: the trainer
        fetches them itself)."""
        f = self.flight
        for item in list(f.targets):
            if id(item[0]) in done:
                f.targets.remove(item)
                f.ready.append(item)

    def _on_training(self, s: System, done: set[int]) -> None:
        """Record finished trainer calls. If a Bellman updater died before finishing a batch of
        a call, the trainer ran none of them: their targets are redone (Ray restarts it)."""
        b, f = s.backend, self.flight
        for item in list(f.train_calls):
            call, batch = item
            if id(call) not in done:
                continue
            f.train_calls.remove(item)
            try:
                rep = b.get(call)
            except WorkerDiedError as exc:
                b.get(b.call(s.trainer, "status"))  # raises if the trainer itself died
                self.failed_calls["updater"] += 1
                logger.warning("a Bellman updater died (%s); Ray restarts it", exc)
                for _, sample_future in batch:
                    self._submit_targets(s, sample_future)
                continue
            # Ray's wait may hand back a later trainer call before an earlier one: the earlier
            # report's step is then stale, and taking it would make _feed_learner submit
            # batches past cfg.steps (seen once as step 61 of 60).
            self.step = max(self.step, rep["step"])
            self.metrics.on_train(rep)

    def _log_state(self) -> tuple[int, dict[str, int]]:
        """The log's size and the episodes collected per task, over all log replays."""
        per_task: dict[str, int] = {}
        for counts in self.collected_for.values():
            for task, n in counts.items():
                per_task[task] = per_task.get(task, 0) + int(n)
        return self.metrics.ingested, per_task

    def _publish_and_write(self, s: System) -> None:
        """Publish weights every ``publish_every`` steps (and tell the trainer the log's state
        for its checkpoints); write metrics every ``log_every`` steps."""
        cfg, b = self.config, s.backend
        if self.step >= self._next_publish:
            b.get(b.call(s.trainer, "note_log", *self._log_state()))
            self.weights = (self.step, b.ref(b.call(s.trainer, "publish")))
            self._next_publish = (self.step // cfg.publish_every + 1) * cfg.publish_every
        if self.step >= self._next_write:
            self.metrics.maybe_write(self.step, self._queues(), len(self.schedule.learned_tasks))
            self._next_write = (self.step // cfg.train.log_every + 1) * cfg.train.log_every

    def _drain(self, s: System) -> str:
        """Finish the robots' calls, flush their buffers, ingest everything and write the final
        checkpoint; returns its path."""
        b, f = s.backend, self.flight
        for i, call in list(f.robot_calls.items()):
            try:
                rep = b.get(call)
                self.written[i] += rep["written"]
                self.metrics.on_collect(rep, None)
            except WorkerDiedError:
                self.failed_calls["robot"] += 1
        for i, robot in enumerate(s.robots):
            for _attempt in range(3):
                try:
                    self.written[i] += b.get(b.call(robot, "flush"))["written"]
                    break
                except WorkerDiedError:
                    self.failed_calls["robot"] += 1
        for call in f.poll_calls.values():
            self._on_poll(b.get(call))
        for lr in s.log_replays:
            self._on_poll(b.get(b.call(lr, "poll")))
        b.get(b.call(s.trainer, "note_log", *self._log_state()))
        checkpoint = b.get(b.call(s.trainer, "checkpoint"))
        for w in (s.trainer, *s.log_replays, *s.updaters):
            self.metrics.on_busy(b.get(b.call(w, "busy")))
        learned = len(self.schedule.learned_tasks)
        self.metrics.maybe_write(self.step, self._queues(), learned, force=True)
        self.metrics.close()
        return checkpoint

    def _report(
        self,
        status: dict[str, Any],
        start_step: int,
        t_start: float,
        train_end: float,
        checkpoint: str,
    ) -> dict[str, Any]:
        """The run report (also written to OUT/run.json)."""
        cfg, metrics = self.config, self.metrics
        wall = time.time() - t_start
        train_wall = train_end - (self.train_start or train_end)
        trained = self.step - self.train_start_step
        written = sum(len(v) for v in self.written.values())
        summary = merge_counts(self.counts.values())
        report = {
            "backend": cfg.backend,
            "env": self.spec.name,
            "step": self.step,
            "start_step": start_step,
            "resumed_from": status["resumed_from"],
            "trainer_device": status["device"],
            "checkpoint": checkpoint,
            "wall_time_s": wall,
            "train_wall_time_s": train_wall,
            "steps_per_s": trained / train_wall if train_wall > 0 else float("nan"),
            "episodes_produced": metrics.produced,
            "episodes_written": written,
            "episodes_per_s": metrics.produced / wall if wall > 0 else float("nan"),
            "log_episodes": metrics.ingested,
            "run_episodes_in_log": len(self.run_ids_in_log),
            "duplicate_episode_ids": len(self.duplicates),
            "learned_tasks": sorted(self.schedule.learned_tasks),
            "collected": {t: {k: list(v) for k, v in c.items()} for t, c in summary.items()},
            "failed_calls": dict(self.failed_calls),
            **metrics.summary(),
        }
        logger.info(
            "run finished at step %d: %.2f steps/s, %d episodes written, log holds %d",
            self.step,
            report["steps_per_s"],
            written,
            metrics.ingested,
        )
        return report


def run(
    config: RunConfig, spec: EnvSpec, hook: Callable[[ContinuousRun], None] | None = None
) -> dict[str, Any]:
    """Run the continuous system in environment ``spec`` as configured; see
    :class:`ContinuousRun`."""
    return ContinuousRun(config, spec, hook).run()
