"""The greedy / ε-greedy CEM policy over a Q-network and its exploration modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import fake_shape

from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.envs.workcell_tasks import workcell_task_set
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetworkConfig
from mtopt.policies.q_policy import QPolicy

OBS = {
    "state": np.linspace(-1, 1, 8).astype(np.float32),
    "gripper_status": np.zeros(1, np.float32),
    "gripper_height": np.full(1, 0.1, np.float32),
}


def _policy(epsilon: float, exploration: str = "all") -> QPolicy:
    torch.manual_seed(0)
    config = QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat")
    net = build_q_network(config, fake_shape(8))
    cem = CEMConfig(num_samples=16, num_elites=4)
    keys = ("state", "gripper_status", "gripper_height")
    return QPolicy(
        net, workcell_task_set(), WORKCELL_ACTION, cem, epsilon, keys, exploration=exploration
    )


def _actions(policy: QPolicy, seed: int, n: int) -> np.ndarray:
    policy.reset(np.random.default_rng(seed), task="lift-any")
    return np.stack([policy.act(OBS) for _ in range(n)])


def test_greedy_is_seeded_and_valid():
    a = _actions(_policy(0.0), 3, 20)
    assert np.array_equal(a, _actions(_policy(0.0), 3, 20))
    assert a[:, :4].min() >= -1 and a[:, :4].max() <= 1
    assert set(np.unique(a[:, 4:])) <= {0.0, 1.0}


def test_motion_exploration_keeps_the_greedy_gripper_and_terminate():
    greedy = _actions(_policy(0.0), 5, 30)
    explored = _actions(_policy(1.0, "motion"), 5, 30)
    # every step explores, yet the discrete choices are exactly the greedy ones
    assert np.array_equal(explored[:, 4:], greedy[:, 4:])
    assert not np.allclose(explored[:, :4], greedy[:, :4])


def test_all_exploration_randomises_every_dim():
    a = _actions(_policy(1.0, "all"), 5, 400)
    for d in (4, 5):
        assert 0.4 < a[:, d].mean() < 0.6  # a fair coin, whatever the greedy choice is
    assert abs(a[:, :4].mean()) < 0.1


def test_bad_exploration_is_named():
    with pytest.raises(ValueError, match="'sideways'"):
        _policy(0.2, "sideways")


def test_act_batch_searches_all_states_at_once_and_only_greedily():
    policy = _policy(0.0)
    assert policy.batchable
    other = {**OBS, "state": -OBS["state"]}
    a = policy.act_batch([OBS, other, OBS], "lift-any", policy.generator_for(7))
    assert a.shape == (3, 6) and a.dtype == np.float32
    assert a[:, :4].min() >= -1 and a[:, :4].max() <= 1
    again = policy.act_batch([OBS, other, OBS], "lift-any", policy.generator_for(7))
    assert np.array_equal(a, again)  # seeded
    # the two copies of one state agree on the discrete choices the network prefers
    assert np.array_equal(a[0, 4:], a[2, 4:])
    explorer = _policy(0.2)
    assert not explorer.batchable
    with pytest.raises(ValueError, match=r"act_batch is greedy; this policy has epsilon 0\.2"):
        explorer.act_batch([OBS], "lift-any", explorer.generator_for(0))


def test_act_together_is_act_batch_for_greedy_policies_of_one_task():
    policy = _policy(0.0)
    other = {**OBS, "state": -OBS["state"]}
    policies = [policy.clone(), policy.clone()]
    for p in policies:
        p.reset(np.random.default_rng(1), task="lift-any")
    together = QPolicy.act_together(policies, [OBS, other], policy.generator_for(4))
    batch = policy.act_batch([OBS, other], "lift-any", policy.generator_for(4))
    assert np.array_equal(together, batch)


@pytest.mark.parametrize("exploration", ["all", "motion"])
def test_act_together_makes_each_episodes_own_exploration_draws(exploration):
    """Every policy draws ε and its random motion from its own episode generator, as act()
    does; only the greedy search is shared."""
    alone = _policy(1.0, exploration)
    alone.reset(np.random.default_rng(9), task="place-any")
    expected = alone.act(OBS)
    policies = [alone.clone() for _ in range(3)]
    for seed, p in zip((9, 9, 10), policies, strict=True):
        p.reset(np.random.default_rng(seed), task="place-any")
    got = QPolicy.act_together(policies, [OBS] * 3, alone.generator_for(0))
    dims = slice(0, 6) if exploration == "all" else slice(0, 4)  # motion: discrete dims greedy
    assert np.array_equal(got[0, dims], expected[dims])
    assert np.array_equal(got[0], got[1])
    assert not np.array_equal(got[0, :4], got[2, :4])


def test_act_together_refuses_policies_over_different_networks():
    a, b = _policy(0.0), _policy(0.0)
    for p in (a, b):
        p.reset(np.random.default_rng(0), task="lift-any")
    with pytest.raises(ValueError, match="one network"):
        QPolicy.act_together([a, b], [OBS, OBS], a.generator_for(0))
    with pytest.raises(ValueError, match="one observation per policy"):
        QPolicy.act_together([a], [OBS, OBS], a.generator_for(0))
