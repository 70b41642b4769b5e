"""The trainer: log-loss SGD on Q(s, a, task), target-network maintenance, checkpoints.

The trainer owns the online Q-network, its Adam optimizer and the two target networks:

* target network 1 is Polyak-averaged every step (``target <- tau*target + (1-tau)*online``);
* target network 2 is refreshed from target network 1 every ``target_lag_steps`` steps, so it
  lags it by up to that many steps (QT-Opt's clipped double Q).

The step follows the gradient of the batch loss (``gradient: sum``), or PCGrad's projection of
the conflicting per-task gradients (``gradient: pcgrad``, :mod:`mtopt.learning.pcgrad`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.batches import TrainBatch
from mtopt.device import resolve_device
from mtopt.learning.cds import cds_keep_mask
from mtopt.learning.cem import sample_uniform_actions
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import NetworkShape, QNetwork, QNetworkConfig
from mtopt.learning.pcgrad import (
    conflict_fraction,
    project_conflicting,
    random_orders,
    task_gradients,
    write_flat_grad,
)
from mtopt.learning.targets import (
    conservative_penalty,
    hard_update,
    polyak_update,
    q_log_loss,
)
from mtopt.spec import ActionSpec

logger = logging.getLogger(__name__)

GRADIENT_KINDS = ("sum", "pcgrad")
"""The trainer's gradient: of the batch loss, or PCGrad's (:attr:`TrainerConfig.gradient`)."""


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
    gradient: str = "sum"
    """``"sum"``: the plain gradient of the batch loss (MT-Opt's default); ``"pcgrad"``: PCGrad's
    projection of conflicting per-task gradients (Yu et al. 2020,
    :mod:`mtopt.learning.pcgrad`), which costs one backward pass per task in the batch."""

    def __post_init__(self) -> None:
        if self.gradient not in GRADIENT_KINDS:
            raise ValueError(f"gradient must be one of {GRADIENT_KINDS}, got {self.gradient!r}")
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
        self,
        config: TrainerConfig,
        shape: NetworkShape,
        action_spec: ActionSpec,
        seed: int = 0,
        cds_percentile: float | None = None,
    ) -> None:
        """``cds_percentile``: filter the impersonated rows of every batch with conservative
        data sharing at this percentile (:mod:`mtopt.learning.cds`; ``None``: no filter)."""
        if action_spec.dim != shape.action_dim:
            raise ValueError(
                f"the action spec has {action_spec.dim} dims but the network's shape has "
                f"{shape.action_dim}"
            )
        self.config = config
        self.cds_percentile = cds_percentile
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
        # the conservative penalty's action draws and PCGrad's task orders (checkpointed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 7919)

    def _cds_keep(self, logits: torch.Tensor, batch: TrainBatch) -> torch.Tensor | None:
        """CDS's keep mask of the batch's rows (``None``: every row trains, no CDS)."""
        if self.cds_percentile is None or batch.shared is None:
            return None
        return cds_keep_mask(logits, batch.task, batch.shared, self.cds_percentile)

    def _loss(
        self, batch: TrainBatch, normalizer: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The log loss (plus the conservative penalty when enabled) and the batch logits.

        The loss is the mean over the rows, or over the rows CDS keeps; with ``normalizer``
        it is their sum divided by it (PCGrad's task losses). The extra metrics count the kept
        rows (``kept_rows``) when CDS filters."""
        cfg = self.config
        embedding = self.online.embed(batch.obs, batch.task)
        logits = self.online.q_logits_from_embedding(embedding, batch.action.unsqueeze(1))[:, 0]
        keep = self._cds_keep(logits, batch)
        terms = [q_log_loss(logits, batch.target, reduction="none")]
        if cfg.conservative_weight > 0:
            sampled = sample_uniform_actions(
                self.action_spec, len(batch), cfg.conservative_samples, self.generator, self.device
            )
            terms.append(
                conservative_penalty(
                    self.online.q_logits_from_embedding(embedding, sampled),
                    logits,
                    cfg.conservative_temperature,
                    reduction="none",
                )
            )
        extra: dict[str, float] = {}
        if keep is None and normalizer is None:
            means = [t.mean() for t in terms]
        else:
            weight = torch.ones_like(logits) if keep is None else keep.to(logits.dtype)
            denom = weight.sum().clamp(min=1.0) if normalizer is None else normalizer
            means = [(t * weight).sum() / denom for t in terms]
            if keep is not None:
                assert batch.shared is not None
                extra["kept_rows"] = float(weight.sum())
                extra["shared_rows"] = float(batch.shared.sum())
                extra["shared_kept"] = float((keep & batch.shared.bool()).sum())
        loss = means[0]
        if len(means) > 1:
            loss = loss + cfg.conservative_weight * means[1]
            extra["conservative_penalty"] = float(means[1].detach())
        return loss, logits, extra

    def _pcgrad_step(self, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Set ``.grad`` to PCGrad's update; the batch loss, logits and metrics.

        Each task's loss is computed on its own rows only (a forward and a backward pass of
        about ``B / K`` rows per task: the network treats rows independently, so this is the
        task's exact gradient at about the cost of one pass over the batch). The task losses
        are sums over their (kept) rows, and the update is divided by the number of rows, so
        without conflicts it is the plain batch gradient."""
        params = [p for p in self.online.parameters() if p.requires_grad]
        logits = torch.empty(len(batch), device=self.device)
        totals: dict[str, float] = {}

        def task_loss(rows: torch.Tensor) -> torch.Tensor:
            loss, sub_logits, extra = self._loss(batch.rows(rows), normalizer=1.0)
            logits[rows] = sub_logits.detach()
            for k, v in extra.items():
                totals[k] = totals.get(k, 0.0) + v
            return loss

        per_task = task_gradients(batch.task, params, task_loss)
        rows = totals.get("kept_rows", float(len(batch)))
        order = random_orders(len(per_task.tasks), self.generator)
        projected = project_conflicting(per_task.grads, order)
        write_flat_grad(params, projected.sum(dim=0) / max(rows, 1.0), per_task.used)
        extra = {k: v for k, v in totals.items() if k != "conservative_penalty"}
        if "conservative_penalty" in totals:
            extra["conservative_penalty"] = totals["conservative_penalty"] / max(rows, 1.0)
        extra["pcgrad_conflicts"] = float(conflict_fraction(per_task.grads))
        loss = per_task.losses.sum() / max(rows, 1.0)
        return loss, logits, extra

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """One Adam step on the log loss; then maintain the target networks."""
        self.online.train()
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.gradient == "pcgrad":
            loss, logits, extra = self._pcgrad_step(batch)
        else:
            loss, logits, extra = self._loss(batch)
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
        if "shared_rows" in extra:  # CDS: the fraction of impersonated rows that trained
            shared = extra.pop("shared_rows")
            kept = extra.pop("shared_kept")
            extra["cds_shared_kept"] = kept / shared if shared else float("nan")
        extra.pop("kept_rows", None)
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
