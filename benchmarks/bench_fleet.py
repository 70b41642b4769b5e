"""Fleet scaling: episodes/s of `mtopt collect` with 1 robot and with 2 robots, in one run;
with ``--checkpoint``, lockstep collection with the checkpoint's ε-greedy Q-policy.

Usage: python benchmarks/bench_fleet.py [--episodes 2000] [--seed 0]
       python benchmarks/bench_fleet.py --checkpoint CKPT --lockstep 8 [--episodes 1000]
       python benchmarks/bench_fleet.py --smoke     # 2 episodes per case: checks the code path

Reports wall-clock episodes/s (process start-up included) and steady-state episodes/s
(from the first written episode on), and the 2-robot / 1-robot ratios. With ``--checkpoint``
both cases run 2 processes with the Q-policy (ε 0.2, CEM ``--cem``; the learning benchmark's
3 × 128 / 12 by default): one robot per process, then ``--lockstep`` robots side by side in
each (one batched CEM per step), and the ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile

from mtopt.data.log import EpisodeLogConfig
from mtopt.envs import make_spec
from mtopt.learning.cem import CEMConfig
from mtopt.policies import PolicyConfig
from mtopt.system.fleet import FleetConfig, collect

SMOKE_EPISODES = 2


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (``robots`` -> collect summary)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--obs", choices=("state", "image"), default="state")
    parser.add_argument("--checkpoint", default=None, help="lockstep case: collect with its policy")
    parser.add_argument("--lockstep", type=int, default=8, help="robots per process (lockstep)")
    parser.add_argument("--cem", type=int, nargs=3, default=[3, 128, 12], metavar=("I", "N", "E"))
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        args.episodes = SMOKE_EPISODES
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print("command: python benchmarks/bench_fleet.py " + " ".join(argv or sys.argv[1:]))
    if args.checkpoint is not None:
        return lockstep(args)
    if args.smoke:  # the lockstep path too, with a checkpoint trained for 2 steps
        with tempfile.TemporaryDirectory() as tmp:
            args.checkpoint, args.lockstep, args.cem = _smoke_checkpoint(tmp), 2, [1, 8, 2]
            report = lockstep(args)
        args.checkpoint = None
        return {**fleet_scaling(args), **report}
    return fleet_scaling(args)


def fleet_scaling(args: argparse.Namespace) -> dict:
    """Scripted collection with 1 and with 2 robot processes; their ratio."""
    rates = {}
    for robots in (1, 2):
        rates[robots] = _collect(args, robots=robots)
        _print(f"robots={robots}", rates[robots])
    wall = rates[2]["episodes_per_s"] / rates[1]["episodes_per_s"]
    steady = rates[2]["steady_episodes_per_s"] / rates[1]["steady_episodes_per_s"]
    print(f"scaling 2 vs 1 robot: wall {wall:.2f}x, steady {steady:.2f}x")
    return {"robots": rates, "wall_scaling": wall, "steady_scaling": steady}


def _smoke_checkpoint(tmp: str) -> str:
    """A Q-network checkpoint of the workcell trained 2 steps on 8 scripted episodes."""
    from mtopt.learning.checkpoint import latest_checkpoint
    from mtopt.learning.trainer import TrainerConfig
    from mtopt.system.training import train
    from mtopt.system.training_config import TrainConfig

    spec = make_spec("workcell")
    collect(FleetConfig(out=f"{tmp}/log", robots=1, episodes=8, progress=False), spec)
    cfg = TrainConfig(
        data=f"{tmp}/log",
        out=f"{tmp}/train",
        steps=2,
        batch_size=8,
        checkpoint_every=2,
        progress=False,
        rewards="oracle",
        trainer=TrainerConfig(device="cpu"),
        cem=CEMConfig(iterations=1, num_samples=8, num_elites=2),
    )
    train(cfg, spec)
    return str(latest_checkpoint(f"{tmp}/train/checkpoints"))


def _collect(args: argparse.Namespace, **fleet: object) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = FleetConfig(
            out=tmp,
            episodes=args.episodes,
            seed=args.seed,
            obs=args.obs,
            progress=False,
            log=EpisodeLogConfig(),
            **fleet,
        )
        return collect(cfg, make_spec("workcell"))


def _print(name: str, s: dict) -> None:
    print(
        f"{name}: {s['episodes']} episodes in {s['wall_time_s']:.1f} s -> "
        f"{s['episodes_per_s']:.1f} ep/s wall, {s['steady_episodes_per_s']:.1f} ep/s steady"
    )


def lockstep(args: argparse.Namespace) -> dict:
    """ε-greedy collection with the checkpoint: 2 processes of one robot, then 2 processes of
    ``args.lockstep`` robots side by side; their ratio."""
    cem = CEMConfig(iterations=args.cem[0], num_samples=args.cem[1], num_elites=args.cem[2])
    policy = PolicyConfig(epsilon=0.2, cem=cem, device="cpu")
    common = {"checkpoint": args.checkpoint, "policy": policy}
    rates = {}
    for k in (1, args.lockstep):
        rates[k] = _collect(args, robots=2 * k, robots_per_process=k, **common)
        _print(f"2 processes x {k} robot(s)", rates[k])
    wall = rates[args.lockstep]["episodes_per_s"] / rates[1]["episodes_per_s"]
    steady = rates[args.lockstep]["steady_episodes_per_s"] / rates[1]["steady_episodes_per_s"]
    print(
        f"lockstep {args.lockstep} vs 1 robot per process: wall {wall:.2f}x, steady {steady:.2f}x"
    )
    return {"lockstep": rates, "wall_ratio": wall, "steady_ratio": steady}


if __name__ == "__main__":
    main()
