"""The Bellman updater turns sampled transitions into training batches (mtopt.learning.bellman)."""

import numpy as np
import torch
from fakes import fake_shape

from mtopt.batches import TransitionBatch
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.learning.bellman import BellmanUpdater
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetworkConfig

D = 8


def _batch(steps=None) -> TransitionBatch:
    rng = np.random.default_rng(0)
    obs = {
        "state": rng.standard_normal((4, D)).astype(np.float32),
        "gripper_status": np.zeros((4, 1), np.float32),
        "gripper_height": np.ones((4, 1), np.float32),
    }
    return TransitionBatch(
        obs=obs,
        action=np.zeros((4, 6), np.float32),
        next_obs={k: v.copy() for k, v in obs.items()},
        reward=np.array([0.0, 0.0, 0.0, 1.0], np.float32),
        done=np.array([0.0, 0.0, 0.0, 1.0], np.float32),
        task=np.zeros(4, np.int64),
        steps=steps,
    )


def _updater() -> BellmanUpdater:
    torch.manual_seed(0)
    net = build_q_network(
        QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat"), fake_shape(D)
    )
    with torch.no_grad():  # a target network that values everything at sigmoid(-4) = 0.018
        for p in net.parameters():
            p.zero_()
        net.heads.biases[-1].fill_(-4.0)
    gen = torch.Generator().manual_seed(0)
    return BellmanUpdater(
        net, net, CEMConfig(num_samples=8, num_elites=2), 0.9, gen, WORKCELL_ACTION
    )


def test_one_step_targets_bootstrap_live_rows_and_stop_at_the_end():
    target = _updater()(_batch()).target
    v = torch.sigmoid(torch.tensor(-4.0))  # the target networks' value everywhere
    torch.testing.assert_close(target, torch.tensor([0.9 * v, 0.9 * v, 0.9 * v, 1.0]))


def test_n_step_targets_discount_by_each_rows_look_ahead():
    # rows look 1, 3 and 5 steps ahead; the last ends its episode on its 2nd step (reward 1
    # arrives on that step: gamma ** (2 - 1) * 1, no bootstrap)
    steps = np.array([1.0, 3.0, 5.0, 2.0], np.float32)
    target = _updater()(_batch(steps)).target
    v = torch.sigmoid(torch.tensor(-4.0))
    expected = torch.tensor([0.9 * v, 0.729 * v, 0.59049 * v, 0.9])
    torch.testing.assert_close(target, expected)
