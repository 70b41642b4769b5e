"""The typed containers that travel between the stages of the pipeline (paper Fig. 10).

* :class:`TransitionBatch`: sampled transitions (numpy), from the task replay to a Bellman
  updater;
* :class:`TrainBatch`: transitions with their Bellman targets (tensors), from a Bellman updater
  to the trainer;
* :class:`Weights`: the trainer's published networks, to the robots and the Bellman updaters.

Every batch carries the task slot of each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TransitionBatch:
    """A batch of transitions for one task each (numpy; ``task`` holds one-hot slots)."""

    obs: dict[str, np.ndarray]
    action: np.ndarray
    next_obs: dict[str, np.ndarray]
    reward: np.ndarray
    done: np.ndarray
    task: np.ndarray
    bucket_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    label: np.ndarray | None = None
    """The episode's label (1/0) for each row's task; with ``steps_to_go`` it gives the
    transition's Monte-Carlo return ``label * gamma ** steps_to_go`` (sparse end reward)."""
    steps_to_go: np.ndarray | None = None
    """Steps from each transition to its episode's last step (0 on the last step)."""
    steps: np.ndarray | None = None
    """Steps ``k`` from ``obs`` to ``next_obs`` (n-step sampling: ``min(n, steps_to_go + 1)``);
    ``reward`` arrives on the ``k``-th step and ``done`` says the episode ended within it.
    ``None`` means 1 (one-step transitions)."""
    shared: np.ndarray | None = None
    """Whether each row's episode was collected for another task than the row's (impersonated
    data); conservative data sharing filters these rows in the trainer."""

    def __len__(self) -> int:
        return len(self.action)


@dataclass
class TrainBatch:
    """A training batch for the trainer: states, actions, task slots and Bellman targets."""

    obs: dict[str, torch.Tensor]
    action: torch.Tensor
    task: torch.Tensor
    target: torch.Tensor
    shared: torch.Tensor | None = None
    """Bool ``(B,)``: rows impersonated from another task's episode (``None``: not tracked)."""

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def rows(self, index: torch.Tensor) -> TrainBatch:
        """The batch of the rows ``index`` selects (a bool mask or integer indices)."""
        return TrainBatch(
            obs={k: v[index] for k, v in self.obs.items()},
            action=self.action[index],
            task=self.task[index],
            target=self.target[index],
            shared=None if self.shared is None else self.shared[index],
        )


@dataclass
class Weights:
    """Weights published by the trainer at step ``version``."""

    version: int
    online: dict[str, torch.Tensor]
    target_1: dict[str, torch.Tensor]
    target_2: dict[str, torch.Tensor]
