"""Meta-World MT10 behind the environment interface (needs the ``metaworld`` package)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from mtopt.envs import EnvConfig
from mtopt.envs.metaworld import (
    BOOTSTRAP_NOISE,
    EXPERT_SCALE,
    GOALS,
    INSTALL_HINT,
    MetaWorldConfig,
    MetaWorldEnv,
    MetaWorldSpec,
    benchmark_tasks,
    task_skill,
)


def test_a_missing_metaworld_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld -> ImportError
    with pytest.raises(ImportError, match=r"metaworld==3\.1\.1") as err:
        EnvConfig(name="metaworld-mt10").spec()
    assert INSTALL_HINT in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("action_repeat", 0), ("action_repeat", 2.5), ("reserved_slots", -1), ("goal_seed", -3),
     ("scripted_noise", -0.1), ("scripted_random", 1.5), ("cached_tasks", 0)],
)  # fmt: skip
def test_config_validation_names_the_value(field, value):
    with pytest.raises(ValueError, match=field):
        MetaWorldConfig(**{field: value})


def test_skills_group_tasks_by_the_object_they_manipulate():
    assert task_skill("drawer-open-v3") == task_skill("drawer-close-v3") == "drawer"
    assert task_skill("window-open-v3") == task_skill("window-close-v3") == "window"
    assert task_skill("reach-v3") == "reach"
    assert MetaWorldConfig(action_repeat=10).horizon == 50
    assert MetaWorldConfig(action_repeat=3).horizon == 167


def test_bootstrap_noise_is_calibrated_per_task_unless_the_config_sets_it():
    assert MetaWorldConfig().bootstrap_noise("push-v3") == (0.3, 0.0)
    assert MetaWorldConfig().bootstrap_noise("drawer-close-v3") == (3.0, 1.0)
    assert MetaWorldConfig(scripted_noise=1.0).bootstrap_noise("push-v3") == (1.0, 0.0)
    both = MetaWorldConfig(scripted_noise=0.5, scripted_random=0.2)
    assert both.bootstrap_noise("push-v3") == both.bootstrap_noise("sweep-v3") == (0.5, 0.2)
    assert MetaWorldConfig().bootstrap_noise("sweep-v3") == (0.5, 0.1)  # an MT50 task
    with pytest.raises(ValueError, match="task 'new-task-v3' has no calibrated bootstrap noise"):
        MetaWorldConfig(scripted_noise=0.5).bootstrap_noise("new-task-v3")


def test_the_calibration_holds_only_at_its_action_repeat():
    repeat5 = MetaWorldConfig(action_repeat=5)
    with pytest.raises(ValueError, match="calibrated at action_repeat 10, not 5"):
        repeat5.bootstrap_noise("push-v3")
    explicit = MetaWorldConfig(action_repeat=5, scripted_noise=1.0, scripted_random=0.0)
    assert explicit.bootstrap_noise("push-v3") == (1.0, 0.0)
    for task, factor in EXPERT_SCALE.items():
        assert 0.0 < factor < 1.0
        assert MetaWorldConfig().expert_scale(task) == factor
        assert repeat5.expert_scale(task) == 1.0  # Meta-World's experts act unscaled
    assert MetaWorldConfig().expert_scale("reach-v3") == 1.0


needs_metaworld = pytest.mark.skipif(
    importlib.util.find_spec("metaworld") is None,
    reason=f"metaworld is not installed: {INSTALL_HINT}",
)


@pytest.fixture(scope="module")
def spec() -> MetaWorldSpec:
    return MetaWorldSpec(benchmark="mt10")


@pytest.fixture(scope="module")
def env(spec):
    env = spec.make_env()
    yield env
    env.close()


def _run(env, spec, policy, task, seed, options):
    obs, info = env.reset(seed=seed, options=options)
    policy.reset(np.random.default_rng(seed), task)
    states, done, steps = [obs["state"]], False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        states.append(obs["state"])
        done, steps = terminated or truncated, steps + 1
    return np.stack(states), reward, terminated, truncated, info


@needs_metaworld
def test_mt10_spec(spec):
    assert spec.name == "metaworld-mt10"
    assert spec.task_set.names == benchmark_tasks("mt10")
    assert len(spec.task_set) == 10 and spec.task_set.capacity == 16
    assert spec.observation.state_dim == 39 and spec.action.dim == 4
    assert spec.action.discrete_dims == () and spec.horizon == 50
    assert spec.describe()["env"] == "metaworld-mt10"
    with pytest.raises(ValueError, match="state observations only"):
        spec.make_env(image=True)


@needs_metaworld
def test_evaluation_attempt_k_starts_at_goal_k(spec, env):
    assert spec.reset_options("reach-v3", "evaluate", 53) == {"task": "reach-v3", "goal": 3}
    assert spec.reset_options("reach-v3", "collect") == {"task": "reach-v3"}
    goals = {}
    for k in (0, 1, GOALS):
        obs, info = env.reset(seed=k, options=spec.reset_options("reach-v3", "evaluate", k))
        goals[k] = obs["state"][-3:]
        assert info["goal"] == k % GOALS and env.task == "reach-v3"
    np.testing.assert_array_equal(goals[0], goals[GOALS])
    assert not np.allclose(goals[0], goals[1])


@needs_metaworld
def test_the_expert_succeeds_and_the_episode_ends_at_its_success(spec, env):
    policy, name = spec.expert_policy("reach-v3")
    assert name == "expert-metaworld"
    states, reward, terminated, truncated, info = _run(
        env, spec, policy, "reach-v3", 0, spec.reset_options("reach-v3", "evaluate", 0)
    )
    assert terminated and not truncated and reward == 1.0
    assert info["success"].tolist() == [t == "reach-v3" for t in spec.task_set.names]
    assert len(states) - 1 < spec.horizon
    assert info["metaworld_steps"] <= spec.config.action_repeat * (len(states) - 1)
    assert info["episode_extra"] == {"env_steps": info["metaworld_steps"]}  # for the log


@needs_metaworld
def test_without_terminate_on_success_episodes_run_all_500_steps():
    spec = MetaWorldSpec(config=MetaWorldConfig(terminate_on_success=False, action_repeat=25))
    env = spec.make_env()
    policy, _ = spec.expert_policy("reach-v3")
    states, reward, terminated, truncated, info = _run(
        env, spec, policy, "reach-v3", 0, {"task": "reach-v3", "goal": 0}
    )
    assert truncated and not terminated and len(states) - 1 == spec.horizon == 20
    assert info["metaworld_steps"] == 500 and reward == 1.0  # the flag was 1 at some step
    assert info["episode_extra"] == {"env_steps": 500}
    env.close()


@needs_metaworld
def test_task_environments_beyond_the_cache_are_closed_and_rebuilt_alike():
    small = MetaWorldEnv("mt10", MetaWorldConfig(cached_tasks=2))
    for task in ("reach-v3", "push-v3", "pick-place-v3"):
        small.reset(seed=1, options={"task": task, "goal": 3})
    assert list(small._envs) == ["push-v3", "pick-place-v3"]  # reach-v3's was closed
    fresh = MetaWorldEnv("mt10")
    runs = []
    for env in (small, fresh):  # reach-v3 rebuilt in `small`, built once in `fresh`
        obs, _ = env.reset(seed=5, options={"task": "reach-v3", "goal": 3})
        states = [obs["state"]]
        for k in range(3):
            states.append(env.step(np.full(4, 0.3 * (k - 1), np.float32))[0]["state"])
        runs.append(np.stack(states))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert list(small._envs) == ["pick-place-v3", "reach-v3"]
    small.close()
    fresh.close()


@needs_metaworld
def test_same_seed_same_noisy_bootstrap_episode(spec, env):
    runs = []
    for _ in range(2):
        policy, name = spec.scripted_policy("push-v3")
        runs.append(_run(env, spec, policy, "push-v3", 7, {"task": "push-v3"})[0])
    assert name == "scripted-noisy"
    np.testing.assert_array_equal(runs[0], runs[1])
    expert, _ = spec.expert_policy("push-v3")
    clean = _run(env, spec, expert, "push-v3", 7, {"task": "push-v3", "goal": env.goal})[0]
    assert not np.array_equal(clean[: len(runs[0])], runs[0][: len(clean)])


@needs_metaworld
@pytest.mark.parametrize(
    ("options", "match"),
    [({"task": "fly-v3"}, "unknown task 'fly-v3'"), ({"goal": 50}, r"goal must be in \[0, 50\)"),
     ({"goal": "3"}, "goal must be an integer"), ({"scene": 1}, r"unknown reset option\(s\)")],
)  # fmt: skip
def test_bad_reset_options_are_refused(env, options, match):
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)


@needs_metaworld
def test_bad_actions_and_finished_episodes_are_refused(env):
    env.reset(seed=0, options={"task": "reach-v3", "goal": 0})
    for bad in ([0.0, 0.0, 0.0], [0.0, np.nan, 0.0, 0.0]):
        with pytest.raises(ValueError, match="4 finite real numbers"):
            env.step(np.asarray(bad, dtype=np.float32))
    env.reset(seed=0, options={"task": "reach-v3", "goal": 0})
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.zeros(4, dtype=np.float32))
        done = terminated or truncated
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(4, dtype=np.float32))


@needs_metaworld
def test_the_expert_scale_multiplies_the_translation_command_only(env):
    from mtopt.envs.metaworld import NoisyExpertPolicy

    obs, _ = env.reset(seed=0, options={"task": "pick-place-v3", "goal": 3})
    full = NoisyExpertPolicy("pick-place-v3").act(obs)
    half = NoisyExpertPolicy("pick-place-v3", scale=0.5).act(obs)
    assert np.abs(full[:3]).max() > 0.05
    np.testing.assert_allclose(half[:3], 0.5 * full[:3], rtol=1e-6)
    assert half[3] == full[3]  # the gripper's effort is not scaled
    with pytest.raises(ValueError, match=r"scale must be in \(0, 1\], got 0"):
        NoisyExpertPolicy("pick-place-v3", scale=0)


@needs_metaworld
def test_every_mt50_task_has_a_calibrated_bootstrap():
    assert set(benchmark_tasks("mt50")) == set(BOOTSTRAP_NOISE)
    assert set(EXPERT_SCALE) <= set(BOOTSTRAP_NOISE) - set(benchmark_tasks("mt10"))
    for noise, random in BOOTSTRAP_NOISE.values():
        assert noise >= 0 and 0 <= random <= 1


@needs_metaworld
def test_a_checkpoint_is_refused_on_another_benchmark_or_action_repeat(spec):
    from mtopt.learning.checkpoint import check_checkpoint_env

    payload = {"env": spec.describe(), "task_names": list(spec.task_set.names)}
    check_checkpoint_env(payload, MetaWorldSpec(benchmark="mt10"), "c.pt")  # the same: accepted
    with pytest.raises(
        ValueError, match="trained on env 'metaworld-mt10', not on 'metaworld-mt50'"
    ):
        check_checkpoint_env(payload, MetaWorldSpec(benchmark="mt50"), "c.pt")
    repeat5 = MetaWorldSpec(config=MetaWorldConfig(action_repeat=5))
    with pytest.raises(ValueError, match="with action_repeat 10; this env has action_repeat 5"):
        check_checkpoint_env(payload, repeat5, "c.pt")


@needs_metaworld
def test_a_fleet_at_an_uncalibrated_action_repeat_is_refused_before_it_starts(tmp_path):
    from mtopt.system.fleet import FleetConfig, collect

    cfg = FleetConfig(out=str(tmp_path / "log"), episodes=1, progress=False)
    repeat5 = MetaWorldConfig(action_repeat=5)
    with pytest.raises(ValueError, match="calibrated at action_repeat 10, not 5"):
        collect(cfg, MetaWorldSpec(benchmark="mt50", config=repeat5))
    assert not (tmp_path / "log").exists()  # no process started, nothing written
    noisy = MetaWorldConfig(action_repeat=5, scripted_noise=1.0, scripted_random=0.1)
    cfg.check_tasks(MetaWorldSpec(benchmark="mt50", config=noisy))  # both set: accepted
