"""The robot fleet: simulated robots that collect episodes into the episode log.

Each robot (:class:`mtopt.system.robot.Robot`) owns an environment made by the environment's
:class:`mtopt.spec.EnvSpec`, its collection policies and an episode-log writer; it picks tasks
at random and runs the scripted bootstrap policy or the learned Q-policy for each.

In the local runtime the robots run in separate processes (:func:`collect`),
``robots_per_process`` of them side by side in each: one batched action search per step for
the robots acting with the Q-policy (:mod:`mtopt.system.lockstep`). The main process shows a
progress bar with the fleet's episodes per second.
"""

from __future__ import annotations

import errno
import logging
import math
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mtopt.data.episode import Episode
from mtopt.data.log import EpisodeLogReader, EpisodeLogWriter
from mtopt.errors import MtoptError
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec
from mtopt.system.lockstep import lockstep_episodes
from mtopt.system.robot import Robot, RobotConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetConfig(RobotConfig):
    """Collection with a fleet of simulated robots (``mtopt collect``)."""

    out: str = "runs/log"
    """Episode-log directory to append to (created if missing)."""
    robots: int = 2
    """Number of simulated robots."""
    robots_per_process: int = 1
    """Robots simulated side by side in each process (lockstep): at every step one batched
    action search acts for all of them that run the Q-policy, faster per episode than one
    process per robot (docs/RESULTS.md, "lockstep collection"); scripted robots gain nothing.
    ``ceil(robots / robots_per_process)`` processes run."""
    episodes: int = 200
    """Total number of episodes to collect across the fleet (chained episodes count)."""
    obs: Literal["state", "image"] = "state"
    """Observations to record: the low-dimensional ``state`` only, or also the camera image."""
    seed: int = 0
    """Seed of the whole collection; robot ``i`` derives its own stream from it."""
    checkpoint: str | None = None
    """Collect with this training checkpoint's Q-policy instead of the bootstrap policies."""
    policy: PolicyConfig = field(default_factory=collection_policy)
    """How the checkpoint's Q-policy acts (ε 0.2 and one CPU core per robot by default)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.robots, int) or not 1 <= self.robots <= 256:
            raise ValueError(f"robots must be an integer in [1, 256], got {self.robots!r}")
        k = self.robots_per_process
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 256:
            raise ValueError(f"robots_per_process must be an integer in [1, 256], got {k!r}")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"episodes must be a positive integer, got {self.episodes!r}")
        if self.obs not in ("state", "image"):
            raise ValueError(f"obs must be 'state' or 'image', got {self.obs!r}")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise ValueError(f"checkpoint {self.checkpoint!r} is not a file")
        if self.checkpoint is not None and self.bootstrap != "scripted":
            raise ValueError(
                f"give either checkpoint (collect with its Q-policy) or bootstrap "
                f"{self.bootstrap!r}, not both"
            )


def episode_counts(total: int, robots: int) -> list[int]:
    """Split ``total`` episodes over ``robots`` as evenly as possible."""
    base, extra = divmod(total, robots)
    return [base + (1 if i < extra else 0) for i in range(robots)]


def fleet_robots(
    robot_ids: list[int], config: FleetConfig, spec: EnvSpec, run_tag: str
) -> list[Robot]:
    """Robots ``robot_ids`` of a ``mtopt collect`` fleet, sharing one process: with the
    checkpoint's Q-policy when the config names one (loaded once, one policy per robot over
    the shared network, on one CPU thread: one core per process)."""
    q_policy = None
    if config.checkpoint is not None:
        import torch

        from mtopt.policies.q_policy import load_q_policy

        torch.set_num_threads(1)
        q_policy = load_q_policy(config.checkpoint, spec, config.policy)
    return [
        Robot(i, config, config.obs, config.seed, run_tag, spec, q_policy and q_policy.clone())
        for i in robot_ids
    ]


def process_groups(robots: int, per_process: int) -> list[list[int]]:
    """Robot ids ``0 .. robots - 1`` in consecutive groups of ``per_process``: one per process."""
    n = math.ceil(robots / per_process)
    return [list(range(g * per_process, min(robots, (g + 1) * per_process))) for g in range(n)]


def group_episodes(
    robots: list[Robot], counts: list[int], config: FleetConfig
) -> Iterator[tuple[int, Episode]]:
    """``(index, episode)`` of a process's robots: alone for a single robot (each episode's
    CEM from its own generator), else side by side (:func:`lockstep_episodes`)."""
    if len(robots) == 1:
        return ((0, ep) for ep in robots[0].episodes(counts[0]))
    seed = int(np.random.SeedSequence([config.seed, robots[0].robot_id]).generate_state(1)[0])
    return lockstep_episodes(robots, counts, seed)


def write_group(
    robot_ids: list[int], counts: list[int], config: FleetConfig, spec: EnvSpec, run_tag: str
) -> Generator[tuple[int, list[str]], None, None]:
    """Collect ``counts[i]`` episodes with robot ``robot_ids[i]`` (one process's robots) into
    the log, each robot through its own writer; yield ``(robot id, ids made durable)`` per
    episode. Closing the generator early, or an error, flushes every writer (the buffered
    episodes are complete); its return value (``StopIteration.value``) is the robots'
    discarded episodes."""
    robots = fleet_robots(robot_ids, config, spec, run_tag)
    try:
        with ExitStack() as stack:
            writers = [
                stack.enter_context(EpisodeLogWriter(config.out, i, config.log)) for i in robot_ids
            ]
            for i, ep in group_episodes(robots, counts, config):
                writers[i].note_discarded(robots[i].take_discarded())
                yield robot_ids[i], writers[i].append(ep)
    finally:
        for robot in robots:
            robot.close()
    return sum(r.discarded for r in robots)


class CollectionError(MtoptError, RuntimeError):
    """A robot of the fleet failed; the shards it completed stay in the log."""


def _process_main(
    robot_ids: list[int],
    counts: list[int],
    config: FleetConfig,
    spec: EnvSpec,
    run_tag: str,
    q,
    parent: int,
) -> None:
    """Process entry point of a group of robots: collect ``counts[i]`` episodes with robot
    ``robot_ids[i]`` into the log; stop early (after flushing) when the collector process
    ``parent`` is gone."""
    logging.basicConfig(level=logging.WARNING)
    label = str(robot_ids[0]) if len(robot_ids) == 1 else f"{robot_ids[0]}-{robot_ids[-1]}"
    whose = "this robot's" if len(robot_ids) == 1 else f"robots {label}'"
    committed = 0
    discarded = 0
    episodes = write_group(robot_ids, counts, config, spec, run_tag)
    try:
        while True:
            try:
                robot_id, written = next(episodes)
            except StopIteration as stop:
                discarded = stop.value
                break
            committed += len(written)
            q.put(("episode", robot_id, 1, len(written)))
            if os.getppid() != parent:  # the collector was killed: flush and stop
                logger.warning("robots %s: collector process gone, stopping", label)
                episodes.close()
                break
    except OSError as exc:  # report a full disk (or another write failure) in one line
        what = "disk full" if exc.errno == errno.ENOSPC else f"cannot write ({exc.strerror})"
        q.put(
            (
                "error",
                label,
                0,
                f"{what} while writing a shard to {config.out}; {whose} {committed} committed "
                "episode(s) stay in the log",
            )
        )
        raise
    except BaseException as exc:  # report, then let the process die with the error
        q.put(("error", label, 0, repr(exc)))
        raise
    q.put(("done", label, 0, discarded))


def collect(config: FleetConfig, spec: EnvSpec) -> dict:
    """Collect ``config.episodes`` episodes of environment ``spec`` with ``config.robots``
    robot processes.

    Returns a summary with the number of episodes written (``episodes``), the number run but
    discarded for unstable physics (``discarded``; also recorded in the log's shard metadata,
    see :meth:`EpisodeLogReader.discarded_episodes`), the wall time and episodes/s; it is
    logged once at INFO (single discarded episodes only at DEBUG). Raises
    :class:`CollectionError` naming the robot and the cause if a robot process fails (a full
    disk in one line); shards it completed stay in the log.
    """
    config.check_tasks(spec)
    out = Path(config.out)
    EpisodeLogWriter.check_directory(out)
    existing = EpisodeLogReader(out).metadata().num_rows if out.exists() else 0
    run_tag = f"s{config.seed}-n{existing}"
    counts = episode_counts(config.episodes, config.robots)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = []
    for group in process_groups(config.robots, config.robots_per_process):
        ids = [i for i in group if counts[i] > 0]
        if ids:
            args = (ids, [counts[i] for i in ids], config, spec, run_tag, q, os.getpid())
            procs.append(ctx.Process(target=_process_main, args=args, daemon=True))
    start = time.time()
    for p in procs:
        p.start()
    finished, errors, collected, discarded = 0, [], 0, 0
    bar = progress_bar(config.episodes, "collect", "ep", config.progress)
    first_episode_time = None
    try:
        while finished < len(procs):
            try:
                kind, robot_id, n, payload = q.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    errors.append(f"robot process exited with code {dead[0].exitcode}")
                    break
                continue
            if kind == "episode":
                collected += n
                if first_episode_time is None:
                    first_episode_time = time.time()
                bar.update(n)
            elif kind == "error":
                errors.append(f"robot {robot_id}: {payload}")
            elif kind == "done":
                finished += 1
                discarded += int(payload)
    finally:
        bar.close()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    if errors:
        raise CollectionError("collection failed: " + "; ".join(errors))
    wall = time.time() - start
    steady = time.time() - (first_episode_time or start)
    logger.info(
        "collected %d episodes with %d robots in %d processes into %s in %.0f s; %d discarded "
        "for unstable physics (not in the log)",
        collected,
        sum(1 for n in counts if n > 0),
        len(procs),
        out,
        wall,
        discarded,
    )
    return {
        "episodes": collected,
        "discarded": discarded,
        "robots": sum(1 for n in counts if n > 0),
        "processes": len(procs),
        "wall_time_s": wall,
        "episodes_per_s": collected / wall if wall > 0 else float("nan"),
        "steady_episodes_per_s": collected / steady if steady > 0 else float("nan"),
    }


def collect_in_process(config: FleetConfig, spec: EnvSpec) -> dict:
    """Collect as :func:`collect` does, with the robots run one after another in this process.

    No robot process is started, so it suits small logs for tests and benchmark smoke runs;
    ``config.progress`` is ignored. Returns the number of episodes written.
    """
    out = Path(config.out)
    config.check_tasks(spec)
    EpisodeLogWriter.check_directory(out)
    existing = EpisodeLogReader(out).metadata().num_rows if out.exists() else 0
    run_tag = f"s{config.seed}-n{existing}"
    counts = episode_counts(config.episodes, config.robots)
    written = 0
    for group in process_groups(config.robots, config.robots_per_process):
        ids = [i for i in group if counts[i] > 0]
        if ids:
            for _ in write_group(ids, [counts[i] for i in ids], config, spec, run_tag):
                written += 1
    return {"episodes": written, "robots": config.robots}
