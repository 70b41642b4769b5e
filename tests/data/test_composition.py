"""Dataset composition: collected counts by policy kind and episodes routed by impersonation."""

import numpy as np
from fakes import TASK_SET, make_fake_episode

from mtopt.data.composition import (
    dataset_composition,
    format_composition_table,
    plot_composition,
    policy_kind,
)
from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter


def _episode(rng, task, successes, policy="scripted-pick", epsilon=0.0):
    ep = make_fake_episode(rng, task=task, policy=policy, epsilon=epsilon, num_steps=3)
    ep.success = np.array([t in successes for t in TASK_SET.names])
    return ep


def _write(path, episodes):
    with EpisodeLogWriter(path, 0, EpisodeLogConfig(shard_episodes=4, fsync=False)) as w:
        for e in episodes:
            w.append(e)


def test_policy_kinds():
    assert policy_kind("scripted-place", 0.0) == "scripted"
    assert policy_kind("checkpoint:x@10", 0.2) == "ε-greedy"
    assert policy_kind("checkpoint:x@10", 0.0) == "greedy"


def test_collected_and_routed_counts_hand_computed(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        _episode(rng, "lift-any", {"lift-any", "lift-carrot"}),
        _episode(rng, "lift-any", {"lift-any", "lift-can"}, "checkpoint:p@5", 0.2),
        _episode(rng, "lift-any", set()),
        _episode(rng, "lift-box", set()),
        _episode(rng, "place-any", {"place-any", "place-bottom"}, "scripted-place"),
    ]
    _write(tmp_path, episodes)
    comp = dataset_composition(tmp_path, TASK_SET)
    assert comp["episodes"] == 5
    lift_any = comp["tasks"]["lift-any"]
    assert lift_any["episodes"] == 3 and lift_any["successes"] == 2
    assert lift_any["by_policy_kind"]["scripted"] == {"episodes": 2, "successes": 1}
    assert lift_any["by_policy_kind"]["ε-greedy"] == {"episodes": 1, "successes": 1}
    assert comp["tasks"]["lift-carrot"]["episodes"] == 0
    orig = comp["impersonation"]["orig"]
    assert orig["lift-carrot"] == {"episodes": 0, "successes": 0}
    assert orig["lift-any"] == {"episodes": 3, "successes": 2}
    skill = comp["impersonation"]["skill-1-1"]
    # the 4 lift episodes reach every lift task; the carrot success is gained from lift-any
    assert skill["lift-carrot"] == {"episodes": 4, "successes": 1}
    assert skill["lift-can"] == {"episodes": 4, "successes": 1}
    assert skill["place-bottom"] == {"episodes": 1, "successes": 1}
    every = comp["impersonation"]["all"]
    assert every["place-bottom"] == {"episodes": 5, "successes": 1}
    assert every["lift-carrot"] == {"episodes": 5, "successes": 1}
    # f_skill(1, 0.15): own episodes and impersonated successes are always kept
    low = comp["impersonation"]["skill-1-0.15"]
    assert low["lift-carrot"]["successes"] == 1 and low["lift-any"]["episodes"] == 3
    assert 1 <= low["lift-carrot"]["episodes"] <= 4
    text = format_composition_table(comp)
    assert "lift-carrot" in text and "S:skill-1-1" in text
    plot_composition(comp, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_stochastic_impersonation_is_seeded_and_follows_p_failure(tmp_path):
    rng = np.random.default_rng(1)
    _write(tmp_path, [_episode(rng, "lift-any", set()) for _ in range(300)])
    cfg = (ImpersonationConfig(kind="skill", p_success=1.0, p_failure=0.15),)
    a = dataset_composition(tmp_path, TASK_SET, cfg, seed=3)["impersonation"]["skill-1-0.15"]
    b = dataset_composition(tmp_path, TASK_SET, cfg, seed=3)["impersonation"]["skill-1-0.15"]
    assert a == b
    kept = sum(a[f"lift-{c}"]["episodes"] for c in ("banana", "carrot", "milk", "box"))
    assert abs(kept / (4 * 300) - 0.15) < 0.04
