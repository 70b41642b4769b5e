"""Statistics across seeds, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from mtopt.evaluation.seeds import compare_to_baseline, pooled_interval, seed_interval


def test_seed_interval_is_the_student_t_interval():
    # mean 0.6, sd 0.1 (n - 1 dof), t_{0.975, 2} = 4.302653: half = 4.302653 * 0.1 / sqrt(3)
    r = seed_interval([0.5, 0.6, 0.7])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert r["mean"] == pytest.approx(0.6)
    assert r["sd"] == pytest.approx(0.1)
    assert r["lo"] == pytest.approx(0.6 - half) and r["hi"] == pytest.approx(0.6 + half)
    assert r["spread"] == pytest.approx(0.2) and r["n"] == 3


def test_seed_interval_is_clipped_and_one_seed_has_none():
    assert seed_interval([0.0, 0.1, 0.0])["lo"] == 0.0
    one = seed_interval([0.4])
    assert one["mean"] == 0.4 and math.isnan(one["lo"]) and one["spread"] == 0.0
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        seed_interval([0.5, 1.5])
    with pytest.raises(ValueError, match="none"):
        seed_interval([])


def test_pooled_interval_pools_attempts():
    r = pooled_interval([40, 60], [100, 100])
    assert r["rate"] == 0.5 and r["attempts"] == 200
    # Wilson, z = 1.96, n = 200, p = 0.5: centre 0.5, half 1.96 * 0.035693 / 1.019207 = 0.068639
    assert r["lo"] == pytest.approx(0.431361, abs=1e-5)
    assert r["hi"] == pytest.approx(0.568639, abs=1e-5)


def test_compare_to_baseline_needs_more_than_the_seed_spread():
    better = compare_to_baseline([0.5, 0.6, 0.7], [0.9, 0.95, 1.0])
    assert better["diff"] == pytest.approx(0.35) and better["beyond_spread"] == 1
    assert better["baseline_spread"] == pytest.approx(0.2)
    assert better["variant_spread"] == pytest.approx(0.1)
    # better on average by 0.15, but the seeds spread by 0.2: noise
    assert compare_to_baseline([0.5, 0.6, 0.7], [0.7, 0.75, 0.8])["beyond_spread"] == 0
    assert compare_to_baseline([0.5, 0.6, 0.7], [0.1, 0.15, 0.2])["beyond_spread"] == -1
