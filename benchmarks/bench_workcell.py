"""Throughput of the simulated workcell with the scripted policies (one core, CPU only).

Prints state-only policy steps/s and episodes/s (resets included) for the scripted picking
and placing policies, and steps/s with one over-the-shoulder camera image per step.

    python benchmarks/bench_workcell.py --seed 0
    python benchmarks/bench_workcell.py --smoke     # a few episodes: checks the code path
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field, replace

os.environ.setdefault("MUJOCO_GL", "osmesa")

import numpy as np
import tyro

from mtopt.envs.scripted import ScriptedPickPolicy, ScriptedPlacePolicy
from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.progress import progress_bar


@dataclass(frozen=True)
class Args:
    """Workcell throughput benchmark."""

    seed: int = 0
    """Seed of the episode seeds and the policies' noise."""
    episodes: int = 500
    """State-only episodes per scripted policy."""
    image_episodes: int = 40
    """Episodes (scripted picking) rendered with one camera image per step."""
    image_size: int = 64
    """Image height and width in pixels."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The workcell (e.g. ``--workcell.noslip-iterations 0`` to time the physics without it)."""
    smoke: bool = False
    """A tiny run (2 state episodes per policy, 1 image episode of 32 px): checks the code path."""


SMOKE = {"episodes": 2, "image_episodes": 1, "image_size": 32}


def run(
    env: WorkcellEnv, policy, episodes: int, options: dict, seed: int, desc: str
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    steps, step_time = 0, 0.0
    start = time.perf_counter()
    with progress_bar(episodes, desc, "ep", leave=False) as bar:
        for _ in range(episodes):
            obs, _ = env.reset(seed=int(rng.integers(2**31)), options=options)
            policy.reset(rng)
            done = False
            while not done:
                action = policy.act(obs)
                t = time.perf_counter()
                obs, _, terminated, truncated, _ = env.step(action)
                step_time += time.perf_counter() - t
                steps += 1
                done = terminated or truncated
            bar.update(1)
    total = time.perf_counter() - start
    return {
        "episodes_per_s": episodes / total,
        "steps_per_s": steps / total,
        "steps_per_s_excl_reset": steps / step_time,
        "mean_episode_length": steps / episodes,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark, print its report and return it (one entry per case)."""
    args = tyro.cli(Args, args=argv)
    if args.smoke:
        args = replace(args, **SMOKE)
    print(
        f"bench_workcell  seed={args.seed}  python={platform.python_version()}  "
        f"cpu={platform.processor() or platform.machine()}  cores={os.cpu_count()}"
        + ("  (smoke)" if args.smoke else "")
    )
    report = {}
    env = WorkcellEnv(args.workcell)
    for name, policy, options in (
        ("scripted pick (state)", ScriptedPickPolicy(), {}),
        ("scripted place (state)", ScriptedPlacePolicy(), {"grasped": True}),
    ):
        r = report[name] = run(env, policy, args.episodes, options, args.seed, name)
        print(
            f"{name:<24} {r['steps_per_s']:8.0f} steps/s  {r['episodes_per_s']:7.1f} episodes/s"
            f"  ({r['steps_per_s_excl_reset']:.0f} steps/s without resets, "
            f"{r['mean_episode_length']:.1f} steps/episode)"
        )
    env.close()
    name = "scripted pick (image)"
    img_env = WorkcellEnv(replace(args.workcell, image=True, image_size=args.image_size))
    r = report[name] = run(img_env, ScriptedPickPolicy(), args.image_episodes, {}, args.seed, name)
    print(
        f"{name:<24} {r['steps_per_s']:8.0f} image steps/s "
        f"({args.image_size}x{args.image_size}, backend {os.environ.get('MUJOCO_GL')}, "
        f"{r['episodes_per_s']:.1f} episodes/s)"
    )
    img_env.close()
    return report


if __name__ == "__main__":
    main()
