"""PCGrad: gradient surgery for multi-task learning (Yu et al. 2020, "Gradient Surgery for
Multi-Task Learning", NeurIPS 2020, arXiv:2001.06782).

A multi-task loss ``L = sum_t L_t`` is usually minimised with the gradient of the sum, the sum
of the per-task gradients ``g_t``. When two tasks' gradients conflict (``g_i . g_j < 0``), the
summed step may help one task at the other's expense. PCGrad removes the conflicting component
before summing: for each task ``i``, starting from ``g_i' = g_i`` and visiting the other tasks
``j`` in a random order,

    if g_i' . g_j < 0:   g_i' <- g_i' - (g_i' . g_j) / ||g_j||^2 * g_j

(projection of ``g_i'`` onto the normal plane of the *original* ``g_j``, Algorithm 1 of the
paper), and the update is ``sum_i g_i'``. Gradients that do not conflict are left unchanged, so
without conflicts PCGrad is the plain summed gradient.

In the trainer the task losses are ``L_t = sum_{rows b of task t} loss_b / B`` over a batch
of ``B`` rows, so that ``sum_t L_t`` is the batch-mean loss (:func:`task_gradients`); each task
present in the batch costs a forward and a backward pass over its own rows. The functions here
are pure tensor code: :func:`random_orders` draws the visiting orders from a caller's generator,
:func:`project_conflicting` does the surgery (in the span of the task gradients, on their Gram
matrix: :func:`projection_coefficients`), :func:`conflict_fraction` measures how often
task pairs conflict and :func:`write_flat_grad` stores the result in the parameters' ``.grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch


class TaskGradients(NamedTuple):
    """Flattened per-task gradients of one batch (:func:`task_gradients`)."""

    tasks: torch.Tensor
    """The task slots present in the batch ``(K,)``, ascending."""
    grads: torch.Tensor
    """Row ``k`` is the flat gradient ``(P,)`` of task ``tasks[k]``'s loss: ``(K, P)``."""
    losses: torch.Tensor
    """The task losses ``(K,)`` (detached)."""
    used: tuple[bool, ...]
    """Per parameter: whether any task's loss depends on it (an unused one keeps no ``.grad``,
    as after a plain ``backward``)."""


def task_gradients(
    task: torch.Tensor,
    params: Sequence[torch.Tensor],
    task_loss: Callable[[torch.Tensor], torch.Tensor],
) -> TaskGradients:
    """Per-task gradients of the task losses ``task_loss(rows)`` over the rows of a batch whose
    rows belong to tasks ``task`` ``(B,)``: ``rows`` is the bool mask of one task's rows and
    ``task_loss`` returns that task's scalar loss (e.g. the sum of its rows' losses over ``B``,
    so that the gradients sum to the batch-mean loss's). One ``torch.autograd.grad`` per task
    present; a parameter a task's loss does not reach gets zeros."""
    if task.dim() != 1:
        raise ValueError(f"task must have shape (B,), got {tuple(task.shape)}")
    params = list(params)
    tasks = torch.unique(task)  # sorted
    used = [False] * len(params)
    rows, losses = [], []
    for t in tasks:
        loss_t = task_loss(task == t)
        grads = torch.autograd.grad(loss_t, params, retain_graph=True, allow_unused=True)
        flat = []
        for n, (p, g) in enumerate(zip(params, grads, strict=True)):
            used[n] = used[n] or g is not None
            flat.append(torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1))
        rows.append(torch.cat(flat))
        losses.append(loss_t.detach())
    width = sum(p.numel() for p in params)
    grads = torch.stack(rows) if rows else task.new_zeros((0, width), dtype=torch.float32)
    loss_values = torch.stack(losses) if losses else grads.new_zeros(0)
    return TaskGradients(tasks, grads, loss_values, tuple(used))


def random_orders(num_tasks: int, generator: torch.Generator) -> torch.Tensor:
    """``(K, K)``: row ``i`` a random permutation of ``0..K-1`` drawn from ``generator`` (on
    its device), the order in which task ``i`` visits the others (its own index is skipped)."""
    keys = torch.rand(num_tasks, num_tasks, generator=generator, device=generator.device)
    return torch.argsort(keys, dim=1)


