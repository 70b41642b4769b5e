"""Task replay: per-task buffers split into successes and failures (paper Fig. 10).

Transitions of every episode are stored *once* in a ring buffer of bounded capacity. Each task
has two buckets, successes and failures, holding the ids of the transitions routed to it by
impersonation; the same transition can sit in several tasks' buckets with different labels.
The reward of a transition for a task is its episode's label for that task on the episode's
last step and 0 before it (sparse reward at the end, paper Sec. 4); the last step is terminal.

Eviction rule: when the ring is full, the oldest transitions are overwritten first (FIFO over
the whole replay, in the order episodes were added); bucket entries that point at overwritten
transitions are dropped. So every task keeps the newest data routed to it, and no task's
buckets can exceed the ring's capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mtopt.batches import TransitionBatch
from mtopt.data.sampling import draw_bucket_counts, sampling_proportions
from mtopt.tasks import TaskSet

DEFAULT_OBS_KEYS = ("state", "gripper_status", "gripper_height")
"""Observation keys the state-based learner needs."""


@dataclass(frozen=True)
class ReplayConfig:
    """The task replay and its sampler."""

    capacity: int = 1_000_000
    """Maximum number of transitions kept (FIFO eviction of the oldest)."""
    sampler: Literal["uniform", "rebalanced"] = "rebalanced"
    """``uniform`` over all impersonated data, or ``rebalanced`` (equal share per task)."""
    success_fraction: float = 0.5
    """Re-balanced sampler: fraction of each task's share drawn from its successes."""
    obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS
    """Observation keys stored for each transition (add ``image`` for the conv network)."""
    n_step: int = 5
    """Look this many steps ahead: a sampled transition's ``next_obs`` is the state ``n_step``
    steps later (or the episode's final state when it ends sooner), for n-step returns
    (:func:`mtopt.learning.targets.n_step_target`). 1 is QT-Opt's one-step backup; 5, the
    default, won over 1 and 3 on the learning proxy (3 seeds, docs/RESULTS.md)."""

    def __post_init__(self) -> None:
        if not isinstance(self.capacity, int) or self.capacity < 1:
            raise ValueError(f"replay capacity must be a positive integer, got {self.capacity!r}")
        if self.sampler not in ("uniform", "rebalanced"):
            raise ValueError(f"sampler must be 'uniform' or 'rebalanced', got {self.sampler!r}")
        if not 0.0 < self.success_fraction < 1.0:
            raise ValueError(f"success_fraction must be in (0, 1), got {self.success_fraction!r}")
        if not self.obs_keys:
            raise ValueError("obs_keys must name at least one observation")
        if not isinstance(self.n_step, int) or isinstance(self.n_step, bool) or self.n_step < 1:
            raise ValueError(f"n_step must be an integer >= 1, got {self.n_step!r}")


class _Bucket:
    """Increasing transition ids with amortised append and prefix purge."""

    def __init__(self) -> None:
        self.ids = np.empty(1024, dtype=np.int64)
        self.start = 0
        self.end = 0

    def extend(self, ids: np.ndarray) -> None:
        n = len(ids)
        if self.end + n > len(self.ids):
            live = self.ids[self.start : self.end]
            new = np.empty(max(2 * len(live) + n, 1024), dtype=np.int64)
            new[: len(live)] = live
            self.ids, self.start, self.end = new, 0, len(live)
        self.ids[self.end : self.end + n] = ids
        self.end += n

    def purge(self, threshold: int) -> None:
        live = self.ids[self.start : self.end]
        self.start += int(np.searchsorted(live, threshold, side="left"))

    def __len__(self) -> int:
        return self.end - self.start

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.ids[self.start + rng.integers(0, len(self), size=n)]


