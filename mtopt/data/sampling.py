"""Sampling proportions of the task replay: uniform and re-balanced (paper Sec. 3.2, Fig. 3).

The task replay has one success bucket and one failure bucket per task. A sampler is a pure
function from bucket sizes, an array of shape ``(n_tasks, 2)`` with column 0 = successes and
column 1 = failures, to the probability of drawing a sample from each bucket.

* ``uniform``: every impersonated transition is equally likely, so a bucket's probability is
  proportional to its size.
* ``rebalanced``: every task with data gets an equal share; within a task a fixed fraction
  ``success_fraction`` comes from its successes and the rest from its failures. A task whose
  success (or failure) bucket is empty gives its whole share to the other bucket.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

SAMPLER_KINDS = ("uniform", "rebalanced")
"""Names of the samplers."""


def uniform_proportions(sizes: np.ndarray) -> np.ndarray:
    """Bucket probabilities proportional to bucket sizes."""
    sizes = _check_sizes(sizes)
    total = sizes.sum()
    if total == 0:
        raise ValueError("cannot sample: the task replay is empty")
    return sizes / total


def rebalanced_proportions(sizes: np.ndarray, success_fraction: float = 0.5) -> np.ndarray:
    """Equal share per task with data; within a task ``success_fraction`` from successes."""
    if not 0.0 < success_fraction < 1.0:
        raise ValueError(f"success_fraction must be in (0, 1), got {success_fraction!r}")
    sizes = _check_sizes(sizes)
    has_s = sizes[:, 0] > 0
    has_f = sizes[:, 1] > 0
    active = has_s | has_f
    if not active.any():
        raise ValueError("cannot sample: the task replay is empty")
    share = 1.0 / active.sum()
    probs = np.zeros_like(sizes)
    both = has_s & has_f
    probs[both, 0] = share * success_fraction
    probs[both, 1] = share * (1.0 - success_fraction)
    probs[has_s & ~has_f, 0] = share
    probs[has_f & ~has_s, 1] = share
    return probs


def sampling_proportions(
    sizes: np.ndarray,
    kind: Literal["uniform", "rebalanced"],
    success_fraction: float = 0.5,
) -> np.ndarray:
    """Dispatch to the sampler named ``kind``."""
    if kind == "uniform":
        return uniform_proportions(sizes)
    if kind == "rebalanced":
        return rebalanced_proportions(sizes, success_fraction)
    raise ValueError(f"sampler must be one of {SAMPLER_KINDS}, got {kind!r}")


def draw_bucket_counts(probs: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``batch_size`` samples come from each bucket (a multinomial draw)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    flat = probs.reshape(-1)
    return rng.multinomial(batch_size, flat / flat.sum()).reshape(probs.shape)


def _check_sizes(sizes: np.ndarray) -> np.ndarray:
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 2 or sizes.shape[1] != 2:
        raise ValueError(f"bucket sizes must have shape (n_tasks, 2), got {sizes.shape}")
    if (sizes < 0).any():
        raise ValueError("bucket sizes must be non-negative")
    return sizes
