"""Offline training in the local runtime (``mtopt train``).

One loop drives the pipeline of paper Fig. 10 in a single process: log replay fills the task
replay from the episode log (labelling and impersonating every episode), then each step samples
a batch with the configured sampler, the Bellman updater computes clipped double-Q targets and
the trainer takes one Adam step. Checkpoints are written atomically every
``checkpoint_every`` steps and hold everything needed to resume bit-for-bit: networks,
optimizer, step counter and the RNG streams of the sampler and the updater.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mtopt.config import save_config, to_dict
from mtopt.data.impersonation import (
    Impersonation,
    ImpersonationConfig,
    OracleLabeller,
    SuccessLabeller,
)
from mtopt.data.log_replay import LogReplay
from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.learning.bellman import BellmanUpdater
from mtopt.learning.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from mtopt.learning.networks import QNetworkConfig, stored_network_config
from mtopt.learning.trainer import Trainer, TrainerConfig
from mtopt.policies.cem import CEMConfig
from mtopt.progress import progress_bar
from mtopt.tasks import TaskSet, default_task_set

logger = logging.getLogger(__name__)

IMAGE_OBS_KEYS = ("image", "gripper_status", "gripper_height")
STATE_OBS_KEYS = ("state", "gripper_status", "gripper_height")
REWARD_SOURCES = ("success_detector", "oracle")
"""Values of ``TrainConfig.rewards``."""


@dataclass(frozen=True)
class TrainConfig:
    """Offline training of a multi-task Q-function from an episode log."""

    data: str = "runs/log"
    """Episode-log directory to train from."""
    out: str = "runs/train"
    """Run directory: checkpoints in OUT/checkpoints, TensorBoard scalars in OUT/tb."""
    obs: Literal["state", "image"] = "state"
    """Train on the low-dimensional ``state`` (MLP) or on the camera ``image`` (conv net)."""
    steps: int = 20_000
    """Total trainer steps (a resumed run continues up to this count)."""
    tasks: tuple[str, ...] = ()
    """Tasks to train; empty means all tasks of the task set."""
    seed: int = 0
    """Seed of network initialisation, impersonation, sampling and CEM streams."""
    batch_size: int = 256
    """Transitions per training batch."""
    rewards: Literal["success_detector", "oracle"] = "success_detector"
    """Reward source: ``success_detector`` labels episodes with the learned success detector
    given by ``success_detector``; ``oracle`` reads each episode's ground-truth success vector."""
    success_detector: str | None = None
    """Success-detector checkpoint (or ``mtopt sd train`` run directory) that labels episodes
    under ``rewards: success_detector``."""
    gamma: float = 0.9
    """Discount factor (QT-Opt: 0.9)."""
    impersonation: ImpersonationConfig = field(default_factory=ImpersonationConfig)
    """Task impersonation (default f_skill(1, 1))."""
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    """Task replay capacity and sampler (default re-balanced)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Network and optimiser."""
    cem: CEMConfig = field(default_factory=CEMConfig)
    """CEM of the Bellman updater (QT-Opt: 2 iterations, 64 samples, 6 elites)."""
    mc_lower_bound: bool = True
    """Raise every Bellman target to at least the transition's Monte-Carlo return
    ``label * gamma ** steps_to_go`` (not in the paper, whose targets are plain Bellman ones;
    see :func:`mtopt.learning.targets.mc_lower_bounded_target`)."""
    mc_mix: float = 0.5
    """Weight of the Monte-Carlo return mixed into every target (0 = pure Bellman targets, the
    paper's; 1 = pure Monte-Carlo regression; :func:`mtopt.learning.targets.mixed_mc_target`)."""
    checkpoint_every: int = 1000
    """Write a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 3
    """Number of newest checkpoints kept."""
    log_every: int = 100
    """Write TensorBoard scalars every this many steps."""
    resume: bool = False
    """Continue from the newest checkpoint in OUT/checkpoints (same step, optimizer, RNGs)."""
    init: str | None = None
    """Initialise the networks from this checkpoint (fine-tuning); the step restarts at 0."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.rewards not in REWARD_SOURCES:
            raise ValueError(f"rewards must be one of {REWARD_SOURCES}, got {self.rewards!r}")
        if self.obs not in ("state", "image"):
            raise ValueError(f"obs must be 'state' or 'image', got {self.obs!r}")
        default_task_set().validate(self.tasks)
        if self.resume and self.init:
            raise ValueError("use either resume (continue this run) or init (fine-tune), not both")


