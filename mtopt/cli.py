"""The ``mtopt`` command line: one thin entry point over the library.

Every command takes a frozen config dataclass. ``--config FILE.yaml`` loads it from YAML and
any other flag overrides single fields (``--robots 4``, ``--env.workcell.image-size 96``); the
help text of each flag is the docstring of its field. Run ``mtopt COMMAND --help``.

The commands that touch an environment take ``--env NAME`` (short for ``--env.name NAME``;
``mtopt.envs.ENV_NAMES``) and that environment's settings under ``--env.NAME.*``. They are the
only place, with ``mtopt.experiments``, where an environment is chosen: they build its spec and
pass it to the library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tyro

from mtopt.config import ConfigError, load_config
from mtopt.errors import MtoptError

logger = logging.getLogger("mtopt")
T = TypeVar("T")


def parse_config(
    cls: type[T], argv: Sequence[str], prog: str, description: str, default: T | None = None
) -> T:
    """Parse ``argv`` into ``cls``: optional ``--config FILE`` first, then flag overrides.

    ``default`` (e.g. a command's ``--quick`` preset) replaces the dataclass defaults; it cannot
    be combined with ``--config``.
    """
    argv = env_shorthand(argv)
    for i, arg in enumerate(argv):
        if arg == "--config" or arg.startswith("--config="):
            if "=" in arg:
                path = arg.split("=", 1)[1]
                del argv[i]
            else:
                if i + 1 >= len(argv):
                    raise ConfigError("--config needs a YAML file path")
                path = argv[i + 1]
                del argv[i : i + 2]
            if default is not None:
                raise ConfigError("--config cannot be combined with a preset such as --quick")
            default = load_config(cls, path)
            break
    kwargs: dict[str, Any] = {"args": argv, "prog": prog, "description": description}
    if default is not None:
        kwargs["default"] = default
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = tyro.cli(cls, **kwargs)
    except SystemExit as exc:
        if exc.code not in (0, None):  # tyro rejected a flag or a value: one line, not a box
            message = f"{one_line(captured.getvalue())} ('{prog} --help' lists the flags)"
            raise UsageError(message) from None
        raise
    sys.stderr.write(captured.getvalue())  # e.g. a warning of a parse that passed
    return parsed


class UsageError(MtoptError):
    """A flag or value the command line parser rejected (exit code 2)."""


_BOX = "│╭╮╰╯┃┏┓┗┛"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(box: str) -> str:
    """The message of one of tyro's error boxes as one line: its text up to the first rule
    (what follows is the argument's help text and a pointer to ``--help``)."""
    words: list[str] = []
    for raw in _ANSI.sub("", box).splitlines():
        if raw.strip().startswith(("╭", "╰", "┏", "┗")):  # the box's top (its title) and bottom
            continue
        line = raw.strip().strip(_BOX).strip()
        if not line:
            continue
        if set(line) <= set("─━ ") or line.startswith(("For full helptext", "Argument helptext")):
            break  # a rule inside the box: the message is above it
        words.append(line)
    text = " ".join(" ".join(words).split())
    # "Error parsing TrainCommand: steps must be ..." -> "steps must be ..." (a flag stays)
    text = re.sub(r"^Error parsing (?!-)[\w.]+: ", "", text)
    return text or "invalid arguments"


def env_shorthand(argv: Sequence[str]) -> list[str]:
    """``--env NAME`` / ``--env=NAME`` spelled as the config field ``--env.name NAME``."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("--env="):
            out += ["--env.name", arg.split("=", 1)[1]]
        else:
            out.append("--env.name" if arg == "--env" else arg)
    return out


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value given to ``flag`` (``--flag V`` or ``--flag=V``; the last one wins), if any."""
    value = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


@dataclass(frozen=True)
class StatsArgs:
    """Print per-task episode and success counts of an episode log."""

    directory: tyro.conf.Positional[str]
    """Episode-log directory."""
    json: str | None = None
    """Also write the statistics as JSON to this file."""
    verify: bool = False
    """Decode every column of every shard (what training reads), not only the scalar ones, so
    that damage anywhere in a shard is found and the shard left out of the counts."""


def cmd_collect(argv: Sequence[str]) -> int:
    from mtopt.commands import CollectCommand
    from mtopt.system.fleet import collect

    cfg = parse_config(CollectCommand, argv, "mtopt collect", CollectCommand.__doc__ or "")
    summary = collect(cfg, cfg.env.spec())
    logger.info(
        "collected %d episodes with %d robot(s) in %.1f s (%.1f episodes/s)",
        summary["episodes"],
        summary["robots"],
        summary["wall_time_s"],
        summary["episodes_per_s"],
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_data_stats(argv: Sequence[str]) -> int:
    from mtopt.data.stats import dataset_stats, format_stats_table, write_stats_json

    args = parse_config(StatsArgs, argv, "mtopt data stats", StatsArgs.__doc__ or "")
    stats = dataset_stats(args.directory, verify=args.verify)
    print(format_stats_table(stats))
    if args.json:
        write_stats_json(stats, args.json)
    return 0


def cmd_data_plot(argv: Sequence[str]) -> int:
    from mtopt.commands import DataPlotArgs
    from mtopt.data.composition import (
        dataset_composition,
        format_composition_table,
        plot_composition,
    )
    from mtopt.jsonio import write_json

    args = parse_config(DataPlotArgs, argv, "mtopt data plot", DataPlotArgs.__doc__ or "")
    task_set = args.env.spec().task_set
    comp = dataset_composition(args.directory, task_set, seed=args.seed, verify=args.verify)
    print(format_composition_table(comp))
    plot_composition(comp, args.out)
    if args.json:
        write_json(comp, args.json)
    return 0


def cmd_report(argv: Sequence[str]) -> int:
    from mtopt.commands import ReportArgs
    from mtopt.envs import ENV_NAMES, EnvConfig
    from mtopt.evaluation.report import run_env_name, write_report

    argv = env_shorthand(argv)
    args = parse_config(ReportArgs, argv, "mtopt report", ReportArgs.__doc__ or "")
    chosen = flag_value(argv, "--env.name") or any(a.startswith("--config") for a in argv)
    env = args.env
    if not chosen:  # the environment the run recorded, else the workcell
        name = run_env_name(args.run)
        env = EnvConfig(name=name if name in ENV_NAMES else "workcell")
    print(write_report(args.run, args.out, env.spec().task_set))
    return 0


def cmd_data_export(argv: Sequence[str]) -> int:
    from mtopt.commands import DataExportCommand
    from mtopt.data.lerobot import export_lerobot

    doc = DataExportCommand.__doc__ or ""
    cfg = parse_config(DataExportCommand, argv, "mtopt data export", doc)
    print(json.dumps(export_lerobot(cfg, cfg.env.spec()), indent=2))
    return 0


def cmd_data_import(argv: Sequence[str]) -> int:
    from mtopt.commands import DataImportCommand
    from mtopt.data.lerobot import import_lerobot

    doc = DataImportCommand.__doc__ or ""
    cfg = parse_config(DataImportCommand, argv, "mtopt data import", doc)
    if (
        cfg.tasks_file
        and cfg.env.tasks
        and Path(cfg.env.tasks).resolve() != Path(cfg.tasks_file).resolve()
    ):  # the tasks file may not exist yet
        raise ValueError(
            f"--env.tasks {cfg.env.tasks!r} and --tasks-file {cfg.tasks_file!r} name different "
            "task files; give the run's task file once, as --tasks-file"
        )
    base = dataclasses.replace(cfg.env, tasks=None).spec()
    spec = cfg.env.spec() if cfg.env.tasks else base
    if cfg.tasks_file and Path(cfg.tasks_file).exists():
        spec = dataclasses.replace(cfg.env, tasks=cfg.tasks_file).spec()
    print(json.dumps(import_lerobot(cfg, base, spec), indent=2))
    return 0


def cmd_data_imbalanced(argv: Sequence[str]) -> int:
    from mtopt.data.composition import format_composition_table
    from mtopt.data.stats import format_stats_table
    from mtopt.experiments.imbalanced_dataset import (
        ImbalancedDatasetConfig,
        build_imbalanced_dataset,
    )

    doc = ImbalancedDatasetConfig.__doc__ or ""
    cfg = parse_config(ImbalancedDatasetConfig, argv, "mtopt data imbalanced", doc)
    res = build_imbalanced_dataset(cfg)
    print(format_stats_table(res["stats"]))
    print(format_composition_table(res["composition"]))
    print(json.dumps({"log": res["log"], "phases": res["phases"]}, indent=2))
    return 0


def cmd_experiment_data_sharing(argv: Sequence[str]) -> int:
    from mtopt.experiments.data_sharing import DataSharingConfig, run_data_sharing

    prog = "mtopt experiment data-sharing"
    return _run_experiment(argv, DataSharingConfig, prog, run_data_sharing)


def _run_experiment(argv: Sequence[str], cls: type, prog: str, run: Callable[[Any], Any]) -> int:
    """Parse an experiment's config (``--quick``: its quick preset), run it, print its table."""
    argv = list(argv)
    preset = None
    if "--quick" in argv:
        argv.remove("--quick")
        preset = cls.quick()
    cfg = parse_config(cls, argv, prog, cls.__doc__ or "", preset)
    print(run(cfg)["markdown"])
    return 0


def cmd_experiment_task_count(argv: Sequence[str]) -> int:
    from mtopt.experiments.task_count import TaskCountConfig, run_task_count

    return _run_experiment(argv, TaskCountConfig, "mtopt experiment task-count", run_task_count)


def cmd_experiment_bootstrap(argv: Sequence[str]) -> int:
    from mtopt.experiments.hard_task import HardTaskConfig, run_hard_task

    return _run_experiment(argv, HardTaskConfig, "mtopt experiment bootstrap", run_hard_task)


def cmd_experiment_new_tasks(argv: Sequence[str]) -> int:
    from mtopt.experiments.new_tasks import NewTasksConfig, run_new_tasks

    return _run_experiment(argv, NewTasksConfig, "mtopt experiment new-tasks", run_new_tasks)


def cmd_experiment_methods(argv: Sequence[str]) -> int:
    from mtopt.experiments.methods import MethodsConfig, run_methods

    return _run_experiment(argv, MethodsConfig, "mtopt experiment methods", run_methods)


def cmd_train(argv: Sequence[str]) -> int:
    from mtopt.commands import TrainCommand
    from mtopt.system.training import train

    cfg = parse_config(TrainCommand, argv, "mtopt train", TrainCommand.__doc__ or "")
    print(json.dumps(train(cfg, cfg.env.spec()), indent=2))
    return 0


def cmd_bc_train(argv: Sequence[str]) -> int:
    from mtopt.commands import BCTrainCommand
    from mtopt.system.bc_training import train_bc

    cfg = parse_config(BCTrainCommand, argv, "mtopt bc train", BCTrainCommand.__doc__ or "")
    print(json.dumps(train_bc(cfg, cfg.env.spec()), indent=2))
    return 0


def cmd_run(argv: Sequence[str]) -> int:
    from mtopt.commands import RunCommand
    from mtopt.system.run import run

    cfg = parse_config(RunCommand, argv, "mtopt run", RunCommand.__doc__ or "")
    print(json.dumps(run(cfg, cfg.env.spec()), indent=2))
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    from mtopt.commands import EvalCommand
    from mtopt.evaluation.evaluate import run_eval
    from mtopt.evaluation.protocol import format_eval_table

    cfg = parse_config(EvalCommand, argv, "mtopt eval", EvalCommand.__doc__ or "")
    result = run_eval(cfg, cfg.env.spec())
    print(format_eval_table(result))
    if "scripted" in result:  # --beside-scripted
        print(f"\nscripted policies (same scenes):\n{format_eval_table(result['scripted'])}")
        print(f"\n{result['comparison']}")
    if "video" in result:  # --video DIR
        video = result["video"]
        print(f"\nvideos: {len(video['files'])} in {video['dir']} (index.json lists them)")
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    from mtopt.experiments.demo import DemoConfig, demo_defaults, run_demo

    argv = env_shorthand(argv)
    preset = None  # the chosen environment's defaults, unless a YAML config gives them all
    if not any(a == "--config" or a.startswith("--config=") for a in argv):
        preset = demo_defaults(flag_value(argv, "--env.name") or "workcell")
    cfg = parse_config(DemoConfig, argv, "mtopt demo", DemoConfig.__doc__ or "", preset)
    print(run_demo(cfg)["report"])
    return 0


def cmd_sd_examples(argv: Sequence[str]) -> int:
    from mtopt.envs.workcell_examples import SDExamplesConfig, make_examples

    cfg = parse_config(SDExamplesConfig, argv, "mtopt sd examples", SDExamplesConfig.__doc__ or "")
    print(json.dumps(make_examples(cfg), indent=2))
    return 0


def cmd_sd_train(argv: Sequence[str]) -> int:
    from mtopt.commands import SDTrainCommand
    from mtopt.success.training import train_success_detector

    cfg = parse_config(SDTrainCommand, argv, "mtopt sd train", SDTrainCommand.__doc__ or "")
    spec = cfg.env.spec()
    report = train_success_detector(cfg, spec, spec.camera_projections())
    print(json.dumps(report, indent=2))
    return 0


def cmd_task_add(argv: Sequence[str]) -> int:
    from mtopt.commands import TaskAddCommand
    from mtopt.system.new_task import add_task

    doc = TaskAddCommand.__doc__ or ""
    cfg = parse_config(TaskAddCommand, argv, "mtopt task add", doc)
    same = cfg.env.tasks is None or os.path.samefile(cfg.env.tasks, cfg.tasks_file)
    if not same:
        raise ValueError(
            f"--env.tasks {cfg.env.tasks!r} and --tasks-file {cfg.tasks_file!r} name different "
            "task files; give the run's task file once, as --tasks-file"
        )
    base = dataclasses.replace(cfg.env, tasks=None).spec()
    print(json.dumps(add_task(cfg, base), indent=2))
    return 0


def cmd_sd_eval(argv: Sequence[str]) -> int:
    from mtopt.commands import SDEvalCommand
    from mtopt.success.evaluate import run_sd_eval
    from mtopt.success.metrics import format_table3

    cfg = parse_config(SDEvalCommand, argv, "mtopt sd eval", SDEvalCommand.__doc__ or "")
    print(format_table3(run_sd_eval(cfg, cfg.env.spec().task_set)))
    return 0


def cmd_sd_calibrate(argv: Sequence[str]) -> int:
    from mtopt.commands import SDCalibrateCommand
    from mtopt.success.calibration import calibrate_success_detector, format_calibration

    doc = SDCalibrateCommand.__doc__ or ""
    cfg = parse_config(SDCalibrateCommand, argv, "mtopt sd calibrate", doc)
    print(format_calibration(calibrate_success_detector(cfg, cfg.env.spec().task_set)))
    return 0


def _command_configs() -> dict[str, type]:
    from mtopt.commands import (
        BCTrainCommand,
        CollectCommand,
        DataExportCommand,
        DataImportCommand,
        EvalCommand,
        RunCommand,
        SDCalibrateCommand,
        SDEvalCommand,
        SDTrainCommand,
        TaskAddCommand,
        TrainCommand,
    )
    from mtopt.envs.workcell_examples import SDExamplesConfig
    from mtopt.experiments.data_sharing import DataSharingConfig
    from mtopt.experiments.demo import DemoConfig
    from mtopt.experiments.hard_task import HardTaskConfig
    from mtopt.experiments.imbalanced_dataset import ImbalancedDatasetConfig
    from mtopt.experiments.methods import MethodsConfig
    from mtopt.experiments.new_tasks import NewTasksConfig
    from mtopt.experiments.task_count import TaskCountConfig

    return {
        "demo": DemoConfig,
        "collect": CollectCommand,
        "train": TrainCommand,
        "eval": EvalCommand,
        "run": RunCommand,
        "data-imbalanced": ImbalancedDatasetConfig,
        "data-export": DataExportCommand,
        "data-import": DataImportCommand,
        "experiment": DataSharingConfig,
        "experiment-task-count": TaskCountConfig,
        "experiment-bootstrap": HardTaskConfig,
        "experiment-new-tasks": NewTasksConfig,
        "experiment-methods": MethodsConfig,
        "sd-examples": SDExamplesConfig,
        "sd-train": SDTrainCommand,
        "sd-eval": SDEvalCommand,
        "sd-calibrate": SDCalibrateCommand,
        "task-add": TaskAddCommand,
        "bc-train": BCTrainCommand,
    }


def __getattr__(name: str) -> Any:  # lazy, so ``mtopt --help`` does not import MuJoCo
    if name == "COMMAND_CONFIGS":
        return _command_configs()
    raise AttributeError(name)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "demo": (cmd_demo, "the main job on the embedded default (local runtime, simulated cell)"),
    "collect": (cmd_collect, "collect episodes with a fleet of simulated robots"),
    "train": (cmd_train, "train a multi-task Q-function offline from an episode log"),
    "run": (cmd_run, "the continuous system: fleet, log replay, updaters, trainer (local|ray)"),
    "eval": (cmd_eval, "evaluate a checkpoint on the standard evaluation scene"),
    "data stats": (cmd_data_stats, "per-task episode and success counts of an episode log"),
    "data plot": (cmd_data_plot, "plot a log's composition and impersonation gains (Fig. 4/12)"),
    "report": (cmd_report, "one self-contained HTML page of a run's results, charts and videos"),
    "data export": (cmd_data_export, "write an episode log as a LeRobot v3.0 dataset"),
    "data import": (cmd_data_import, "read a LeRobot v3.0 dataset into a new episode log"),
    "data imbalanced": (cmd_data_imbalanced, "build the imbalanced offline dataset (Fig. 4)"),
    "experiment data-sharing": (
        cmd_experiment_data_sharing,
        "paper Table 4: 8 data-sharing strategies and CDS on one offline dataset",
    ),
    "experiment task-count": (
        cmd_experiment_task_count,
        "paper Table 1: the 12-task against a 2-task policy on one offline dataset",
    ),
    "experiment bootstrap": (
        cmd_experiment_bootstrap,
        "paper Sec. 5.5: MT-Opt against a single-task policy on a hard task's successes",
    ),
    "experiment new-tasks": (
        cmd_experiment_new_tasks,
        "paper Sec. 5.6: add lift-cloth and cover-object to a 12-task model and learn them",
    ),
    "experiment methods": (
        cmd_experiment_methods,
        "MT-Opt against PCGrad, CDS, soft modularization and CARE on one offline dataset",
    ),
    "bc train": (cmd_bc_train, "behaviour cloning from an episode log's successes (a baseline)"),
    "sd examples": (cmd_sd_examples, "make success/failure outcome examples of a task"),
    "sd train": (cmd_sd_train, "train or fine-tune a multi-task success detector"),
    "sd eval": (cmd_sd_eval, "success-detector error rates per task (paper Table 3)"),
    "sd calibrate": (cmd_sd_calibrate, "per-task decision thresholds on labelled episodes"),
    "task add": (cmd_task_add, "add a task defined by outcome examples (paper Sec. 5.6)"),
}


def usage() -> str:
    lines = ["usage: mtopt COMMAND [--config FILE.yaml] [flags]", "", "commands:"]
    lines += [f"  {name:<25}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'mtopt COMMAND --help' for the flags of a command."]
    return "\n".join(lines)


EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    MtoptError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
"""Failures a user can cause: printed as one line naming the value (``--debug``: traceback)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtopt`` console script. ``--debug`` anywhere shows the traceback
    of an expected error instead of its one-line message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's import-time chatter
    try:
        return _dispatch(argv, debug)
    except BrokenPipeError:  # e.g. `mtopt collect --help | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(argv: list[str], debug: bool) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    for n_words in (2, 1):
        name = " ".join(argv[:n_words])
        if name in COMMANDS:
            fn, _ = COMMANDS[name]
            try:
                return fn(argv[n_words:])
            except EXPECTED_ERRORS as exc:
                if debug:
                    raise
                print(f"mtopt {name}: error: {exc}", file=sys.stderr)
                return 2
            except SystemExit as exc:  # tyro reports bad flags and values, then exits
                return exc.code if isinstance(exc.code, int) else 2
    names = ", ".join(COMMANDS)
    groups = {name.split()[0] for name in COMMANDS if " " in name}
    given = " ".join(argv[:2]) if argv[0] in groups and len(argv) > 1 else argv[0]
    print(
        f"mtopt: error: unknown command {given!r}; the commands are {names} "
        "('mtopt --help' says what each does)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
