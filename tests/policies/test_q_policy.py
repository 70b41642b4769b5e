"""The greedy / ε-greedy CEM policy over a Q-network, its exploration modes and blocked pushes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtopt.learning.networks import QNetworkConfig, build_q_network
from mtopt.learning.cem import CEMConfig
from mtopt.policies.q_policy import QPolicy, blocked_descent
from mtopt.tasks import default_task_set

OBS = {
    "state": np.linspace(-1, 1, 8).astype(np.float32),
    "gripper_status": np.zeros(1, np.float32),
    "gripper_height": np.full(1, 0.1, np.float32),
}


def _policy(epsilon: float, exploration: str = "all") -> QPolicy:
    torch.manual_seed(0)
    net = build_q_network(QNetworkConfig(kind="mlp", state_dim=8, mlp_width=16))
    cem = CEMConfig(num_samples=16, num_elites=4)
    return QPolicy(net, default_task_set(), cem, epsilon, exploration=exploration)


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


PUSH_DOWN = np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0], np.float32)


@pytest.mark.parametrize(
    ("last", "motion_z", "height", "blocked"),
    [
        (PUSH_DOWN, 0.0, 0.06, True),  # 5 cm commanded, nothing happened, above the floor
        (PUSH_DOWN, -0.0124, 0.06, True),  # under a quarter of the 5 cm commanded
        (PUSH_DOWN, -0.0126, 0.06, False),  # just over a quarter: a slowed, not a blocked, push
        (PUSH_DOWN, 0.0, 0.01, False),  # at the bin floor, not on an object
        (None, 0.0, 0.06, False),  # the first step of an episode
        (np.array([0, 0, -0.1, 0, 0, 0], np.float32), 0.0, 0.06, False),  # hardly a descent
        (np.array([0, 0, -1, 0, 0, 1], np.float32), 0.0, 0.06, False),  # it terminated
        (np.array([1, 0, 0, 0, 0, 0], np.float32), 0.0, 0.06, False),  # a blocked sideways move
    ],
)
def test_blocked_descent_against_hand_values(last, motion_z, height, blocked):
    motion = np.array([0.0, 0.0, motion_z], np.float32)
    assert blocked_descent(last, motion, height, max_translation=0.05) is blocked


def _stuck_obs(motion_z: float) -> dict[str, np.ndarray]:
    return {**OBS, "gripper_motion": np.array([0.0, 0.0, motion_z], np.float32)}


def test_stuck_epsilon_explores_only_after_a_blocked_descent():
    # the greedy policy of this tiny network; force its actions to be pushes down so that the
    # next observation decides whether the step counts as blocked
    policy = _policy(0.0, "motion")
    policy.stuck_epsilon = 1.0
    greedy = _policy(0.0, "motion")
    for pol in (policy, greedy):
        pol.reset(np.random.default_rng(7), task="lift-any")
    explored = 0
    for step in range(20):
        blocked = step % 2 == 1
        obs = _stuck_obs(0.0 if blocked else -0.05)
        policy._last = greedy._last = PUSH_DOWN.copy()
        a, g = policy.act(obs), greedy.act(obs)
        assert np.array_equal(a[4:], g[4:])  # motion exploration keeps the discrete choices
        if not np.allclose(a[:4], g[:4]):
            explored += 1
            assert blocked, f"step {step} explored although its descent was free"
    assert explored == 10  # every blocked step explored (stuck_epsilon 1), no free one did


def test_stuck_epsilon_leaves_free_descents_unchanged():
    # no step is blocked (the gripper always went 5 cm down), so the random stream and every
    # action are those of the plain ε-greedy policy
    plain = _actions(_policy(0.3, "motion"), 11, 30)
    policy = _policy(0.3, "motion")
    policy.stuck_epsilon = 0.9
    policy.reset(np.random.default_rng(11), task="lift-any")
    free = np.stack([policy.act(_stuck_obs(-0.05)) for _ in range(30)])
    assert np.array_equal(plain, free)


def test_stuck_epsilon_needs_the_motion_observation_and_a_probability():
    net = build_q_network(QNetworkConfig(kind="mlp", state_dim=8, mlp_width=16))
    with pytest.raises(ValueError, match=r"stuck_epsilon must be a probability in \[0, 1\], got 2"):
        QPolicy(net, default_task_set(), stuck_epsilon=2)
    policy = QPolicy(net, default_task_set(), stuck_epsilon=0.5)
    policy.reset(np.random.default_rng(0), task="lift-any")
    with pytest.raises(KeyError, match="gripper_motion"):
        policy.act(OBS)


def test_up_turn_escape_replaces_the_exploring_blocked_steps():
    policy, greedy = _policy(0.0, "motion"), _policy(0.0, "motion")
    policy.stuck_epsilon, policy.stuck_escape = 1.0, "up-turn"
    for pol in (policy, greedy):
        pol.reset(np.random.default_rng(3), task="lift-any")
    turns = []
    for _ in range(20):
        policy._last = PUSH_DOWN.copy()
        a = policy.act(_stuck_obs(0.0))  # every step blocked, every step explores
        assert np.array_equal(a[:3], [0, 0, 1])  # straight up by a full step
        assert np.array_equal(a[4:], greedy.act(_stuck_obs(0.0))[4:])  # greedy gripper, stop
        turns.append(a[3])
    assert set(turns) == {-1.0, 1.0}  # the wrist turns a full step, either way


def test_bad_stuck_escape_is_named():
    net = build_q_network(QNetworkConfig(kind="mlp", state_dim=8, mlp_width=16))
    with pytest.raises(ValueError, match=r"stuck_escape must be one of \('random', 'up-turn'\)"):
        QPolicy(net, default_task_set(), stuck_escape="wiggle")
