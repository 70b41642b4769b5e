"""Conservative data sharing (CDS; Yu, Kumar, Chebotar, Hausman, Levine, Finn, NeurIPS 2021).

Sharing every episode with every task (f_all) can hurt offline multi-task RL: the shared
transitions widen the distribution a task's policy is trained on, and a conservative learner's
errors grow with it. CDS shares a transition from another task's data with task ``i`` only when
the conservative Q-function already rates it at least as high as task ``i``'s own data:

    keep (s, a) for task i  iff  Q(s, a, i) >= P_k{ Q(s', a', i) : (s', a') in D_i }

with ``P_k`` the k-th percentile. The shared transition's reward is the target task's label
(from its success detector), as for any impersonated episode.

In mtopt the impersonation function ``cds`` routes every episode to every task and labels it;
the replay marks the rows whose episode was collected for another task (``shared``); the
trainer, which already computes the conservative Q-values (the log loss with the CQL-style
penalty) of the batch's actions, drops the shared rows below the percentile before the loss.

Where ours may differ from the paper: the percentile is taken over the task's own rows *in the
batch*, which needs no pass over the whole dataset (we could not read the paper's full text here
to check its granularity or its value of k); the conservative Q is QT-Opt's with a CQL-style
penalty rather than CQL's; with no own row of a task in the batch there is nothing to compare
with, and the task's shared rows are all kept.
"""

from __future__ import annotations

import torch


def cds_keep_mask(
    q: torch.Tensor, task: torch.Tensor, shared: torch.Tensor, percentile: float
) -> torch.Tensor:
    """Which rows of a batch train their task under CDS: bool ``(B,)``.

    ``q`` holds each row's Q-value (or logit: the sigmoid is monotone) for its own task ``(B,)``,
    ``task`` the rows' task slots and ``shared`` whether each row was impersonated from another
    task's episode. A task's own rows are always kept; its shared rows are kept when their
    ``q`` is at least the ``percentile`` (0-100, linear interpolation) of its own rows' ``q``
    in this batch, or all of them when it has no own row here.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    if not (q.shape == task.shape == shared.shape) or q.dim() != 1:
        raise ValueError(
            f"q, task and shared must have the same shape (B,), got {tuple(q.shape)}, "
            f"{tuple(task.shape)} and {tuple(shared.shape)}"
        )
    shared = shared.bool()
    keep = ~shared
    q = q.detach().float()
    for t in torch.unique(task[shared]).tolist():
        rows = task == t
        own = rows & ~shared
        if not own.any():
            keep = keep | (rows & shared)
            continue
        threshold = torch.quantile(q[own], percentile / 100.0)
        keep = keep | (rows & shared & (q >= threshold))
    return keep
