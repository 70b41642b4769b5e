"""Balanced sampling of success-detector examples (paper App. 8).

Training batches are balanced between tasks and, within a task, between successes and failures:
each *bucket* (task, success) / (task, failure) holds the examples with that label for that task
(after label sharing), and :func:`balanced_proportions` gives every task with labels an equal
share, split ``success_fraction`` / ``1 - success_fraction`` between its two buckets (a task
with only one kind of label gives its whole share to that bucket). It reuses the task replay's
re-balancing rule (:func:`mtopt.data.sampling.rebalanced_proportions`).

A draw is a pair (example row, task column): the loss weights that pair's label fully and the
example's other known labels by ``other_label_weight`` (see :mod:`mtopt.success.training`).

With ``pair_fraction > 0`` that fraction of a batch comes as *matched pairs*: a balanced draw
of an outcome example plus its partner (the other outcome arranged on the same scene), for the
same task. The two differ only in the outcome, so their gradients cancel what the scene alone
shows -- the point of the paper's paired example videos. The partner's label for the drawn task
may be unknown (e.g. a ``place-top-left`` failure drawn for ``place-any``); the training loss
then weights only its known labels.

With ``episode_fraction`` set, each bucket's draws are split between its robot episodes
(relabelled from the log) and its outcome examples: that fraction comes from the episodes
whenever the bucket holds both. Arranged examples usually far outnumber a task's relabelled
successes, while the episodes are what the detector will be asked about.
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
        self,
        labels: np.ndarray,
        rng: np.random.Generator,
        success_fraction: float = 0.5,
        siblings: np.ndarray | None = None,
        pair_fraction: float = 0.0,
        is_episode: np.ndarray | None = None,
        episode_fraction: float | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2 or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty (N, n_tasks) matrix, got {labels.shape}")
        if not 0.0 <= pair_fraction <= 1.0:
            raise ValueError(f"pair_fraction must be in [0, 1], got {pair_fraction!r}")
        if siblings is not None and np.shape(siblings) != (len(labels),):
            raise ValueError(f"siblings must have shape ({len(labels)},), got {np.shape(siblings)}")
        if episode_fraction is not None and not 0.0 <= episode_fraction <= 1.0:
            raise ValueError(f"episode_fraction must be in [0, 1], got {episode_fraction!r}")
        if is_episode is not None and np.shape(is_episode) != (len(labels),):
            raise ValueError(
                f"is_episode must have shape ({len(labels)},), got {np.shape(is_episode)}"
            )
        self.siblings = None if siblings is None else np.asarray(siblings, dtype=np.int64)
        self.pair_fraction = pair_fraction if siblings is not None else 0.0
        self.rng = rng
        self.probs = balanced_proportions(labels, success_fraction)
        self.buckets = [
            [np.flatnonzero(labels[:, t] == SUCCESS), np.flatnonzero(labels[:, t] == FAILURE)]
            for t in range(labels.shape[1])
        ]
        self.episode_fraction = episode_fraction if is_episode is not None else None
        if self.episode_fraction is not None:
            ep = np.asarray(is_episode, dtype=bool)
            self.split = [[(b[~ep[b]], b[ep[b]]) for b in task] for task in self.buckets]

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, tasks)``: ``batch_size`` example rows and the task column each was drawn for
        (matched pairs adjacent, ``pair_fraction`` of the batch at most)."""
        n_pairs = int(batch_size * self.pair_fraction) // 2
        if n_pairs == 0:
            return self._balanced(batch_size)
        rows, tasks = self._balanced(batch_size - n_pairs)
        partner = self.siblings[rows]
        anchors = np.flatnonzero(partner >= 0)[:n_pairs]
        keep = np.setdiff1d(np.arange(len(rows)), anchors)[: batch_size - 2 * len(anchors)]
        out_rows = [np.stack([rows[anchors], partner[anchors]], 1).ravel(), rows[keep]]
        out_tasks = [np.repeat(tasks[anchors], 2), tasks[keep]]
        missing = batch_size - len(anchors) * 2 - len(keep)
        if missing:  # too few paired draws: top up with plain balanced draws
            more_rows, more_tasks = self._balanced(missing)
            out_rows.append(more_rows)
            out_tasks.append(more_tasks)
        return np.concatenate(out_rows), np.concatenate(out_tasks)

    def _balanced(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        counts = draw_bucket_counts(self.probs, batch_size, self.rng)
        rows, tasks = [], []
        for t, k in zip(*np.nonzero(counts), strict=True):
            n = int(counts[t, k])
            rows.append(self._draw(t, k, n))
            tasks.append(np.full(n, t, dtype=np.int64))
        rows_a, tasks_a = np.concatenate(rows), np.concatenate(tasks)
        perm = self.rng.permutation(batch_size)
        return rows_a[perm], tasks_a[perm]

    def _draw(self, task: int, kind: int, n: int) -> np.ndarray:
        """``n`` rows of bucket (task, kind), split between episodes and examples if asked."""
        if self.episode_fraction is None:
            return self.rng.choice(self.buckets[task][kind], size=n)
        examples, episodes = self.split[task][kind]
        if len(examples) == 0 or len(episodes) == 0:
            return self.rng.choice(self.buckets[task][kind], size=n)
        n_ep = int(self.rng.binomial(n, self.episode_fraction))
        return np.concatenate(
            [self.rng.choice(episodes, size=n_ep), self.rng.choice(examples, size=n - n_ep)]
        )
