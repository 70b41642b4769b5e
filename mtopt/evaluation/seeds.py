"""Statistics across training seeds: deciding between learner variants with seeds.

A learning result is a success rate per seed. One seed decides nothing: the spread between
seeds of one configuration (0.48-0.74 on lift-any in the learning benchmark, runs L24) is larger
than most effects of a single change. This module turns per-seed results into

* :func:`seed_interval` -- the mean over seeds with a 95 % Student-t interval (the uncertainty
  of the *configuration*, seed-to-seed variation included);
* :func:`pooled_interval` -- all attempts of all seeds pooled, with a Wilson interval (the
  uncertainty of the *evaluation* alone; narrower, and blind to seed-to-seed variation);
* :func:`compare_to_baseline` -- a variant against the baseline: the difference of the means
  next to both seed spreads, and whether it exceeds them (the project's adoption rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scipy import stats

from mtopt.evaluation.summary import wilson_interval


def _rates(rates: Sequence[float]) -> list[float]:
    values = [float(r) for r in rates]
    if not values:
        raise ValueError("need at least one seed's result, got none")
    bad = [r for r in values if not 0.0 <= r <= 1.0]
    if bad:
        raise ValueError(f"success rates must be in [0, 1], got {bad}")
    return values


def seed_interval(rates: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean of per-seed success rates with a two-sided Student-t interval.

    With ``n`` seeds: ``mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n)`` (``sd`` with
    ``n - 1`` degrees of freedom), clipped to [0, 1]. One seed has no interval (``lo``/``hi``
    are NaN). Also returns ``sd``, ``spread`` (max - min) and ``n``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    values = _rates(rates)
    n = len(values)
    mean = sum(values) / n
    spread = max(values) - min(values)
    if n == 1:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "sd": math.nan, "spread": 0.0, "n": 1}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {
        "mean": mean,
        "lo": max(0.0, mean - half),
        "hi": min(1.0, mean + half),
        "sd": sd,
        "spread": spread,
        "n": n,
    }


def pooled_interval(successes: Sequence[int], attempts: Sequence[int]) -> dict[str, Any]:
    """All seeds' attempts pooled: overall rate and its 95 % Wilson interval."""
    if len(successes) != len(attempts) or not attempts:
        raise ValueError(
            f"need one success count per attempt count, got {len(successes)} and {len(attempts)}"
        )
    wins, total = int(sum(successes)), int(sum(attempts))
    lo, hi = wilson_interval(wins, total)
    return {"rate": wins / total if total else math.nan, "lo": lo, "hi": hi, "attempts": total}


def compare_to_baseline(baseline: Sequence[float], variant: Sequence[float]) -> dict[str, Any]:
    """A variant's per-seed rates against the baseline's.

    Returns the difference of the means, both seed spreads (max - min), and ``beyond_spread``:
    ``+1`` when the variant is better by more than the larger of the two spreads, ``-1`` when it
    is worse by more than that, else ``0`` (not distinguishable from seed noise).
    """
    b, v = seed_interval(baseline), seed_interval(variant)
    diff = v["mean"] - b["mean"]
    margin = max(b["spread"], v["spread"])
    verdict = 1 if diff > margin else -1 if diff < -margin else 0
    return {
        "diff": diff,
        "baseline_spread": b["spread"],
        "variant_spread": v["spread"],
        "beyond_spread": verdict,
    }
