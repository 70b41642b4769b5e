"""Shared helpers of the continuous-system tests: the tiny config and log checks."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from mtopt.config import load_config
from mtopt.data.log import EpisodeLogReader
from mtopt.envs import make_spec
from mtopt.system.run_config import RunConfig

TINY = Path(__file__).resolve().parents[2] / "configs" / "run" / "tiny.yaml"
WORKCELL = make_spec("workcell")
"""The environment of the continuous-system tests."""


def tiny_config(out: Path, **overrides) -> RunConfig:
    """configs/run/tiny.yaml with ``out`` and ``overrides``."""
    from dataclasses import replace

    return replace(load_config(RunConfig, TINY), out=str(out), progress=False, **overrides)


def log_ids(log: Path) -> list[str]:
    """Every episode id in the log (duplicates kept)."""
    return EpisodeLogReader(log).metadata().column("episode_id").to_pylist()


def assert_log_consistent(log: Path, name: str = "run") -> dict[int, int]:
    """No id twice; each robot's counters are exactly 1..N (nothing lost). Returns N per robot."""
    ids = log_ids(log)
    assert len(ids) == len(set(ids)), "an episode id appears twice in the log"
    per_robot: dict[int, list[int]] = defaultdict(list)
    for eid in ids:
        m = re.fullmatch(rf"{name}-r(\d{{3}})-(\d+)", eid)
        assert m, f"unexpected episode id {eid!r}"
        per_robot[int(m.group(1))].append(int(m.group(2)))
    for robot, counts in per_robot.items():
        assert sorted(counts) == list(range(1, len(counts) + 1)), f"robot {robot} lost episodes"
    return {r: len(c) for r, c in per_robot.items()}
