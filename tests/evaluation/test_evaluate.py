"""``mtopt eval`` configuration reaches the evaluated policy (mtopt.evaluation.evaluate)."""

import pytest

from mtopt.envs import make_spec
from mtopt.evaluation.evaluate import EvalConfig, run_eval
from mtopt.learning.cem import CEMConfig
from mtopt.policies import PolicyConfig, q_policy


class _LoadedError(Exception):
    pass


def test_the_eval_policy_config_reaches_the_policy(monkeypatch):
    seen = {}

    def fake_load(checkpoint, spec, policy=None):
        seen.update(checkpoint=checkpoint, env=spec.name, policy=policy)
        raise _LoadedError

    monkeypatch.setattr(q_policy, "load_q_policy", fake_load)
    finer = PolicyConfig(epsilon=0.1, cem=CEMConfig(iterations=3, num_samples=128, num_elites=12))
    with pytest.raises(_LoadedError):
        run_eval(EvalConfig(checkpoint="ckpt.pt", policy=finer), make_spec("pointmass"))
    assert seen == {"checkpoint": "ckpt.pt", "env": "pointmass", "policy": finer}


def test_eval_defaults_to_a_greedy_policy_with_qt_opt_cem():
    policy = EvalConfig(checkpoint="c.pt").policy
    cem = policy.cem
    assert policy.epsilon == 0.0
    assert (cem.iterations, cem.num_samples, cem.num_elites) == (2, 64, 6)


def test_eval_refuses_a_task_of_another_env():
    with pytest.raises(ValueError, match="unknown task name"):
        run_eval(EvalConfig(scripted=True, tasks=("lift-any",)), make_spec("pointmass"))
