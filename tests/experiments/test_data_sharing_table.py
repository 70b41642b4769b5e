"""Table 4 layout from hand-made numbers: summary rows, low-data tasks, Markdown, plot."""

import numpy as np
import pytest

from mtopt.experiments.data_sharing_table import (
    build_table,
    format_markdown,
    format_seed_markdown,
    plot_table,
    seed_table,
)

TASKS = ["a", "b", "c", "d"]
COUNTS = {"a": 1000, "b": 10, "c": 50, "d": 5}


def _result(rates, attempts=10):
    return {
        "tasks": {
            t: {"success_rate": r, "episodes": attempts, "successes": round(r * attempts)}
            for t, r in zip(TASKS, rates, strict=True)
        },
        "summary": {"mean": -1.0},  # stale summaries are recomputed, not copied
        "training": {
            "steps": 100,
            "batch_size": 8,
            "wall_time_s": 12.0,
            "steps_per_s": 8.3,
            "samples_per_s": 66.4,
        },
        "eval_wall_time_s": 3.0,
    }


def test_summary_rows_and_low_data_tasks_hand_computed():
    table = build_table(
        {"x": _result([0.9, 0.1, 0.3, 0.0]), "y": _result([0.5, 0.5, 0.4, 0.2])},
        COUNTS,
        low_data_k=2,
    )
    assert table["tasks"] == TASKS
    assert table["low_data_tasks"] == ["d", "b"]  # the 2 tasks with the fewest episodes
    x = table["strategies"]["x"]["summary"]
    # sorted rates 0.0 0.1 0.3 0.9: p25 = 0.075, median = 0.2, p75 = 0.45 (linear)
    assert x["min"] == 0.0 and x["max"] == 0.9
    assert x["mean"] == pytest.approx(1.3 / 4)
    assert x["p25"] == pytest.approx(0.075) and x["median"] == pytest.approx(0.2)
    assert x["p75"] == pytest.approx(0.45)
    assert x["mean_low_data"] == pytest.approx((0.0 + 0.1) / 2)
    assert table["strategies"]["y"]["summary"]["mean_low_data"] == pytest.approx(0.35)
    entry = table["strategies"]["x"]["tasks"]["a"]
    assert entry["success_rate"] == 0.9 and entry["episodes"] == 10
    assert table["strategies"]["x"]["training"]["steps"] == 100


def test_markdown_layout_and_bold_best():
    table = build_table(
        {"x": _result([0.9, 0.1, 0.3, 0.0]), "skill-1-1-rebalanced": _result([0.5] * 4)},
        COUNTS,
        low_data_k=2,
    )
    md = format_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "| task | #eps | x | skill-1-1-rebalanced |"
    assert lines[2] == "| a | 1000 | **0.90** | 0.50 |"
    assert lines[3] == "| b (low data) | 10 | 0.10 | **0.50** |"
    labels = [ln.split("|")[1].strip() for ln in lines[6:13]]
    assert labels == [
        "Min",
        "25th percentile",
        "Median",
        "Mean",
        "75th percentile",
        "Max",
        "Mean (low data)",
    ]
    assert "| Mean (low data) |  | 0.05 | **0.50** |" in lines
    assert "| skill-1-1-rebalanced | 0.50 | 0.50 | 0.58 | 0.50 |" in lines  # paper beside
    assert "| x | 100 | 8 | 12 | 8.3 | 66 | 3 |" in lines


def test_plot_writes_png(tmp_path):
    table = build_table({"x": _result([0.9, 0.1, 0.3, 0.0])}, COUNTS, low_data_k=2)
    plot_table(table, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_mismatched_tasks_and_missing_counts_are_refused():
    bad = _result([0.1] * 4)
    bad["tasks"].pop("d")
    with pytest.raises(ValueError, match="evaluated on tasks"):
        build_table({"x": _result([0.1] * 4), "y": bad}, COUNTS)
    with pytest.raises(ValueError, match="no collected-episode count"):
        build_table({"x": _result([0.1] * 4)}, {"a": 1})
    with pytest.raises(ValueError, match="no strategy results"):
        build_table({}, COUNTS)
    assert np.isnan(
        build_table({"x": _result([0.1] * 4)}, COUNTS, 6)["strategies"]["x"]["summary"][
            "mean_low_data"
        ]
    )


def test_seeds_combine_into_means_with_intervals_and_a_ranking():
    tables = {
        s: build_table({"x": _result(x), "y": _result(y)}, COUNTS, low_data_k=2)
        for s, (x, y) in enumerate(
            [
                ([0.2, 0.0, 0.2, 0.0], [0.4, 0.2, 0.4, 0.2]),
                ([0.4, 0.2, 0.4, 0.2], [0.6, 0.4, 0.6, 0.4]),
                ([0.3, 0.1, 0.3, 0.1], [0.5, 0.3, 0.5, 0.3]),
            ]
        )
    }
    combined = seed_table(tables)
    x, y = combined["strategies"]["x"], combined["strategies"]["y"]
    assert x["per_seed_mean"] == pytest.approx([0.1, 0.3, 0.2])
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.3027: half width 0.2484
    assert x["mean"]["mean"] == pytest.approx(0.2)
    assert (x["mean"]["lo"], x["mean"]["hi"]) == (0.0, pytest.approx(0.4484, abs=1e-4))
    assert y["mean_low_data"]["mean"] == pytest.approx(0.3)  # tasks d and b
    assert x["tasks"]["a"] == pytest.approx(0.3)
    assert combined["ranking"] == ["y", "x"]
    text = format_seed_markdown(combined)
    assert "| 1 | y | 0.40 [0.15, 0.65] | 0.30 [0.05, 0.55] | 0.30 / 0.50 / 0.40 |" in text
    other = dict(tables)
    other[3] = build_table({"x": _result([0.1] * 4)}, COUNTS, low_data_k=2)
    with pytest.raises(ValueError, match="seed 3's table has other strategies"):
        seed_table(other)
