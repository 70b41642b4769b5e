"""How long the episodes of a log take, split by skill, policy kind and outcome.

    python benchmarks/episode_lengths.py RUN/log

For every skill (lift tasks, judged by ``lift-any``; place tasks, judged by ``place-any``) and
both policy kinds (the scripted bootstrap, the learned checkpoints), prints the success rate
and the 10th / 50th / 90th percentile of the number of steps of the successful and of the
failed episodes. With Monte-Carlo targets a success after ``k`` steps is worth
``gamma ** (k - 1)`` at its first step, so these lengths say how much the discount weighs
(docs/RESULTS.md, session 18). Ground-truth success is read here only for analysis.
"""

from __future__ import annotations

import argparse

import numpy as np

from mtopt.data.episode import CHECKPOINT_POLICY_PREFIX
from mtopt.data.log import EpisodeLogReader

SKILLS = {"lift": "lift-any", "place": "place-any"}
"""Skill (task-name prefix) and the broad task whose success judges its episodes."""


def _percentiles(steps: np.ndarray) -> str:
    if steps.size == 0:
        return "-"
    return " / ".join(f"{v:.0f}" for v in np.percentile(steps, [10, 50, 90]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("log", help="episode-log directory")
    args = p.parse_args()
    table = EpisodeLogReader(args.log).metadata()
    tasks = np.asarray(table.column("task").to_pylist())
    policies = table.column("policy").to_pylist()
    learned = np.asarray([q.startswith(CHECKPOINT_POLICY_PREFIX) for q in policies])
    steps = np.asarray(table.column("num_steps").to_pylist())
    names = table.column("success_tasks").to_pylist()
    success = np.asarray(table.column("success").to_pylist(), dtype=bool)
    print("skill  policy    episodes  success  steps of successes p10/50/90  of failures")
    for skill, judge in SKILLS.items():
        of_skill = np.char.startswith(tasks, skill)
        won = np.asarray([s[list(n).index(judge)] for s, n in zip(success, names, strict=True)])
        for kind, mask in (("scripted", ~learned), ("learned", learned)):
            m = of_skill & mask
            if not m.any():
                continue
            w = won[m]
            print(
                f"{skill:6s} {kind:9s} {int(m.sum()):8d}  {w.mean():7.3f}  "
                f"{_percentiles(steps[m][w]):>28s}  {_percentiles(steps[m][~w]):>11s}"
            )


if __name__ == "__main__":
    main()
