"""Meta-World collection speed per core: mtopt's scripted and learned collection against plain
Meta-World stepping, in one process and one run (issue 32).

Usage: python benchmarks/bench_metaworld.py [--benchmark mt10] [--steps 20000] [--episodes 60]
       python benchmarks/bench_metaworld.py --checkpoint CKPT [--lockstep 8] [--cem 3 128 12]
       python benchmarks/bench_metaworld.py --smoke     # tiny run: checks the code path

Every case runs in this process on one core (``torch`` and BLAS at one thread), after a
warm-up that builds the benchmark's goal table and each task's environment once:

* ``plain-random``: Meta-World's own environments (``metaworld.env_dict``), stepped with
  uniformly random actions, each task in turn for a full 500-step episode: the ceiling.
* ``plain-expert``: the same with each task's scripted expert choosing the actions.
* ``mtopt-scripted``: ``mtopt collect``'s code path (one robot, the calibrated noisy experts)
  writing an episode log; simulator steps are counted from the log (``env_steps``).
* ``mtopt-learned`` (with ``--checkpoint``): ε-greedy collection with the checkpoint's
  Q-policy (ε 0.2, CEM ``--cem``), ``--lockstep`` robots side by side with one batched action
  search per step.

Reports simulator steps/s of each case and its ratio to ``plain-random``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from mtopt.data.stats import dataset_stats
from mtopt.envs import EnvConfig
from mtopt.envs.metaworld import METAWORLD_STEPS, MetaWorldConfig, NoisyExpertPolicy
from mtopt.learning.cem import CEMConfig
from mtopt.policies import PolicyConfig
from mtopt.system.fleet import FleetConfig, collect_in_process

SMOKE = {"steps": 1000, "episodes": 2}


def plain_stepping(spec, steps: int, expert: bool, seed: int) -> float:
    """Simulator steps/s of Meta-World's own environments, each task in turn for full
    500-step episodes, with random actions or each task's expert's."""
    env = spec.make_env()  # mtopt's env only sets the task and goal; the steps are Meta-World's
    rng = np.random.default_rng(seed)
    names = spec.task_set.names
    done = 0
    t = time.perf_counter()
    while done < steps:
        task = names[(done // METAWORLD_STEPS) % len(names)]
        env.reset(seed=seed, options={"task": task, "goal": 0})
        raw = env.metaworld_env
        obs, _ = raw.reset()
        policy = NoisyExpertPolicy(task) if expert else None
        for _ in range(min(METAWORLD_STEPS, steps - done)):
            if policy is None:
                action = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
            else:
                action = policy.act({"state": np.asarray(obs, dtype=np.float32)})
            obs, *_ = raw.step(action)
            done += 1
    rate = done / (time.perf_counter() - t)
    env.close()
    return rate


def collection(spec, episodes: int, seed: int, **fleet: object) -> tuple[float, dict]:
    """Simulator steps/s of ``mtopt collect``'s code path in this process, and the log's
    statistics."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = FleetConfig(out=tmp, episodes=episodes, seed=seed, progress=False, **fleet)
        t = time.perf_counter()
        collect_in_process(cfg, spec)
        wall = time.perf_counter() - t
        stats = dataset_stats(tmp, spec.task_set.names)
    return stats["env_steps"] / wall, stats


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (case -> steps/s and ratio)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", choices=("mt10", "mt50"), default="mt10")
    parser.add_argument("--steps", type=int, default=20000, help="plain stepping: sim steps")
    parser.add_argument("--episodes", type=int, default=60, help="collection: episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="also collect with its Q-policy")
    parser.add_argument("--lockstep", type=int, default=8, help="robots side by side (learned)")
    parser.add_argument("--cem", type=int, nargs=3, default=[3, 128, 12], metavar=("I", "N", "E"))
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.episodes = SMOKE["steps"], SMOKE["episodes"]
    torch.set_num_threads(1)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print("command: python benchmarks/bench_metaworld.py " + " ".join(argv or sys.argv[1:]))
    spec = EnvConfig(name=f"metaworld-{args.benchmark}", metaworld=MetaWorldConfig()).spec()
    warm = spec.make_env()
    for task in spec.task_set.names:  # the goal table and every task's environment, once
        warm.reset(seed=0, options={"task": task, "goal": 0})
    warm.close()
    rates: dict[str, float] = {
        "plain-random": plain_stepping(spec, args.steps, False, args.seed),
        "plain-expert": plain_stepping(spec, args.steps, True, args.seed),
    }
    rates["mtopt-scripted"], stats = collection(spec, args.episodes, args.seed, robots=1)
    report: dict = {"scripted_log": {k: stats[k] for k in ("episodes", "env_steps")}}
    if args.checkpoint is not None:
        cem = CEMConfig(iterations=args.cem[0], num_samples=args.cem[1], num_elites=args.cem[2])
        policy = PolicyConfig(epsilon=0.2, cem=cem, device="cpu")
        rates["mtopt-learned"], stats = collection(
            spec,
            args.episodes,
            args.seed,
            robots=args.lockstep,
            robots_per_process=args.lockstep,
            checkpoint=args.checkpoint,
            policy=policy,
        )
        report["learned_log"] = {k: stats[k] for k in ("episodes", "env_steps")}
    base = rates["plain-random"]
    for name, rate in rates.items():
        print(f"{name:>15}: {rate:8.0f} simulator steps/s  ({rate / base:.2f}x plain-random)")
    report["steps_per_s"] = rates
    report["ratio_to_plain"] = {k: v / base for k, v in rates.items()}
    return report


if __name__ == "__main__":
    main()
