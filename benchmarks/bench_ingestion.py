"""Episode-ingestion scaling of log replay: 1 vs 2 log-replay actors (1 CPU each) on Ray.

Usage: nice -n 10 python benchmarks/bench_ingestion.py [--episodes 2000] [--repeats 2]
       python benchmarks/bench_ingestion.py --smoke    # 8 episodes, 1 repeat: checks the code path

Collects an episode log with 2 scripted robots (``mtopt collect``), then, alternating, lets 1
and 2 log-replay Ray actors ingest the whole log (read + verify shards, label with the oracle
labeller, f_skill impersonation, file into the task replay). With 2 actors each ingests the
shards of one robot (``log_replays`` partitioning). Reports episodes/s (wall time of the
ingestion calls, actors already started) and the 2 / 1 ratio per repeat.

It starts a private Ray with 2 CPUs, or joins the Ray already initialised in this process.
With ``--smoke`` the 2 robots collect in this process, one after the other (no robot
processes to start); the ingestion is the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace

from mtopt.data.replay import ReplayConfig
from mtopt.envs import make_spec
from mtopt.system.backends import init_ray
from mtopt.system.builder import PipelineBuilder
from mtopt.system.fleet import FleetConfig, collect, collect_in_process
from mtopt.system.run_config import RayConfig, RunConfig
from mtopt.system.workers import LogReplayWorker

SMOKE = {"episodes": 8, "repeats": 1}
WORKCELL = make_spec("workcell")


def ingest(ray, log: str, actors: int, episodes: int) -> tuple[float, dict]:
    base = RunConfig(log=log, robots=2, log_replays=actors)
    train = replace(base.train, rewards="oracle", replay=ReplayConfig(capacity=200_000))
    cfg = replace(base, train=train)
    cls = ray.remote(num_cpus=1)(LogReplayWorker)
    labeller = PipelineBuilder(cfg.train, WORKCELL).labeller()
    workers = [cls.remote(cfg, i, labeller, WORKCELL) for i in range(actors)]
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


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (one entry per repeat)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"command: nice -n 10 python benchmarks/bench_ingestion.py --episodes "
        f"{args.episodes} --repeats {args.repeats} --seed {args.seed}"
        + (" --smoke" if args.smoke else "")
    )
    import ray

    repeats = []
    with tempfile.TemporaryDirectory() as tmp:
        log = f"{tmp}/log"
        fleet = FleetConfig(
            out=log, robots=2, episodes=args.episodes, seed=args.seed, progress=False
        )
        if args.smoke:
            collect_in_process(fleet, WORKCELL)
        else:
            collect(fleet, WORKCELL)
        owner = not ray.is_initialized()
        if owner:
            init_ray(RayConfig(num_cpus=2, object_store_mb=100))
        try:
            for rep in range(args.repeats):
                one, busy1 = ingest(ray, log, 1, args.episodes)
                two, busy2 = ingest(ray, log, 2, args.episodes)
                repeats.append(
                    {"one_actor_episodes_per_s": one, "two_actors_episodes_per_s": two}
                    | {"ratio": two / one, "busy_one_actor": busy1, "busy_two_actors": busy2}
                )
                print(
                    f"repeat {rep}: 1 actor {one:.1f} episodes/s, 2 actors {two:.1f} "
                    f"episodes/s, ratio {two / one:.2f} (load {os.getloadavg()[0]:.2f})"
                )
                print(f"  busy s, 1 actor: { {k: round(v, 2) for k, v in busy1.items()} }")
                print(f"  busy s, 2 actors (sum): { {k: round(v, 2) for k, v in busy2.items()} }")
        finally:
            if owner:
                ray.shutdown()
    return {"episodes": args.episodes, "repeats": repeats}


if __name__ == "__main__":
    main()
