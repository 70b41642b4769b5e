"""The components of the continuous system, as workers with a narrow call interface.

Each worker wraps an existing component (fleet :class:`~mtopt.system.robot.Robot`,
:class:`~mtopt.data.log_replay.LogReplay`, :class:`~mtopt.learning.bellman.BellmanUpdater`,
:class:`~mtopt.learning.trainer.Trainer`) and only takes and returns plain data, numpy arrays
and tensors. The local backend calls them directly; the Ray backend runs each as an actor.
Weights travel as :class:`Weights` (``version`` = trainer step) inside a one-element list, so a
Ray object reference in it is fetched only when the version changed.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from mtopt.batches import TrainBatch, TransitionBatch, Weights
from mtopt.data.episode import CHECKPOINT_POLICY_PREFIX, learned_policy_name
from mtopt.data.log import EpisodeLogReader, EpisodeLogTailer, EpisodeLogWriter
from mtopt.learning.checkpoint import (
    newest_valid_checkpoint,
    save_checkpoint,
)
from mtopt.learning.network_builder import build_q_network
from mtopt.policies.q_policy import q_policy_from
from mtopt.spec import EnvSpec
from mtopt.system.builder import PipelineBuilder
from mtopt.system.robot import Robot
from mtopt.system.run_config import RunConfig
from mtopt.system.schedule import OutcomeStats

logger = logging.getLogger(__name__)

STREAMS = {"robot": 1, "log_replay": 2, "updater": 3, "trainer": 4}
"""Sub-stream of the run seed each kind of worker draws from."""


def resolve(obj: Any) -> Any:
    """``ray.get`` a Ray object reference; anything else is returned as is."""
    if type(obj).__name__ == "ObjectRef":
        import ray

        return ray.get(obj)
    return obj


def _seed(config: RunConfig, kind: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([config.seed, STREAMS[kind], index])


class _Timed:
    """Accumulates busy seconds per stage (reported for the stage throughputs)."""

    def __init__(self) -> None:
        self.busy: Counter[str] = Counter()

    def take_busy(self) -> dict[str, float]:
        out, self.busy = dict(self.busy), Counter()
        return out


class RunRobot(Robot):
    """A fleet robot of the continuous system (paper App. 9.1).

    Episode ids are ``NAME-rROBOT-COUNT`` with COUNT the robot's episode counter, and every
    attempt draws from a generator seeded by ``(seed, robot, COUNT)``. On (re)start the robot
    reads its newest durable id from the log and continues after it, so a robot restarted
    after a crash redoes exactly the episodes it had not yet written: none is lost, none is
    written twice.
    """

    def __init__(self, config: RunConfig, robot_id: int, spec: EnvSpec) -> None:
        torch.set_num_threads(1)
        builder = PipelineBuilder(config.train, spec)
        net = build_q_network(builder.network_config(), builder.network_shape()).eval()
        learned = q_policy_from(net, spec, config.policy, builder.obs_keys())
        super().__init__(robot_id, config.robot, config.train.obs, config.seed, config.name, spec)
        self.learned = learned
        self.run_seed = config.seed
        self._count = self.durable_count(config)
        self.writer = EpisodeLogWriter(config.log_dir, robot_id, config.robot.log)
        self.weights_version = -1
        self.schedule: dict[str, Any] = {"learned_tasks": [], "probe": 0.0}
        self.timer = _Timed()

    def durable_count(self, config: RunConfig) -> int:
        """The highest COUNT of this robot's episodes already in the log (0 if none)."""
        log = config.log_dir
        if not log.is_dir():
            return 0
        pattern = re.compile(rf"^{re.escape(config.name)}-r{self.robot_id:03d}-(\d+)$")
        table = EpisodeLogReader(log).metadata()
        mine = np.asarray(table.column("robot_id").to_numpy()) == self.robot_id
        ids = np.asarray(table.column("episode_id").to_numpy(zero_copy_only=False))[mine]
        counts = [int(m.group(1)) for m in map(pattern.match, ids) if m]
        return max(counts, default=0)

    def pid(self) -> int:
        return os.getpid()

    def policy_for(self, task: str) -> tuple[object, str, float]:
        if self.weights_version >= 0:
            learned = task in self.schedule["learned_tasks"]
            if learned or self.rng.random() < self.schedule["probe"]:
                return self.learned, self.learned.name, self.learned.epsilon
        return super().policy_for(task)

    def _pull(self, weights_box: list) -> None:
        if not weights_box or weights_box[0] is None:
            return
        version, payload = weights_box[0]
        if version != self.weights_version:
            weights: Weights = resolve(payload)
            self.learned.network.load_state_dict(weights.online)
            self.weights_version = weights.version
            self.learned.name = learned_policy_name(self.run_tag, weights.version)

    def attempt(self) -> list:
        """One attempt: an episode, and the episode the environment chains after it (the
        workcell: a lift episode and its chained place episode)."""
        seq = np.random.SeedSequence([self.run_seed, STREAMS["robot"], self.robot_id, self._count])
        self.rng = np.random.default_rng(seq)
        gen = self.episodes(2 if self.config.chain_place else 1)
        first = next(gen)
        out = [first]
        if self.config.chain_place and self.spec.chain_skill(first.task) is not None:
            out.append(next(gen))
        return out

    def collect(self, attempts: int, weights_box: list, schedule: dict[str, Any]) -> dict:
        """Run ``attempts`` attempts with the newest weights and schedule; append to the log.

        Returns the ids made durable by this call (``written``), the episodes produced, the
        weights version used, and the busy seconds.
        """
        t0 = time.perf_counter()
        self._pull(weights_box)
        self.schedule = schedule
        written: list[str] = []
        produced = 0
        policies: Counter[str] = Counter()
        for _ in range(attempts):
            for episode in self.attempt():
                produced += 1
                learned = episode.policy.startswith(CHECKPOINT_POLICY_PREFIX)
                policies["learned" if learned else "scripted"] += 1
                self.writer.note_discarded(self.take_discarded())
                written += self.writer.append(episode)
        self.timer.busy["collection"] += time.perf_counter() - t0
        return self._report(written, produced, dict(policies))

    def _report(self, written: list[str], produced: int, policies: dict[str, int]) -> dict:
        return {
            "robot_id": self.robot_id,
            "written": written,
            "produced": produced,
            "buffered": self.writer.buffered,
            "policies": policies,
            "weights_version": self.weights_version,
            "busy": self.timer.take_busy(),
        }

    def flush(self) -> dict:
        """Write the buffered episodes (same report as :meth:`collect`, nothing produced)."""
        return self._report(self.writer.flush(), 0, {})


