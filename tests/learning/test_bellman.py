"""The Bellman updater turns sampled transitions into training batches (mtopt.learning.bellman)."""

import numpy as np
import pytest
import torch
from fakes import fake_shape

from mtopt.batches import TransitionBatch
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.learning.bellman import BellmanUpdater
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetworkConfig

D = 8


def _batch(label=None, steps_to_go=None) -> TransitionBatch:
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
        label=label,
        steps_to_go=steps_to_go,
    )


def _updater(mc: bool, mix: float = 0.0) -> BellmanUpdater:
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
        net,
        net,
        CEMConfig(num_samples=8, num_elites=2),
        0.9,
        gen,
        WORKCELL_ACTION,
        mc_lower_bound=mc,
        mc_mix=mix,
    )


def test_mc_lower_bound_raises_targets_of_successful_episodes_only():
    label = np.array([1.0, 1.0, 0.0, 1.0], np.float32)
    to_go = np.array([2.0, 1.0, 1.0, 0.0], np.float32)
    plain = _updater(False)(_batch(label, to_go)).target
    bounded = _updater(True)(_batch(label, to_go)).target
    v = 0.9 * torch.sigmoid(torch.tensor(-4.0))  # the bootstrapped target of a live row
    torch.testing.assert_close(plain, torch.tensor([v, v, v, 1.0]))
    torch.testing.assert_close(bounded, torch.tensor([0.81, 0.9, v, 1.0]))


def test_mc_lower_bound_needs_the_return_ingredients():
    with pytest.raises(
        ValueError, match="mc_lower_bound and mc_mix need batches with label and steps_to_go"
    ):
        _updater(True)(_batch())


def test_mc_mix_blends_the_bootstrapped_target_with_the_return():
    label = np.array([1.0, 0.0, 1.0, 1.0], np.float32)
    to_go = np.array([2.0, 1.0, 1.0, 0.0], np.float32)
    half = _updater(False, mix=0.5)(_batch(label, to_go)).target
    v = 0.9 * torch.sigmoid(torch.tensor(-4.0))
    expected = torch.tensor([0.5 * v + 0.405, 0.5 * v, 0.5 * v + 0.45, 1.0])
    torch.testing.assert_close(half, expected)


def test_pure_monte_carlo_targets_skip_cem_and_leave_the_generator_alone():
    label = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    to_go = np.array([2.0, 1.0, 0.0, 0.0], np.float32)
    updater = _updater(False, mix=1.0)
    before = updater.generator.get_state().clone()
    target = updater(_batch(label, to_go)).target
    torch.testing.assert_close(target, torch.tensor([0.81, 0.0, 1.0, 0.0]))
    assert torch.equal(updater.generator.get_state(), before)  # no CEM draws were made
