"""The workcell through Gymnasium: registration, the environment checker, seeding, the sparse
success reward, bad arguments and the all-tasks vector env (mtopt.envs.gym_api)."""

from __future__ import annotations

import ctypes.util
import importlib
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mtopt
from mtopt import gym_registration
from mtopt.envs.aimed import AimedPickPolicy, AimedPlacePolicy
from mtopt.envs.gym_api import EVALUATION_TASKS, TASKS, WorkcellGymEnv, make_workcell_vector_env
from mtopt.envs.workcell_config import WorkcellConfig

ID = "mtopt/Workcell-v0"
INFINITE_STATE_WARNINGS = ("minimum value is -infinity", "maximum value is infinity")
"""check_env's hints about the state's unbounded Box: honest bounds (a thrown object's
position is unbounded), not a failure."""
needs_osmesa = pytest.mark.skipif(
    ctypes.util.find_library("OSMesa") is None, reason="libOSMesa not installed"
)


def _check(env: gymnasium.Env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    other = [str(w.message) for w in caught]
    other = [m for m in other if not any(hint in m for hint in INFINITE_STATE_WARNINGS)]
    assert other == []


def test_registration_is_cheap_and_idempotent() -> None:
    spec = gymnasium.spec(ID)
    assert spec.max_episode_steps is None  # the workcell truncates at its own max_steps
    assert spec.entry_point == gym_registration.WORKCELL_ENTRY_POINT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_registration.register_envs()
        importlib.reload(gym_registration).register_envs()
        importlib.reload(mtopt)
    assert gymnasium.spec(ID).entry_point == spec.entry_point
    code = "import sys, mtopt, gymnasium; gymnasium.spec('mtopt/Workcell-v0'); "
    code += "assert 'mujoco' not in sys.modules and 'mtopt.envs' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_state_env_passes_the_checker_with_the_documented_spaces() -> None:
    env = gymnasium.make(ID, task="lift-carrot", obs="state")
    _check(env)
    space = env.observation_space
    assert set(space.spaces) == {
        "state",
        "gripper_status",
        "gripper_height",
        "gripper_motion",
        "task",
    }
    assert space["state"].shape == (160,) and space["state"].dtype == np.float32
    assert space["task"] == gymnasium.spaces.Discrete(len(TASKS))
    np.testing.assert_array_equal(env.action_space.low, [-1, -1, -1, -1, 0, 0])
    obs, info = env.reset(seed=0)
    assert space.contains(obs)
    assert obs["task"] == TASKS.index("lift-carrot") and info["task"] == "lift-carrot"
    env.close()


@needs_osmesa
def test_image_env_passes_the_checker_and_renders() -> None:
    env = gymnasium.make(
        ID, task="place-bottom", obs="image", render_mode="rgb_array", image_size=32
    )
    _check(env)
    assert "state" not in env.observation_space.spaces
    assert env.observation_space["image"] == gymnasium.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    obs, _ = env.reset(seed=1)
    frame = env.render()
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, obs["image"])
    env.close()


def _rollout(env: gymnasium.Env, seed: int, steps: int) -> list:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        action = env.action_space.sample()
        action[5] = 0.0  # keep moving
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info["success"]))
    obs, _ = env.reset()  # the stream continues from the seed
    return [*out, obs]


def test_same_seed_same_episode() -> None:
    a = _rollout(gymnasium.make(ID, task="place-any"), seed=5, steps=4)
    b = _rollout(gymnasium.make(ID, task="place-any"), seed=5, steps=4)
    c = _rollout(gymnasium.make(ID, task="place-any"), seed=6, steps=0)
    assert gymnasium.utils.env_checker.data_equivalence(a, b)
    assert not np.array_equal(a[0]["state"], c[0]["state"])
    assert a[0]["gripper_status"][0] == 1.0  # a place task starts holding an object


