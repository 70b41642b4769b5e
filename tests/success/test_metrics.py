"""Table 3 metrics on a hand-made confusion case."""

import math

import numpy as np

from mtopt.success.metrics import format_table3, table3, worst_rates

NAMES = ("lift-any", "lift-carrot")


def test_table3_by_hand():
    # primary 0 (lift-any): 4 examples, 2 successes; the detector misses one success (FN 1/2)
    # and calls one failure a success (FP 1/2).
    # primary 1 (lift-carrot): 5 examples, 1 success caught, 4 failures, no FP.
    # lift-carrot's output on lift-any's examples (other task): labels 1, 0, 0, -1 -> one
    # success missed (other FN 1/1), one failure called success (other FP 1/2).
    labels = np.array(
        [[1, 1], [1, 0], [0, 0], [0, -1], [1, 1], [0, 0], [0, 0], [1, 0], [-1, 0]], dtype=np.int8
    )
    pred = np.array(
        [[1, 0], [0, 1], [1, 0], [0, 0], [1, 1], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=bool
    )
    primary = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    result = table3(pred, labels, primary, NAMES)
    a, c = result["tasks"]["lift-any"], result["tasks"]["lift-carrot"]
    assert (a["count"], a["successes"], a["success_rate"]) == (4, 2, 0.5)
    assert (a["fn_rate"], a["fp_rate"]) == (0.5, 0.5)
    # lift-any's output on lift-carrot's examples: labels 1,0,0,1,(-1) -> all right
    assert (a["other_count"], a["other_fn_rate"], a["other_fp_rate"]) == (4, 0.0, 0.0)
    assert (c["count"], c["successes"], c["fn_rate"], c["fp_rate"]) == (5, 1, 0.0, 0.0)
    assert c["other_count"] == 3
    assert (c["other_fn_rate"], c["other_fp_rate"]) == (1.0, 0.5)
    overall = result["overall"]
    assert (overall["count"], overall["successes"]) == (9, 3)
    assert overall["fn_rate"] == 1 / 3 and overall["fp_rate"] == 1 / 6
    assert worst_rates(result) == {
        "fn_rate": 0.5,
        "fp_rate": 0.5,
        "other_fn_rate": 1.0,
        "other_fp_rate": 0.5,
    }
    text = format_table3(result)
    assert "lift-carrot" in text and "50.0%" in text and "overall" in text


def test_empty_denominators_are_nan_and_shown_as_dash():
    labels = np.array([[0], [0]], dtype=np.int8)
    result = table3(np.zeros((2, 1), bool), labels, np.zeros(2, int), ("lift-any",))
    row = result["tasks"]["lift-any"]
    assert math.isnan(row["fn_rate"]) and row["fp_rate"] == 0.0
    assert math.isnan(row["other_fp_rate"])
    assert " -" in format_table3(result)
