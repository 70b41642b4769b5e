"""The robot fleet: simulated robots that collect episodes into the episode log.

Each robot owns an environment (made by the environment's :class:`mtopt.spec.EnvSpec`), the
collection policies and an episode-log writer. It repeatedly picks a task at random and runs
the policy for that task (paper Sec. 4 and App. 9.1): the environment's scripted bootstrap
policy, or the learned Q-policy. Where the spec chains episodes (the workcell: after a *lift*,
a place episode for a random place task runs on the same scene, starting from whatever the
gripper holds), the chained episode follows at once. For diagnostics (``bootstrap: expert``)
the bootstrap policy is the environment's expert policy instead, with exploration noise
(``expert_noise``).

In the local runtime the robots run as separate processes (:func:`collect`); the main process
shows a progress bar with the fleet's episodes per second.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from mtopt.data.episode import Episode
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.errors import MtoptError
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.policies.exploration import (
    BOOTSTRAP_KINDS,
    Bootstrap,
    bootstrap_policy,
    check_noise,
)
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec

if TYPE_CHECKING:
    from mtopt.policies.q_policy import QPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RobotConfig:
    """What a robot collects: the tasks it chooses from, chaining, recorded views, log shards
    (shared by ``mtopt collect`` and the robots of ``mtopt run``)."""

    tasks: tuple[str, ...] = ()
    """Tasks the robots choose from (uniformly); empty means all tasks of the task set."""
    task_weights: tuple[float, ...] = ()
    """Relative probability of each task of ``tasks`` (same order; all tasks of the task set
    when ``tasks`` is empty); empty means uniform. A chained task is drawn by the weights of
    its skill's tasks. Used to collect imbalanced datasets (paper Fig. 4)."""
    chain_place: bool = True
    """Run a chained episode after one whose skill the environment chains (the workcell: a
    place episode on the scene a lift left behind; paper App. 9.1)."""
    side_images: bool = False
    """Record the final side-camera images (success-detector input) of every episode."""
    final_views: bool = False
    """Record the three final camera views of every episode (the over-the-shoulder image and
    both side images: the image success detector's input) without per-step images. With
    ``obs: state`` this makes a log for labelling and training the image success detector at a
    fraction of ``obs: image``'s rendering and storage cost (3 images per episode instead of
    one per step plus 2)."""
    log: EpisodeLogConfig = field(default_factory=EpisodeLogConfig)
    """Episode-log shard settings."""
    bootstrap: Bootstrap = "scripted"
    """The policies a robot runs without a learned one: the environment's ``scripted``
    bootstrap policies (the paper's), or its ``expert`` policies (diagnostics: data from a
    competent controller, e.g. the workcell's aimed picker and placer; episodes are logged as
    ``expert-<name>`` with ``epsilon`` = ``expert_noise``)."""
    expert_noise: float = 0.0
    """``bootstrap: expert``: probability per step, in [0, 1], of an exploring step instead of
    the expert's action; an exploring step randomises the motion dims and keeps the expert's
    gripper and terminate choices, as ε-greedy collection does."""

    def __post_init__(self) -> None:
        if self.task_weights and (min(self.task_weights) < 0 or sum(self.task_weights) <= 0):
            raise ValueError(
                f"task_weights must be non-negative with a positive sum, got {self.task_weights}"
            )
        if self.bootstrap not in BOOTSTRAP_KINDS:
            raise ValueError(f"bootstrap must be one of {BOOTSTRAP_KINDS}, got {self.bootstrap!r}")
        noise = check_noise(self.expert_noise, "expert_noise")
        if self.bootstrap != "expert" and noise > 0:
            raise ValueError(
                f"expert_noise ({noise!r}) and exploration need bootstrap 'expert', got bootstrap "
                f"{self.bootstrap!r}; leave expert_noise at 0"
            )

    def check_tasks(self, spec: EnvSpec) -> None:
        """Raise ``ValueError`` naming the value unless ``tasks`` and ``task_weights`` fit the
        environment's task set and the environment has the ``bootstrap`` policies (an expert
        policy for every task under ``bootstrap: expert``)."""
        spec.task_set.validate(self.tasks)
        n = len(self.tasks or spec.task_set.names)
        if self.task_weights and len(self.task_weights) != n:
            raise ValueError(
                f"task_weights must give one weight per task ({n}), got {len(self.task_weights)}"
            )
        if self.bootstrap == "expert":
            for task in self.tasks or spec.task_set.names:
                spec.expert_policy(task)


@dataclass(frozen=True)
class FleetConfig(RobotConfig):
    """Collection with a fleet of simulated robots (``mtopt collect``)."""

    out: str = "runs/log"
    """Episode-log directory to append to (created if missing)."""
    robots: int = 2
    """Number of robots, each run as its own process."""
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


