"""mtopt.envs: the environments, and the registry that maps ``--env NAME`` to a spec.

Every environment module exports one :class:`mtopt.spec.EnvSpec`; :class:`EnvConfig` holds the
name and each environment's settings, and :meth:`EnvConfig.spec` builds the chosen spec. Only
the commands (``mtopt.cli``, ``mtopt.experiments``) use the registry; every layer below them
receives the spec.

Adding an environment: write ``mtopt/envs/NAME.py`` with a config dataclass and a spec class,
then add a field for its config to :class:`EnvConfig` and a branch to :meth:`EnvConfig.spec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mtopt.added_tasks import add_tasks, read_task_file, task_file_env
from mtopt.envs.metaworld import MetaWorldConfig, MetaWorldSpec
from mtopt.envs.pointmass import PointMassConfig, PointMassSpec
from mtopt.envs.scripted import ScriptedPickConfig, ScriptedPlaceConfig
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.envs.workcell_spec import WorkcellSpec
from mtopt.spec import EnvSpec

ENV_NAMES: tuple[str, ...] = ("workcell", "pointmass", "metaworld-mt10", "metaworld-mt50")
"""Names accepted by ``--env``."""


@dataclass(frozen=True)
class EnvConfig:
    """Which environment to run, and the settings of each (only the chosen one is used)."""

    name: str = "workcell"
    """The environment: ``workcell`` (the simulated MT-Opt cell), ``pointmass`` (a tiny
    reach-one-of-N-goals task set for tests and quick checks), or ``metaworld-mt10`` /
    ``metaworld-mt50`` (Meta-World's multi-task benchmarks; needs the ``metaworld`` package)."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated workcell (``name: workcell``)."""
    pick: ScriptedPickConfig = field(default_factory=ScriptedPickConfig)
    """The workcell's scripted picking policy (object-acquisition tasks)."""
    place: ScriptedPlaceConfig = field(default_factory=ScriptedPlaceConfig)
    """The workcell's scripted placing policy (object-manipulation tasks)."""
    pointmass: PointMassConfig = field(default_factory=PointMassConfig)
    """The point-mass environment (``name: pointmass``)."""
    metaworld: MetaWorldConfig = field(default_factory=MetaWorldConfig)
    """Meta-World episodes and bootstrap noise (``name: metaworld-mt10`` or ``metaworld-mt50``)."""
    tasks: str | None = None
    """A task file (``tasks.json``, written by ``mtopt task add``): tasks added to the
    environment's own in its reserved one-hot slots (docs/new-tasks.md). None: the
    environment's tasks only."""

    def __post_init__(self) -> None:
        if self.name not in ENV_NAMES:
            raise ValueError(f"unknown env {self.name!r}; known envs: {', '.join(ENV_NAMES)}")

    def spec(self) -> EnvSpec:
        """The chosen environment's spec, with the task file's added tasks."""
        if self.name == "pointmass":
            spec: EnvSpec = PointMassSpec(self.pointmass)
        elif self.name.startswith("metaworld-"):
            benchmark = self.name.removeprefix("metaworld-")
            spec = MetaWorldSpec(benchmark=benchmark, config=self.metaworld)  # type: ignore[arg-type]
        else:
            spec = WorkcellSpec(self.workcell, self.pick, self.place)
        if self.tasks is None:
            return spec
        added = read_task_file(self.tasks)
        written_for = task_file_env(self.tasks)
        if written_for not in (None, self.name):
            raise ValueError(
                f"task file {self.tasks!r} adds tasks to env {written_for!r}, not to "
                f"{self.name!r}; pass --env {written_for}"
            )
        return add_tasks(spec, added)


def make_spec(name: str = "workcell") -> EnvSpec:
    """The spec of environment ``name`` with its default settings."""
    return EnvConfig(name=name).spec()
