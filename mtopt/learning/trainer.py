"""The trainer: log-loss SGD on Q(s, a, task), target-network maintenance, checkpoints.

The trainer owns the online Q-network, its Adam optimizer and the two target networks:

* target network 1 is Polyak-averaged every step (``target <- tau*target + (1-tau)*online``);
* target network 2 is refreshed from target network 1 every ``target_lag_steps`` steps, so it
  lags it by up to that many steps (QT-Opt's clipped double Q).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.batches import TrainBatch
from mtopt.device import resolve_device
from mtopt.learning.cem import sample_uniform_actions
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import NetworkShape, QNetwork, QNetworkConfig
from mtopt.learning.targets import (
    conservative_penalty,
    hard_update,
    polyak_update,
    q_log_loss,
)
from mtopt.spec import ActionSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation of the multi-task Q-function."""

    network: QNetworkConfig = field(default_factory=lambda: QNetworkConfig(kind="mlp"))
    """Q-network architecture (``state_dim`` is filled in from the data when 0)."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam (L2) weight decay."""
    grad_clip: float = 10.0
    """Clip the global gradient norm to this value (0 disables)."""
    polyak: float = 0.9999
    """Fraction of target network 1 kept at each step (QT-Opt: 0.9999)."""
    target_lag_steps: int = 2000
    """Target network 2 is refreshed from target network 1 every this many steps."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
    conservative_weight: float = 0.5
    """Weight of the CQL-style penalty on ``conservative_samples`` uniformly drawn actions per
    state (:func:`mtopt.learning.targets.conservative_penalty`), against CEM's over-estimation
    on offline data; not part of the paper (0 trains plain QT-Opt)."""
    conservative_samples: int = 16
    """Uniformly drawn actions per state for the conservative penalty."""
    conservative_temperature: float = 0.1
    """Temperature of the penalty's soft maximum over the drawn actions' Q (-> 0: hard max)."""

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0.0 <= self.polyak < 1.0:
            raise ValueError(f"polyak must be in [0, 1), got {self.polyak!r}")
        if not isinstance(self.target_lag_steps, int) or self.target_lag_steps < 1:
            raise ValueError(
                f"target_lag_steps must be an integer >= 1, got {self.target_lag_steps!r}"
            )
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip and weight_decay must be >= 0")
        if not self.conservative_weight >= 0:
            raise ValueError(f"conservative_weight must be >= 0, got {self.conservative_weight!r}")
        if not self.conservative_temperature > 0:
            raise ValueError(
                f"conservative_temperature must be > 0, got {self.conservative_temperature!r}"
            )
        if not isinstance(self.conservative_samples, int) or self.conservative_samples < 1:
            raise ValueError(
                f"conservative_samples must be a positive integer, got "
                f"{self.conservative_samples!r}"
            )


class Trainer:
    """Online Q-network, Adam and the two target networks; one SGD step per batch."""

    def __init__(
        self, config: TrainerConfig, shape: NetworkShape, action_spec: ActionSpec, seed: int = 0
    ) -> None:
        if action_spec.dim != shape.action_dim:
            raise ValueError(
                f"the action spec has {action_spec.dim} dims but the network's shape has "
                f"{shape.action_dim}"
            )
        self.config = config
        self.action_spec = action_spec
        self.shape = shape
        self.device = resolve_device(config.device)
        with torch.random.fork_rng(devices=[]):  # seeded init; the global stream is untouched
            torch.manual_seed(seed)
            self.online: QNetwork = build_q_network(config.network, shape).to(self.device)
        self.target_1: QNetwork = copy.deepcopy(self.online).requires_grad_(False)
        self.target_2: QNetwork = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.online.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.step = 0
        # the conservative penalty's action draws (its state is checkpointed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 7919)

    def _loss(self, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The log loss (plus the conservative penalty when enabled) and the batch logits."""
        cfg = self.config
        embedding = self.online.embed(batch.obs, batch.task)
        logits = self.online.q_logits_from_embedding(embedding, batch.action.unsqueeze(1))[:, 0]
        loss = q_log_loss(logits, batch.target)
        if cfg.conservative_weight == 0:
            return loss, logits, {}
        sampled = sample_uniform_actions(
            self.action_spec, len(batch), cfg.conservative_samples, self.generator, self.device
        )
        penalty = conservative_penalty(
            self.online.q_logits_from_embedding(embedding, sampled),
            logits,
            cfg.conservative_temperature,
        )
        loss = loss + cfg.conservative_weight * penalty
        return loss, logits, {"conservative_penalty": float(penalty.detach())}

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """One Adam step on the log loss; then maintain the target networks."""
        self.online.train()
        loss, logits, extra = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        polyak_update(self.target_1, self.online, self.config.polyak)
        if self.step % self.config.target_lag_steps == 0:
            hard_update(self.target_2, self.target_1)
        with torch.no_grad():
            q = torch.sigmoid(logits)
        return {
            "loss": float(loss.detach()),
            "mean_q": float(q.mean()),
            "mean_target": float(batch.target.mean()),
            **extra,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: networks, optimizer and step (tensors and plain data)."""
        return {
            "online": self.online.state_dict(),
            "target_1": self.target_1.state_dict(),
            "target_2": self.target_2.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "trainer_step": self.step,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.online.load_state_dict(state["online"])
        self.target_1.load_state_dict(state["target_1"])
        self.target_2.load_state_dict(state["target_2"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["trainer_step"])
        if "generator" in state:  # absent in checkpoints written before the option existed
            self.generator.set_state(state["generator"].cpu())