def _probabilities(weights: list[float]) -> np.ndarray | None:
    """Normalised weights, or None (uniform) when no weights are given or they are all 0."""
    total = float(sum(weights))
    return np.asarray(weights, dtype=np.float64) / total if weights and total > 0 else None


def episode_counts(total: int, robots: int) -> list[int]:
    """Split ``total`` episodes over ``robots`` as evenly as possible."""
    base, extra = divmod(total, robots)
    return [base + (1 if i < extra else 0) for i in range(robots)]


class Robot:
    """One simulated robot: an environment, its collection policies and a log writer.

    It acts with its bootstrap policies (``config.bootstrap``: the environment's scripted
    policies, or its expert policies with exploration noise), or with ``q_policy`` when given
    (the continuous system's robots switch per task, :meth:`policy_for`)."""

    def __init__(
        self,
        robot_id: int,
        config: RobotConfig,
        obs: str,
        seed: int,
        run_tag: str,
        spec: EnvSpec,
        q_policy: QPolicy | None = None,
    ) -> None:
        config.check_tasks(spec)
        self.robot_id = robot_id
        self.config = config
        self.obs = obs
        self.spec = spec
        self.task_set = spec.task_set
        self.tasks = config.tasks or self.task_set.names
        self.run_tag = run_tag
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, robot_id]))
        self.env = spec.make_env(
            image=obs == "image", side_images=config.side_images or config.final_views
        )
        self.obs_keys = spec.observation.keys + (("image",) if obs == "image" else ())
        self.bootstrap = {
            task: bootstrap_policy(spec, task, config.bootstrap, config.expert_noise, "motion")
            for task in self.task_set.names
        }
        """Per task: the bootstrap policy, its name and its ε (the expert's noise)."""
        self.q_policy = q_policy
        weights = (
            dict(zip(self.tasks, config.task_weights, strict=True)) if config.task_weights else {}
        )
        self.task_probs = _probabilities([weights[t] for t in self.tasks] if weights else [])
        self.chain: dict[str, tuple[list[str], np.ndarray | None]] = {}
        """Per skill that chains: the tasks a chained episode draws from, and their weights."""
        for task in self.tasks:
            skill = spec.chain_skill(task)
            if skill is None or skill in self.chain:
                continue
            chained = [t for t in self.tasks if self.task_set[t].skill == skill]
            probs = _probabilities([weights[t] for t in chained] if weights and chained else [])
            self.chain[skill] = (chained or list(self.task_set.tasks_of_skill(skill)), probs)
        self._count = 0
        self.discarded = 0
        """Episodes dropped because the simulation became numerically unstable."""
        self._discarded_noted = 0

    def take_discarded(self) -> int:
        """Episodes discarded since the last call (to record them with the next shard)."""
        new = self.discarded - self._discarded_noted
        self._discarded_noted = self.discarded
        return new

    def _next_id(self) -> str:
        self._count += 1
        return f"{self.run_tag}-r{self.robot_id:03d}-{self._count:07d}"

    def policy_for(self, task: str) -> tuple[object, str, float]:
        """The policy for an episode of ``task``: ``(policy, policy name, epsilon)``.

        The Q-policy when the robot has one, else the bootstrap policy of the task (scripted, or
        the expert with its noise as ε). The continuous system's robots override this to switch
        per task (paper App. 9.1).
        """
        if self.q_policy is not None:
            return self.q_policy, self.q_policy.name, self.q_policy.epsilon
        return self.bootstrap[task]

    def run_episode(
        self, task: str, options: dict, chained_from: str | None = None
    ) -> Episode | None:
        """Run one episode of ``task`` and return it (not yet written); ``None`` when the
        simulation became numerically unstable (the episode is discarded, like a robot fault)."""
        seed = int(self.rng.integers(2**31 - 1))
        start = time.time()
        obs, info = self.env.reset(seed=seed, options={**options, "task": task})
        policy, policy_name, epsilon = self.policy_for(task)
        policy.reset(np.random.default_rng(seed), task=task)
        record_image = self.obs == "image"
        keys = self.obs_keys
        observations: dict[str, list[np.ndarray]] = {k: [obs[k]] for k in keys}
        actions = []
        done = False
        while not done:
            action = np.asarray(policy.act(obs), dtype=np.float32)
            obs, _reward, terminated, truncated, info = self.env.step(action)
            actions.append(action)
            for k in keys:
                observations[k].append(obs[k])
            done = terminated or truncated
        if info.get("physics_unstable"):
            self.discarded += 1
            # counted in the collection summary and the log's shard metadata; one line per
            # episode only at DEBUG (a demo discards dozens)
            logger.debug(
                "robot %d: discarded a %s episode (seed %d, %d steps): unstable physics",
                self.robot_id,
                task,
                seed,
                len(actions),
            )
            return None
        views = self.config.final_views
        side = self.env.render_side_images() if self.config.side_images or views else None
        # with per-step images the final one is the last observation already
        final_image = self.env.render_image() if views and not record_image else None
        return Episode(
            episode_id=self._next_id(),
            robot_id=self.robot_id,
            task=task,
            policy=policy_name,
            epsilon=epsilon,
            seed=seed,
            start_time=start,
            end_time=time.time(),
            observations={k: np.stack(v) for k, v in observations.items()},
            actions=np.stack(actions).astype(np.float32),
            success=np.asarray(info["success"], dtype=bool),
            success_tasks=tuple(info["task_names"]),
            final_side_images=side,
            final_image=final_image,
            chained_from=chained_from,
        )

    def episodes(self, count: int):
        """Yield ``count`` episodes, each possibly followed by a chained one (the spec's
        :meth:`~mtopt.spec.EnvSpec.chain_skill`; ``chain_place``)."""
        produced = 0
        while produced < count:
            task = str(self.rng.choice(self.tasks, p=self.task_probs))
            first = self.run_episode(task, self.spec.reset_options(task, "collect"))
            if first is None:
                continue
            yield first
            produced += 1
            skill = self.spec.chain_skill(task)
            if skill is None or not self.config.chain_place or produced >= count:
                continue
            chained, probs = self.chain[skill]
            next_task = str(self.rng.choice(chained, p=probs))
            second = self.run_episode(
                next_task, self.spec.chain_options(next_task), first.episode_id
            )
            if second is not None:
                yield second
                produced += 1

    def close(self) -> None:
        self.env.close()


