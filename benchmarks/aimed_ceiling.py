"""How well can the workcell be solved at all? Aimed controllers as a ceiling per task.

    python benchmarks/aimed_ceiling.py --episodes 100 [--tasks lift-any place-any] \
        [--workcell.impratio 1 --workcell.noslip-iterations 0]

Runs :class:`mtopt.envs.aimed.AimedPickPolicy` on lift tasks (object poses from the
``state`` observation, a clearance-aware top-down grasp) and
:class:`mtopt.envs.aimed.AimedPlacePolicy` on place tasks (release over the middle of the
task's plate section), with the evaluation protocol's seeds and scenes, and sorts every lift
attempt by how it ended (ground truth is read only to score): ``success``; ``gave-up`` (every
wanted object was blocked for a top-down descent); ``timeout`` (20 steps ran out before
closing); ``dropped`` (held at some step, not at the end); ``closed-empty``. It tells whether
the issue's 0.85 on ``lift-any`` and ``place-any`` is reachable with 20 steps of the
workcell's action space, and which failures are physical.
"""

from __future__ import annotations

import platform
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import tyro

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.evaluation.protocol import ProtocolConfig, episode_seed
from mtopt.envs.aimed import AimedPickPolicy, AimedPlacePolicy
from mtopt.tasks import default_task_set


@dataclass(frozen=True)
class Args:
    """Aimed-picker ceiling on the evaluation scene."""

    tasks: tuple[str, ...] = ()
    """Tasks to run (default: all 12)."""
    episodes: int = 100
    """Attempts per task."""
    seed: int = ProtocolConfig().seed
    """Base seed of the evaluation protocol."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The workcell (e.g. the pre-fix contact settings: ``--workcell.impratio 1
    --workcell.noslip-iterations 0``)."""


def main(args: Args) -> None:
    task_set = default_task_set()
    tasks = list(args.tasks) or list(task_set.names)
    task_set.validate(tasks)
    env = WorkcellEnv(args.workcell)
    pick, place = AimedPickPolicy(args.workcell), AimedPlacePolicy(args.workcell)
    print(
        f"aimed_ceiling  episodes={args.episodes}  seed={args.seed}  "
        f"impratio={args.workcell.impratio}  noslip={args.workcell.noslip_iterations}  "
        f"python={platform.python_version()}"
    )
    for task in tasks:
        slot = task_set.slot(task)
        lift = task.startswith("lift-")
        policy = pick if lift else place
        options = {"scene": "evaluation", "task": task, "grasped": not lift}
        outcomes: Counter[str] = Counter()
        for k in range(args.episodes):
            seed = episode_seed(args.seed, slot, k)
            obs, info = env.reset(seed=seed, options=options)
            policy.reset(np.random.default_rng(seed), task=task)
            done, held_once, closed = False, False, False
            while not done:
                action = policy.act(obs)
                closed |= bool(action[4] >= 0.5)
                obs, _r, terminated, truncated, info = env.step(action)
                facts = env.scene_facts()
                held_once |= bool(np.any(facts.touch_left & facts.touch_right))
                done = terminated or truncated
            if info["success"][slot]:
                outcomes["success"] += 1
            elif not lift:
                outcomes["missed"] += 1
            elif not closed:
                outcomes["timeout" if truncated else "gave-up"] += 1
            else:
                outcomes["dropped" if held_once else "closed-empty"] += 1
        n = args.episodes
        modes = ", ".join(f"{m} {c}" for m, c in outcomes.most_common() if m != "success")
        print(f"{task:14s} {outcomes['success']:4d}/{n} = {outcomes['success'] / n:.2f}  {modes}")
    env.close()


if __name__ == "__main__":
    main(tyro.cli(Args))
