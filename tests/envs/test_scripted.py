"""Tests of the scripted bootstrap policies (paper App. 7.2)."""

from __future__ import annotations

import numpy as np
import pytest

from mtopt.envs.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)
from mtopt.envs.workcell import WorkcellEnv


@pytest.fixture(scope="module")
def env() -> WorkcellEnv:
    return WorkcellEnv()


def _run(env: WorkcellEnv, policy, episodes: int, options: dict, task: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    slot = env.task_names.index(task)
    wins = 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + ep, options=options)
        policy.reset(rng)
        done = False
        while not done:
            action = policy.act(obs)
            assert env.action_space.contains(action)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        # a contact blow-up (about 1 in 50 episodes) truncates; otherwise the policy finishes
        assert terminated or info.get("physics_unstable"), "scripted policies finish in time"
        wins += bool(info["success"][slot])
    return wins / episodes


def test_scripted_pick_sometimes_lifts(env: WorkcellEnv) -> None:
    rate = _run(env, ScriptedPickPolicy(), 60, {}, "lift-any", seed=1)
    assert 0.0 < rate < 0.4


def test_scripted_place_rate_in_loose_band(env: WorkcellEnv) -> None:
    rate = _run(env, ScriptedPlacePolicy(), 60, {"grasped": True}, "place-any", seed=2)
    assert 0.2 <= rate <= 0.8


def test_pick_ignores_objects() -> None:
    """The crude picker never aims: object entries of the state do not change its actions."""
    env = WorkcellEnv()
    obs, _ = env.reset(seed=4)
    scrambled = {k: v.copy() for k, v in obs.items()}
    sl = env.state_layout["objects"]
    scrambled["state"][sl] = np.random.default_rng(0).normal(size=sl.stop - sl.start)
    a, b = ScriptedPickPolicy(), ScriptedPickPolicy()
    a.reset(np.random.default_rng(9))
    b.reset(np.random.default_rng(9))
    np.testing.assert_array_equal(a.act(obs), b.act(scrambled))


def test_place_targets_cover_the_left_bin() -> None:
    policy = ScriptedPlacePolicy()
    rng = np.random.default_rng(0)
    targets = []
    for _ in range(200):
        policy.reset(rng)
        targets.append(policy.target)
    targets = np.array(targets)
    assert (targets[:, 1] > 0).all()  # always the left bin
    assert np.ptp(targets[:, 0]) > 0.25 and np.ptp(targets[:, 1]) > 0.25  # not aimed


def test_pick_phases_without_noise(env: WorkcellEnv) -> None:
    policy = ScriptedPickPolicy(
        ScriptedPickConfig(noise_std=0.0, gripper_flip_prob=0.0, terminate_prob=0.0)
    )
    obs, _ = env.reset(seed=3)
    policy.reset(np.random.default_rng(0))
    actions = []
    done = False
    while not done:
        actions.append(policy.act(obs))
        obs, _, terminated, truncated, _ = env.step(actions[-1])
        done = terminated or truncated
    actions = np.array(actions)
    assert actions[0, 2] == -1.0 and actions[0, 4] == 0.0  # descend open
    closing = np.flatnonzero(actions[:, 4] == 1.0)
    assert len(closing) >= 2 and actions[closing[-1], 2] == 1.0  # close then lift
    assert actions[-1, 5] == 1.0 and (actions[:-1, 5] == 0).all()


def test_discrete_noise_flips_gripper_and_terminates_early(env: WorkcellEnv) -> None:
    cfg = ScriptedPickConfig(noise_std=0.0, gripper_flip_prob=0.5, terminate_prob=0.0)
    policy = ScriptedPickPolicy(cfg)
    obs, _ = env.reset(seed=3)
    first = []
    for seed in range(200):  # the first action descends with the gripper open (0)
        policy.reset(np.random.default_rng(seed))
        first.append(policy.act(obs)[4])
    assert 0.35 < np.mean(first) < 0.65
    early = ScriptedPickPolicy(ScriptedPickConfig(terminate_prob=1.0))
    early.reset(np.random.default_rng(0))
    assert early.act(obs)[5] == 1.0


def test_act_before_reset_raises() -> None:
    obs = {"state": np.zeros(160, np.float32), "gripper_height": np.array([0.2], np.float32)}
    with pytest.raises(RuntimeError, match="reset"):
        ScriptedPickPolicy().act(obs)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (ScriptedPickConfig, "noise_std", -1.0),
        (ScriptedPickConfig, "lift_steps", 0),
        (ScriptedPickConfig, "max_descend_steps", 2.5),
        (ScriptedPlaceConfig, "release_height", 1.0),
        (ScriptedPlaceConfig, "target_margin", 0.5),
    ],
)
def test_config_validation(cls, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})
