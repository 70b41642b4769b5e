"""Cross-entropy method (CEM) for maximising a batched score over actions (QT-Opt, MT-Opt).

QT-Opt maximises ``Q(s, a)`` over actions with CEM: sample ``num_samples`` actions per state,
keep the ``num_elites`` best, refit the sampling distribution to them, repeat for ``iterations``
rounds, and return the best action seen. Everything here is a pure function of its inputs and
of an explicit :class:`torch.Generator`; work is batched over states x samples so a Q-network
can score all ``B * N`` actions in one call (embedding each state once).

Action dimensions come in two kinds (see :class:`mtopt.spec.ActionSpec`):

* continuous dims: a diagonal Gaussian (initial mean at the centre of the bounds), samples
  clipped to ``[low, high]``, refit to the elites' mean and (population) standard deviation,
  with the standard deviation floored at ``min_std``;
* binary discrete dims (gripper, terminate): each takes the value ``low`` or ``high``; a
  Bernoulli probability of ``high`` starts at 0.5 and is refit to the elites' frequency of
  ``high``, clamped to ``[min_prob, 1 - min_prob]``. The clamp keeps a few samples on the other
  value in later iterations: six elites are a noisy estimate, and an exact 0/1 would freeze the
  discrete choice for the rest of the optimisation (harmless with 2 iterations, since the best
  action of every iteration is kept, but it matters when ``iterations`` is raised).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mtopt.spec import ActionSpec

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps actions ``(B, N, A)`` to scores ``(B, N)`` (higher is better)."""


