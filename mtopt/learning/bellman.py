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
from mtopt.learning.targets import (
    bellman_targets,
    mc_lower_bounded_target,
    mc_return,
    mixed_mc_target,
)
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
        mc_lower_bound: bool = False,
        mc_mix: float = 0.0,
    ) -> None:
        self.target_net_1 = target_net_1
        self.target_net_2 = target_net_2
        self.cem = cem
        self.gamma = gamma
        self.generator = generator
        self.action_spec = action_spec
        if not 0.0 <= mc_mix <= 1.0:
            raise ValueError(f"mc_mix must be in [0, 1], got {mc_mix!r}")
        self.mc_lower_bound = mc_lower_bound
        self.mc_mix = mc_mix
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
        if self.mc_lower_bound or self.mc_mix > 0:
            if batch.label is None or batch.steps_to_go is None:
                raise ValueError(
                    "mc_lower_bound and mc_mix need batches with label and steps_to_go "
                    "(TaskReplay.sample)"
                )
            label = torch.from_numpy(batch.label).to(dev)
            to_go = torch.from_numpy(batch.steps_to_go).to(dev)
        if self.mc_mix == 1.0:  # pure Monte-Carlo regression: no bootstrap, no CEM
            target = mc_return(label, to_go, self.gamma)
        else:
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
            if self.mc_lower_bound:
                target = mc_lower_bounded_target(target, label, to_go, self.gamma)
            if self.mc_mix > 0:
                target = mixed_mc_target(target, label, to_go, self.gamma, self.mc_mix)
        return TrainBatch(
            obs=to_tensors(batch.obs, dev),
            action=torch.from_numpy(batch.action).to(dev),
            task=task,
            target=target,
        )