class LogReplayWorker:
    """Log replay (paper Fig. 10): tails its share of the log into its task replay."""

    def __init__(self, config: RunConfig, index: int, labeller: Any, spec: EnvSpec) -> None:
        torch.set_num_threads(1)
        self.config = config
        self.index = index
        builder = PipelineBuilder(config.train, spec)
        streams = _seed(config, "log_replay", index).spawn(2)
        self.timer = _Timed()
        self._labeller = labeller
        self.log_replay = builder.log_replay(
            config.log_dir,
            self._timed_labeller,
            np.random.default_rng(streams[0]),
            np.random.default_rng(streams[1]),
        )
        self.replay = self.log_replay.replay
        self.log_replay.tailer = EpisodeLogTailer(
            config.log_dir, partition=(index, config.log_replays)
        )
        self.stats = OutcomeStats(builder.tasks, config.schedule.window)

    def _timed_labeller(self, episode: object, tasks: Any) -> np.ndarray:
        t0 = time.perf_counter()
        labels = self._labeller(episode, tasks)
        self.timer.busy["labelling"] += time.perf_counter() - t0
        return labels

    def poll(self) -> dict:
        """Ingest the new shards; returns counts, labelled outcomes and busy seconds."""
        t0 = time.perf_counter()
        episodes = self.log_replay.tailer.poll()
        t1 = time.perf_counter()
        self.timer.busy["log read"] += t1 - t0
        outcomes: dict[str, list[int]] = {}
        run_ids: list[str] = []
        prefix = f"{self.config.name}-r"
        for ep in episodes:
            routed = self.log_replay.add(ep)
            own = dict(routed).get(ep.task)
            if own is not None:
                self.stats.add(ep.task, ep.policy, own)
                o = outcomes.setdefault(ep.task, [0, 0])
                o[0] += int(own)
                o[1] += 1
            if ep.episode_id.startswith(prefix):
                run_ids.append(ep.episode_id)
        busy = time.perf_counter() - t1
        self.timer.busy["impersonation"] += busy - self.timer.busy.get("labelling", 0.0)
        return {
            "index": self.index,
            "episodes": len(episodes),
            "run_episode_ids": run_ids,
            "transitions": int(sum(len(e.actions) for e in episodes)),
            "outcomes": outcomes,
            "counts": self.stats.counts(),
            "collected_for": dict(self.log_replay.collected_for),
            "replay_transitions": len(self.replay),
            "busy": self.timer.take_busy(),
        }

    def sample(self, batch_size: int) -> TransitionBatch:
        """A re-balanced (or uniform) batch of transitions from the task replay."""
        t0 = time.perf_counter()
        batch = self.replay.sample(batch_size)
        self.timer.busy["sampling"] += time.perf_counter() - t0
        return batch

    def busy(self) -> dict[str, float]:
        return self.timer.take_busy()


