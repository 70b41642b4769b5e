"""Offline training in the local runtime (``mtopt train``).

One loop drives the pipeline of paper Fig. 10 in a single process: log replay fills the task
replay from the episode log (labelling and impersonating every episode), then each step samples
a batch with the configured sampler, the Bellman updater computes clipped double-Q targets and
the trainer takes one Adam step. Every piece comes from :class:`mtopt.system.builder.
PipelineBuilder`. Checkpoints are written atomically every ``checkpoint_every`` steps and hold
everything needed to resume bit-for-bit: networks, optimizer, step counter and the RNG streams
of the sampler and the updater.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtopt.config import save_config
from mtopt.learning.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    newest_valid_checkpoint,
    save_checkpoint,
)
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec
from mtopt.system.builder import PipelineBuilder, check_run_directory
from mtopt.system.training_config import TrainConfig

logger = logging.getLogger(__name__)


class TrainingRun:
    """The wired local pipeline: log replay -> task replay -> Bellman updater -> trainer."""

    def __init__(self, config: TrainConfig, spec: EnvSpec) -> None:
        self.config = config
        self.spec = spec
        self.builder = PipelineBuilder(config, spec)
        self.task_set = spec.task_set
        self.tasks = self.builder.tasks
        streams = np.random.SeedSequence(config.seed).spawn(3)
        self.log_replay = self.builder.log_replay(
            config.data,
            self.builder.labeller(),
            np.random.default_rng(streams[0]),
            np.random.default_rng(streams[1]),
            config.extra_data,
        )
        self.replay = self.log_replay.replay
        self._updater_seed = int(streams[2].generate_state(1)[0])
        self.trainer = self.builder.trainer(seed=config.seed)
        gen = torch.Generator(device=self.trainer.device).manual_seed(self._updater_seed)
        self.updater = self.builder.updater(gen, self.trainer.target_1, self.trainer.target_2)

    # -- data --------------------------------------------------------------------------------
    def load_data(self) -> None:
        """Ingest the whole log (``data`` and ``extra_data``); refuse an empty log, a log of
        another environment, or a task with no routed episodes."""
        dirs = [self.config.data, *self.config.extra_data]
        for d in dirs:
            if not Path(d).is_dir():
                raise ValueError(f"training data {d!r} is not an episode-log directory")
        data = " + ".join(repr(d) for d in dirs)
        self.log_replay.poll()
        if self.log_replay.episodes == 0:
            raise ValueError(f"the episode log {data} holds no episodes; collect first")
        empty = [t for t in self.tasks if self.log_replay.routed[t] == 0]
        if empty:
            raise ValueError(
                f"no episodes in {data} are routed to task(s) {empty} by "
                f"impersonation {self.config.impersonation.name!r}; collect data for them or "
                f"drop them with --tasks"
            )
        self._check_shapes()
        logger.info(
            "log replay: %d episodes, %d transitions; routed per task: %s",
            self.log_replay.episodes,
            len(self.replay),
            dict(self.log_replay.routed),
        )

    def _check_shapes(self) -> None:
        """Refuse a log whose observations do not have the spec's shapes, naming both."""
        sample = self.replay.sample(1)
        obs = self.spec.observation
        key = "image" if self.config.obs == "image" else "state"
        got = tuple(sample.obs[key].shape[1:])
        want = (obs.image_size, obs.image_size, 3) if key == "image" else (obs.state_dim,)
        if got != want or sample.action.shape[1] != self.spec.action.dim:
            raise ValueError(
                f"the log {self.config.data!r} holds {key} {got} and actions of width "
                f"{sample.action.shape[1]}, but env {self.spec.name!r} has {key} {want} and "
                f"actions of width {self.spec.action.dim}; pass the --env (and its settings) "
                "the log was collected with"
            )

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        """The checkpoint (the builder's format, plus the RNG streams of a bit-exact resume)."""
        counts = {t: int(self.log_replay.collected_for[t]) for t in self.tasks}
        return self.builder.checkpoint_payload(
            self.trainer,
            counts,
            self.config,
            sampler_rng=self.replay.rng.bit_generator.state,
            updater_rng=self.updater.generator.get_state(),
        )

    def restore(self, payload: dict[str, Any], full: bool, path: str | Path = "") -> None:
        """Restore networks (and with ``full``, optimizer, step and RNG streams)."""
        self.builder.restore_trainer(self.trainer, payload, full, path)
        if full:
            self.replay.rng.bit_generator.state = payload["sampler_rng"]
            self.updater.generator.set_state(payload["updater_rng"])

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to ``config.steps``; returns the last metrics and checkpoint path."""
        cfg = self.config
        out = Path(cfg.out)
        ckpt_dir = out / "checkpoints"
        self.load_data()
        if cfg.resume_from:
            payload = load_checkpoint(cfg.resume_from, self.trainer.device)
            self.restore(payload, True, cfg.resume_from)
            logger.info("resumed from %s at step %d", cfg.resume_from, self.trainer.step)
        elif cfg.resume:
            found = newest_valid_checkpoint(ckpt_dir, self.trainer.device)
            if found is None:
                raise ValueError(
                    f"--resume: no valid checkpoint in {str(ckpt_dir)!r} (see the warnings); "
                    "give one with --resume-from PATH"
                )
            self.restore(found[1], True, found[0])
            logger.info("resumed from %s at step %d", found[0], self.trainer.step)
        elif cfg.init:
            self.restore(load_checkpoint(cfg.init, self.trainer.device), False, cfg.init)
            logger.info("initialised networks from %s", cfg.init)
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
        metrics: dict[str, float] = {}
        task_counts: Counter[int] = Counter()
        last_path = None
        start_step = self.trainer.step
        t0 = time.time()
        bar = progress_bar(cfg.steps, "train", "step", cfg.progress, initial=start_step)
        try:
            while self.trainer.step < cfg.steps:
                batch = self.replay.sample(cfg.batch_size)
                task_counts.update(batch.task.tolist())
                metrics = self.trainer.train_step(self.updater(batch))
                step = self.trainer.step
                bar.update(1)
                if step % cfg.log_every == 0:
                    for k, v in metrics.items():
                        writer.add_scalar(f"train/{k}", v, step)
                    for slot, n in task_counts.items():
                        writer.add_scalar(f"samples/{self.task_set.names[slot]}", n, step)
                    task_counts.clear()
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", q=f"{metrics['mean_q']:.3f}")
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    last_path = save_checkpoint(
                        ckpt_dir, step, self.checkpoint_payload(), keep=cfg.keep_checkpoints
                    )
        finally:
            bar.close()
            writer.close()
        wall = time.time() - t0
        done = self.trainer.step - start_step
        return {
            "step": self.trainer.step,
            "checkpoint": str(last_path or latest_checkpoint(ckpt_dir)),
            "wall_time_s": wall,
            "steps_per_s": done / wall if wall > 0 else float("nan"),
            "samples_per_s": done * cfg.batch_size / wall if wall > 0 else float("nan"),
            **metrics,
        }


def train(config: TrainConfig, spec: EnvSpec) -> dict[str, Any]:
    """Run offline training in environment ``spec`` as configured; see :class:`TrainingRun`."""
    check_run_directory(config.out)
    return TrainingRun(config, spec).run()
