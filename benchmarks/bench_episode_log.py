"""Episode log throughput: write and read speed for state-only and image episodes.

Usage::

    python benchmarks/bench_episode_log.py                 # defaults below
    python benchmarks/bench_episode_log.py --episodes 2000 --steps 20 --image-size 64
    python benchmarks/bench_episode_log.py --smoke         # tiny sizes: checks the code path

Reports episodes/s and MB/s (MB of raw array payload, and the on-disk size) for writing
(encode + fsync'd atomic shard) and for reading (full episodes, episodes without images,
scalar metadata only). Episodes are made by ``tests/fakes.py`` before timing starts.
Random uint8 images do not compress; real camera images compress somewhat.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fakes import make_fake_episode

from mtopt.data.episode import Episode
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.progress import progress_bar

SMOKE = {"episodes": 6, "steps": 3, "image_size": 16, "shard_episodes": 4}


def payload_bytes(ep: Episode) -> int:
    arrays = [ep.actions, ep.success, *ep.observations.values()]
    if ep.final_side_images is not None:
        arrays.append(ep.final_side_images)
    return sum(a.nbytes for a in arrays)


def make_episodes(rng: np.random.Generator, n: int, desc: str, **kwargs) -> list[Episode]:
    with progress_bar(n, desc, "ep", leave=False) as bar:
        out = []
        for _ in range(n):
            out.append(make_fake_episode(rng, **kwargs))
            bar.update(1)
    return out


def run_case(
    name: str, episodes: list[Episode], config: EpisodeLogConfig
) -> dict[str, dict[str, float]]:
    """Write then read ``episodes``; print and return episodes/s and MB/s per operation."""
    mb = sum(payload_bytes(e) for e in episodes) / 1e6
    n = len(episodes)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with EpisodeLogWriter(tmp, 0, config) as writer:
            for ep in episodes:
                writer.append(ep)
        t_write = time.perf_counter() - start
        disk_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        reader = EpisodeLogReader(tmp)
        timings = {}
        for label, fn in (
            ("read", lambda r: sum(1 for _ in r.episodes())),
            ("read (no images)", lambda r: sum(1 for _ in r.episodes(load_images=False))),
            ("metadata", lambda r: r.metadata().num_rows),
        ):
            r = EpisodeLogReader(tmp)
            start = time.perf_counter()
            assert fn(r) == n
            timings[label] = time.perf_counter() - start
        assert reader.corrupt_shards == 0
    print(f"\n{name}: {n} episodes, payload {mb:.1f} MB, on disk {disk_mb:.1f} MB")
    report = {"payload_mb": mb, "disk_mb": disk_mb}
    for label, t in {"write": t_write, **timings}.items():
        report[label] = {"episodes_per_s": n / t, "mb_per_s": mb / t}
        print(f"  {label:<17} {n / t:>9.0f} episodes/s {mb / t:>8.1f} MB/s")
    return report


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Run the benchmark, print its report and return it (one entry per case)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000, help="episodes per case")
    parser.add_argument("--steps", type=int, default=20, help="steps per episode")
    parser.add_argument("--image-size", type=int, default=64, help="image height and width")
    parser.add_argument("--shard-episodes", type=int, default=16)
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code path")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    config = EpisodeLogConfig(
        shard_episodes=args.shard_episodes, compression=args.compression, fsync=not args.no_fsync
    )
    print(f"config: {config}, {args.steps} steps per episode" + (" (smoke)" if args.smoke else ""))
    rng = np.random.default_rng(args.seed)
    report = {}
    state_only = make_episodes(rng, args.episodes, "state-only", num_steps=args.steps)
    report["state-only"] = run_case("state-only", state_only, config)
    del state_only
    s = args.image_size
    name = f"{s}x{s} image + 2 side images"
    with_images = make_episodes(
        rng, args.episodes, "images", num_steps=args.steps, image_size=s, side_images=True
    )
    report[name] = run_case(name, with_images, config)
    return report


if __name__ == "__main__":
    main()
