"""The ``mtopt`` command line: one thin entry point over the library.

Every command takes a frozen config dataclass. ``--config FILE.yaml`` loads it from YAML and
any other flag overrides single fields (``--robots 4``, ``--workcell.image-size 96``); the help
text of each flag is the docstring of its field. Run ``mtopt COMMAND --help``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import tyro

from mtopt.config import ConfigError, load_config

logger = logging.getLogger("mtopt")
T = TypeVar("T")


def parse_config(cls: type[T], argv: Sequence[str], prog: str, description: str) -> T:
    """Parse ``argv`` into ``cls``: optional ``--config FILE`` first, then flag overrides."""
    argv = list(argv)
    default = None
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
            default = load_config(cls, path)
            break
    kwargs: dict[str, Any] = {"args": argv, "prog": prog, "description": description}
    if default is not None:
        kwargs["default"] = default
    return tyro.cli(cls, **kwargs)


@dataclass(frozen=True)
class StatsArgs:
    """Print per-task episode and success counts of an episode log."""

    directory: tyro.conf.Positional[str]
    """Episode-log directory."""
    json: str | None = None
    """Also write the statistics as JSON to this file."""


def cmd_collect(argv: Sequence[str]) -> int:
    from mtopt.system.fleet import FleetConfig, collect

    cfg = parse_config(
        FleetConfig, argv, "mtopt collect", "Collect episodes with a fleet of simulated robots."
    )
    summary = collect(cfg)
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
    stats = dataset_stats(args.directory)
    print(format_stats_table(stats))
    if args.json:
        write_stats_json(stats, args.json)
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    from mtopt.system.training import TrainConfig, train

    cfg = parse_config(TrainConfig, argv, "mtopt train", TrainConfig.__doc__ or "")
    print(json.dumps(train(cfg), indent=2))
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    from mtopt.evaluation.evaluate import EvalConfig, run_eval
    from mtopt.evaluation.protocol import format_eval_table

    cfg = parse_config(EvalConfig, argv, "mtopt eval", EvalConfig.__doc__ or "")
    print(format_eval_table(run_eval(cfg)))
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    from mtopt.experiments.demo import DemoConfig, run_demo

    cfg = parse_config(DemoConfig, argv, "mtopt demo", DemoConfig.__doc__ or "")
    print(run_demo(cfg)["report"])
    return 0


def cmd_sd_examples(argv: Sequence[str]) -> int:
    from mtopt.success.examples import SDExamplesConfig, make_examples

    cfg = parse_config(SDExamplesConfig, argv, "mtopt sd examples", SDExamplesConfig.__doc__ or "")
    print(json.dumps(make_examples(cfg), indent=2))
    return 0


def cmd_sd_train(argv: Sequence[str]) -> int:
    from mtopt.success.training import SDTrainConfig, train_success_detector

    cfg = parse_config(SDTrainConfig, argv, "mtopt sd train", SDTrainConfig.__doc__ or "")
    print(json.dumps(train_success_detector(cfg), indent=2))
    return 0


def cmd_sd_eval(argv: Sequence[str]) -> int:
    from mtopt.success.evaluate import SDEvalConfig, run_sd_eval
    from mtopt.success.metrics import format_table3

    cfg = parse_config(SDEvalConfig, argv, "mtopt sd eval", SDEvalConfig.__doc__ or "")
    print(format_table3(run_sd_eval(cfg)))
    return 0


def _command_configs() -> dict[str, type]:
    from mtopt.evaluation.evaluate import EvalConfig
    from mtopt.experiments.demo import DemoConfig
    from mtopt.success.evaluate import SDEvalConfig
    from mtopt.success.examples import SDExamplesConfig
    from mtopt.success.training import SDTrainConfig
    from mtopt.system.fleet import FleetConfig
    from mtopt.system.training import TrainConfig

    return {
        "demo": DemoConfig,
        "collect": FleetConfig,
        "train": TrainConfig,
        "eval": EvalConfig,
        "sd-examples": SDExamplesConfig,
        "sd-train": SDTrainConfig,
        "sd-eval": SDEvalConfig,
    }


def __getattr__(name: str) -> Any:  # lazy, so ``mtopt --help`` does not import MuJoCo
    if name == "COMMAND_CONFIGS":
        return _command_configs()
    raise AttributeError(name)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "demo": (cmd_demo, "the main job on the embedded default (local runtime, simulated cell)"),
    "collect": (cmd_collect, "collect episodes with a fleet of simulated robots"),
    "train": (cmd_train, "train a multi-task Q-function offline from an episode log"),
    "eval": (cmd_eval, "evaluate a checkpoint on the standard evaluation scene"),
    "data stats": (cmd_data_stats, "per-task episode and success counts of an episode log"),
    "sd examples": (cmd_sd_examples, "make success/failure outcome examples of a task"),
    "sd train": (cmd_sd_train, "train or fine-tune a multi-task success detector"),
    "sd eval": (cmd_sd_eval, "success-detector error rates per task (paper Table 3)"),
}


def usage() -> str:
    lines = ["usage: mtopt COMMAND [--config FILE.yaml] [flags]", "", "commands:"]
    lines += [f"  {name:<14}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'mtopt COMMAND --help' for the flags of a command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtopt`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    for n_words in (2, 1):
        name = " ".join(argv[:n_words])
        if name in COMMANDS:
            fn, _ = COMMANDS[name]
            try:
                return fn(argv[n_words:])
            except (ConfigError, ValueError, FileNotFoundError, NotADirectoryError) as exc:
                print(f"mtopt {name}: error: {exc}", file=sys.stderr)
                return 2
            except SystemExit as exc:  # tyro reports bad flags and values, then exits
                return exc.code if isinstance(exc.code, int) else 2
    print(f"mtopt: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
