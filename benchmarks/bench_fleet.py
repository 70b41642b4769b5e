"""Fleet scaling: episodes/s of `mtopt collect` with 1 robot and with 2 robots, in one run.

Usage: python benchmarks/bench_fleet.py [--episodes 2000] [--seed 0]
       python benchmarks/bench_fleet.py --smoke     # 2 episodes per case: checks the code path

Reports wall-clock episodes/s (process start-up included) and steady-state episodes/s
(from the first written episode on), and the 2-robot / 1-robot ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile

from mtopt.data.log import EpisodeLogConfig
from mtopt.envs import make_spec
from mtopt.system.fleet import FleetConfig, collect

SMOKE_EPISODES = 2


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (``robots`` -> collect summary)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--obs", choices=("state", "image"), default="state")
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        args.episodes = SMOKE_EPISODES
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(
        f"command: python benchmarks/bench_fleet.py --episodes {args.episodes} --seed {args.seed}"
        f" --obs {args.obs}" + (" --smoke" if args.smoke else "")
    )
    rates = {}
    for robots in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = FleetConfig(
                out=tmp,
                robots=robots,
                episodes=args.episodes,
                seed=args.seed,
                obs=args.obs,
                progress=False,
                log=EpisodeLogConfig(),
            )
            s = collect(cfg, make_spec("workcell"))
        rates[robots] = s
        print(
            f"robots={robots}: {s['episodes']} episodes in {s['wall_time_s']:.1f} s -> "
            f"{s['episodes_per_s']:.1f} ep/s wall, {s['steady_episodes_per_s']:.1f} ep/s steady"
        )
    wall = rates[2]["episodes_per_s"] / rates[1]["episodes_per_s"]
    steady = rates[2]["steady_episodes_per_s"] / rates[1]["steady_episodes_per_s"]
    print(f"scaling 2 vs 1 robot: wall {wall:.2f}x, steady {steady:.2f}x")
    return {"robots": rates, "wall_scaling": wall, "steady_scaling": steady}


if __name__ == "__main__":
    main()
