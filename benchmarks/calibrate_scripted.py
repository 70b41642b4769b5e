"""Success rates of the scripted bootstrap policies (paper App. 7.2: picking ~10 %, placing 47 %).

Scripted picking is scored on ``lift-any`` after a random reset; scripted placing on
``place-any`` after a ``grasped=True`` reset. Prints each rate with its Wilson 95 % interval.

    python benchmarks/calibrate_scripted.py --episodes 500 --seed 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tyro
from tqdm import tqdm

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.envs.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)


@dataclass(frozen=True)
class Args:
    """Calibration of the scripted policies."""

    episodes: int = 500
    """Episodes per policy."""
    seed: int = 0
    """Seed of the episode seeds and the policies' noise."""
    pick: ScriptedPickConfig = field(default_factory=ScriptedPickConfig)
    """Scripted picking parameters."""
    place: ScriptedPlaceConfig = field(default_factory=ScriptedPlaceConfig)
    """Scripted placing parameters."""
    env: WorkcellConfig = field(default_factory=WorkcellConfig)
    """Workcell parameters."""


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def success_count(env, policy, task: str, options: dict, episodes: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    slot = env.task_names.index(task)
    wins = 0
    for _ in tqdm(range(episodes), desc=task, leave=False, disable=None):
        obs, _ = env.reset(seed=int(rng.integers(2**31)), options=options)
        policy.reset(rng)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            done = terminated or truncated
        wins += bool(info["success"][slot])
    return wins


def main(args: Args) -> None:
    env = WorkcellEnv(args.env)
    runs = (
        ("scripted pick ", ScriptedPickPolicy(args.pick), "lift-any", {}),
        ("scripted place", ScriptedPlacePolicy(args.place), "place-any", {"grasped": True}),
    )
    print(f"calibrate_scripted  episodes={args.episodes}  seed={args.seed}")
    for name, policy, task, options in runs:
        wins = success_count(env, policy, task, options, args.episodes, args.seed)
        lo, hi = wilson(wins, args.episodes)
        print(
            f"{name} {task:<10} {wins:4d}/{args.episodes}  rate {wins / args.episodes:.3f}"
            f"  95% CI [{lo:.3f}, {hi:.3f}]"
        )


if __name__ == "__main__":
    main(tyro.cli(Args))
