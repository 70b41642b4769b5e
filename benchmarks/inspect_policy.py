"""Diagnose a learned policy: per-step trace and failure modes on the evaluation scene.

    python benchmarks/inspect_policy.py --checkpoint RUN/checkpoints/step-N.pt \
        --task lift-any --episodes 50 [--trace 3] [--cem 3 128 12]

Runs the greedy CEM policy with the evaluation protocol's seeds and classifies every
attempt of an object-acquisition task by how it ended (ground truth is read here only for
analysis):

* ``success``;
* ``closed-empty``: the gripper closed with no object between the pads;
* ``closed-high``: the first close happened with the finger tips above 4 cm;
* ``dropped``: an object was grasped at some step but not at the end;
* ``not-lifted``: an object is grasped at the end but below the lift height;
* ``never-closed``: the gripper never closed.

Place tasks are classified by the release height and whether the object ends on the plate.
``--trace K`` prints the first K episodes step by step (height, nearest-object offset,
action, Q of the chosen action).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.evaluation.protocol import ProtocolConfig, episode_seed
from mtopt.learning.cem import CEMConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set


def _nearest_offset(state: np.ndarray, layout: dict[str, slice], n_slots: int) -> np.ndarray:
    grip = state[layout["gripper_pos"]]
    best = np.full(3, np.nan)
    for i in range(n_slots):
        block = state[layout[f"object{i}"]]
        if block[-1] < 0.5:
            continue
        off = block[:3] - grip
        if np.isnan(best[0]) or np.linalg.norm(off[:2]) < np.linalg.norm(best[:2]):
            best = off
    return best


def _holding(env: WorkcellEnv) -> bool:
    facts = env.scene_facts()
    return bool(np.any(facts.touch_left & facts.touch_right))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--task", default="lift-any")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--trace", type=int, default=2)
    p.add_argument("--seed", type=int, default=ProtocolConfig().seed)
    p.add_argument("--cem", type=int, nargs=3, default=None, metavar=("ITERS", "SAMPLES", "ELITES"))
    args = p.parse_args()

    torch.set_num_threads(1)
    task_set = default_task_set()
    task_set.validate([args.task])
    cem = CEMConfig(*args.cem) if args.cem else None
    policy = load_q_policy(args.checkpoint, cem=cem)
    env = WorkcellEnv(WorkcellConfig())
    layout, n_slots = env.state_layout, env.config.n_slots
    slot = task_set.slot(args.task)
    acquisition = task_set[args.task].skill == OBJECT_ACQUISITION
    outcomes: Counter[str] = Counter()
    lengths = []
    for k in range(args.episodes):
        seed = episode_seed(args.seed, slot, k)
        options = {"scene": "evaluation", "task": args.task}
        if not acquisition:
            options["grasped"] = True
        obs, info = env.reset(seed=seed, options=options)
        policy.reset(np.random.default_rng(seed), task=args.task)
        first_close_z, ever_grasped, release_z, done, t = None, False, None, False, 0
        while not done:
            action = policy.act(obs)
            state = obs["state"]
            z = float(state[layout["gripper_pos"]][2])
            if action[4] >= 0.5 and first_close_z is None:
                first_close_z = z
            if action[4] < 0.5 and obs["gripper_status"][0] > 0.5 and release_z is None:
                release_z = z
            if k < args.trace:
                batch = {key: torch.from_numpy(np.asarray(obs[key])[None]) for key in obs}
                with torch.no_grad():
                    q = policy.network.score_fn(batch, torch.tensor([slot]))(
                        torch.from_numpy(action)[None, None]
                    )
                off = _nearest_offset(state, layout, n_slots)
                print(
                    f"ep {k} t {t:2d} z {z:.3f} open {state[layout['gripper_opening']][0]:.3f} "
                    f"near ({off[0]:+.3f},{off[1]:+.3f},{off[2]:+.3f}) "
                    f"a {np.array2string(action, precision=2, suppress_small=True)} "
                    f"Q {float(q.reshape(-1)[0]):.3f}"
                )
            obs, _r, terminated, truncated, info = env.step(action)
            ever_grasped |= _holding(env)
            done = terminated or truncated
            t += 1
        success = bool(info["success"][list(info["task_names"]).index(args.task)])
        lengths.append(t)
        if success:
            outcome = "success"
        elif acquisition:
            held = _holding(env)
            if first_close_z is None:
                outcome = "never-closed"
            elif first_close_z > 0.04:
                outcome = "closed-high"
            elif held:
                outcome = "not-lifted"
            elif ever_grasped:
                outcome = "dropped"
            else:
                outcome = "closed-empty"
        else:
            if release_z is None:
                outcome = "never-released"
            elif release_z > 0.10:
                outcome = "released-high"
            else:
                outcome = "missed-plate"
        outcomes[outcome] += 1
        if k < args.trace:
            print(f"ep {k}: {outcome} after {t} steps")
    n = args.episodes
    print(f"\n{args.task}: {outcomes['success']}/{n} successes; mean length {np.mean(lengths):.1f}")
    for name, count in outcomes.most_common():
        print(f"  {name:15s} {count:4d}  {count / n:.2f}")


if __name__ == "__main__":
    main()
