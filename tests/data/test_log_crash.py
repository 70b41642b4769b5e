"""Crash safety: a robot process SIGKILLed at random moments never leaves a partial shard."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mtopt.data.log import EpisodeLogReader
from mtopt.data.shards import ShardName

SHARD_EPISODES = 3
TESTS_DIR = Path(__file__).resolve().parents[1]

# A robot that appends episodes forever; the test only looks at the files it leaves.
ROBOT_SCRIPT = f"""
import sys
import numpy as np
from fakes import make_fake_episode
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter

directory, robot_id, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
config = EpisodeLogConfig(shard_episodes={SHARD_EPISODES})
writer = EpisodeLogWriter(directory, robot_id, config)
while True:
    writer.append(make_fake_episode(rng, robot_id=robot_id, image_size=48, side_images=True))
"""


def start_robot(directory: Path, robot_id: int, seed: int, stderr_path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    with open(stderr_path, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", ROBOT_SCRIPT, str(directory), str(robot_id), str(seed)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )


def wait_for_shards(directory: Path, count: int, proc: subprocess.Popen, stderr: Path) -> None:
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if (
            directory.exists()
            and sum(ShardName.parse(n) is not None for n in os.listdir(directory)) >= count
        ):
            return
        if proc.poll() is not None:
            pytest.fail(f"robot process exited early:\n{stderr.read_text()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"robot process wrote fewer than {count} shards in 60 s:\n{stderr.read_text()}")


def test_sigkill_never_leaves_partial_shards(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    rng = np.random.default_rng(2024)
    previous: dict[str, str] = {}  # shard name -> sha256 of its bytes
    for round_ in range(4):
        robot_id = round_ % 2  # robot 0 and 1 each restart in the same directory
        stderr = tmp_path / f"robot-{round_}.err"
        proc = start_robot(directory, robot_id, seed=round_, stderr_path=stderr)
        wait_for_shards(directory, len(previous) + int(rng.integers(1, 4)), proc, stderr)
        time.sleep(float(rng.uniform(0.0, 0.15)))  # kill at a random moment
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        reader = EpisodeLogReader(directory)
        paths = reader.shard_paths()
        hashes = {}
        for path in paths:
            data = path.read_bytes()
            hashes[path.name] = hashlib.sha256(data).hexdigest()
            assert hashes[path.name][:16] == ShardName.parse(path.name).sha256_prefix
            assert pq.read_metadata(path).num_rows == SHARD_EPISODES
        # earlier shards survive restarts untouched (resume never overwrites)
        for name, digest in previous.items():
            assert hashes[name] == digest
        assert len(paths) > len(previous)
        previous = hashes

        episodes = list(reader.episodes())
        assert reader.corrupt_shards == 0
        assert len(episodes) == SHARD_EPISODES * len(paths)
        assert len({e.episode_id for e in episodes}) == len(episodes)
        for ep in episodes:
            assert ep.observations["image"].shape == (ep.num_steps + 1, 48, 48, 3)
            assert ep.final_side_images is not None
        leftovers = [n for n in os.listdir(directory) if ShardName.parse(n) is None]
        assert all(n.startswith(".tmp-") for n in leftovers), leftovers
    robots = {ShardName.parse(p.name).robot_id for p in EpisodeLogReader(directory).shard_paths()}
    assert robots == {0, 1}
