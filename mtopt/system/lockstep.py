"""Robots side by side in one process: one batched action search per step.

Acting with a learned Q-policy costs a CEM over the Q-network at every step, and on a CPU a CEM
for one state is dominated by per-call overhead: scoring 8 states' samples in one call costs
about 3 times one state's (the workcell's ``objects-action`` network, CEM 3 × 128, one torch
thread; docs/RESULTS.md). A fleet process that simulates several robots therefore steps them
together: every robot runs its own episodes (its own task draws, scenes, ε draws and log
writer, exactly as when it runs alone), and at each step the robots that act with the
Q-policy get their actions from one CEM over all of their states
(:meth:`~mtopt.policies.q_policy.QPolicy.act_together`). Robots acting with a scripted
policy are stepped one by one. Robots that finish their episodes drop out of the batch.

The CEM samples come from one generator per process, so an episode's actions depend on which
robots share its process (deterministically: the same seed and ``robots_per_process`` give the
same log). A process with one robot runs it alone, each episode's CEM drawing from its own
generator, as before lockstep existed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from mtopt.data.episode import Episode
from mtopt.system.robot import ActRequest, Robot


def lockstep_episodes(
    robots: Sequence[Robot], counts: Sequence[int], seed: int
) -> Iterator[tuple[int, Episode]]:
    """Run ``counts[i]`` episodes (chained ones included) on each robot ``robots[i]`` side by
    side; yield ``(i, episode)`` as episodes finish. The batched action search draws from a
    generator seeded by ``seed``."""
    if len(robots) != len(counts):
        raise ValueError(f"need one count per robot, got {len(robots)} robots, {len(counts)}")
    coroutines = [robot.collection(count) for robot, count in zip(robots, counts, strict=True)]
    pending: dict[int, ActRequest] = {}
    finished: list[tuple[int, Episode]] = []

    def advance(i: int, reply: np.ndarray | None) -> None:
        while True:
            try:
                item = coroutines[i].send(reply)
            except StopIteration:
                pending.pop(i, None)
                return
            if isinstance(item, Episode):
                finished.append((i, item))
                reply = None
                continue
            pending[i] = item
            return

    for i in range(len(coroutines)):
        advance(i, None)
    generators: dict[int, object] = {}
    while finished or pending:
        yield from finished
        finished.clear()
        if not pending:
            break
        order = sorted(pending)
        actions = act_for([pending[i] for i in order], generators, seed)
        for i, action in zip(order, actions, strict=True):
            advance(i, action)


def act_for(
    requests: Sequence[ActRequest], generators: dict[int, object], seed: int
) -> list[np.ndarray]:
    """The actions of ``requests``: one :meth:`act_together` call per shared network for the
    policies that have it (the Q-policies), ``policy.act`` for the others. ``generators``
    caches the CEM generator of each network (seeded by ``seed``)."""
    actions: list[np.ndarray | None] = [None] * len(requests)
    groups: dict[int, list[int]] = {}
    for i, request in enumerate(requests):
        if hasattr(request.policy, "act_together"):
            groups.setdefault(id(request.policy.network), []).append(i)
        else:
            actions[i] = np.asarray(request.policy.act(request.obs), dtype=np.float32)
    for key, members in groups.items():
        policies = [requests[i].policy for i in members]
        if key not in generators:
            generators[key] = policies[0].generator_for(seed)
        together = policies[0].act_together(
            policies, [requests[i].obs for i in members], generators[key]
        )
        for row, i in enumerate(members):
            actions[i] = together[row]
    return actions  # type: ignore[return-value]
