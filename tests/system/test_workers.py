"""The continuous system's log-replay worker: which episodes it files as online data."""

from dataclasses import replace

import numpy as np
from fakes import make_fake_episode
from run_helpers import tiny_config

from mtopt.data.impersonation import OracleLabeller
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.replay import ReplayConfig
from mtopt.system.workers import LogReplayWorker


def test_log_replay_worker_files_this_runs_learned_episodes_as_online(tmp_path):
    config = tiny_config(tmp_path / "run")
    config = replace(config, train=replace(config.train, replay=ReplayConfig(online_fraction=0.5)))
    rng = np.random.default_rng(0)
    policies = [f"checkpoint:{config.name}@3", "checkpoint:other@3", "scripted-pick"] * 3
    with EpisodeLogWriter(config.log_dir, 0, EpisodeLogConfig(fsync=False)) as w:
        for p in policies:
            w.append(make_fake_episode(rng, task="lift-any", num_steps=4, policy=p, state_dim=150))
    worker = LogReplayWorker(config, 0, OracleLabeller())
    worker.poll()
    assert worker.log_replay.episodes == 9
    assert worker.log_replay.online_episodes == 3


def test_run_robot_acts_with_the_published_polyak_weights_when_asked(tmp_path):
    import torch

    from mtopt.system.run import network_config
    from mtopt.system.workers import RunRobot, Weights

    for choice in ("online", "polyak"):
        config = tiny_config(tmp_path / choice)
        config = replace(config, schedule=replace(config.schedule, policy_weights=choice))
        robot = RunRobot(config, 0, network_config(config))
        online = {k: torch.zeros_like(v) for k, v in robot.learned.network.state_dict().items()}
        average = {k: torch.ones_like(v) for k, v in online.items()}
        robot._pull([(5, Weights(5, online, average, average))])
        wanted = average if choice == "polyak" else online
        for key, value in robot.learned.network.state_dict().items():
            assert torch.equal(value, wanted[key])
        suffix = ":polyak" if choice == "polyak" else ""
        assert robot.learned.name == f"checkpoint:{config.name}@5{suffix}"
        assert robot.weights_version == 5