class TaskReplay:
    """Per-task success/failure buckets over a shared transition ring buffer."""

    def __init__(
        self,
        config: ReplayConfig,
        task_set: TaskSet,
        rng: np.random.Generator,
        tasks: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.task_set = task_set
        self.tasks = tuple(task_set.validate(tasks)) if tasks else task_set.names
        self._index = {t: i for i, t in enumerate(self.tasks)}
        self._slots = np.array([task_set.slot(t) for t in self.tasks], dtype=np.int64)
        self.rng = rng
        self._buckets = [[_Bucket(), _Bucket()] for _ in self.tasks]
        self._arrays: dict[str, np.ndarray] | None = None
        self.total = 0  # transitions ever written
        self.episodes = 0
        self.routed_episodes = np.zeros((len(self.tasks), 2), dtype=np.int64)

    # -- writing ---------------------------------------------------------------------------
    def _allocate(self, obs: dict[str, np.ndarray], action_dim: int) -> dict[str, np.ndarray]:
        cap = self.config.capacity
        arrays = {"action": np.zeros((cap, action_dim), np.float32)}
        arrays["last"] = np.zeros(cap, dtype=bool)
        arrays["to_go"] = np.zeros(cap, dtype=np.int32)
        arrays["source"] = np.full(cap, -1, dtype=np.int64)  # slot of the collecting task
        for k in self.config.obs_keys:
            if k not in obs:
                raise ValueError(
                    f"episode has no observation {k!r} (has {sorted(obs)}); the replay "
                    f"stores {self.config.obs_keys}"
                )
            shape, dtype = obs[k].shape[1:], obs[k].dtype
            arrays[f"obs/{k}"] = np.zeros((cap, *shape), dtype)
            arrays[f"next/{k}"] = np.zeros((cap, *shape), dtype)
        return arrays

    def add_episode(self, episode: object, routed: Sequence[tuple[str, bool]]) -> int:
        """Store ``episode``'s transitions and file them under the routed ``(task, success)``.

        Routed tasks outside this replay's task list are ignored. Returns the number of
        transitions stored (0 if nothing was routed to a task of this replay).
        """
        routed = [(t, s) for t, s in routed if t in self._index]
        obs = episode.observations  # type: ignore[attr-defined]
        actions = np.asarray(episode.actions)  # type: ignore[attr-defined]
        n = len(actions)
        if not routed or n == 0:
            return 0
        if self._arrays is None:
            self._arrays = self._allocate(obs, actions.shape[1])
        cap = self.config.capacity
        if n > cap:
            raise ValueError(f"episode of {n} steps does not fit a replay of capacity {cap}")
        ids = np.arange(self.total, self.total + n, dtype=np.int64)
        pos = ids % cap
        a = self._arrays
        a["action"][pos] = actions
        a["last"][pos] = False
        a["last"][pos[-1]] = True
        a["to_go"][pos] = np.arange(n - 1, -1, -1, dtype=np.int32)
        source = getattr(episode, "task", None)  # unknown (-1) counts as the row's own
        a["source"][pos] = self.task_set.slot(source) if source in self.task_set else -1
        for k in self.config.obs_keys:
            a[f"obs/{k}"][pos] = obs[k][:-1]
            a[f"next/{k}"][pos] = obs[k][1:]
        self.total += n
        self.episodes += 1
        threshold = self.total - cap
        for t, success in routed:
            i = self._index[t]
            j = 0 if success else 1
            self._buckets[i][j].extend(ids)
            self.routed_episodes[i, j] += 1
        if threshold > 0:
            for pair in self._buckets:
                for b in pair:
                    b.purge(threshold)
        return n

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return min(self.total, self.config.capacity)

    def sizes(self) -> np.ndarray:
        """Transitions per bucket, shape ``(n_tasks, 2)``: column 0 successes, 1 failures."""
        return np.array([[len(s), len(f)] for s, f in self._buckets], dtype=np.int64)

    def sample(self, batch_size: int) -> TransitionBatch:
        """Draw a batch with the configured sampler (task and success proportions)."""
        sizes = self.sizes()
        probs = sampling_proportions(sizes, self.config.sampler, self.config.success_fraction)
        counts = draw_bucket_counts(probs, batch_size, self.rng)
        ids, labels, task_idx = [], [], []
        for i in range(len(self.tasks)):
            for j in (0, 1):
                c = int(counts[i, j])
                if c:
                    ids.append(self._buckets[i][j].sample(c, self.rng))
                    labels.append(np.full(c, j == 0))
                    task_idx.append(np.full(c, i))
        row_ids = np.concatenate(ids)
        cap = self.config.capacity
        pos = row_ids % cap
        label = np.concatenate(labels)
        a = self._arrays
        assert a is not None
        to_go = a["to_go"][pos]
        # n-step: the transition k = min(n, to_go + 1) - 1 steps later in the same episode
        # holds s_{t+k+1}; an episode's transitions are consecutive ids, and ones newer than a
        # stored transition are never evicted before it
        ahead = np.minimum(self.config.n_step, to_go + 1)
        next_pos = (row_ids + ahead - 1) % cap
        ends = to_go < self.config.n_step
        slots = self._slots[np.concatenate(task_idx)]
        return TransitionBatch(
            obs={k: a[f"obs/{k}"][pos] for k in self.config.obs_keys},
            action=a["action"][pos],
            next_obs={k: a[f"next/{k}"][next_pos] for k in self.config.obs_keys},
            reward=(ends & label).astype(np.float32),
            done=ends.astype(np.float32),
            task=slots,
            bucket_counts=counts,
            label=label.astype(np.float32),
            steps_to_go=to_go.astype(np.float32),
            steps=ahead.astype(np.float32),
            shared=(a["source"][pos] >= 0) & (a["source"][pos] != slots),
        )
