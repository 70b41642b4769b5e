"""How well do a checkpoint's Q-values match what actually happened?

    python benchmarks/q_calibration.py --checkpoint CKPT --log LOG [--task lift-any]
        [--episodes 2000] [--skill-episodes]

For episodes of the log (ground truth read here only for analysis) it compares, per step
``t`` of an episode of ``T`` steps:

* ``Q(s_t, a_t)``, the network on the logged action, with the Monte-Carlo return
  ``gamma**(T-1-t) * success`` of that episode for ``--task``;
* ``max_a Q(s_t, a)`` found by CEM (what the greedy policy believes it can get).

Printed per outcome (successful / failed episodes) and for the first step: the means of
both, which shows over-estimation (Q far above the return on failures) and how much CEM
finds above the data's actions.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtopt.data.log import EpisodeLogReader
from mtopt.learning.cem import WORKCELL_ACTION_SPEC, CEMConfig, cem_maximize
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import default_task_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--task", default="lift-any")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--gamma", type=float, default=0.9)
    args = p.parse_args()
    torch.set_num_threads(1)
    task_set = default_task_set()
    task_set.validate([args.task])
    skill = task_set[args.task].skill
    policy = load_q_policy(args.checkpoint)
    net, keys = policy.network, policy.obs_keys
    slot = task_set.slot(args.task)
    gen = torch.Generator().manual_seed(0)
    rows = []  # (success, t, q_data, q_max, mc)
    n = 0
    for ep in EpisodeLogReader(args.log).episodes(load_images=False):
        if task_set[ep.task].skill != skill:
            continue
        success = bool(ep.success[list(ep.success_tasks).index(args.task)])
        steps = len(ep.actions)
        obs = {k: torch.from_numpy(ep.observations[k][:steps]) for k in keys}
        task = torch.full((steps,), slot)
        with torch.no_grad():
            score = net.score_fn(obs, task)
            q_data = score(torch.from_numpy(ep.actions)[:, None])[:, 0].numpy()
            best, _ = cem_maximize(
                score, steps, WORKCELL_ACTION_SPEC, CEMConfig(), gen, torch.device("cpu")
            )
            q_max = score(best[:, None])[:, 0].numpy()
        for t in range(steps):
            mc = args.gamma ** (steps - 1 - t) * float(success)
            rows.append((success, t, q_data[t], q_max[t], mc))
        n += 1
        if n >= args.episodes:
            break
    a = np.array(rows, dtype=float)
    print(f"{args.task}: {n} episodes of skill {skill}, {len(a)} steps")
    print(f"{'subset':22s} {'steps':>6s} {'MC return':>9s} {'Q(s,a_data)':>11s} {'max_a Q':>8s}")
    for name, mask in (
        ("successful episodes", a[:, 0] == 1),
        ("failed episodes", a[:, 0] == 0),
        ("first step, all", a[:, 1] == 0),
        ("all steps", np.ones(len(a), bool)),
    ):
        s = a[mask]
        print(
            f"{name:22s} {len(s):6d} {s[:, 4].mean():9.3f} {s[:, 2].mean():11.3f} "
            f"{s[:, 3].mean():8.3f}"
        )


if __name__ == "__main__":
    main()
