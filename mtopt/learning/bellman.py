"""The Bellman updater: sampled transitions in, ``(s, a, task, target)`` training batches out.

It holds two target networks (paper Fig. 10; QT-Opt's clipped double Q): ``a*`` is the CEM
argmax of target network 1 at the next state and ``V(s') = min_i Q_target_i(s', a*)``. The
target networks' weights come from the trainer (:meth:`BellmanUpdater.load_target_weights`); in
the local runtime the updater simply shares the trainer's target modules.
"""

from __future__ import annotations

import numpy as np
import torch

from mtopt.batches import TrainBatch, TransitionBatch
from mtopt.learning.cem import CEMConfig
from mtopt.learning.networks import QNetwork
from mtopt.learning.targets import bellman_targets
from mtopt.spec import ActionSpec


def to_tensors(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """Observation arrays as tensors on ``device`` (images stay uint8)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in obs.items()}


class BellmanUpdater:
    """Computes clipped double-Q targets for transitions with CEM over target network 1."""

    def __init__(
        self,
        target_net_1: QNetwork,
        target_net_2: QNetwork,
        cem: CEMConfig,
        gamma: float,
        generator: torch.Generator,
        action_spec: ActionSpec,
    ) -> None:
        self.target_net_1 = target_net_1
        self.target_net_2 = target_net_2
        self.cem = cem
        self.gamma = gamma
        self.generator = generator
        self.action_spec = action_spec
        self.device = next(target_net_1.parameters()).device

    def load_target_weights(self, state_1: dict, state_2: dict) -> None:
        """Replace the target networks' weights (a published copy from the trainer)."""
        self.target_net_1.load_state_dict(state_1)
        self.target_net_2.load_state_dict(state_2)

    def __call__(self, batch: TransitionBatch) -> TrainBatch:
        """Turn sampled transitions into a training batch with Bellman targets."""
        dev = self.device
        reward = torch.from_numpy(batch.reward).to(dev)
        done = torch.from_numpy(batch.done).to(dev)
        task = torch.from_numpy(batch.task).to(dev)
        target = bellman_targets(
            self.target_net_1,
            self.target_net_2,
            to_tensors(batch.next_obs, dev),
            task,
            reward,
            done,
            self.cem,
            self.action_spec,
            self.generator,
            self.gamma,
            None if batch.steps is None else torch.from_numpy(batch.steps).to(dev),
        )
        return TrainBatch(
            obs=to_tensors(batch.obs, dev),
            action=torch.from_numpy(batch.action).to(dev),
            task=task,
            target=target,
            shared=None if batch.shared is None else torch.from_numpy(batch.shared).to(dev),
        )
