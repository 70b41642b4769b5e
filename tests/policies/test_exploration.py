"""Exploration noise around a bootstrap policy: the random action, the noisy wrapper, and the
choice of a robot's bootstrap policy (with clear errors for bad values)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mtopt.envs import make_spec
from mtopt.policies.exploration import NoisyPolicy, bootstrap_policy, uniform_random_action
from mtopt.spec import ActionSpec

SPEC = ActionSpec((-1.0, 0.0, 0.0), (1.0, 2.0, 1.0), discrete_dims=(2,), terminate_dim=2)
OBS = {"state": np.zeros(3, np.float32)}


class Counter:
    """A base policy whose actions count its steps and which draws from its generator."""

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        self.rng, self.t = rng, 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.t += 1
        return np.array([0.01 * self.t, self.rng.random(), 1.0], np.float32)


def _actions(policy, seed: int, n: int = 200) -> np.ndarray:
    policy.reset(np.random.default_rng(seed), task="x")
    return np.stack([policy.act(OBS) for _ in range(n)])


def test_uniform_random_action_draws_each_dim_in_order():
    a = uniform_random_action(SPEC, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    expected = rng.uniform(SPEC.low, SPEC.high).astype(np.float32)
    expected[2] = 1.0 if rng.random() < 0.5 else 0.0
    np.testing.assert_array_equal(a, expected)
    many = np.stack([uniform_random_action(SPEC, rng) for _ in range(500)])
    assert many.dtype == np.float32 and set(np.unique(many[:, 2])) == {0.0, 1.0}
    assert many[:, 0].min() >= -1 and many[:, 1].max() <= 2 and 0.8 < many[:, 1].mean() < 1.2


def test_zero_noise_reproduces_the_base_policy():
    base = _actions(Counter(), 7)
    np.testing.assert_array_equal(_actions(NoisyPolicy(Counter(), SPEC, 0.0), 7), base)


def test_noise_is_seeded_and_leaves_the_base_policy_its_generator():
    base = _actions(Counter(), 7)
    a = _actions(NoisyPolicy(Counter(), SPEC, 0.3), 7)
    np.testing.assert_array_equal(a, _actions(NoisyPolicy(Counter(), SPEC, 0.3), 7))
    kept = np.all(a == base, axis=1)
    assert 0.6 < kept.mean() < 0.8  # about 70 % of the steps are the base policy's
    # the base policy's own draws are the same as without noise, step for step
    assert np.array_equal(a[kept], base[kept])
    assert not np.array_equal(a, _actions(NoisyPolicy(Counter(), SPEC, 0.3), 8))


def test_motion_noise_keeps_the_discrete_choices():
    base = _actions(Counter(), 1)
    every = _actions(NoisyPolicy(Counter(), SPEC, 1.0, "motion"), 1)
    np.testing.assert_array_equal(every[:, 2], base[:, 2])
    assert not np.any(np.all(every[:, :2] == base[:, :2], axis=1))
    uniform = _actions(NoisyPolicy(Counter(), SPEC, 1.0, "all"), 1)
    assert 0.4 < uniform[:, 2].mean() < 0.6  # a fair coin, whatever the base policy says


def test_bootstrap_policy_names_and_epsilon():
    workcell = make_spec("workcell")
    _, name, eps = bootstrap_policy(workcell, "lift-carrot")
    assert (name, eps) == ("scripted-pick", 0.0)
    policy, name, eps = bootstrap_policy(workcell, "lift-carrot", "expert", 0.25)
    assert (name, eps) == ("expert-aimed-pick", 0.25) and isinstance(policy, NoisyPolicy)
    assert bootstrap_policy(workcell, "place-top-left", "expert")[1:] == ("expert-aimed-place", 0)


@pytest.mark.parametrize(
    "kind, noise, env, message",
    [
        ("expertise", 0.0, "workcell", "bootstrap must be one of ('scripted', 'expert'), got 'exp"),
        ("expert", 1.5, "workcell", "expert_noise must be a number in [0, 1], got 1.5"),
        ("expert", -0.1, "workcell", "expert_noise must be a number in [0, 1], got -0.1"),
        ("scripted", 0.2, "workcell", "expert_noise 0.2 applies to bootstrap 'expert' only"),
        ("expert", 0.0, "pointmass", "environment 'pointmass' has no expert policy"),
    ],
)
def test_bad_values_are_named(kind, noise, env, message):
    spec = make_spec(env)
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_policy(spec, spec.task_set.names[0], kind, noise)
    with pytest.raises(ValueError, match="exploration must be one of"):
        NoisyPolicy(Counter(), SPEC, 0.1, "some")  # type: ignore[arg-type]
