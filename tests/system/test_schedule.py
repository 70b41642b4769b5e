"""The collection schedule: scripted until the learned policy beats it, per task."""

import pytest

from mtopt.system.schedule import (
    CollectionSchedule,
    OutcomeStats,
    ScheduleConfig,
    learned_beats_scripted,
    merge_counts,
    wilson_lower_bound,
)


def test_wilson_lower_bound_hand_computed():
    # p = 0.8, n = 10, z = 1: (0.85 - sqrt(0.016 + 0.0025)) / 1.1
    assert wilson_lower_bound(8, 10, 1.0) == pytest.approx(0.649078, abs=1e-6)
    assert wilson_lower_bound(3, 10, 0.0) == pytest.approx(0.3)
    assert wilson_lower_bound(0, 0, 1.0) == 0.0
    assert wilson_lower_bound(0, 5, 1.0) == 0.0


def test_learned_beats_scripted_needs_data_and_a_margin():
    assert not learned_beats_scripted((9, 10), (1, 10), min_episodes=20, z=0.0)  # too few
    assert learned_beats_scripted((16, 20), (10, 20), min_episodes=20, z=1.0)
    # 11/20 vs 10/20: better point estimate, but not by one standard error
    assert learned_beats_scripted((11, 20), (10, 20), min_episodes=20, z=0.0)
    assert not learned_beats_scripted((11, 20), (10, 20), min_episodes=20, z=1.0)
    assert not learned_beats_scripted((10, 20), (10, 20), min_episodes=20, z=0.0)  # strictly


def test_outcomes_window_and_merge():
    stats = OutcomeStats(["lift-any", "place-any"], window=3)
    for ok in (True, True, False, False):
        stats.add("lift-any", "checkpoint:run@10", ok)
    stats.add("lift-any", "scripted-pick", True)
    stats.add("lift-any", "scripted-pick", False)
    stats.add("unknown-task", "scripted-pick", True)  # ignored
    c = stats.counts()
    assert c["lift-any"] == {"scripted": (1, 2), "learned": (1, 3)}  # newest 3: T, F, F
    assert c["place-any"] == {"scripted": (0, 0), "learned": (0, 0)}
    merged = merge_counts([c, c])
    assert merged["lift-any"] == {"scripted": (2, 4), "learned": (2, 6)}


def test_schedule_switches_per_task_and_stays():
    sched = CollectionSchedule(ScheduleConfig(min_episodes=4, z=0.0), ["lift-any", "place-any"])
    counts = {
        "lift-any": {"scripted": (1, 4), "learned": (3, 4)},
        "place-any": {"scripted": (3, 4), "learned": (1, 4)},
    }
    assert sched.update(counts) == ["lift-any"]
    assert sched.state()["learned_tasks"] == ["lift-any"]
    counts["lift-any"] = {"scripted": (4, 4), "learned": (0, 4)}  # worse now: stays learned
    assert sched.update(counts) == []
    assert sched.learned_tasks == {"lift-any"}


def test_schedule_config_rejects_bad_values():
    with pytest.raises(ValueError, match="probe"):
        ScheduleConfig(probe=1.5)
    with pytest.raises(ValueError, match="window"):
        ScheduleConfig(window=0)
