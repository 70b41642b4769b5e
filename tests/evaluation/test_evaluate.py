"""``mtopt eval`` configuration reaches the evaluated policy (mtopt.evaluation.evaluate)."""

import pytest

from mtopt.evaluation.evaluate import EvalConfig, run_eval
from mtopt.learning.cem import CEMConfig
from mtopt.policies import q_policy


class _LoadedError(Exception):
    pass


def test_the_eval_cem_config_is_the_policy_cem(monkeypatch):
    seen = {}

    def fake_load(checkpoint, epsilon=0.0, device="auto", cem=None, exploration="all"):
        seen.update(checkpoint=checkpoint, epsilon=epsilon, cem=cem)
        raise _LoadedError

    monkeypatch.setattr(q_policy, "load_q_policy", fake_load)
    finer = CEMConfig(iterations=3, num_samples=128, num_elites=12)
    with pytest.raises(_LoadedError):
        run_eval(EvalConfig(checkpoint="ckpt.pt", cem=finer, epsilon=0.1))
    assert seen == {"checkpoint": "ckpt.pt", "epsilon": 0.1, "cem": finer}


def test_eval_defaults_to_qt_opt_cem():
    cem = EvalConfig(checkpoint="c.pt").cem
    assert (cem.iterations, cem.num_samples, cem.num_elites) == (2, 64, 6)
