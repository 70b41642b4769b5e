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
