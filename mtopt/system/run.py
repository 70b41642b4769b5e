"""``mtopt run``: the continuous MT-Opt system (paper Sec. 4, Sec. 7.4 / Fig. 10, App. 9.1).

::

    fleet robots --episodes--> episode log --> log replay (labelling + impersonation)
         ^                                       --> task replay --> Bellman updaters
         |                                                              |  (s, a, task, target)
         +---------- weights, published every N trainer steps <---- trainer

:func:`build_system` (the one builder) makes the same worker classes on either backend
(:mod:`mtopt.system.backends`); :class:`ContinuousRun` is the driver loop, identical for both.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtopt.config import save_config
from mtopt.data.impersonation import SuccessLabeller
from mtopt.data.log import EpisodeLogWriter
from mtopt.envs.workcell_config import GRIPPER_DIM, OBJECT_DIM, PLATE_DIM
from mtopt.jsonio import write_json
from mtopt.learning.checkpoint import latest_checkpoint
from mtopt.learning.networks import QNetworkConfig
from mtopt.system.backends import LocalBackend, RayBackend, WorkerDiedError, make_backend
from mtopt.system.run_config import RunConfig
from mtopt.system.run_metrics import RunMetrics
from mtopt.system.schedule import CollectionSchedule, merge_counts
from mtopt.system.training import TrainConfig, reward_labeller
from mtopt.system.workers import LogReplayWorker, RunRobot, TrainerWorker, UpdaterWorker
from mtopt.tasks import default_task_set

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
"""Minimum time between two polls of the log by one log replay."""


def build_labeller(config: TrainConfig) -> SuccessLabeller:
    """The success labeller for ``config.rewards``: the learned success detector, or the
    ground truth only under ``rewards: oracle`` (see :func:`training.reward_labeller`)."""
    return reward_labeller(config, default_task_set())


def network_config(config: RunConfig) -> QNetworkConfig:
    """The trainer's network config completed from the workcell's observation shapes."""
    net = config.train.trainer.network
    capacity = default_task_set().capacity
    wc = config.fleet.workcell
    if config.train.obs == "image":
        size = wc.image_size
        return replace(
            net, kind="conv", image_height=size, image_width=size, task_capacity=capacity
        )
    state_dim = GRIPPER_DIM + OBJECT_DIM * wc.n_slots + PLATE_DIM
    return replace(net, kind="mlp", state_dim=state_dim, task_capacity=capacity)


@dataclass
class System:
    """The workers of one run, on one backend."""

    backend: LocalBackend | RayBackend
    trainer: Any
    robots: list[Any]
    log_replays: list[Any]
    updaters: list[Any]


def build_system(config: RunConfig, backend: LocalBackend | RayBackend) -> System:
    """Make every worker of ``config`` on ``backend`` (the one builder of both backends)."""
    net = network_config(config)
    labeller = build_labeller(config.train)
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
        trainer=backend.spawn(TrainerWorker, "trainer", config, net, threads),
        robots=[backend.spawn(RunRobot, "robot", config, i, net) for i in range(config.robots)],
        log_replays=[
            backend.spawn(LogReplayWorker, "log_replay", config, i, labeller)
            for i in range(config.log_replays)
        ],
        updaters=[
            backend.spawn(UpdaterWorker, "updater", config, i, net) for i in range(config.updaters)
        ],
    )


class ContinuousRun:
    """The driver loop of the continuous system (both backends).

    ``hook(run)``, if given, is called once per loop iteration (tests use it to kill workers).
    After :meth:`run`, ``written`` maps each robot to the episode ids it reported as durable.
    """

    def __init__(self, config: RunConfig, hook: Callable[[ContinuousRun], None] | None = None):
        self.config = config
        self.hook = hook
        self.system: System | None = None
        self.step = 0
        self.written: dict[int, list[str]] = {i: [] for i in range(config.robots)}
        self.failed_calls = {"robot": 0, "updater": 0}
        """Calls lost because a robot or Bellman updater died (their work is redone)."""
        self.robot_calls: dict[int, Any] = {}
        """In-flight ``collect`` calls by robot index."""
        self.target_calls: list[tuple[Any, Any]] = []
        """In-flight Bellman-updater calls (targets future, sample future)."""
        self.schedule = CollectionSchedule(
            config.schedule, config.train.tasks or default_task_set().names
        )

    # -- set-up ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg = self.config
        out = Path(cfg.out)
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
            self.system = build_system(self.config, backend)
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
        self.step = start_step = status["step"]
        if status["resumed_from"]:
            logger.info("resuming from %s at step %d", status["resumed_from"], start_step)
        metrics = RunMetrics(
            Path(cfg.out), cfg.steps, start_step, cfg.progress, cfg.console_every_s
        )
        counts: dict[int, Any] = {}
        replay_sizes = [0] * len(s.log_replays)
        run_ids_in_log: set[str] = set()
        duplicates: list[str] = []

        def on_poll(report: dict[str, Any]) -> None:
            metrics.on_poll(report)
            counts[report["index"]] = report["counts"]
            replay_sizes[report["index"]] = report["replay_transitions"]
            for eid in report["run_episode_ids"]:
                if eid in run_ids_in_log:
                    duplicates.append(eid)
                run_ids_in_log.add(eid)
            for task in self.schedule.update(merge_counts(counts.values())):
                logger.info("collection for %s switches to the learned policy", task)

        for lr in s.log_replays:  # ingest the existing log before anything else
            on_poll(b.get(b.call(lr, "poll")))
        log_at_start = metrics.ingested
        logger.info("log replay: %d episodes already in %s", log_at_start, cfg.log_dir)

        weights: tuple[int, Any] | None = None
        if start_step > 0:
            weights = (start_step, b.ref(b.call(s.trainer, "publish")))
        robot_futs: dict[int, Any] = self.robot_calls
        buffered: dict[int, int] = {}  # episodes each robot holds in its writer's buffer
        produced_by = [0] * len(s.robots)  # episodes each robot produced in this run
        poll_futs: dict[int, Any] = {}
        last_poll = [time.time()] * len(s.log_replays)
        targets: list[tuple[Any, Any]] = self.target_calls  # (targets future, sample future)
        ready: deque[tuple[Any, Any]] = deque()  # (targets future, sample future)
        train_futs: list[tuple[Any, list[tuple[Any, Any]]]] = []
        rr_replay = rr_updater = 0
        train_start: float | None = None
        train_start_step = start_step
        next_write = (self.step // cfg.train.log_every + 1) * cfg.train.log_every
        next_publish = (self.step // cfg.publish_every + 1) * cfg.publish_every
        per_attempt = 2 if cfg.fleet.chain_place else 1

        def in_flight() -> int:
            return len(robot_futs) * cfg.attempts_per_call * per_attempt

        def queues() -> dict[str, int]:
            return {
                "targets": len(targets),
                "trainer_ready": len(ready),
                "trainer_in_flight": sum(len(batch) for _, batch in train_futs),
            }

        def submit_targets(sample_future: Any) -> None:
            nonlocal rr_updater
            updater = s.updaters[rr_updater % len(s.updaters)]
            rr_updater += 1
            box = [weights]
            targets.append((b.call(updater, "targets", sample_future, box), sample_future))

        while self.step < cfg.steps:
            # fleet: collect while the collection budget allows
            allowed = cfg.bootstrap_episodes + cfg.episodes_per_step * self.step
            # The robot that produced the fewest episodes gets the budget first: in robot
            # order, robot 0's in-flight call would reserve the little budget a few trainer
            # steps add, and on the local backend (synchronous calls) robot 1 never ran again
            # after the bootstrap.
            for i in sorted(range(len(s.robots)), key=lambda r: (produced_by[r], r)):
                robot = s.robots[i]
                have = log_at_start + metrics.produced + in_flight()
                if i in robot_futs:
                    continue
                if cfg.episodes_per_step > 0 and have >= allowed:
                    if buffered.get(i):  # paused: make its buffered episodes visible
                        robot_futs[i] = b.call(robot, "flush")
                        buffered[i] = 0
                    continue
                robot_futs[i] = b.call(
                    robot, "collect", cfg.attempts_per_call, [weights], self.schedule.state()
                )
            # log replay
            now = time.time()
            for j, lr in enumerate(s.log_replays):
                if j not in poll_futs and now - last_poll[j] >= POLL_INTERVAL_S:
                    poll_futs[j] = b.call(lr, "poll")
                    last_poll[j] = now
            # learning pipeline: sample -> targets -> trainer, every queue bounded
            started = metrics.ingested >= cfg.bootstrap_episodes and all(replay_sizes)
            if started:
                if train_start is None:
                    train_start, train_start_step = time.time(), self.step
                    logger.info("training starts with %d episodes", metrics.ingested)
                in_train = sum(len(batch) for _, batch in train_futs)
                pending = self.step + in_train + len(targets) + len(ready)
                while len(targets) + len(ready) < cfg.queue_size and pending < cfg.steps:
                    lr = s.log_replays[rr_replay % len(s.log_replays)]
                    rr_replay += 1
                    submit_targets(b.call(lr, "sample", cfg.train.batch_size))
                    pending += 1
                if ready and len(train_futs) < 2:
                    batch = [ready.popleft() for _ in range(len(ready))]
                    f = b.call(s.trainer, "train", *(tf for tf, _ in batch))
                    train_futs.append((f, batch))
            # wait for anything to finish and handle it
            futures = list(robot_futs.values()) + list(poll_futs.values())
            futures += [f for f, _ in targets] + [f for f, _ in train_futs]
            done = {id(f) for f in b.wait(futures, timeout=1.0)}
            for i, f in list(robot_futs.items()):
                if id(f) not in done:
                    continue
                del robot_futs[i]
                try:
                    rep = b.get(f)
                except WorkerDiedError as exc:
                    self.failed_calls["robot"] += 1
                    logger.warning("robot %d died (%s); Ray restarts it", i, exc)
                    continue
                self.written[i] += rep["written"]
                buffered[i] = rep["buffered"]
                produced_by[i] += rep["produced"]
                v = rep["weights_version"]
                metrics.on_collect(rep, self.step - v if v >= 0 and rep["produced"] else None)
            for j, f in list(poll_futs.items()):
                if id(f) in done:
                    del poll_futs[j]
                    on_poll(b.get(f))
            for item in list(targets):
                if id(item[0]) in done:  # not fetched here: it goes straight to the trainer
                    targets.remove(item)
                    ready.append(item)
            for item in list(train_futs):
                f, batch = item
                if id(f) not in done:
                    continue
                train_futs.remove(item)
                try:
                    rep = b.get(f)
                except WorkerDiedError as exc:
                    # A Bellman updater died before finishing a batch of this call, so the
                    # trainer ran none of them; redo their targets (Ray restarts the updater).
                    b.get(b.call(s.trainer, "status"))  # raises if the trainer itself died
                    self.failed_calls["updater"] += 1
                    logger.warning("a Bellman updater died (%s); Ray restarts it", exc)
                    for _, sample_future in batch:
                        submit_targets(sample_future)
                    continue
                self.step = rep["step"]
                metrics.on_train(rep)
            if self.step >= next_publish:
                weights = (self.step, b.ref(b.call(s.trainer, "publish")))
                next_publish = (self.step // cfg.publish_every + 1) * cfg.publish_every
            if self.step >= next_write:
                metrics.maybe_write(self.step, queues(), len(self.schedule.learned_tasks))
                next_write = (self.step // cfg.train.log_every + 1) * cfg.train.log_every
            if self.hook is not None:
                self.hook(self)
        train_end = time.time()

        # drain: finish the robots' calls, flush their buffers, ingest everything
        for i, f in list(robot_futs.items()):
            try:
                rep = b.get(f)
                self.written[i] += rep["written"]
                metrics.on_collect(rep, None)
            except WorkerDiedError:
                self.failed_calls["robot"] += 1
        for i, robot in enumerate(s.robots):
            for _attempt in range(3):
                try:
                    self.written[i] += b.get(b.call(robot, "flush"))["written"]
                    break
                except WorkerDiedError:
                    self.failed_calls["robot"] += 1
        for f in poll_futs.values():
            on_poll(b.get(f))
        for lr in s.log_replays:
            on_poll(b.get(b.call(lr, "poll")))
        checkpoint = b.get(b.call(s.trainer, "checkpoint", metrics.ingested))
        for w in (s.trainer, *s.log_replays, *s.updaters):
            metrics.on_busy(b.get(b.call(w, "busy")))
        metrics.maybe_write(self.step, queues(), len(self.schedule.learned_tasks), force=True)
        metrics.close()
        wall = time.time() - t_start
        train_wall = train_end - (train_start or train_end)
        trained = self.step - train_start_step
        written = sum(len(v) for v in self.written.values())
        summary = merge_counts(counts.values())
        report = {
            "backend": cfg.backend,
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
            "run_episodes_in_log": len(run_ids_in_log),
            "duplicate_episode_ids": len(duplicates),
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


def run(config: RunConfig, hook: Callable[[ContinuousRun], None] | None = None) -> dict[str, Any]:
    """Run the continuous system as configured; see :class:`ContinuousRun`."""
    return ContinuousRun(config, hook).run()
