"""Pure learning math of (multi-task) QT-Opt: clipped double-Q targets, log loss, Polyak.

* :func:`clipped_double_q_target` -- ``r + gamma * (1 - done) * min(Q1', Q2')``;
* :func:`n_step_target` -- the n-step form ``gamma^(k-1) r + gamma^k (1 - done) V(s_{t+k})``;
* :func:`bellman_targets` -- the Bellman updater's computation: ``a* = CEM argmax`` of the
  first target network at ``s'``, ``V(s') = min_i Q_target_i(s', a*)``, then the target above;
* :func:`q_log_loss` -- binary cross-entropy between ``Q`` (given as logits) and soft targets;
* :func:`conservative_penalty` -- an optional CQL-style term that pushes the Q of sampled
  actions down relative to the logged action (not part of QT-Opt or MT-Opt; used when
  ``trainer.conservative_weight > 0``);
* :func:`polyak_update` / :func:`hard_update` -- target-network maintenance.

The rewards are the binary end-of-episode task rewards of MT-Opt (Sec. 3.1), so targets lie in
``[0, 1]`` whenever the Q-values do, which is what the log loss needs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from mtopt.learning.cem import ActionSpec, CEMConfig, cem_maximize
from mtopt.learning.networks import Observation, QNetwork

DEFAULT_GAMMA = 0.9
"""QT-Opt's discount factor."""


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


REDUCTIONS = ("mean", "none")
"""Reductions of the per-row losses: their batch mean, or none (the ``(B,)`` vector)."""


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def clipped_double_q_target(
    reward: torch.Tensor,
    done: torch.Tensor,
    q1_next: torch.Tensor,
    q2_next: torch.Tensor,
    gamma: float = DEFAULT_GAMMA,
) -> torch.Tensor:
    """``reward + gamma * (1 - done) * min(q1_next, q2_next)``, element-wise.

    ``done`` is 1 (or True) for a terminal transition, which is not bootstrapped. All tensors
    share one shape, typically ``(B,)``.
    """
    _check_unit("gamma", gamma)
    shapes = {tuple(t.shape) for t in (reward, done, q1_next, q2_next)}
    if len(shapes) != 1:
        raise ValueError(f"reward, done, q1_next, q2_next must share a shape, got {shapes}")
    not_done = 1.0 - done.to(q1_next.dtype)
    return reward.to(q1_next.dtype) + gamma * not_done * torch.minimum(q1_next, q2_next)


def n_step_target(
    reward: torch.Tensor,
    done: torch.Tensor,
    steps: torch.Tensor,
    v_next: torch.Tensor,
    gamma: float = DEFAULT_GAMMA,
) -> torch.Tensor:
    """``gamma ** (k - 1) * reward + gamma ** k * (1 - done) * v_next``, element-wise.

    The n-step backup under MT-Opt's sparse end-of-episode reward: ``k`` (``steps``) is how
    many steps lie between the transition's state and ``v_next``'s state (``min(n, steps to
    go + 1)``), ``reward`` is the episode's label if it ended within those ``k`` steps (its
    reward arrives on the ``k``-th) and ``done`` says it did. With ``k = 1`` this is
    :func:`clipped_double_q_target` of ``v_next``; a transition that ends its episode within
    ``n`` steps gets its Monte-Carlo return ``label * gamma ** steps_to_go``. The intermediate
    actions are the logged ones, so for ``n > 1`` the target mixes in the behaviour policy
    (uncorrected n-step returns, as in Ape-X and R2D2). All tensors share one shape.
    """
    _check_unit("gamma", gamma)
    shapes = {tuple(t.shape) for t in (reward, done, steps, v_next)}
    if len(shapes) != 1:
        raise ValueError(f"reward, done, steps and v_next must share a shape, got {shapes}")
    if steps.numel() and float(steps.min()) < 1:
        raise ValueError(f"steps must be >= 1, got min {float(steps.min())}")
    k = steps.to(v_next.dtype)
    base = torch.tensor(gamma, dtype=v_next.dtype, device=v_next.device)
    not_done = 1.0 - done.to(v_next.dtype)
    return torch.pow(base, k - 1) * reward.to(v_next.dtype) + torch.pow(base, k) * not_done * v_next


def _select_rows(obs: Observation, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: value.index_select(0, rows) for key, value in obs.items()}