def reward_labeller(config: TrainConfig, task_set: TaskSet) -> SuccessLabeller:
    """The success labeller of ``config.rewards``: the learned success detector, or (only under
    ``rewards: oracle``) the episodes' ground truth."""
    if config.rewards == "oracle":
        return OracleLabeller()
    if not config.success_detector:
        raise ValueError(
            "rewards: success_detector needs a success-detector checkpoint: pass "
            "--success-detector PATH (train one with 'mtopt sd train') or use --rewards oracle"
        )
    from mtopt.success.detector import SuccessDetector, SuccessDetectorLabeller

    detector = SuccessDetector.load(config.success_detector, task_set, config.trainer.device)
    return SuccessDetectorLabeller(detector)


def state_learner_config(**overrides: Any) -> TrainConfig:
    """The CPU state learner of ``configs/train/state.yaml``: the default one (object-centric
    MLP, conservative penalty 0.5, Monte-Carlo lower bound on the targets and half the
    Monte-Carlo return mixed into them) at width 128, batch 128, Polyak 0.995 and target-2 lag
    500; ``overrides`` replace single fields."""
    trainer = TrainerConfig(
        network=QNetworkConfig(kind="mlp", mlp_width=128), polyak=0.995, target_lag_steps=500
    )
    base = TrainConfig(batch_size=128, trainer=trainer, checkpoint_every=1000)
    return replace(base, **overrides)


def learner_obs_keys(config: TrainConfig) -> tuple[str, ...]:
    """Observation keys the learner reads: ``obs``'s, plus ``gripper_motion`` when the
    Q-network takes it (``trainer.network.motion_obs``)."""
    keys = IMAGE_OBS_KEYS if config.obs == "image" else STATE_OBS_KEYS
    return keys + (("gripper_motion",) if config.trainer.network.motion_obs else ())