def projection_coefficients(gram: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """PCGrad in the span of the task gradients: ``C`` ``(K, K)`` with ``g_i' = sum_k C[i, k]
    g_k``, from their Gram matrix ``gram[i, j] = g_i . g_j`` ``(K, K)``.

    ``order`` ``(K, K)``: row ``i`` lists the tasks in the order task ``i`` visits them (a
    permutation of ``0..K-1``, e.g. from :func:`random_orders`; the entry ``i`` is skipped).
    Visiting ``j``, ``g_i' . g_j = sum_k C[i, k] gram[k, j]``, and a conflict subtracts
    ``(g_i' . g_j) / gram[j, j]`` from ``C[i, j]``: a projection against the *original*
    ``g_j``. Tasks with a zero gradient are skipped. All tasks advance one visit at a time, as
    a batch, without host-device synchronisation.
    """
    k = gram.shape[0]
    if gram.shape != (k, k):
        raise ValueError(f"gram must be square (K, K), got shape {tuple(gram.shape)}")
    if order.shape != (k, k):
        raise ValueError(f"order must have shape ({k}, {k}), got {tuple(order.shape)}")
    order = order.to(gram.device)
    norm2 = torch.diagonal(gram)
    safe_norm2 = torch.where(norm2 > 0, norm2, torch.ones_like(norm2))
    rows = torch.arange(k, device=gram.device)
    coef = torch.eye(k, dtype=gram.dtype, device=gram.device)
    for step in range(k):
        other = order[:, step]  # the task each row visits now
        dots = (coef * gram[:, other].T).sum(dim=1)  # g_i' . g_other[i]
        active = (other != rows) & (norm2[other] > 0) & (dots < 0)
        shift = torch.where(active, dots / safe_norm2[other], torch.zeros_like(dots))
        coef = coef.index_put((rows, other), -shift, accumulate=True)
    return coef


def project_conflicting(grads: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """PCGrad's projected per-task gradients ``(K, P)`` of the per-task gradients ``grads``;
    the update is the sum of the rows.

    ``order`` ``(K, K)`` gives each task's visiting order (:func:`projection_coefficients`).
    The surgery runs on the ``K x K`` Gram matrix, so its cost beyond one ``(K, P)`` Gram
    product and one ``(K, K) @ (K, P)`` product does not grow with ``P``.
    """
    if grads.dim() != 2:
        raise ValueError(f"grads must be (K, P), got shape {tuple(grads.shape)}")
    coef = projection_coefficients(grads @ grads.T, order)
    return coef @ grads


def conflict_fraction(grads: torch.Tensor) -> torch.Tensor:
    """The fraction of task pairs ``i < j`` whose gradients (rows of ``grads`` ``(K, P)``)
    conflict, ``g_i . g_j < 0`` (a 0-d tensor; 0 with fewer than 2 tasks)."""
    k = grads.shape[0]
    if k < 2:
        return grads.new_zeros(())
    gram = grads @ grads.T
    i, j = torch.triu_indices(k, k, offset=1, device=grads.device)
    return (gram[i, j] < 0).to(grads.dtype).mean()


@torch.no_grad()
def write_flat_grad(
    params: Sequence[torch.Tensor], flat: torch.Tensor, used: Sequence[bool] | None = None
) -> None:
    """Store the flat gradient ``flat`` ``(P,)`` in the parameters' ``.grad`` (in order).

    Parameters marked unused in ``used`` (default: all used) get ``.grad = None``.
    """
    params = list(params)
    width = sum(p.numel() for p in params)
    if flat.shape != (width,):
        raise ValueError(f"flat must have shape ({width},), got {tuple(flat.shape)}")
    used = [True] * len(params) if used is None else list(used)
    if len(used) != len(params):
        raise ValueError(f"used has {len(used)} entries for {len(params)} parameters")
    offset = 0
    for p, is_used in zip(params, used, strict=True):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if is_used else None
        offset += n
