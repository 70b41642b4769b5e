"""Per-feature statistics of a LeRobot dataset (``meta/stats.json`` and the ``stats/...``
columns of the episode files): min, max, mean, std and quantiles, per episode and pooled as
LeRobot pools them.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STAT_NAMES = ("min", "max", "mean", "std", *(f"q{round(q * 100):02d}" for q in QUANTILES))
"""LeRobot's statistics of a feature, besides ``count``."""


def _stats(x: np.ndarray) -> np.ndarray:
    """The :data:`STAT_NAMES` rows of ``x`` (frames x values), one column per value."""
    return np.vstack(
        [
            x.min(axis=0),
            x.max(axis=0),
            x.mean(axis=0),
            x.std(axis=0),
            *np.quantile(x, QUANTILES, axis=0),
        ]
    )


def _aggregate(stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Episodes' stats ``(E, 9, K)`` combined as LeRobot does: extremes, the pooled mean and
    std, count-weighted quantiles."""
    w = counts[:, None] / counts.sum()
    mean = (stats[:, 2] * w).sum(axis=0)
    var = ((stats[:, 3] ** 2 + (stats[:, 2] - mean) ** 2) * w).sum(axis=0)
    quantiles = (stats[:, 4:] * w[:, :, None]).sum(axis=0)
    return np.vstack(
        [stats[:, 0].min(axis=0), stats[:, 1].max(axis=0), mean, np.sqrt(var), quantiles]
    )


def _image_stats(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-channel stats in [0, 1] of about 10 of an episode's frames, and their number."""
    sample = images[:: max(1, len(images) // 10)]
    return _stats(sample.reshape(-1, 3).astype(np.float64) / 255.0), len(sample)
