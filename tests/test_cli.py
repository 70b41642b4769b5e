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
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["collect", "--tasks", "lift-anything", "--out", "x"]) == 2
    assert "lift-any" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--config needs"):
        parse_config(COMMAND_CONFIGS["collect"], ["--config"], "x", "")
