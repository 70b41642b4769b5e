"""Behaviour cloning (BC): a multi-task policy network and its loss (a baseline, not MT-Opt).

BC answers a diagnostic question next to the Q-learner: can a network of the same kind *fit*
good behaviour from the same data? The policy network maps ``(state, task)`` to an action:

* its trunk is a Q-network of the learner's config (:class:`~mtopt.learning.networks.
  QNetworkConfig`, an MLP trunk), of which only the per-state part is used
  (:meth:`~mtopt.learning.networks.QNetwork.embed`: the state through the flat or object-centric
  encoder, the low-dimensional inputs and the one-hot task); its action branch stays unused, so
  BC and the Q-learner read the state in the same way;
* a head of two layers maps the embedding to one output per action dim: continuous dims as a
  ``tanh`` in *normalised* units (-1 and 1 are the dim's bounds), binary discrete dims
  (gripper, terminate) as the logit of their ``high`` value.

The loss (:func:`bc_loss`) is the mean squared error on the normalised continuous dims plus
the binary cross-entropy on the discrete dims. The acting policy is
:class:`mtopt.policies.bc_policy.BCPolicy`; the training run is
:mod:`mtopt.system.bc_training`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from mtopt.learning.checkpoint import CHECKPOINT_KEYS
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import NetworkShape, Observation, QNetworkConfig
from mtopt.spec import ActionSpec

BC_CHECKPOINT_KEYS = ("bc", "bc_head", *(k for k in CHECKPOINT_KEYS if k != "trainer"))
"""Keys every behaviour-cloning checkpoint holds (written by :mod:`mtopt.system.bc_training`)."""


def _bounds(spec: ActionSpec, dims: tuple[int, ...], device: torch.device) -> tuple:
    low = torch.tensor([spec.low[d] for d in dims], dtype=torch.float32, device=device)
    high = torch.tensor([spec.high[d] for d in dims], dtype=torch.float32, device=device)
    return low, high


def action_targets(actions: torch.Tensor, spec: ActionSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The targets of actions ``(B, A)``: continuous dims in normalised units ``(B, C)``
    (``low`` -> -1, ``high`` -> 1) and discrete dims as 0 (``low``) / 1 (``high``) ``(B, K)``."""
    if actions.dim() != 2 or actions.shape[1] != spec.dim:
        raise ValueError(f"actions must have shape (B, {spec.dim}), got {tuple(actions.shape)}")
    cont, disc = spec.continuous_dims, spec.discrete_dims
    c_low, c_high = _bounds(spec, cont, actions.device)
    d_low, d_high = _bounds(spec, disc, actions.device)
    continuous = 2.0 * (actions[:, list(cont)] - c_low) / (c_high - c_low) - 1.0
    discrete = ((actions[:, list(disc)] - d_low) / (d_high - d_low) > 0.5).float()
    return continuous, discrete


def bc_loss(
    mean: torch.Tensor,
    logits: torch.Tensor,
    actions: torch.Tensor,
    spec: ActionSpec,
    continuous_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The behaviour-cloning loss of predictions for actions ``(B, A)``.

    Args:
        mean: ``(B, C)`` predicted continuous dims in normalised units (:func:`action_targets`).
        logits: ``(B, K)`` predicted logits of the discrete dims being ``high``.
        actions: ``(B, A)`` the demonstrated actions.
        spec: the action space (which dims are continuous, their bounds).
        continuous_weight: weight of the continuous term.

    Returns:
        ``continuous_weight * MSE(mean, normalised continuous) + BCE(logits, discrete)``, both
        averaged over rows and dims (a term without dims is 0), and the metrics ``loss``,
        ``mse``, ``bce`` and ``discrete_accuracy`` (fraction of discrete choices whose logit
        has the demonstrated sign; 1 when there are none).
    """
    continuous, discrete = action_targets(actions, spec)
    if mean.shape != continuous.shape or logits.shape != discrete.shape:
        raise ValueError(
            f"predictions {tuple(mean.shape)} / {tuple(logits.shape)} do not match the "
            f"continuous {tuple(continuous.shape)} / discrete {tuple(discrete.shape)} targets"
        )
    zero = mean.new_zeros(())
    mse = functional.mse_loss(mean, continuous) if continuous.shape[1] else zero
    bce = (
        functional.binary_cross_entropy_with_logits(logits, discrete) if discrete.shape[1] else zero
    )
    loss = continuous_weight * mse + bce
    with torch.no_grad():
        agree = ((logits > 0).float() == discrete).float().mean() if discrete.shape[1] else 1.0
    return loss, {
        "loss": float(loss.detach()),
        "mse": float(mse.detach()),
        "bce": float(bce.detach()),
        "discrete_accuracy": float(agree),
    }


def decode_actions(mean: torch.Tensor, logits: torch.Tensor, spec: ActionSpec) -> torch.Tensor:
    """Actions ``(B, A)`` of predictions: continuous dims mapped back from normalised units to
    their bounds, each discrete dim ``high`` where its logit is positive, else ``low``."""
    out = mean.new_empty(mean.shape[0], spec.dim)
    cont, disc = list(spec.continuous_dims), list(spec.discrete_dims)
    c_low, c_high = _bounds(spec, spec.continuous_dims, mean.device)
    d_low, d_high = _bounds(spec, spec.discrete_dims, mean.device)
    out[:, cont] = c_low + (mean.clamp(-1.0, 1.0) + 1.0) * (c_high - c_low) / 2.0
    out[:, disc] = torch.where(logits > 0, d_high, d_low)
    return out


class BCNetwork(nn.Module):
    """pi(state, task): a Q-network trunk's state embedding and a two-layer action head (see
    the module docstring). ``forward`` returns ``(mean (B, C), logits (B, K))``."""

    def __init__(
        self,
        config: QNetworkConfig,
        shape: NetworkShape,
        continuous: int,
        discrete: int,
        head_width: int = 256,
    ) -> None:
        super().__init__()
        if config.kind != "mlp":
            raise ValueError(
                f"behaviour cloning reads the state: network.kind must be 'mlp', got "
                f"{config.kind!r}"
            )
        if continuous + discrete != shape.action_dim:
            raise ValueError(
                f"{continuous} continuous + {discrete} discrete dims do not make the network's "
                f"{shape.action_dim} action dims"
            )
        if not isinstance(head_width, int) or head_width < 1:
            raise ValueError(f"head_width must be a positive integer, got {head_width!r}")
        self.continuous, self.discrete = continuous, discrete
        self.trunk = build_q_network(config, shape)
        self.head = nn.Sequential(
            nn.Linear(config.mlp_width, head_width),
            nn.ReLU(),
            nn.Linear(head_width, continuous + discrete),
        )

    def forward(self, obs: Observation, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.trunk.embed(obs, task).features)
        out = self.head(features)
        return torch.tanh(out[:, : self.continuous]), out[:, self.continuous :]