def sample_uniform_actions(
    spec: ActionSpec, batch: int, num: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(batch, num, A)`` actions drawn uniformly: continuous dims uniform in their bounds,
    discrete dims ``low`` or ``high`` with probability 1/2 each."""
    if batch < 0 or num < 1:
        raise ValueError(f"need batch >= 0 and num >= 1, got batch={batch}, num={num}")
    low = torch.tensor(spec.low, device=device)
    high = torch.tensor(spec.high, device=device)
    u = torch.rand((batch, num, spec.dim), generator=generator, device=device)
    actions = low + u * (high - low)
    for d in spec.discrete_dims:
        actions[..., d] = torch.where(u[..., d] < 0.5, low[d], high[d])
    return actions


@dataclass(frozen=True)
class CEMConfig:
    """Hyper-parameters of the cross-entropy method (defaults: QT-Opt's 2 x 64, 6 elites)."""

    iterations: int = 2
    """Number of sample-score-refit rounds (>= 1)."""
    num_samples: int = 64
    """Actions sampled per state and iteration (>= num_elites)."""
    num_elites: int = 6
    """Best samples used to refit the distribution (1 <= num_elites <= num_samples)."""
    init_std: float = 0.5
    """Initial std of continuous dims, as a fraction of the half-range (0.5 on [-1, 1])."""
    min_std: float = 0.01
    """Floor on the refit std of continuous dims, same units as ``init_std`` (>= 0)."""
    min_prob: float = 0.05
    """Refit Bernoulli probabilities of discrete dims are clamped to [min_prob, 1 - min_prob]."""

    def __post_init__(self) -> None:
        for name in ("iterations", "num_samples", "num_elites"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_elites > self.num_samples:
            raise ValueError(
                f"num_elites must be in [1, num_samples={self.num_samples}], got {self.num_elites}"
            )
        if not self.init_std > 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std!r}")
        if not 0 <= self.min_std <= self.init_std:
            raise ValueError(
                f"min_std must be in [0, init_std={self.init_std}], got {self.min_std!r}"
            )
        if not 0 <= self.min_prob < 0.5:
            raise ValueError(f"min_prob must be in [0, 0.5), got {self.min_prob!r}")


def refit(
    samples: torch.Tensor, scores: torch.Tensor, num_elites: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std of the ``num_elites`` best samples of every batch row.

    Args:
        samples: ``(B, N, A)`` sampled actions.
        scores: ``(B, N)`` their scores (higher is better).
        num_elites: how many of the best samples to keep (``1 <= num_elites <= N``).

    Returns:
        ``(mean, std)``, each ``(B, A)``. For a discrete dim with values {0, 1} the mean is the
        elites' frequency of 1. The std divides by ``num_elites`` (no Bessel correction).
    """
    if samples.dim() != 3 or scores.shape != samples.shape[:2]:
        raise ValueError(
            f"expected samples (B, N, A) and scores (B, N), got {tuple(samples.shape)} "
            f"and {tuple(scores.shape)}"
        )
    if not 1 <= num_elites <= samples.shape[1]:
        raise ValueError(f"num_elites must be in [1, {samples.shape[1]}], got {num_elites}")
    elite_idx = scores.topk(num_elites, dim=1).indices  # (B, K)
    elites = samples.gather(1, elite_idx.unsqueeze(-1).expand(-1, -1, samples.shape[-1]))
    mean = elites.mean(dim=1)
    std = elites.std(dim=1, correction=0)
    return mean, std


def cem_maximize(
    score_fn: ScoreFn,
    batch_size: int,
    action_spec: ActionSpec,
    config: CEMConfig,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``score_fn`` over actions independently for each of ``batch_size`` rows.

    Args:
        score_fn: maps actions ``(B, N, A)`` to scores ``(B, N)``; called once per iteration.
        batch_size: number of independent rows ``B`` (states).
        action_spec: bounds and discrete dims of the action.
        config: CEM hyper-parameters.
        generator: source of all randomness; same seed, same result.
        device: where to sample; defaults to the generator's device (which must match it).

    Returns:
        ``(best_action, best_score)`` of shapes ``(B, A)`` and ``(B,)``: the highest-scoring
        action seen over all iterations for every row, and its score.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else generator.device
    b, n, a = batch_size, config.num_samples, action_spec.dim
    cont = torch.tensor(action_spec.continuous_dims, dtype=torch.long, device=device)
    disc = torch.tensor(action_spec.discrete_dims, dtype=torch.long, device=device)
    low = torch.tensor(action_spec.low, dtype=torch.float32, device=device)
    high = torch.tensor(action_spec.high, dtype=torch.float32, device=device)
    c_low, c_high = low[cont], high[cont]
    d_low, d_high = low[disc], high[disc]
    half = (c_high - c_low) / 2

    mean = ((c_low + c_high) / 2).expand(b, -1).clone()
    std = (config.init_std * half).expand(b, -1).clone()
    prob = torch.full((b, len(disc)), 0.5, device=device)
    best_action = torch.zeros(b, a, device=device)
    best_score = torch.full((b,), float("-inf"), device=device)
    rows = torch.arange(b, device=device)

    for _ in range(config.iterations):
        actions = torch.empty(b, n, a, device=device)
        noise = torch.randn(b, n, len(cont), generator=generator, device=device)
        actions[:, :, cont] = torch.maximum(
            torch.minimum(mean.unsqueeze(1) + std.unsqueeze(1) * noise, c_high), c_low
        )
        if len(disc):
            u = torch.rand(b, n, len(disc), generator=generator, device=device)
            actions[:, :, disc] = torch.where(u < prob.unsqueeze(1), d_high, d_low)
        scores = score_fn(actions)
        if scores.shape != (b, n):
            raise ValueError(f"score_fn must return shape {(b, n)}, got {tuple(scores.shape)}")
        scores = scores.detach().to(torch.float32)

        top_score, top_idx = scores.max(dim=1)
        better = top_score > best_score
        best_score = torch.where(better, top_score, best_score)
        best_action = torch.where(better.unsqueeze(1), actions[rows, top_idx], best_action)

        elite_mean, elite_std = refit(actions, scores, config.num_elites)
        mean = elite_mean[:, cont]
        std = torch.maximum(elite_std[:, cont], config.min_std * half)
        if len(disc):
            freq = (elite_mean[:, disc] - d_low) / (d_high - d_low)
            prob = freq.clamp(config.min_prob, 1.0 - config.min_prob)
    return best_action, best_score
