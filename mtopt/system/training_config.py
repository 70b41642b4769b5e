"""The configuration of one learner (``mtopt train``; the ``train`` part of ``mtopt run`` and of
the demo and the experiments)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.replay import ReplayConfig
from mtopt.learning.cem import CEMConfig
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig

REWARD_SOURCES = ("success_detector", "oracle")
"""Values of ``TrainConfig.rewards``."""


@dataclass(frozen=True)
class LearnerConfig:
    """One multi-task Q-learner: observations, rewards, impersonation, replay, network,
    optimiser, Bellman targets and checkpoints (what ``mtopt train`` and ``mtopt run`` share)."""

    obs: Literal["state", "image"] = "state"
    """Train on the low-dimensional ``state`` (MLP) or on the camera ``image`` (conv net)."""
    tasks: tuple[str, ...] = ()
    """Tasks to train; empty means all tasks of the task set."""
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
    checkpoint_every: int = 1000
    """Write a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 3
    """Number of newest checkpoints kept."""
    log_every: int = 100
    """Write TensorBoard scalars every this many steps."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "checkpoint_every", "log_every", "keep_checkpoints"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.rewards not in REWARD_SOURCES:
            raise ValueError(f"rewards must be one of {REWARD_SOURCES}, got {self.rewards!r}")
        if self.obs not in ("state", "image"):
            raise ValueError(f"obs must be 'state' or 'image', got {self.obs!r}")


@dataclass(frozen=True)
class TrainConfig(LearnerConfig):
    """Offline training of a multi-task Q-function from an episode log (``mtopt train``)."""

    data: str = "runs/log"
    """Episode-log directory to train from."""
    extra_data: tuple[str, ...] = ()
    """More episode-log directories to train from, read after ``data`` in this order (e.g. a
    frozen offline log in ``data`` and a collection round's episodes kept apart in another)."""
    out: str = "runs/train"
    """Run directory: checkpoints in OUT/checkpoints, TensorBoard scalars in OUT/tb."""
    steps: int = 20_000
    """Total trainer steps (a resumed run continues up to this count)."""
    seed: int = 0
    """Seed of network initialisation, impersonation, sampling and CEM streams."""
    resume: bool = False
    """Continue from the newest valid checkpoint in OUT/checkpoints (same step, optimizer, RNGs);
    newer ones that are truncated or damaged are skipped with a warning naming them."""
    resume_from: str | None = None
    """Continue from this checkpoint instead (a full resume, like ``resume``)."""
    init: str | None = None
    """Initialise the networks from this checkpoint (fine-tuning); the step restarts at 0."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if (self.resume or self.resume_from) and self.init:
            raise ValueError("use either resume (continue this run) or init (fine-tune), not both")
        if self.resume_from is not None and not Path(self.resume_from).is_file():
            raise ValueError(f"resume_from {self.resume_from!r} is not a checkpoint file")

    @classmethod
    def from_learner(cls, learner: LearnerConfig, **run: Any) -> TrainConfig:
        """The training run of ``learner`` with the run's own fields (``data``, ``extra_data``,
        ``out``, ``steps``, ``seed``, ``resume``, ``init``, ``progress``) from ``run``."""
        shared = {f.name: getattr(learner, f.name) for f in fields(LearnerConfig)}
        return cls(**shared, **run)


def state_learner_config(**overrides: Any) -> LearnerConfig:
    """The CPU state learner of ``configs/train/state.yaml``: the default one (object-centric
    MLP, conservative penalty 0.5, QT-Opt's clipped double-Q backup over 5-step returns) at
    width 128, batch 128, Polyak 0.995 and target-2 lag 500; ``overrides`` replace single
    fields."""
    trainer = TrainerConfig(
        network=QNetworkConfig(kind="mlp", mlp_width=128), polyak=0.995, target_lag_steps=500
    )
    base = LearnerConfig(batch_size=128, trainer=trainer, checkpoint_every=1000)
    return replace(base, **overrides)
