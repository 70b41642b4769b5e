"""Balanced sampling of success-detector examples (paper App. 8).

Training batches are balanced between tasks and, within a task, between successes and failures:
each *bucket* (task, success) / (task, failure) holds the examples with that label for that task
(after label sharing), and :func:`balanced_proportions` gives every task with labels an equal
share, split ``success_fraction`` / ``1 - success_fraction`` between its two buckets (a task
with only one kind of label gives its whole share to that bucket). It reuses the task replay's
re-balancing rule (:func:`mtopt.data.sampling.rebalanced_proportions`).

A draw is a pair (example row, task column): the loss weights that pair's label fully and the
example's other known labels by ``other_label_weight`` (see :mod:`mtopt.success.training`).
"""

from __future__ import annotations

import numpy as np

from mtopt.data.sampling import draw_bucket_counts, rebalanced_proportions
from mtopt.success.dataset import FAILURE, SUCCESS


def bucket_sizes(labels: np.ndarray) -> np.ndarray:
    """``(n_tasks, 2)``: successes (column 0) and failures (column 1) per task column."""
    labels = np.asarray(labels)
    return np.stack([(labels == SUCCESS).sum(0), (labels == FAILURE).sum(0)], axis=1)


def balanced_proportions(labels: np.ndarray, success_fraction: float = 0.5) -> np.ndarray:
    """Probability ``(n_tasks, 2)`` of drawing from each (task, success/failure) bucket."""
    return rebalanced_proportions(bucket_sizes(labels), success_fraction)


class BalancedSampler:
    """Draws (row, task) pairs with :func:`balanced_proportions` from a seeded generator."""

    def __init__(
        self, labels: np.ndarray, rng: np.random.Generator, success_fraction: float = 0.5
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2 or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty (N, n_tasks) matrix, got {labels.shape}")
        self.rng = rng
        self.probs = balanced_proportions(labels, success_fraction)
        self.buckets = [
            [np.flatnonzero(labels[:, t] == SUCCESS), np.flatnonzero(labels[:, t] == FAILURE)]
            for t in range(labels.shape[1])
        ]

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, tasks)``: ``batch_size`` example rows and the task column each was drawn for."""
        counts = draw_bucket_counts(self.probs, batch_size, self.rng)
        rows, tasks = [], []
        for t, k in zip(*np.nonzero(counts), strict=True):
            n = int(counts[t, k])
            rows.append(self.rng.choice(self.buckets[t][k], size=n))
            tasks.append(np.full(n, t, dtype=np.int64))
        rows_a, tasks_a = np.concatenate(rows), np.concatenate(tasks)
        perm = self.rng.permutation(batch_size)
        return rows_a[perm], tasks_a[perm]