class TrainingRun:
    """The wired local pipeline: log replay -> task replay -> Bellman updater -> trainer."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.task_set = default_task_set()
        self.tasks = config.tasks or self.task_set.names
        streams = np.random.SeedSequence(config.seed).spawn(3)
        replay_cfg = replace(config.replay, obs_keys=learner_obs_keys(config))
        self.replay = TaskReplay(
            replay_cfg, self.task_set, np.random.default_rng(streams[0]), self.tasks
        )
        impersonation = Impersonation(
            config.impersonation,
            self.task_set,
            reward_labeller(config, self.task_set),
            np.random.default_rng(streams[1]),
            self.tasks,
        )
        self.log_replay = LogReplay(config.data, impersonation, self.replay)
        self._updater_seed = int(streams[2].generate_state(1)[0])
        self.trainer: Trainer | None = None
        self.updater: BellmanUpdater | None = None

    # -- data --------------------------------------------------------------------------------
    def load_data(self) -> None:
        """Ingest the whole log; refuse an empty log or a task with no routed episodes."""
        data = Path(self.config.data)
        if not data.is_dir():
            raise ValueError(f"training data {str(data)!r} is not an episode-log directory")
        self.log_replay.poll()
        if self.log_replay.episodes == 0:
            raise ValueError(f"the episode log {str(data)!r} holds no episodes; collect first")
        empty = [t for t in self.tasks if self.log_replay.routed[t] == 0]
        if empty:
            raise ValueError(
                f"no episodes in {str(data)!r} are routed to task(s) {empty} by "
                f"impersonation {self.config.impersonation.name!r}; collect data for them or "
                f"drop them with --tasks"
            )
        logger.info(
            "log replay: %d episodes, %d transitions; routed per task: %s",
            self.log_replay.episodes,
            len(self.replay),
            dict(self.log_replay.routed),
        )

    def network_config(self) -> QNetworkConfig:
        """The trainer's network config completed from the data's shapes."""
        net = self.config.trainer.network
        sample = self.replay.sample(1)
        if self.config.obs == "image":
            h, w = sample.obs["image"].shape[1:3]
            return replace(
                net,
                kind="conv",
                image_height=h,
                image_width=w,
                task_capacity=self.task_set.capacity,
            )
        return replace(
            net,
            kind="mlp",
            state_dim=int(sample.obs["state"].shape[1]),
            task_capacity=self.task_set.capacity,
        )

    def build(self) -> None:
        """Build the trainer and the Bellman updater (after :meth:`load_data`)."""
        cfg = self.config
        trainer_cfg = replace(cfg.trainer, network=self.network_config())
        self.trainer = Trainer(trainer_cfg, seed=cfg.seed)
        gen = torch.Generator(device=self.trainer.device).manual_seed(self._updater_seed)
        self.updater = BellmanUpdater(
            self.trainer.target_1,
            self.trainer.target_2,
            cfg.cem,
            cfg.gamma,
            gen,
            mc_lower_bound=cfg.mc_lower_bound,
            mc_mix=cfg.mc_mix,
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        assert self.trainer is not None and self.updater is not None
        return {
            "trainer": self.trainer.state_dict(),
            "sampler_rng": self.replay.rng.bit_generator.state,
            "updater_rng": self.updater.generator.get_state(),
            "network_config": to_dict(self.trainer.config.network),
            "task_names": list(self.task_set.names),
            "trained_tasks": list(self.tasks),
            "obs_keys": list(self.replay.config.obs_keys),
            "train_episode_counts": {t: int(self.log_replay.collected_for[t]) for t in self.tasks},
            "config": to_dict(self.config),
        }

    def restore(self, payload: dict[str, Any], full: bool) -> None:
        """Restore networks (and with ``full``, optimizer, step and RNG streams)."""
        assert self.trainer is not None and self.updater is not None
        if payload["task_names"] != list(self.task_set.names)[: len(payload["task_names"])]:
            raise ValueError(
                f"checkpoint task slots {payload['task_names']} do not match this task set "
                f"{list(self.task_set.names)}"
            )
        stored = stored_network_config(payload["network_config"])
        mine = self.trainer.config.network
        if stored != mine:
            diff = {
                f.name: (getattr(stored, f.name), getattr(mine, f.name))
                for f in fields(QNetworkConfig)
                if getattr(stored, f.name) != getattr(mine, f.name)
            }
            raise ValueError(
                "the checkpoint's network differs from this run's (field: checkpoint, run): "
                + ", ".join(f"{k}: {a!r}, {b!r}" for k, (a, b) in diff.items())
                + "; set the run's trainer.network to match"
            )
        state = payload["trainer"]
        if full:
            self.trainer.load_state_dict(state)
            self.replay.rng.bit_generator.state = payload["sampler_rng"]
            self.updater.generator.set_state(payload["updater_rng"])
        else:
            for key in ("online", "target_1", "target_2"):
                getattr(self.trainer, key).load_state_dict(state[key])

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to ``config.steps``; returns the last metrics and checkpoint path."""
        cfg = self.config
        out = Path(cfg.out)
        ckpt_dir = out / "checkpoints"
        self.load_data()
        self.build()
        assert self.trainer is not None and self.updater is not None
        if cfg.resume:
            latest = latest_checkpoint(ckpt_dir)
            if latest is None:
                raise ValueError(f"--resume: no checkpoint in {str(ckpt_dir)!r}")
            self.restore(load_checkpoint(latest, self.trainer.device), full=True)
            logger.info("resumed from %s at step %d", latest, self.trainer.step)
        elif cfg.init:
            self.restore(load_checkpoint(cfg.init, self.trainer.device), full=False)
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


def train(config: TrainConfig) -> dict[str, Any]:
    """Run offline training as configured; see :class:`TrainingRun`."""
    return TrainingRun(config).run()
