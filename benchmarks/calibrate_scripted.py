"""Success rates of the scripted bootstrap policies (paper App. 7.2: picking ~10 %, placing 47 %).

Scripted picking is scored on ``lift-any`` after a random reset; scripted placing on
``place-any`` after a ``grasped=True`` reset. Prints each rate with its Wilson 95 % interval.

    python benchmarks/calibrate_scripted.py --episodes 500 --seed 0
    python benchmarks/calibrate_scripted.py --smoke     # a few episodes: checks the code path
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import tyro

from mtopt.envs.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)
from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.progress import progress_bar


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
    smoke: bool = False
    """A tiny run (3 episodes per policy): checks the code path, the rates mean nothing."""


SMOKE_EPISODES = 3


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
    with progress_bar(episodes, task, "ep", leave=False) as bar:
        for _ in range(episodes):
            obs, _ = env.reset(seed=int(rng.integers(2**31)), options=options)
            policy.reset(rng)
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(policy.act(obs))
                done = terminated or truncated
            wins += bool(info["success"][slot])
            bar.update(1)
    return wins


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the calibration, print it and return it: per task, successes, rate and interval."""
    args = tyro.cli(Args, args=argv)
    if args.smoke:
        args = replace(args, episodes=SMOKE_EPISODES)
    env = WorkcellEnv(args.env)
    runs = (
        ("scripted pick ", ScriptedPickPolicy(args.pick), "lift-any", {}),
        ("scripted place", ScriptedPlacePolicy(args.place), "place-any", {"grasped": True}),
    )
    print(
        f"calibrate_scripted  episodes={args.episodes}  seed={args.seed}"
        + ("  (smoke)" if args.smoke else "")
    )
    report = {}
    for name, policy, task, options in runs:
        wins = success_count(env, policy, task, options, args.episodes, args.seed)
        lo, hi = wilson(wins, args.episodes)
        rate = wins / args.episodes
        report[task] = {"episodes": args.episodes, "successes": wins, "rate": rate, "ci": (lo, hi)}
        print(
            f"{name} {task:<10} {wins:4d}/{args.episodes}  rate {rate:.3f}"
            f"  95% CI [{lo:.3f}, {hi:.3f}]"
        )
    env.close()
    return report


if __name__ == "__main__":
    main()
