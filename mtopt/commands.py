"""The configs of the commands that run in an environment: a component's config plus ``env``.

``mtopt collect``, ``train``, ``eval``, ``run``, ``bc train`` and ``sd train / eval / calibrate``
take the config of their library component (:class:`~mtopt.system.fleet.FleetConfig`, ...) with
one more field, ``env`` (:class:`mtopt.envs.EnvConfig`: ``--env NAME``, or ``env: {name: ...}``
in YAML), from which the command builds the environment's spec. Every flag and YAML key of the
library config keeps working. The library below the commands never sees ``env``: it receives the
spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tyro

from mtopt.data.lerobot import LeRobotExportConfig, LeRobotImportConfig
from mtopt.envs import EnvConfig
from mtopt.evaluation.evaluate import EvalConfig
from mtopt.success.calibration import SDCalibrateConfig
from mtopt.success.evaluate import SDEvalConfig
from mtopt.success.training import SDTrainConfig
from mtopt.system.bc_training import BCConfig
from mtopt.system.fleet import FleetConfig
from mtopt.system.new_task import NewTaskConfig
from mtopt.system.run_config import RunConfig
from mtopt.system.training_config import TrainConfig


@dataclass(frozen=True)
class CollectCommand(FleetConfig):
    """Collect episodes with a fleet of simulated robots (``mtopt collect``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment: ``--env NAME`` chooses it (workcell, pointmass, metaworld-mt10,
    metaworld-mt50); ``--env.workcell.*``, ``--env.metaworld.*`` and so on set its settings."""


@dataclass(frozen=True)
class TrainCommand(TrainConfig):
    """Offline training of a multi-task Q-function from an episode log (``mtopt train``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the log was collected in: ``--env NAME`` (workcell, pointmass,
    metaworld-mt10, metaworld-mt50) and its settings (``--env.workcell.*``, ...)."""


@dataclass(frozen=True)
class EvalCommand(EvalConfig):
    """Evaluate a policy with the paper's protocol (``mtopt eval``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment to evaluate in: ``--env NAME`` (workcell, pointmass, metaworld-mt10,
    metaworld-mt50) and its settings (``--env.workcell.*``, ...)."""


@dataclass(frozen=True)
class RunCommand(RunConfig):
    """The continuous MT-Opt system: fleet, log replay, Bellman updaters and trainer."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The robots' environment: ``--env NAME`` (workcell, pointmass, metaworld-mt10,
    metaworld-mt50) and its settings (``--env.workcell.*``, ...)."""


@dataclass(frozen=True)
class BCTrainCommand(BCConfig):
    """Behaviour cloning of a multi-task policy from the successful episodes of an episode log
    (``mtopt bc train``; a diagnostic baseline next to the Q-learner)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the log was collected in: ``--env NAME`` (workcell, pointmass,
    metaworld-mt10, metaworld-mt50) and its settings (``--env.workcell.*``, ...)."""


@dataclass(frozen=True)
class SDTrainCommand(SDTrainConfig):
    """Train (or fine-tune) a multi-task success detector."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment whose task set and state structure the detector is trained for."""


@dataclass(frozen=True)
class SDEvalCommand(SDEvalConfig):
    """Evaluate a success detector: per-task error rates in the layout of paper Table 3."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment whose task set the detector must match."""


@dataclass(frozen=True)
class SDCalibrateCommand(SDCalibrateConfig):
    """Choose a success detector's per-task thresholds on episodes labelled within a budget."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment whose task set the detector must match."""


@dataclass(frozen=True)
class TaskAddCommand(NewTaskConfig):
    """Add a task defined by outcome examples to a run's task set (paper Sec. 5.6): the next
    reserved one-hot slot, a success detector for the grown task set, the log relabelled."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The run's environment: ``--env NAME`` and its settings. Its added tasks come from
    ``--tasks-file`` (an ``--env.tasks`` given as well must name the same file)."""


@dataclass(frozen=True)
class DataPlotArgs:
    """Plot the composition of an episode log and the data impersonation adds (paper Fig. 4/12)."""

    directory: tyro.conf.Positional[str]
    """Episode-log directory."""
    out: str = "composition.png"
    """PNG file to write."""
    json: str | None = None
    """Also write the composition as JSON to this file."""
    seed: int = 0
    """Seed of the stochastic impersonation function f_skill(1, 0.15)."""
    verify: bool = False
    """Decode every column of every shard (what training reads), not only the scalar ones, so
    that damage anywhere in a shard is found and the shard left out of the counts."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the log was collected in (its task set and skills): ``--env NAME``."""


@dataclass(frozen=True)
class ReportArgs:
    """Write a run's results as one self-contained HTML page (success, data, curves, videos)."""

    run: tyro.conf.Positional[str]
    """Run directory (``mtopt demo``'s OUT; also ``mtopt train`` and ``mtopt run`` outputs)."""
    out: str | None = None
    """HTML file to write (default RUN/report.html)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment of the run's episode log, for the dataset composition: ``--env NAME``
    (default: the one the run's video index names, else the workcell)."""


@dataclass(frozen=True)
class DataExportCommand(LeRobotExportConfig):
    """Write an episode log as a LeRobot v3.0 dataset (``mtopt data export LOG --format lerobot
    --out DIR``; docs/lerobot.md)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment the log was collected in (its control rate gives the fps):
    ``--env NAME``."""


@dataclass(frozen=True)
class DataImportCommand(LeRobotImportConfig):
    """Read a LeRobot v3.0 dataset into a new episode log (``mtopt data import DIR --out LOG``;
    docs/lerobot.md)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment to train in: its state and action shapes must match the dataset's, and
    the dataset's tasks must be its tasks (``--env.tasks FILE`` adds a run's added tasks)."""
