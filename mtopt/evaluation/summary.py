"""Summary statistics of an evaluation (paper Table 4 layout).

Per task: success rate with a 95 % Wilson score interval. Across tasks: min, 25th percentile,
median, mean, 75th percentile, max, and the mean over the *low-data* tasks (the tasks with the
fewest episodes in the training log; the paper uses the 6 with least data). Between two
policies on the same scenes: which tasks one does better or worse beyond the intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SUMMARY_KEYS = ("min", "p25", "median", "mean", "p75", "max", "mean_low_data")
"""Keys of the across-task summary, in the paper's row order."""
SUMMARY_LABELS = {
    "min": "Min",
    "p25": "25th percentile",
    "median": "Median",
    "mean": "Mean",
    "p75": "75th percentile",
    "max": "Max",
    "mean_low_data": "Mean (low data)",
}
"""Row labels of the summary keys, as in paper Table 4."""


def wilson_interval(
    successes: int, trials: int, z: float = 1.959963984540054
) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95 %).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or all
    successes, which is common for hard tasks evaluated 100 times.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def low_data_tasks(episode_counts: Mapping[str, int], k: int = 6) -> list[str]:
    """The ``k`` tasks with the fewest training episodes (ties broken by name)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return [t for t, _ in sorted(episode_counts.items(), key=lambda kv: (kv[1], kv[0]))[:k]]


def summarize(
    success_rates: Mapping[str, float], low_data: list[str] | None = None
) -> dict[str, float]:
    """Across-task summary of per-task success rates (keys :data:`SUMMARY_KEYS`).

    Percentiles use linear interpolation between order statistics (NumPy's default).
    ``mean_low_data`` is NaN when no low-data tasks are given.
    """
    if not success_rates:
        raise ValueError("no task success rates to summarize")
    unknown = [t for t in (low_data or []) if t not in success_rates]
    if unknown:
        raise ValueError(f"low-data tasks {unknown} have no success rate")
    rates = np.asarray(list(success_rates.values()), dtype=np.float64)
    low = [success_rates[t] for t in (low_data or [])]
    return {
        "min": float(rates.min()),
        "p25": float(np.percentile(rates, 25)),
        "median": float(np.median(rates)),
        "mean": float(rates.mean()),
        "p75": float(np.percentile(rates, 75)),
        "max": float(rates.max()),
        "mean_low_data": float(np.mean(low)) if low else float("nan"),
    }


def compare_policies(
    learned: Mapping[str, Any], baseline: Mapping[str, Any], names: tuple[str, str]
) -> str:
    """What a learned policy does against a baseline evaluated on the same scenes, in words.

    ``learned`` and ``baseline`` are :func:`mtopt.evaluation.protocol.evaluate` results. A task
    counts as better (worse) when the learned policy's 95 % interval lies wholly above (below)
    the baseline's, and as level otherwise; ``names`` are the two policies' names."""
    a, b = learned["tasks"], baseline["tasks"]
    if set(a) != set(b):
        raise ValueError(f"the results cover different tasks: {sorted(a)} and {sorted(b)}")
    groups: dict[str, list[str]] = {"better": [], "level": [], "worse": []}
    for task in a:
        lo, hi = a[task]["ci95"]
        b_lo, b_hi = b[task]["ci95"]
        groups["better" if lo > b_hi else "worse" if hi < b_lo else "level"].append(task)
    mean_a = float(np.mean([r["success_rate"] for r in a.values()]))
    mean_b = float(np.mean([r["success_rate"] for r in b.values()]))
    n = len(a)
    lines = [
        f"{names[0]} against {names[1]} on the same scenes: mean success {mean_a:.2f} against "
        f"{mean_b:.2f}; better beyond the 95 % intervals on {len(groups['better'])} of {n} "
        f"tasks, level within them on {len(groups['level'])}, worse on {len(groups['worse'])}."
    ]
    for verdict, tasks in groups.items():
        if tasks:
            lines.append(f"  {verdict}: {', '.join(tasks)}")
    return "\n".join(lines)
