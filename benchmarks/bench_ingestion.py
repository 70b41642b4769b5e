"""Episode-ingestion scaling of log replay: 1 vs 2 log-replay actors (1 CPU each) on Ray.

Usage: nice -n 10 python benchmarks/bench_ingestion.py [--episodes 2000] [--repeats 2]

Collects an episode log with 2 scripted robots (``mtopt collect``), then, alternating, lets 1
and 2 log-replay Ray actors ingest the whole log (read + verify shards, label with the oracle
labeller, f_skill impersonation, file into the task replay). With 2 actors each ingests the
shards of one robot (``log_replays`` partitioning). Reports episodes/s (wall time of the
ingestion calls, actors already started) and the 2 / 1 ratio per repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace

from mtopt.data.replay import ReplayConfig
from mtopt.system.backends import init_ray
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.run import build_labeller
from mtopt.system.run_config import RayConfig, RunConfig
from mtopt.system.workers import LogReplayWorker


def ingest(ray, log: str, actors: int, episodes: int) -> tuple[float, dict]:
    base = RunConfig(log=log, robots=2, log_replays=actors)
    train = replace(base.train, rewards="oracle", replay=ReplayConfig(capacity=200_000))
    cfg = replace(base, train=train)
    cls = ray.remote(num_cpus=1)(LogReplayWorker)
    workers = [cls.remote(cfg, i, build_labeller(cfg.train)) for i in range(actors)]
    ray.get([w.busy.remote() for w in workers])  # started
    t0 = time.perf_counter()
    reports = ray.get([w.poll.remote() for w in workers])
    wall = time.perf_counter() - t0
    got = sum(r["episodes"] for r in reports)
    assert got == episodes, f"ingested {got} of {episodes} episodes"
    busy: dict[str, float] = {}
    for r in reports:
        for k, v in r["busy"].items():
            busy[k] = busy.get(k, 0.0) + v
    for w in workers:
        ray.kill(w)
    return got / wall, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"command: nice -n 10 python benchmarks/bench_ingestion.py --episodes "
        f"{args.episodes} --repeats {args.repeats} --seed {args.seed}"
    )
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        log = f"{tmp}/log"
        collect(
            FleetConfig(out=log, robots=2, episodes=args.episodes, seed=args.seed, progress=False)
        )
        init_ray(RayConfig(num_cpus=2, object_store_mb=100))
        try:
            for rep in range(args.repeats):
                one, busy1 = ingest(ray, log, 1, args.episodes)
                two, busy2 = ingest(ray, log, 2, args.episodes)
                print(
                    f"repeat {rep}: 1 actor {one:.1f} episodes/s, 2 actors {two:.1f} "
                    f"episodes/s, ratio {two / one:.2f} (load {os.getloadavg()[0]:.2f})"
                )
                print(f"  busy s, 1 actor: { {k: round(v, 2) for k, v in busy1.items()} }")
                print(f"  busy s, 2 actors (sum): { {k: round(v, 2) for k, v in busy2.items()} }")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
