import math

import pytest

from mtopt.evaluation.summary import (
    compare_policies,
    low_data_tasks,
    summarize,
    wilson_interval,
)


def test_wilson_interval_hand_computed():
    # p = 0.5, n = 100, z = 1.96: centre = (0.5 + 0.019208) / 1.038415 = 0.5
    lo, hi = wilson_interval(50, 100)
    half = (
        1.959963984540054
        * math.sqrt(0.25 / 100 + 1.959963984540054**2 / 40000)
        / (1 + 1.959963984540054**2 / 100)
    )
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo0, hi0 = wilson_interval(0, 100)
    assert lo0 == pytest.approx(0.0, abs=1e-12) and hi0 == pytest.approx(0.0370, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(5, 4)


def test_summary_rows_hand_computed():
    rates = {"a": 0.1, "b": 0.2, "c": 0.4, "d": 0.9}
    s = summarize(rates, low_data=["a", "b"])
    assert s["min"] == 0.1 and s["max"] == 0.9
    assert s["median"] == pytest.approx(0.3)
    assert s["mean"] == pytest.approx(0.4)
    # linear interpolation: p25 at position 0.75 between 0.1 and 0.2
    assert s["p25"] == pytest.approx(0.175)
    assert s["p75"] == pytest.approx(0.525)
    assert s["mean_low_data"] == pytest.approx(0.15)
    assert math.isnan(summarize(rates)["mean_low_data"])
    with pytest.raises(ValueError, match="no success rate"):
        summarize(rates, low_data=["z"])


def test_low_data_tasks_picks_fewest_episodes():
    counts = {"lift-any": 1000, "lift-can": 5, "lift-box": 5, "place-any": 300, "x": 7}
    assert low_data_tasks(counts, k=3) == ["lift-box", "lift-can", "x"]


def test_plot_handles_zero_and_full_success(tmp_path):
    from mtopt.evaluation.protocol import plot_success

    def result(rates):
        tasks = {}
        for t, (k, n) in rates.items():
            tasks[t] = {"success_rate": k / n, "episodes": n, "ci95": list(wilson_interval(k, n))}
        return {"tasks": tasks}

    res = {
        "a": result({"lift-any": (0, 100), "place-any": (100, 100)}),
        "b": result({"lift-any": (37, 100), "place-any": (3, 100)}),
    }
    plot_success(res, str(tmp_path / "p.png"), title="t")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def _result(rates: dict[str, tuple[float, float, float]]) -> dict:
    return {"tasks": {t: {"success_rate": r, "ci95": [lo, hi]} for t, (r, lo, hi) in rates.items()}}


def test_compare_policies_sorts_tasks_by_non_overlapping_intervals():
    learned = _result({"a": (0.8, 0.6, 0.9), "b": (0.3, 0.2, 0.5), "c": (0.1, 0.0, 0.2)})
    scripted = _result({"a": (0.2, 0.1, 0.4), "b": (0.4, 0.3, 0.6), "c": (0.6, 0.4, 0.7)})
    text = compare_policies(learned, scripted, ("MT-Opt", "scripted"))
    # a: 0.6 > 0.4 better; b: intervals overlap, level; c: 0.2 < 0.4 worse; means 0.40, 0.40
    assert text.splitlines() == [
        "MT-Opt against scripted on the same scenes: mean success 0.40 against 0.40; better "
        "beyond the 95 % intervals on 1 of 3 tasks, level within them on 1, worse on 1.",
        "  better: a",
        "  level: b",
        "  worse: c",
    ]
    with pytest.raises(ValueError, match="different tasks"):
        compare_policies(learned, _result({"a": (0.1, 0.0, 0.2)}), ("x", "y"))
