"""Configuration of the continuous MT-Opt system (``mtopt run``) and of its Ray backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mtopt.data.log import EpisodeLogConfig
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.system.robot import RobotConfig
from mtopt.system.schedule import ScheduleConfig
from mtopt.system.training_config import LearnerConfig

BACKENDS = ("local", "ray")
"""Runtimes of ``mtopt run``."""
CODE_SHIPPING = ("pythonpath", "working_dir", "installed")
"""How Ray workers import mtopt (see :class:`RayConfig.code`)."""


@dataclass(frozen=True)
class RayConfig:
    """The Ray backend: cluster, actor resources and fault tolerance."""

    address: str | None = None
    """Cluster to join (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``); unset starts a
    private Ray on this machine (or reuses the one already initialised in this process)."""
    num_cpus: int | None = None
    """CPUs of a private Ray started by mtopt (unset: all cores); ignored with ``address``."""
    object_store_mb: int = 256
    """Object-store memory of a private Ray, in MB; ignored with ``address``."""
    include_dashboard: bool = False
    """Start the Ray dashboard with a private Ray."""
    code: Literal["pythonpath", "working_dir", "installed"] = "pythonpath"
    """How workers import mtopt: ``pythonpath`` puts this mtopt's source directory on the
    workers' PYTHONPATH (one machine, or a source tree at the same path on every node);
    ``working_dir`` uploads the source tree to the cluster; ``installed`` relies on mtopt
    being pip-installed on every node."""
    robot_cpus: float = 0.25
    """CPUs reserved by each robot actor (use 1 on a real cluster)."""
    log_replay_cpus: float = 0.25
    """CPUs reserved by each log-replay actor."""
    updater_cpus: float = 0.5
    """CPUs reserved by each Bellman-updater actor."""
    trainer_cpus: float = 0.5
    """CPUs reserved by the trainer actor."""
    trainer_gpus: float | None = None
    """GPUs of the trainer actor; unset means 1 when the cluster has a GPU, else 0."""
    max_restarts: int = -1
    """How often Ray restarts a dead robot or Bellman-updater actor (-1: without limit)."""

    def __post_init__(self) -> None:
        if self.code not in CODE_SHIPPING:
            raise ValueError(f"ray.code must be one of {CODE_SHIPPING}, got {self.code!r}")
        if not isinstance(self.object_store_mb, int) or self.object_store_mb < 80:
            raise ValueError(
                f"ray.object_store_mb must be an integer >= 80, got {self.object_store_mb!r}"
            )
        for name in ("robot_cpus", "log_replay_cpus", "updater_cpus", "trainer_cpus"):
            if getattr(self, name) < 0:
                raise ValueError(f"ray.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.trainer_gpus is not None and self.trainer_gpus < 0:
            raise ValueError(f"ray.trainer_gpus must be >= 0, got {self.trainer_gpus!r}")
        if not isinstance(self.max_restarts, int) or self.max_restarts < -1:
            raise ValueError(
                f"ray.max_restarts must be an integer >= -1, got {self.max_restarts!r}"
            )


def _run_learner_config() -> LearnerConfig:
    return LearnerConfig(batch_size=128, checkpoint_every=500, log_every=50)


def _run_robot_config() -> RobotConfig:
    return RobotConfig(log=EpisodeLogConfig(shard_episodes=4))


@dataclass(frozen=True)
class RunConfig:
    """The continuous MT-Opt system: fleet, log replay, Bellman updaters and trainer."""

    out: str = "runs/run"
    """Run directory: OUT/checkpoints, OUT/tb (TensorBoard), OUT/config.yaml, OUT/run.json."""
    log: str | None = None
    """Episode-log directory (default OUT/log). On a Ray cluster, a path every node sees."""
    backend: Literal["local", "ray"] = "local"
    """``local``: every component in this process, called in one loop; ``ray``: actors."""
    name: str = "run"
    """Prefix of the episode ids this run writes (``NAME-rROBOT-COUNT``)."""
    seed: int = 0
    """Seed of the run; robots, log replays, updaters and the trainer derive theirs from it."""
    steps: int = 2000
    """Total trainer steps; a resumed run continues up to this count."""
    robots: int = 2
    """Robots in the fleet."""
    log_replays: int = 1
    """Log replays; replay ``i`` ingests the shards of robots with ``id % log_replays == i``."""
    updaters: int = 1
    """Bellman updaters."""
    bootstrap_episodes: int = 200
    """Episodes the log must hold before training starts."""
    episodes_per_step: float = 0.5
    """Collection budget: robots pause while the log holds more than
    ``bootstrap_episodes + episodes_per_step * trainer_step`` episodes (0: no limit)."""
    attempts_per_call: int = 4
    """Attempts (a lift episode and its chained place episode, or one place episode) per
    robot call; weights and the schedule are pulled at the start of each call."""
    publish_every: int = 50
    """Publish the trainer's weights to the robots and updaters every this many steps."""
    queue_size: int = 4
    """Bound of each queue between stages: sampled batches awaiting targets, and target
    batches awaiting the trainer (so no stage can exhaust memory or the object store)."""
    resume: bool = True
    """Continue from the newest checkpoint in OUT/checkpoints and the existing log, if any."""
    console_every_s: float = 10.0
    """Log a one-line progress report every this many seconds (besides the progress bar)."""
    progress: bool = True
    """Show a progress bar of trainer steps."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """When robots switch a task from the scripted to the learned ε-greedy policy."""
    robot: RobotConfig = field(default_factory=_run_robot_config)
    """What the robots collect: task choice, chaining, recorded views and log shards (they
    record the observations ``train.obs`` needs)."""
    policy: PolicyConfig = field(default_factory=collection_policy)
    """How the robots' learned policy acts (ε-greedy, ε = 0.2 by default)."""
    train: LearnerConfig = field(default_factory=_run_learner_config)
    """Learning: observations, rewards, impersonation, replay, network, the Bellman updaters'
    CEM, batch size and checkpoints."""
    ray: RayConfig = field(default_factory=RayConfig)
    """The Ray backend (ignored by the local backend)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in (
            "steps",
            "robots",
            "log_replays",
            "updaters",
            "attempts_per_call",
            "publish_every",
            "queue_size",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.bootstrap_episodes, int) or self.bootstrap_episodes < 1:
            raise ValueError(
                f"bootstrap_episodes must be a positive integer, got {self.bootstrap_episodes!r}"
            )
        if self.log_replays > self.robots:
            raise ValueError(
                f"log_replays ({self.log_replays}) must not exceed robots ({self.robots}): "
                "each log replay ingests the shards of its own robots"
            )
        if self.episodes_per_step < 0:
            raise ValueError(f"episodes_per_step must be >= 0, got {self.episodes_per_step!r}")
        if not self.name or not self.name.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"name must be letters, digits, '_' or '.', got {self.name!r}")
        if self.console_every_s <= 0:
            raise ValueError(f"console_every_s must be > 0, got {self.console_every_s!r}")

    @property
    def log_dir(self) -> Path:
        """The episode-log directory."""
        return Path(self.log) if self.log else Path(self.out) / "log"

    @property
    def checkpoint_dir(self) -> Path:
        """Where the trainer writes checkpoints."""
        return Path(self.out) / "checkpoints"
