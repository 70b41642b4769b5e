"""Success-detector error rates in the layout of paper Table 3.

For every task A (the *primary* SD of a row):

* ``count``, ``successes``, ``success_rate``: held-out examples whose primary task is A (the
  episodes collected for A, or outcome examples shown for A) and that have a label for A;
* ``fn_rate``: fraction of those successes the detector calls failures (FN / successes);
* ``fp_rate``: fraction of those failures the detector calls successes (FP / failures);
* ``other_fn_rate`` / ``other_fp_rate``: the same rates of A's output on the held-out examples
  of *all other* primary tasks that have a label for A, e.g. whether a successful lift-carrot
  episode triggers lift-banana (the "contrastiveness" of App. 7.3).

A rate with an empty denominator is NaN (``null`` in JSON, ``-`` in the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.success.dataset import FAILURE, SUCCESS


def _rate(num: int, den: int) -> float:
    return num / den if den else float("nan")


def _counts(pred: np.ndarray, label: np.ndarray) -> tuple[int, int, int, int]:
    pos, neg = label == SUCCESS, label == FAILURE
    return int(pos.sum()), int(neg.sum()), int((pos & ~pred).sum()), int((neg & pred).sum())


def table3(
    predictions: np.ndarray, labels: np.ndarray, primary: np.ndarray, task_names: Sequence[str]
) -> dict[str, Any]:
    """Per-task error rates (see the module docstring) of bool ``predictions (N, n_tasks)``
    against int labels ``(N, n_tasks)`` (1 / 0 / -1 unknown) and primary task columns ``(N,)``."""
    pred = np.asarray(predictions, dtype=bool)
    labels = np.asarray(labels)
    primary = np.asarray(primary)
    if pred.shape != labels.shape or pred.shape[1:] != (len(task_names),):
        raise ValueError(
            f"predictions {pred.shape} and labels {labels.shape} must both be "
            f"(N, {len(task_names)})"
        )
    if primary.shape != (len(labels),):
        raise ValueError(f"primary must have shape ({len(labels)},), got {primary.shape}")
    tasks: dict[str, dict[str, Any]] = {}
    tot = np.zeros(8, dtype=np.int64)
    for a, name in enumerate(task_names):
        own = primary == a
        pos, neg, fn, fp = _counts(pred[own, a], labels[own, a])
        opos, oneg, ofn, ofp = _counts(pred[~own, a], labels[~own, a])
        tot += (pos, neg, fn, fp, opos, oneg, ofn, ofp)
        tasks[name] = {
            "count": pos + neg,
            "successes": pos,
            "success_rate": _rate(pos, pos + neg),
            "fn_rate": _rate(fn, pos),
            "fp_rate": _rate(fp, neg),
            "other_count": opos + oneg,
            "other_fn_rate": _rate(ofn, opos),
            "other_fp_rate": _rate(ofp, oneg),
        }
    pos, neg, fn, fp, opos, oneg, ofn, ofp = (int(x) for x in tot)
    overall = {
        "count": pos + neg,
        "successes": pos,
        "fn_rate": _rate(fn, pos),
        "fp_rate": _rate(fp, neg),
        "other_fn_rate": _rate(ofn, opos),
        "other_fp_rate": _rate(ofp, oneg),
    }
    return {"tasks": tasks, "overall": overall}


def worst_rates(result: dict[str, Any]) -> dict[str, float]:
    """The largest value of each rate over the tasks (NaN rates ignored)."""
    keys = ("fn_rate", "fp_rate", "other_fn_rate", "other_fp_rate")
    out = {}
    for k in keys:
        vals = [v[k] for v in result["tasks"].values() if not np.isnan(v[k])]
        out[k] = max(vals) if vals else float("nan")
    return out


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.1f}%"


def format_table3(result: dict[str, Any]) -> str:
    """Paper-Table-3 style text table of :func:`table3`'s result."""
    head = (
        f"{'primary SD':<16}{'count':>7}{'succ':>7}{'fail':>7}{'succ%':>8}{'FN':>8}{'FP':>8}"
        f"{'oth FN':>8}{'oth FP':>8}"
    )
    lines = [head, "-" * len(head)]
    rows = [*result["tasks"].items(), ("overall", result["overall"])]
    for name, r in rows:
        fails = r["count"] - r["successes"]
        rate = r.get("success_rate", _rate(r["successes"], r["count"]))
        lines.append(
            f"{name:<16}{r['count']:>7}{r['successes']:>7}{fails:>7}{_pct(rate):>8}"
            f"{_pct(r['fn_rate']):>8}{_pct(r['fp_rate']):>8}{_pct(r['other_fn_rate']):>8}"
            f"{_pct(r['other_fp_rate']):>8}"
        )
    return "\n".join(lines)
