"""The CLI and the shipped configs: every YAML under configs/ loads into its command's config."""

from pathlib import Path

import pytest

from mtopt.cli import COMMAND_CONFIGS, main, parse_config
from mtopt.config import ConfigError, load_config

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIG_ROOT.glob("*/*.yaml"))


def test_there_are_shipped_configs_for_known_commands():
    assert SHIPPED
    assert {p.parent.name for p in SHIPPED} <= set(COMMAND_CONFIGS)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path):
    cls = COMMAND_CONFIGS[path.parent.name]
    cfg = load_config(cls, path)
    assert isinstance(cfg, cls)


def test_flags_override_yaml(tmp_path):
    cls = COMMAND_CONFIGS["collect"]
    cfg = parse_config(
        cls, ["--config", str(CONFIG_ROOT / "collect/default.yaml"), "--robots", "3"], "x", ""
    )
    assert cfg.robots == 3
    assert cfg.episodes == load_config(cls, CONFIG_ROOT / "collect/default.yaml").episodes


def test_unknown_command_and_bad_values(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'; the commands are demo, collect" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["data", "frobnicate"]) == 2
    assert "unknown command 'data frobnicate'" in capsys.readouterr().err
    assert main(["collect", "--tasks", "lift-anything", "--out", "x"]) == 2
    assert "lift-any" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--config needs"):
        parse_config(COMMAND_CONFIGS["collect"], ["--config"], "x", "")


def test_env_shorthand_and_env_settings_reach_the_config():
    cfg = parse_config(COMMAND_CONFIGS["collect"], ["--env", "pointmass"], "x", "")
    assert cfg.env.name == "pointmass" and cfg.env.spec().name == "pointmass"
    flags = ["--env=workcell", "--env.workcell.impratio", "3"]
    cfg = parse_config(COMMAND_CONFIGS["train"], flags, "x", "")
    assert cfg.env.spec().config.impratio == 3.0


def test_expert_collection_and_behaviour_cloning_flags_reach_their_configs():
    flags = ["--bootstrap", "expert", "--expert-noise", "0.2"]
    cfg = parse_config(COMMAND_CONFIGS["collect"], flags, "x", "")
    assert (cfg.bootstrap, cfg.expert_noise) == ("expert", 0.2)
    flags = ["--data", "d", "--out", "o", "--steps", "7", "--labels", "oracle"]
    flags += ["--network.state-encoder", "objects"]
    cfg = parse_config(COMMAND_CONFIGS["bc-train"], flags, "x", "")
    assert (cfg.data, cfg.out, cfg.steps, cfg.labels) == ("d", "o", 7, "oracle")
    assert cfg.network.state_encoder == "objects"


def test_expected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "is not valid YAML at line 2" in err and "Traceback" not in err
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt' does not exist" in capsys.readouterr().err
    assert main(["collect", "--env", "mujoco-soup"]) == 2
    assert "known envs: workcell, pointmass" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not valid YAML"):
        main(["train", "--config", str(bad), "--debug"])
    for command in ("train", "run"):  # an --out that is a file fails before any data is read
        assert main([command, "--out", str(bad), "--env", "pointmass"]) == 2
        assert "is an existing file; give a directory" in capsys.readouterr().err


def test_help_into_a_closed_pipe_is_quiet():
    import subprocess
    import sys

    cmd = f"{sys.executable} -m mtopt collect --help | head -n 1"
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: mtopt collect")
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--obs", "foo"], "invalid choice 'foo' for argument '--obs'. Expected one of"),
        (["train", "--steps", "abc"], "Error parsing --steps: invalid literal for int()"),
        (["train", "--steps", "0"], "steps must be a positive integer, got 0"),
        (["collect", "--robots", "0"], "robots must be an integer in [1, 256], got 0"),
        (["train", "--bogus-flag", "1"], "Unrecognized options: --bogus-flag, 1"),
        (["collect", "--env", "nosuchenv"], "unknown env 'nosuchenv'; known envs: workcell"),
        (["collect", "--bootstrap", "best"], "invalid choice 'best' for argument '--bootstrap'"),
        (
            ["collect", "--bootstrap", "expert", "--expert-noise", "2"],
            "expert_noise must be a number in [0, 1], got 2.0",
        ),
    ],
)
def test_rejected_flags_and_values_are_one_line(argv, message, capsys):
    """The parser's errors (tyro's boxes) are printed as the CLI's one line, exit code 2."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"mtopt {argv[0]}: error: ") and message in lines[0]
    assert lines[0].endswith(f"('mtopt {argv[0]} --help' lists the flags)")
    assert "╭" not in captured.err and "Traceback" not in captured.err


def test_one_line_keeps_the_message_of_a_box_and_drops_its_help():
    from mtopt.cli import one_line

    box = (
        "╭─ Value error ──────────╮\n"
        "│ Error parsing --steps: │\n"
        "│ invalid literal 'abc'  │\n"
        "│ ────────────────────── │\n"
        "│ Argument helptext:     │\n"
        "╰────────────────────────╯\n"
    )
    assert one_line(box) == "Error parsing --steps: invalid literal 'abc'"
    assert one_line("") == "invalid arguments"


def test_json_into_a_directory_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys):
    from mtopt.jsonio import write_json

    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory; give a file path"):
        write_json({"a": 1}, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "log").mkdir()
    assert main(["data", "stats", str(tmp_path / "log"), "--json", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "JSON output" in err[-1] and "is a directory" in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "out"]


def test_demo_on_meta_world_starts_from_its_own_defaults(monkeypatch, capsys):
    from mtopt.experiments import demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or {"report": "ok"})
    assert main(["demo", "--env", "metaworld-mt10", "--rounds", "3"]) == 0
    want = demo.metaworld_demo_config("metaworld-mt10")
    assert seen[-1] == demo.replace(want, rounds=3)  # the env's defaults, then the flags
    assert main(["demo", "--env.name=pointmass"]) == 0
    assert seen[-1].env.name == "pointmass"
    assert seen[-1].bootstrap_episodes == demo.DemoConfig().bootstrap_episodes
    yaml = str(CONFIG_ROOT / "demo/default.yaml")  # a YAML config gives every default itself
    assert main(["demo", "--config", yaml, "--env", "pointmass"]) == 0
    assert seen[-1] == demo.replace(load_config(demo.DemoConfig, yaml), env=seen[-2].env)
    assert main(["demo", "--env", "metaworld-mt99"]) == 2
    err = capsys.readouterr().err
    assert "unknown env 'metaworld-mt99'; known envs: workcell, pointmass, metaworld-mt10" in err
