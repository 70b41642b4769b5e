"""Probe a learned Q-function with hand-picked actions in a state the greedy policy reached.

    python benchmarks/probe_actions.py --checkpoint CKPT --task lift-any --seed 10001 \
        --episode 16 --step 8 [--episode 15 --step 8 ...] [--cem 3 128 12]

Replays evaluation episode K (the protocol's scene and seed for the task) with the greedy CEM
policy for T steps, then prints Q of a fixed set of actions in the state reached: pushing
down, closing, lifting, turning the wrist, moving sideways, and the best of 4,096 uniformly
drawn actions. The point is to see whether the Q-function ranks an escape above the action it
keeps choosing when the gripper is stuck (docs/RESULTS.md, session 10). The fingers' object
contacts (ground truth, for analysis only) are printed beside.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.evaluation.protocol import ProtocolConfig, episode_seed
from mtopt.learning.cem import WORKCELL_ACTION_SPEC, CEMConfig, sample_uniform_actions
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import default_task_set

PROBES: dict[str, tuple[float, ...]] = {
    "push down": (0, 0, -1, 0, 0, 0),
    "close here": (0, 0, 0, 0, 1, 0),
    "close + down": (0, 0, -1, 0, 1, 0),
    "up": (0, 0, 1, 0, 0, 0),
    "turn +": (0, 0, 0, 1, 0, 0),
    "turn -": (0, 0, 0, -1, 0, 0),
    "up + turn +": (0, 0, 1, 1, 0, 0),
    "up + turn -": (0, 0, 1, -1, 0, 0),
    "down + turn +": (0, 0, -1, 1, 0, 0),
    "down + turn -": (0, 0, -1, -1, 0, 0),
    "x +": (1, 0, 0, 0, 0, 0),
    "x -": (-1, 0, 0, 0, 0, 0),
    "y +": (0, 1, 0, 0, 0, 0),
    "y -": (0, -1, 0, 0, 0, 0),
}
"""Probed actions: dx, dy, dz, dyaw (normalised to [-1, 1]), close, terminate."""

RANDOM_ACTIONS = 4096
"""Uniformly drawn actions whose best is printed as a reference."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--task", default="lift-any")
    p.add_argument("--seed", type=int, default=ProtocolConfig().seed)
    p.add_argument("--episode", type=int, action="append", required=True)
    p.add_argument("--step", type=int, action="append", required=True)
    p.add_argument("--cem", type=int, nargs=3, default=None, metavar=("ITERS", "SAMPLES", "ELITES"))
    args = p.parse_args()
    if len(args.episode) != len(args.step):
        p.error(f"give one --step per --episode, got {args.episode} and {args.step}")

    torch.set_num_threads(1)
    task_set = default_task_set()
    task_set.validate([args.task])
    slot = task_set.slot(args.task)
    policy = load_q_policy(args.checkpoint, cem=CEMConfig(*args.cem) if args.cem else None)
    env = WorkcellEnv(WorkcellConfig())
    probes = torch.tensor(list(PROBES.values()), dtype=torch.float32)[None]
    gen = torch.Generator().manual_seed(args.seed)
    for k, steps in zip(args.episode, args.step, strict=True):
        seed = episode_seed(args.seed, slot, k)
        obs, _ = env.reset(seed=seed, options={"scene": "evaluation", "task": args.task})
        policy.reset(np.random.default_rng(seed), task=args.task)
        for _ in range(steps):
            obs, *_ = env.step(policy.act(obs))
        batch = {key: torch.from_numpy(np.asarray(obs[key])[None]) for key in obs}
        drawn = sample_uniform_actions(
            WORKCELL_ACTION_SPEC, 1, RANDOM_ACTIONS, gen, torch.device("cpu")
        )
        with torch.no_grad():
            score = policy.network.score_fn(batch, torch.tensor([slot]))
            q = score(probes).reshape(-1)
            q_drawn = score(drawn).reshape(-1)
        facts = env.scene_facts()
        print(
            f"episode {k} after {steps} steps: motion {np.round(obs['gripper_motion'], 4)}, "
            f"left finger on objects {np.flatnonzero(facts.touch_left).tolist()}, "
            f"right finger on {np.flatnonzero(facts.touch_right).tolist()}"
        )
        for name, value in zip(PROBES, q, strict=True):
            print(f"  {name:14s} Q {float(value):.3f}")
        i = int(q_drawn.argmax())
        best = np.array2string(drawn[0, i].numpy(), precision=2, suppress_small=True)
        print(f"  best of {RANDOM_ACTIONS} drawn: {best} Q {float(q_drawn[i]):.3f}")


if __name__ == "__main__":
    main()
