"""Same seed, different robot timing: same log (in canonical order), same training, same demo.

The robot processes are slowed down by a patched process entry point (:func:`_timed_robot_main`,
imported by the spawned children from this module), so the robots' shards interleave
differently in the two collections of a test.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, in_robot_order
from mtopt.envs import make_spec
from mtopt.learning.cem import CEMConfig
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.system import fleet
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import TrainingRun
from mtopt.system.training_config import TrainConfig

SHARDS = EpisodeLogConfig(shard_episodes=2, fsync=False)
WORKCELL = make_spec("workcell")


def _timed_robot_main(
    robot_ids: list[int],
    counts: list[int],
    config: FleetConfig,
    spec: Any,
    run_tag: str,
    q: Any,
    parent: int,
    slow_robot: int | None = None,
    unstable_robot: int | None = None,
) -> None:
    """The fleet's robot process, with a process holding robot ``slow_robot`` slowed down
    before each write (its first write waits for another robot's first shard) and the second
    step of the first episode of a process holding robot ``unstable_robot`` made numerically
    unstable."""
    from mtopt.data.log import EpisodeLogWriter
    from mtopt.envs.workcell import WorkcellEnv
    from mtopt.system import fleet as child_fleet  # the child's own, unpatched module

    if slow_robot in robot_ids:
        append = EpisodeLogWriter.append
        first = [True]

        def slow_append(self: EpisodeLogWriter, episode: Any) -> list[str]:
            if first[0]:  # hold the first write until another robot's shard is in the log
                mine = f"-r{slow_robot:04d}-"
                deadline = time.monotonic() + 120.0  # a fixed sleep lost the race under load

                def others() -> bool:
                    shards = Path(config.out).glob("*.parquet")
                    return any(mine not in p.name and not p.name.startswith(".") for p in shards)

                while not others() and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                time.sleep(0.05)
            first[0] = False
            return append(self, episode)

        EpisodeLogWriter.append = slow_append  # type: ignore[method-assign]
    if unstable_robot in robot_ids:
        step, calls = WorkcellEnv.step, [0]

        def faulty_step(self: WorkcellEnv, action: np.ndarray) -> Any:
            calls[0] += 1
            if calls[0] == 2:
                self.data.qvel[0] = np.nan
            return step(self, action)

        WorkcellEnv.step = faulty_step  # type: ignore[method-assign]
    child_fleet._process_main(robot_ids, counts, config, spec, run_tag, q, parent)


def _collect(
    monkeypatch: pytest.MonkeyPatch, config: FleetConfig, slow_robot: int | None, **kw: Any
) -> dict:
    monkeypatch.setattr(
        fleet, "_process_main", functools.partial(_timed_robot_main, slow_robot=slow_robot, **kw)
    )
    return collect(config, WORKCELL)


def _robots_in_creation_order(log: Path) -> list[int]:
    return EpisodeLogReader(log).metadata()["robot_id"].to_pylist()


def _train_config(log: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        data=str(log),
        out=str(out),
        steps=6,
        batch_size=16,
        checkpoint_every=6,
        log_every=3,
        progress=False,
        rewards="oracle",
        trainer=TrainerConfig(
            network=QNetworkConfig(kind="mlp", mlp_width=16), target_lag_steps=2, device="cpu"
        ),
        cem=CEMConfig(iterations=1, num_samples=8, num_elites=2),
    )


def test_robot_timing_changes_neither_the_log_nor_the_training(tmp_path, monkeypatch):
    logs = {}
    for run, slow in (("a", 0), ("b", 1)):
        cfg = FleetConfig(
            out=str(tmp_path / run / "log"),
            robots=2,
            episodes=16,
            seed=4,
            progress=False,
            log=SHARDS,
        )
        summary = _collect(monkeypatch, cfg, slow_robot=slow)
        assert summary["episodes"] == 16
        logs[run] = Path(cfg.out)
    # the timing did differ: the fast robot's shards came first in creation order ...
    assert _robots_in_creation_order(logs["a"])[0] == 1
    assert _robots_in_creation_order(logs["b"])[0] == 0
    # ... but in the canonical order both logs hold the very same episodes
    a, b = (in_robot_order(EpisodeLogReader(log).episodes()) for log in (logs["a"], logs["b"]))
    assert [e.episode_id for e in a] == [e.episode_id for e in b]
    for x, y in zip(a, b, strict=True):
        assert (x.task, x.seed, x.policy, x.chained_from) == (
            y.task,
            y.seed,
            y.policy,
            y.chained_from,
        )
        np.testing.assert_array_equal(x.actions, y.actions)
        for key in x.observations:
            np.testing.assert_array_equal(x.observations[key], y.observations[key])
        np.testing.assert_array_equal(x.success, y.success)
    # and training on them gives the same losses and weights
    results = []
    for run in ("a", "b"):
        training = TrainingRun(_train_config(logs[run], tmp_path / run / "train"), WORKCELL)
        results.append((training.run(), training.trainer))
    (ra, ta), (rb, tb) = results
    assert ra["loss"] == rb["loss"] and ra["mean_q"] == rb["mean_q"]
    for (name, pa_), (_, pb) in zip(
        ta.online.state_dict().items(), tb.online.state_dict().items(), strict=True
    ):
        assert torch.equal(pa_, pb), name


def test_discarded_episodes_are_counted_not_warned_per_episode(
    tmp_path, monkeypatch, capfd, caplog
):
    cfg = FleetConfig(out=str(tmp_path / "log"), robots=1, episodes=3, seed=5, progress=False)
    with caplog.at_level(logging.DEBUG, logger="mtopt"):
        summary = _collect(monkeypatch, cfg, slow_robot=None, unstable_robot=0)
    assert summary["episodes"] == 3 and summary["discarded"] == 1
    err = capfd.readouterr().err  # the robot process's log output
    assert "WARNING" not in err and "unstable" not in err, err
    # one summary line per collection, with the count
    records = [r for r in caplog.records if r.name == "mtopt.system.fleet"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "1 discarded for unstable physics" in records[0].getMessage()
    # and the count is durable: in the shards' metadata, read back by the statistics
    reader = EpisodeLogReader(cfg.out)
    assert reader.metadata().num_rows == 3 and reader.discarded_episodes() == 1


def test_the_demo_pipeline_does_not_depend_on_robot_timing(tmp_path, monkeypatch):
    from mtopt.experiments.demo import DemoConfig, run_demo

    base = DemoConfig()
    tables = []
    for run, slow in (("a", 0), ("b", 1)):
        monkeypatch.setattr(
            fleet, "_process_main", functools.partial(_timed_robot_main, slow_robot=slow)
        )
        cfg = replace(
            base,
            out=str(tmp_path / run),
            seed=2,
            bootstrap_episodes=16,
            bootstrap_steps=4,
            rounds=1,
            round_episodes=4,
            round_steps=2,
            eval_episodes_per_task=1,
            progress=False,
            policy=replace(base.policy, cem=CEMConfig(iterations=1, num_samples=8, num_elites=2)),
            train=replace(
                base.train,
                batch_size=16,
                checkpoint_every=2,
                cem=CEMConfig(iterations=1, num_samples=8, num_elites=2),
                trainer=replace(
                    base.train.trainer, network=replace(base.train.trainer.network, mlp_width=16)
                ),
            ),
            success_detector=replace(base.success_detector, steps=10, batch_size=16),
        )
        run_demo(cfg)
        summary = json.loads((tmp_path / run / "eval.json").read_text())
        tables.append((summary["results"], summary["success_detector"]["loss"]))
    assert tables[0] == tables[1]