def test_bad_arguments_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'lift-unicorn'; allowed: .*'lift-carrot'"):
        gymnasium.make(ID, task="lift-unicorn")
    with pytest.raises(ValueError, match=r"unknown task None; allowed"):
        WorkcellGymEnv()
    with pytest.raises(ValueError, match=r"obs must be one of \('state', 'image'\), got 'depth'"):
        gymnasium.make(ID, task="lift-any", obs="depth")
    with pytest.raises(
        ValueError, match=r"unknown workcell setting\(s\) \['colour'\]; allowed: .*'n_slots'"
    ):
        WorkcellGymEnv("lift-any", colour=1)
    with pytest.raises(ValueError, match=r"\['image'\] are set by obs='state'"):
        WorkcellGymEnv("lift-any", image=True)
    with pytest.raises(ValueError, match="'lift-cloth' needs a cloth"):
        WorkcellGymEnv("lift-cloth")
    with pytest.raises(ValueError, match="'sky'"):
        WorkcellGymEnv("lift-any", scene="sky")
    env = WorkcellGymEnv("lift-any")
    with pytest.raises(ValueError, match=r"\['task'\].*allowed"):
        env.reset(options={"task": "lift-can"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"terminate=2\.0"):
        env.step(np.array([0, 0, 0, 0, 0, 2], dtype=np.float32))
    WorkcellGymEnv("lift-cloth", cloths=1, max_objects=7).reset(seed=0)  # new tasks, with a cloth


def test_reward_is_the_tasks_success_on_the_final_step() -> None:
    """Aimed controllers on lift-any and place-any (some succeed) and random actions on
    lift-banana: the reward is 1 exactly on a final step whose success predicate holds, 0
    everywhere else."""
    seen = {0.0: 0, 1.0: 0}
    runs = (
        ("lift-any", AimedPickPolicy(), range(4)),
        ("place-any", AimedPlacePolicy(), range(3)),
        ("lift-banana", None, range(2)),
    )
    for task, policy, seeds in runs:
        env = gymnasium.make(ID, task=task)
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            if policy is not None:
                policy.reset(np.random.default_rng(seed), task=task)
            env.action_space.seed(seed)
            done = False
            while not done:
                action = env.action_space.sample() if policy is None else policy.act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                if not done:
                    assert reward == 0.0 and info["success"] is False
            truth = env.unwrapped.workcell.success_vector()[TASKS.index(task)]
            assert reward == float(info["success"]) == float(truth)
            seen[reward] += 1
        env.close()
    assert seen[1.0] >= 1 and seen[0.0] >= 1


def test_truncated_at_the_step_limit() -> None:
    for env, limit in (
        (gymnasium.make(ID, task="lift-any"), WorkcellConfig().max_steps),
        (gymnasium.make(ID, task="lift-any", max_steps=23), 23),  # longer than the default
        (WorkcellGymEnv("lift-any", max_steps=3), 3),
    ):
        env.reset(seed=0)
        hold = np.zeros(6, dtype=np.float32)  # never terminate
        for step in range(1, limit + 1):
            _, _, terminated, truncated, _ = env.step(hold)
            assert not terminated and truncated == (step == limit)


def test_vector_env_serves_all_tasks() -> None:
    n = len(EVALUATION_TASKS)
    envs = gymnasium.make_vec(ID, num_envs=n)
    assert envs.num_envs == n
    obs, info = envs.reset(seed=0)
    np.testing.assert_array_equal(obs["task"], np.arange(n))
    assert obs["state"].shape == (n, 160) and obs["state"].dtype == np.float32
    assert obs["gripper_status"].shape == (n, 1) and obs["gripper_motion"].shape == (n, 3)
    assert list(info["task"]) == list(EVALUATION_TASKS)
    envs.action_space.seed(0)
    ended = np.zeros(n, dtype=bool)
    for _ in range(3):
        action = envs.action_space.sample()
        obs, reward, terminated, truncated, info = envs.step(action)
        assert reward.shape == (n,) and obs["state"].shape == (n, 160)
        ended |= terminated | truncated
        np.testing.assert_array_equal(reward, info["success"].astype(float))
    assert ended.any()
    envs.close()


def test_vector_helper_cycles_through_chosen_tasks() -> None:
    envs = make_workcell_vector_env(4, tasks=["lift-any", "place-any"], max_episode_steps=5)
    obs, _ = envs.reset(seed=1)
    np.testing.assert_array_equal(obs["task"], [0, 8, 0, 8])
    assert all(e.unwrapped.config.max_steps == 5 for e in envs.envs)
    envs.close()
    with pytest.raises(ValueError, match=r"num_envs must be an integer >= the 12 task.*got 4"):
        make_workcell_vector_env(4)
    with pytest.raises(ValueError, match="'lift-unicorn'"):
        make_workcell_vector_env(tasks=["lift-unicorn"])
    one = gymnasium.make_vec(ID, num_envs=2, task="lift-carrot")
    np.testing.assert_array_equal(one.reset(seed=0)[0]["task"], [7, 7])
    one.close()
