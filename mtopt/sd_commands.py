"""The configs of ``mtopt sd train / eval / calibrate``: the success-detector library's configs
plus the environment they run for.

:mod:`mtopt.success` knows an environment only through its :class:`~mtopt.spec.EnvSpec`, so its
configs do not name one. Each command config here is the library config with one more field,
``env`` (:class:`~mtopt.envs.EnvConfig`: ``--env.name pointmass``, or ``env: {name: ...}`` in
YAML), and every flag and YAML key of the library config keeps working. The command builds the
spec from ``env`` and, for ``sd train``, the simulated cameras' projections that gripper crops
default to (the workcell's; an environment without cameras has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from mtopt.envs import EnvConfig
from mtopt.envs.workcell_examples import workcell_camera_projections
from mtopt.envs.workcell_spec import WorkcellSpec
from mtopt.spec import EnvSpec
from mtopt.success.calibration import SDCalibrateConfig
from mtopt.success.evaluate import SDEvalConfig
from mtopt.success.training import ProjectionsAt, SDTrainConfig


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


def simulated_camera_projections(spec: EnvSpec) -> ProjectionsAt | None:
    """The projections of ``spec``'s simulated cameras at a view size (the workcell's, read from
    its MuJoCo model); None for an environment without cameras."""
    if isinstance(spec, WorkcellSpec):
        return partial(workcell_camera_projections, workcell=spec.config)
    return None
