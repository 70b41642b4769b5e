"""What a greedy policy would gain by acting differently right after a blocked descent.

    python benchmarks/blocked_interventions.py --checkpoint CKPT --task lift-any \
        --episodes 100 --seed 10000 [--cem 3 128 12] [--intervention none close up ...]

Runs the greedy CEM policy on the evaluation protocol's scenes and seeds. At every step right
after a blocked descent (``mtopt.policies.q_policy.blocked_descent``, which reads only the
observation and the policy's own last action) the intervention replaces the greedy action:

* ``none``: the greedy action (the control: the same attempts as ``mtopt eval``, which draws
  the policy's randomness from the same seeds);
* ``close``: close the gripper where it is;
* ``up``: lift by a full step;
* ``up-turn``: ``mtopt.policies.q_policy.escape_motion``: lift by a full step and turn the
  wrist by a full step either way (±max_yaw), gripper open.

It prints the success rate of each, with the Wilson 95 % interval, and how many steps were
replaced. Ground-truth success is read here only to score the attempts. A better outcome
under an intervention means the Q-function undervalues that action in the states where it
pushes instead.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch
from tqdm import tqdm

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.evaluation.protocol import ProtocolConfig, episode_seed, run_task_episode
from mtopt.evaluation.summary import wilson_interval
from mtopt.learning.cem import CEMConfig
from mtopt.policies.q_policy import QPolicy, blocked_descent, escape_motion, load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

logger = logging.getLogger("blocked_interventions")

INTERVENTIONS = ("none", "close", "up", "up-turn")


def replacement(kind: str, rng: np.random.Generator) -> np.ndarray | None:
    """The action an intervention takes at a blocked step (``None``: keep the greedy one)."""
    if kind == "none":
        return None
    if kind == "close":
        return np.array([0, 0, 0, 0, 1, 0], np.float32)
    if kind == "up":
        return np.array([0, 0, 1, 0, 0, 0], np.float32)
    if kind == "up-turn":
        return np.concatenate([escape_motion(rng), np.zeros(2, np.float32)])
    raise ValueError(f"intervention must be one of {INTERVENTIONS}, got {kind!r}")


class InterventionPolicy:
    """The greedy policy with its action replaced right after every blocked descent."""

    def __init__(self, policy: QPolicy, kind: str, max_translation: float) -> None:
        self.policy, self.kind, self.max_translation = policy, kind, max_translation
        self.replaced = 0
        self._rng = np.random.default_rng(0)
        self._last: np.ndarray | None = None

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an attempt: the greedy policy draws from ``rng``; the interventions draw from
        a stream of their own, seeded from ``rng``'s seed without drawing from it, so ``none``
        leaves the attempt exactly as ``mtopt eval`` runs it."""
        self._rng = np.random.default_rng([rng.bit_generator.seed_seq.entropy, 1])
        self.policy.reset(rng, task=task)
        self._last = None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The greedy action, or the intervention's after a blocked descent."""
        action = self.policy.act(obs)
        height = float(obs["gripper_height"][0])
        if blocked_descent(self._last, obs["gripper_motion"], height, self.max_translation):
            forced = replacement(self.kind, self._rng)
            if forced is not None:
                action, self.replaced = forced, self.replaced + 1
        self._last = action
        return action


def run(
    checkpoint: str, task: str, episodes: int, seed: int, cem: CEMConfig | None, kind: str
) -> tuple[int, int]:
    """``(successes, replaced steps)`` of ``episodes`` attempts under intervention ``kind``."""
    task_set = default_task_set()
    slot = task_set.slot(task)
    config = WorkcellConfig()
    env = WorkcellEnv(config)
    policy = InterventionPolicy(load_q_policy(checkpoint, cem=cem), kind, config.max_translation)
    successes = 0
    for k in tqdm(range(episodes), desc=kind, leave=False, disable=None):
        successes += run_task_episode(env, policy, task, episode_seed(seed, slot, k), task_set)
    return successes, policy.replaced


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--task", default="lift-any")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=ProtocolConfig().seed)
    p.add_argument("--cem", type=int, nargs=3, default=None, metavar=("ITERS", "SAMPLES", "ELITES"))
    p.add_argument("--intervention", nargs="+", default=list(INTERVENTIONS), choices=INTERVENTIONS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    task_set = default_task_set()
    task_set.validate([args.task])
    if task_set[args.task].skill != OBJECT_ACQUISITION:
        lifts = list(task_set.tasks_of_skill(OBJECT_ACQUISITION))
        p.error(f"--task must be an object-acquisition task {lifts}, got {args.task!r}")
    cem = CEMConfig(*args.cem) if args.cem else None
    logger.info("| intervention | success | 95 % CI | replaced steps |\n|---|---:|---|---:|")
    for kind in args.intervention:
        ok, replaced = run(args.checkpoint, args.task, args.episodes, args.seed, cem, kind)
        lo, hi = wilson_interval(ok, args.episodes)
        logger.info("| %s | %.2f | [%.2f, %.2f] | %d |", kind, ok / args.episodes, lo, hi, replaced)


if __name__ == "__main__":
    main()