def _writable(batch: TransitionBatch) -> TransitionBatch:
    """The batch with writable arrays (Ray hands over read-only views; torch wants writable).
    Every field is carried over: a dropped ``steps`` once made the updaters discount n-step
    transitions by one step."""

    def w(a: Any) -> Any:
        if isinstance(a, dict):
            return {k: w(v) for k, v in a.items()}
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            return a.copy()
        return a

    return TransitionBatch(**{f.name: w(getattr(batch, f.name)) for f in fields(batch)})


class UpdaterWorker:
    """A Bellman updater with its own copy of the target networks, refreshed on publish."""

    def __init__(self, config: RunConfig, index: int, spec: EnvSpec) -> None:
        torch.set_num_threads(1)
        self.index = index
        gen_seed = int(_seed(config, "updater", index).generate_state(1)[0])
        builder = PipelineBuilder(config.train, spec)
        self.updater = builder.updater(torch.Generator().manual_seed(gen_seed))
        self.version = -1
        self.timer = _Timed()

    def pid(self) -> int:
        return os.getpid()

    def targets(self, batch: TransitionBatch, weights_box: list) -> tuple[TrainBatch, int]:
        """Clipped double-Q targets for ``batch``; returns it with the weights version used."""
        t0 = time.perf_counter()
        if weights_box and weights_box[0] is not None and weights_box[0][0] != self.version:
            weights: Weights = resolve(weights_box[0][1])
            self.updater.load_target_weights(weights.target_1, weights.target_2)
            self.version = weights.version
        out = self.updater(_writable(batch))
        self.timer.busy["targets"] += time.perf_counter() - t0
        return out, self.version

    def busy(self) -> dict[str, float]:
        return self.timer.take_busy()


class TrainerWorker:
    """The trainer: one Adam step per target batch, publishing, checkpoints, resume."""

    def __init__(self, config: RunConfig, spec: EnvSpec, threads: int = 0) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        self.config = config
        self.builder = PipelineBuilder(config.train, spec)
        trainer_seed = int(_seed(config, "trainer", 0).generate_state(1)[0])
        self.trainer = self.builder.trainer(seed=trainer_seed)
        self.resumed_from: str | None = None
        self.log_episodes = 0
        self.collected_for: dict[str, int] = {}
        found = None
        if config.resume:
            found = newest_valid_checkpoint(config.checkpoint_dir, self.trainer.device)
        if found is not None:
            latest, payload = found
            self.builder.restore_trainer(self.trainer, payload, True, latest)
            self.log_episodes = int(payload.get("log_episodes", 0))
            self.collected_for = dict(payload["train_episode_counts"])
            self.resumed_from = str(latest)
        self.timer = _Timed()

    def status(self) -> dict:
        return {
            "step": self.trainer.step,
            "resumed_from": self.resumed_from,
            "device": str(self.trainer.device),
        }

    def note_log(self, episodes: int, collected_for: dict[str, int]) -> None:
        """Record the log's size and the episodes collected per task (for checkpoints)."""
        self.log_episodes = episodes
        self.collected_for = dict(collected_for)

    def train(self, *results: tuple[TrainBatch, int]) -> dict:
        """One step per ``(batch, weights version)``; returns metrics and target staleness."""
        t0 = time.perf_counter()
        dev = self.trainer.device
        metrics: dict[str, float] = {}
        staleness = []
        for batch, version in results:
            if dev.type != "cpu":
                batch = TrainBatch(
                    obs={k: v.to(dev) for k, v in batch.obs.items()},
                    action=batch.action.to(dev),
                    task=batch.task.to(dev),
                    target=batch.target.to(dev),
                    shared=None if batch.shared is None else batch.shared.to(dev),
                )
            staleness.append(self.trainer.step - version)
            metrics = self.trainer.train_step(batch)
            every = self.config.train.checkpoint_every
            if self.trainer.step % every == 0 or self.trainer.step == self.config.steps:
                self.checkpoint()
        self.timer.busy["training"] += time.perf_counter() - t0
        return {"step": self.trainer.step, "staleness": staleness, **metrics}

    def publish(self) -> Weights:
        """A CPU copy of the current weights."""

        def copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
            return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

        t = self.trainer
        return Weights(t.step, copy(t.online), copy(t.target_1), copy(t.target_2))

    def checkpoint(self) -> str:
        """Write a checkpoint of the trainer (the builder's format: loadable by ``mtopt eval``
        and ``mtopt train --init``)."""
        cfg = self.config
        payload = self.builder.checkpoint_payload(
            self.trainer, self.collected_for, cfg, log_episodes=self.log_episodes
        )
        keep = cfg.train.keep_checkpoints
        return str(save_checkpoint(cfg.checkpoint_dir, self.trainer.step, payload, keep=keep))

    def busy(self) -> dict[str, float]:
        return self.timer.take_busy()
