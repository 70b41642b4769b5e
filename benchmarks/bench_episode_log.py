"""Episode log throughput: write and read speed for state-only and image episodes.

Usage::

    python benchmarks/bench_episode_log.py                 # defaults below
    python benchmarks/bench_episode_log.py --episodes 2000 --steps 20 --image-size 64

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


def payload_bytes(ep: Episode) -> int:
    arrays = [ep.actions, ep.success, *ep.observations.values()]
    if ep.final_side_images is not None:
        arrays.append(ep.final_side_images)
    return sum(a.nbytes for a in arrays)


def run_case(name: str, episodes: list[Episode], config: EpisodeLogConfig) -> None:
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
    print(f"  {'write':<17} {n / t_write:>9.0f} episodes/s {mb / t_write:>8.1f} MB/s")
    for label, t in timings.items():
        print(f"  {label:<17} {n / t:>9.0f} episodes/s {mb / t:>8.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000, help="episodes per case")
    parser.add_argument("--steps", type=int, default=20, help="steps per episode")
    parser.add_argument("--image-size", type=int, default=64, help="image height and width")
    parser.add_argument("--shard-episodes", type=int, default=16)
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = EpisodeLogConfig(
        shard_episodes=args.shard_episodes, compression=args.compression, fsync=not args.no_fsync
    )
    print(f"config: {config}, {args.steps} steps per episode")
    rng = np.random.default_rng(args.seed)
    state_only = [make_fake_episode(rng, num_steps=args.steps) for _ in range(args.episodes)]
    run_case("state-only", state_only, config)
    del state_only
    s = args.image_size
    with_images = [
        make_fake_episode(rng, num_steps=args.steps, image_size=s, side_images=True)
        for _ in range(args.episodes)
    ]
    run_case(f"{s}x{s} image + 2 side images", with_images, config)


if __name__ == "__main__":
    main()
