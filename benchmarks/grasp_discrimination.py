"""Does a checkpoint's Q-function know a good grasp from a bad one at the moment of closing?

    python benchmarks/grasp_discrimination.py --checkpoint CKPT --log LOG [--episodes 3000]

For every lift-skill episode of the log it finds the *closing steps*: steps where the gripper
is open in ``s_t`` and the logged action closes it. Whether the fingers closed on something is
read from the finger opening in ``s_{t+1}`` (an empty close shuts the fingers completely).
Ground truth is read here only for analysis.

It prints the area under the ROC curve (AUC: 0.5 = no better than chance, 1.0 = a perfect
ranking) of three scores for "the close caught an object":

* ``Q(s_t, a_t)`` for ``lift-any``, the network's value of closing there;
* the same for the episode's eventual ``lift-any`` success;
* a hand-made geometric cue: minus the horizontal distance from the gripper to the nearest
  present object. This shows how much a simple reading of the state already separates them.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtopt.data.log import EpisodeLogReader
from mtopt.envs.workcell_config import nearest_object_offset
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

EMPTY_OPENING = 0.005
"""Finger opening (m) below which a closed gripper holds nothing."""


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for binary ``label`` (ties count one half): the
    probability that a random positive scores above a random negative."""
    pos, neg = score[label][:, None], score[~label][None, :]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def nearest_object_distance(state: np.ndarray) -> float:
    """Horizontal distance (m) from the gripper to the nearest present object."""
    return float(np.linalg.norm(nearest_object_offset(state)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--episodes", type=int, default=3000)
    args = p.parse_args()
    torch.set_num_threads(1)
    task_set = default_task_set()
    policy = load_q_policy(args.checkpoint)
    net, keys = policy.network, policy.obs_keys
    slot = task_set.slot("lift-any")
    q, held, success, dist = [], [], [], []
    n = 0
    for ep in EpisodeLogReader(args.log).episodes(load_images=False):
        if task_set[ep.task].skill != OBJECT_ACQUISITION:
            continue
        status = ep.observations["gripper_status"][:-1, 0]
        closing = np.flatnonzero((status < 0.5) & (ep.actions[:, 4] > 0.5))
        if len(closing) == 0:
            continue
        obs = {k: torch.from_numpy(ep.observations[k][closing]) for k in keys}
        with torch.no_grad():
            score = net.score_fn(obs, torch.full((len(closing),), slot))
            q += score(torch.from_numpy(ep.actions[closing])[:, None])[:, 0].tolist()
        state = ep.observations["state"]
        held += (state[closing + 1, 5] > EMPTY_OPENING).tolist()
        ok = bool(ep.success[list(ep.success_tasks).index("lift-any")])
        success += [ok] * len(closing)
        dist += [nearest_object_distance(state[t]) for t in closing]
        n += 1
        if n >= args.episodes:
            break
    q_a, held_a, success_a = np.array(q), np.array(held), np.array(success)
    d = -np.array(dist)
    print(f"{n} lift episodes, {len(q_a)} closing steps, {held_a.mean():.1%} caught an object")
    print(
        f"mean Q when the close caught an object {q_a[held_a].mean():.3f}, "
        f"when it closed on nothing {q_a[~held_a].mean():.3f}"
    )
    print(f"{'score':32s} {'AUC caught':>10s} {'AUC success':>11s}")
    for name, s in (("Q(s, a_close), lift-any", q_a), ("-distance to nearest object", d)):
        print(f"{name:32s} {auc(s, held_a):10.3f} {auc(s, success_a):11.3f}")


if __name__ == "__main__":
    main()
