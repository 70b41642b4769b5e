"""The whole learner (log replay, task replay, Bellman updater, trainer, CEM policy) must
actually learn a tiny, easy task: the greedy policy beats random actions by a clear margin."""

import numpy as np
from fakes import FakeSpec, ReachTask

from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.training import train
from mtopt.system.training_config import TrainConfig


def test_q_learning_beats_random_on_reach(tmp_path):
    task = ReachTask()
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(tmp_path / "log", 0, EpisodeLogConfig(fsync=False)) as writer:
        random_wins = 0
        for _ in range(500):
            ep = task.rollout(rng)
            random_wins += ep.success_for("lift-any")
            writer.append(ep)
    cfg = TrainConfig(
        data=str(tmp_path / "log"),
        out=str(tmp_path / "run"),
        steps=1500,
        tasks=("lift-any",),
        rewards="oracle",
        batch_size=128,
        impersonation=ImpersonationConfig(kind="orig"),
        trainer=TrainerConfig(
            network=QNetworkConfig(kind="mlp", mlp_width=64, state_encoder="flat"),
            learning_rate=1e-3,
            polyak=0.99,
            target_lag_steps=100,
            device="cpu",
            conservative_weight=0.0,
        ),
        checkpoint_every=1500,
        progress=False,
    )
    spec = FakeSpec(state_dim=2)
    policy = load_q_policy(train(cfg, spec)["checkpoint"], spec)
    eval_rng = np.random.default_rng(1)
    greedy = np.mean([task.rollout(eval_rng, policy).success_for("lift-any") for _ in range(200)])
    random_rate = random_wins / 500
    assert random_rate < 0.2
    assert greedy > random_rate + 0.2, f"greedy {greedy:.3f} vs random {random_rate:.3f}"