def fleet_robot(robot_id: int, config: FleetConfig, spec: EnvSpec, run_tag: str) -> Robot:
    """Robot ``robot_id`` of a ``mtopt collect`` fleet, with the checkpoint's Q-policy when the
    config names one (on one CPU thread: one core per robot)."""
    q_policy = None
    if config.checkpoint is not None:
        import torch

        from mtopt.policies.q_policy import load_q_policy

        torch.set_num_threads(1)
        q_policy = load_q_policy(config.checkpoint, spec, config.policy)
    return Robot(robot_id, config, config.obs, config.seed, run_tag, spec, q_policy)


class CollectionError(MtoptError, RuntimeError):
    """A robot of the fleet failed; the shards it completed stay in the log."""


def _robot_main(
    robot_id: int, count: int, config: FleetConfig, spec: EnvSpec, run_tag: str, q, parent: int
) -> None:
    """Process entry point of one robot: collect ``count`` episodes into the log; stop early
    (after flushing) when the collector process ``parent`` is gone."""
    logging.basicConfig(level=logging.WARNING)
    robot = fleet_robot(robot_id, config, spec, run_tag)
    committed = 0
    try:
        with EpisodeLogWriter(config.out, robot_id, config.log) as writer:
            for ep in robot.episodes(count):
                writer.note_discarded(robot.take_discarded())
                written = writer.append(ep)
                committed += len(written)
                q.put(("episode", robot_id, 1, len(written)))
                if os.getppid() != parent:  # the collector was killed: flush and stop
                    logger.warning("robot %d: collector process gone, stopping", robot_id)
                    break
            q.put(("flushed", robot_id, 0, len(writer.flush())))
    except OSError as exc:  # report a full disk (or another write failure) in one line
        what = "disk full" if exc.errno == errno.ENOSPC else f"cannot write ({exc.strerror})"
        q.put(
            (
                "error",
                robot_id,
                0,
                f"{what} while writing a shard to {config.out}; this robot's {committed} "
                "committed episode(s) stay in the log",
            )
        )
        raise
    except BaseException as exc:  # report, then let the process die with the error
        q.put(("error", robot_id, 0, repr(exc)))
        raise
    finally:
        robot.close()
    q.put(("done", robot_id, 0, robot.discarded))


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
    procs = [
        ctx.Process(
            target=_robot_main, args=(i, n, config, spec, run_tag, q, os.getpid()), daemon=True
        )
        for i, n in enumerate(counts)
        if n > 0
    ]
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
        "collected %d episodes with %d robots into %s in %.0f s; %d discarded for unstable "
        "physics (not in the log)",
        collected,
        len(procs),
        out,
        wall,
        discarded,
    )
    return {
        "episodes": collected,
        "discarded": discarded,
        "robots": len(procs),
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
    written = 0
    for robot_id, count in enumerate(episode_counts(config.episodes, config.robots)):
        if count == 0:
            continue
        robot = fleet_robot(robot_id, config, spec, run_tag)
        try:
            with EpisodeLogWriter(config.out, robot_id, config.log) as writer:
                for ep in robot.episodes(count):
                    writer.note_discarded(robot.take_discarded())
                    writer.append(ep)
                    written += 1
        finally:
            robot.close()
    return {"episodes": written, "robots": config.robots}