@torch.no_grad()
def bellman_targets(
    target_net_1: QNetwork,
    target_net_2: QNetwork,
    next_obs: Observation,
    next_task: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    cem_config: CEMConfig,
    action_spec: ActionSpec,
    generator: torch.Generator,
    gamma: float = DEFAULT_GAMMA,
    steps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Clipped double-Q targets ``(B,)`` for transitions ending in ``next_obs``.

    ``steps`` ``(B,)`` (default all 1) is the number of steps from each transition to
    ``next_obs`` for n-step returns (:func:`n_step_target`).

    ``a*`` maximises target network 1 at ``s'`` by CEM (the next state is embedded once and its
    embedding tiled over the CEM samples); ``V(s') = min(Q1(s', a*), Q2(s', a*))``. CEM runs only
    on the non-terminal rows (terminal rows get ``target = reward``), so the generator's draws
    depend on which rows are terminal. The generator must live on the networks' device.
    """
    _check_unit("gamma", gamma)
    batch = reward.shape[0]
    if done.shape != (batch,) or next_task.shape != (batch,) or reward.dim() != 1:
        raise ValueError(
            f"reward, done and next_task must have shape (B,), got {tuple(reward.shape)}, "
            f"{tuple(done.shape)} and {tuple(next_task.shape)}"
        )
    reward = reward.float()
    v_next = torch.zeros_like(reward)
    live = torch.nonzero(done.float() < 0.5).squeeze(1)
    if live.numel() > 0:
        obs = _select_rows(next_obs, live)
        task = next_task.index_select(0, live)
        emb_1 = target_net_1.embed(obs, task)
        best_action, q1 = cem_maximize(
            lambda a: target_net_1.q_from_embedding(emb_1, a),
            live.numel(),
            action_spec,
            cem_config,
            generator,
            device=reward.device,
        )
        q2 = target_net_2(obs, best_action, task)
        v_next[live] = torch.minimum(q1, q2)
    if steps is None:
        return clipped_double_q_target(reward, done, v_next, v_next, gamma)
    if steps.shape != (batch,):
        raise ValueError(f"steps must have shape ({batch},), got {tuple(steps.shape)}")
    return n_step_target(reward, done, steps, v_next, gamma)


def q_log_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean binary cross-entropy between ``sigmoid(logits)`` and soft targets in ``[0, 1]``.

    ``-[t log q + (1 - t) log(1 - q)]`` computed from logits for numerical stability. With
    ``weights`` the result is ``mean(weights * loss)`` (weights are not renormalised).
    ``target`` is treated as a constant (detached). ``reduction="none"`` returns the per-row
    losses (shape of ``logits``) instead of their mean.
    """
    _check_reduction(reduction)
    if logits.shape != target.shape:
        raise ValueError(
            f"logits and target must share a shape, got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    target = target.detach().to(logits.dtype)
    if target.numel() and (float(target.min()) < 0.0 or float(target.max()) > 1.0):
        raise ValueError(
            f"targets must be in [0, 1], got values in [{float(target.min())}, "
            f"{float(target.max())}]"
        )
    loss = functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if weights is not None:
        if weights.shape != loss.shape:
            raise ValueError(
                f"weights must have shape {tuple(loss.shape)}, got {tuple(weights.shape)}"
            )
        loss = loss * weights.to(loss.dtype)
    return loss if reduction == "none" else loss.mean()


def _matching_params(
    target: nn.Module, source: nn.Module
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    t_params = dict(target.named_parameters())
    s_params = dict(source.named_parameters())
    if t_params.keys() != s_params.keys():
        missing = sorted(set(t_params) ^ set(s_params))
        raise ValueError(f"target and source have different parameters: {missing[:5]}")
    for name, p in t_params.items():
        if p.shape != s_params[name].shape:
            raise ValueError(
                f"parameter {name!r} shape differs: {tuple(p.shape)} vs "
                f"{tuple(s_params[name].shape)}"
            )
    names = list(t_params)
    return [t_params[n] for n in names], [s_params[n] for n in names]


def conservative_penalty(
    sampled_logits: torch.Tensor,
    data_logits: torch.Tensor,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """``mean_b [tau * log mean_n exp(Q(s_b, a_n) / tau) - Q(s_b, a_b)]`` with ``Q = sigmoid(l)``
    (CQL(H) of Kumar et al. 2020, on the Q-values in [0, 1] with temperature ``tau``).

    ``sampled_logits`` ``(B, N)`` scores ``N`` actions drawn per state (uniformly over the
    action space), ``data_logits`` ``(B,)`` the logged actions. The first term is a soft
    maximum of the sampled actions' Q (a hard maximum as ``tau -> 0``), so the gradient lowers
    whichever sampled actions the network currently over-values -- the ones CEM would pick --
    and raises the logged action. The term works on Q, not on logits, on purpose: on logits its
    pull on the logged action is a constant that the log loss cannot balance once a target is
    within the weight of 1, and logits then grow without bound (measured: the penalty reached
    -2.8e5 within 5,000 steps and Q saturated at 1.000 in empty-gripper states). On Q the pull
    fades as Q approaches 0 or 1, so at equilibrium a logged action's Q exceeds its target by
    at most ``weight / 4``.

    ``reduction="none"`` returns the per-state terms ``(B,)`` instead of their mean.
    """
    _check_reduction(reduction)
    if sampled_logits.dim() != 2 or data_logits.shape != sampled_logits.shape[:1]:
        raise ValueError(
            f"need sampled_logits (B, N) and data_logits (B,), got "
            f"{tuple(sampled_logits.shape)} and {tuple(data_logits.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    n = sampled_logits.shape[1]
    q_sampled = torch.sigmoid(sampled_logits) / temperature
    soft_max = temperature * (torch.logsumexp(q_sampled, dim=1) - math.log(n))
    penalty = soft_max - torch.sigmoid(data_logits)
    return penalty if reduction == "none" else penalty.mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """In place: ``target <- tau * target + (1 - tau) * source`` for every parameter.

    ``tau`` is the fraction of the *target* kept (QT-Opt: 0.9999). Buffers (e.g. norm
    statistics) are copied from ``source``.
    """
    _check_unit("tau", tau)
    t_params, s_params = _matching_params(target, source)
    torch._foreach_mul_(t_params, tau)
    torch._foreach_add_(t_params, s_params, alpha=1.0 - tau)
    for t_buf, s_buf in zip(target.buffers(), source.buffers(), strict=True):
        t_buf.copy_(s_buf)


@torch.no_grad()
def hard_update(target: nn.Module, source: nn.Module) -> None:
    """In place: copy every parameter and buffer of ``source`` into ``target``."""
    t_params, s_params = _matching_params(target, source)
    torch._foreach_copy_(t_params, s_params)
    for t_buf, s_buf in zip(target.buffers(), source.buffers(), strict=True):
        t_buf.copy_(s_buf)
