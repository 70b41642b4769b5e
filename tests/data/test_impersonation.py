from types import SimpleNamespace

import numpy as np
import pytest

from mtopt.data.impersonation import Impersonation, ImpersonationConfig, OracleLabeller
from mtopt.envs.workcell_tasks import workcell_task_set

TS = workcell_task_set()


def _episode(successes: set[str]):
    return SimpleNamespace(
        success_tasks=TS.names, success=np.array([t in successes for t in TS.names])
    )


def _imp(kind, p_s=1.0, p_f=1.0, seed=0):
    cfg = ImpersonationConfig(kind=kind, p_success=p_s, p_failure=p_f)
    return Impersonation(cfg, TS, OracleLabeller(), np.random.default_rng(seed))


def test_orig_routes_only_to_own_task():
    ep = _episode({"lift-any", "lift-can"})
    assert _imp("orig")(ep, "lift-can") == [("lift-can", True)]
    assert _imp("orig")(ep, "place-any") == [("place-any", False)]


def test_all_routes_to_every_task_with_labels():
    ep = _episode({"lift-any", "lift-can"})
    routed = dict(_imp("all")(ep, "lift-any"))
    assert set(routed) == set(TS.names)
    assert routed["lift-any"] and routed["lift-can"] and not routed["lift-box"]
    assert not routed["place-any"]


def test_skill_routes_within_skill_only():
    ep = _episode({"lift-any", "lift-box"})
    routed = _imp("skill")(ep, "lift-any")
    assert [t for t, _ in routed] == list(TS.names[:8])
    assert dict(routed)["lift-box"] is True and dict(routed)["lift-milk"] is False
    place = _imp("skill")(_episode({"place-any", "place-bottom"}), "place-top-left")
    assert next(t for t, _ in place) == "place-top-left"
    assert {t for t, _ in place} == set(TS.names[8:])


def test_skill_keeps_failures_with_probability_p_f_and_own_task_always():
    imp = _imp("skill", p_s=1.0, p_f=0.15, seed=1)
    ep = _episode({"lift-any", "lift-can"})  # lift-any, lift-can succeed; 6 other lifts fail
    kept_fail = 0
    trials = 4000
    for _ in range(trials):
        routed = dict(imp(ep, "lift-any"))
        assert routed["lift-any"] is True and routed["lift-can"] is True
        kept_fail += sum(1 for t, ok in routed.items() if not ok)
    frac = kept_fail / (6 * trials)
    assert abs(frac - 0.15) < 0.01
    # own task kept even when it failed and p_f = 0
    imp0 = _imp("skill", p_s=1.0, p_f=0.0)
    assert imp0(_episode(set()), "lift-box") == [("lift-box", False)]


def test_skill_probabilities_are_seeded():
    ep = _episode({"lift-any"})
    a = [_imp("skill", 0.5, 0.5, seed=3)(ep, "lift-any") for _ in range(1)]
    b = [_imp("skill", 0.5, 0.5, seed=3)(ep, "lift-any") for _ in range(1)]
    assert a == b


def test_bad_config_and_tasks():
    with pytest.raises(ValueError, match="p_failure must be in"):
        ImpersonationConfig(kind="skill", p_failure=1.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        ImpersonationConfig(kind="cds-ish")
    with pytest.raises(ValueError, match="not in the task set"):
        _imp("orig")(_episode(set()), "lift-cloth")
    assert ImpersonationConfig(kind="skill", p_failure=0.15).name == "skill-1-0.15"


def test_skill_keeps_successes_with_probability_p_s_and_seeds_differ():
    ep = _episode({"place-any", "place-bottom"})  # for place-top-left: 2 successes, 1 failure
    imp = _imp("skill", p_s=0.3, p_f=1.0, seed=7)
    kept = {"place-any": 0, "place-bottom": 0, "place-top-right": 0}
    trials = 3000
    for _ in range(trials):
        routed = dict(imp(ep, "place-top-left"))
        assert routed["place-top-left"] is False  # own task always, with its label
        for t in kept:
            kept[t] += t in routed
    assert kept["place-top-right"] == trials  # failures kept with p_f = 1
    assert abs(kept["place-any"] / trials - 0.3) < 0.03
    assert abs(kept["place-bottom"] / trials - 0.3) < 0.03
    draws = [[_imp("skill", 0.5, 0.5, seed=s)(ep, "place-any") for _ in range(20)] for s in (1, 2)]
    assert draws[0] != draws[1]


def test_cds_routes_to_every_task_with_labels_and_names_its_percentile():
    ep = _episode({"lift-any", "lift-can"})
    imp = Impersonation(
        ImpersonationConfig(kind="cds", percentile=90.0),
        TS,
        OracleLabeller(),
        np.random.default_rng(0),
    )
    routed = imp(ep, "lift-can")
    assert routed[0] == ("lift-can", True)
    assert dict(routed) == dict(_imp("all")(ep, "lift-can"))
    assert imp.config.name == "cds-90" and imp.config.cds_percentile == 90.0
    assert ImpersonationConfig(kind="skill").cds_percentile is None
    with pytest.raises(ValueError, match=r"percentile.*120"):
        ImpersonationConfig(kind="cds", percentile=120.0)
