"""The robot fleet: simulated robots that collect episodes into the episode log.

Each robot owns a workcell, the collection policies and an episode-log writer. It repeatedly
picks a task at random and runs the policy for that task's skill (paper Sec. 4 and App. 9.1):

* a *lift* task resets the scene and runs the picking policy; a place episode for a random
  place task is then *chained* on the same scene, starting from whatever the gripper holds;
* a *place* task starts from a reset with an object already grasped.

In the local runtime the robots run as separate processes (:func:`collect`); the main process
shows a progress bar with the fleet's episodes per second.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from mtopt.data.episode import Episode
from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogWriter
from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.policies import (
    Exploration,
    PolicyWeights,
    StuckEscape,
    check_exploration,
    check_policy_weights,
    check_stuck_exploration,
)
from mtopt.policies.cem import CEMConfig
from mtopt.policies.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)
from mtopt.progress import progress_bar
from mtopt.tasks import OBJECT_ACQUISITION, TaskSet, default_task_set

logger = logging.getLogger(__name__)

OBS_KEYS = ("state", "gripper_status", "gripper_height", "gripper_motion", "gripper_command")
"""Observation keys recorded for every episode; ``image`` is added with ``obs: image``."""


@dataclass(frozen=True)
class FleetConfig:
    """Collection with a fleet of simulated robots (``mtopt collect``)."""

    out: str = "runs/log"
    """Episode-log directory to append to (created if missing)."""
    robots: int = 2
    """Number of robots, each run as its own process."""
    episodes: int = 200
    """Total number of episodes to collect across the fleet (chained episodes count)."""
    obs: Literal["state", "image"] = "state"
    """Observations to record: the low-dimensional ``state`` only, or also the camera image."""
    side_images: bool = False
    """Record the final side-camera images (success-detector input) of every episode."""
    final_views: bool = False
    """Record the three final camera views of every episode (the over-the-shoulder image and
    both side images: the image success detector's input) without per-step images. With
    ``obs: state`` this makes a log for labelling and training the image success detector at a
    fraction of ``obs: image``'s rendering and storage cost (3 images per episode instead of
    one per step plus 2)."""
    seed: int = 0
    """Seed of the whole collection; robot ``i`` derives its own stream from it."""
    tasks: tuple[str, ...] = ()
    """Tasks the robots choose from (uniformly); empty means all tasks of the task set."""
    task_weights: tuple[float, ...] = ()
    """Relative probability of each task of ``tasks`` (same order; all tasks of the task set
    when ``tasks`` is empty); empty means uniform. A chained place task is drawn by the
    weights of the place tasks. Used to collect imbalanced datasets (paper Fig. 4)."""
    policy: str | None = None
    """Collect with this training checkpoint's Q-policy instead of the scripted policies."""
    epsilon: float = 0.2
    """ε of the ε-greedy Q-policy (paper: 0.2); unused by the scripted policies."""
    exploration: Exploration = "all"
    """What an ε step randomises: ``all`` dims (a uniformly random action) or only the
    ``motion`` dims, keeping the greedy gripper and terminate choices (see
    ``mtopt.policies.q_policy``)."""
    stuck_epsilon: float = 0.0
    """ε right after a blocked descent, when larger than ``epsilon`` (0: off, the paper; see
    ``mtopt.policies.q_policy``)."""
    stuck_escape: StuckEscape = "random"
    """What that exploring step does (:data:`mtopt.policies.StuckEscape`)."""
    policy_weights: PolicyWeights = "online"
    """Which of the checkpoint's networks the Q-policy acts with: ``online`` (the latest SGD
    iterate) or ``polyak`` (target network 1, the Polyak average of the online weights; see
    :data:`mtopt.policies.PolicyWeights`)."""
    device: str = "cpu"
    """Device of the Q-policy in the robot processes."""
    cem: CEMConfig = field(default_factory=CEMConfig)
    """The Q-policy's action search (QT-Opt's 2 x 64 / 6 by default; a finer search finds the
    narrow maximum of a grasp more often at a proportional cost per step)."""
    chain_place: bool = True
    """After a lift episode, chain a place episode on the same scene (paper App. 9.1)."""
    progress: bool = True
    """Show a progress bar."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated workcell."""
    pick: ScriptedPickConfig = field(default_factory=ScriptedPickConfig)
    """The scripted picking policy (object-acquisition tasks)."""
    place: ScriptedPlaceConfig = field(default_factory=ScriptedPlaceConfig)
    """The scripted placing policy (object-manipulation tasks)."""
    log: EpisodeLogConfig = field(default_factory=EpisodeLogConfig)
    """Episode-log shard settings."""

    def __post_init__(self) -> None:
        if not isinstance(self.robots, int) or not 1 <= self.robots <= 256:
            raise ValueError(f"robots must be an integer in [1, 256], got {self.robots!r}")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"episodes must be a positive integer, got {self.episodes!r}")
        if self.obs not in ("state", "image"):
            raise ValueError(f"obs must be 'state' or 'image', got {self.obs!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon!r}")
        check_exploration(self.exploration)
        check_stuck_exploration(self.stuck_epsilon, self.stuck_escape)
        check_policy_weights(self.policy_weights)
        if self.policy is not None and not Path(self.policy).is_file():
            raise ValueError(f"policy checkpoint {self.policy!r} is not a file")
        default_task_set().validate(self.tasks)
        if self.task_weights:
            n = len(self.tasks or default_task_set().names)
            if len(self.task_weights) != n:
                raise ValueError(
                    f"task_weights must give one weight per task ({n}), got "
                    f"{len(self.task_weights)}"
                )
            if min(self.task_weights) < 0 or sum(self.task_weights) <= 0:
                raise ValueError(
                    f"task_weights must be non-negative with a positive sum, got "
                    f"{self.task_weights}"
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
    """One simulated robot: a workcell, its collection policies and a log writer."""

    def __init__(
        self, robot_id: int, config: FleetConfig, run_tag: str, task_set: TaskSet | None = None
    ) -> None:
        self.robot_id = robot_id
        self.config = config
        self.task_set = task_set or default_task_set()
        self.tasks = config.tasks or self.task_set.names
        self.run_tag = run_tag
        seq = np.random.SeedSequence([config.seed, robot_id])
        self.rng = np.random.default_rng(seq)
        workcell = config.workcell
        if config.obs == "image" and not workcell.image:  # obs: image needs the camera on
            workcell = replace(workcell, image=True)
        self.env = WorkcellEnv(workcell)
        self.pick = ScriptedPickPolicy(config.pick)
        self.place = ScriptedPlacePolicy(config.place)
        self.q_policy = None
        if config.policy is not None:
            import torch

            from mtopt.policies.q_policy import load_q_policy

            torch.set_num_threads(1)  # one core per robot process
            self.q_policy = load_q_policy(
                config.policy,
                config.epsilon,
                config.device,
                cem=config.cem,
                exploration=config.exploration,
                stuck_epsilon=config.stuck_epsilon,
                stuck_escape=config.stuck_escape,
                max_translation=workcell.max_translation,
                weights=config.policy_weights,
            )
        self.place_tasks = [t for t in self.tasks if self.task_set[t].skill != OBJECT_ACQUISITION]
        weights = (
            dict(zip(self.tasks, config.task_weights, strict=True)) if config.task_weights else {}
        )
        self.task_probs = _probabilities([weights[t] for t in self.tasks] if weights else [])
        self.place_probs = _probabilities([weights[t] for t in self.place_tasks] if weights else [])
        if not self.place_tasks:
            self.place_tasks = list(self.task_set.tasks_of_skill("object-manipulation"))
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

    def policy_for(self, task: str, scripted_name: str) -> tuple[object, str, float]:
        """The policy for an episode of ``task``: ``(policy, policy name, epsilon)``.

        The Q-policy when the robot has one, else the scripted policy ``scripted_name``.
        The continuous system's robots override this to switch per task (paper App. 9.1).
        """
        if self.q_policy is not None:
            return self.q_policy, self.q_policy.name, self.q_policy.epsilon
        return (self.pick if scripted_name == "scripted-pick" else self.place), scripted_name, 0.0

    def run_episode(
        self, task: str, options: dict, policy_name: str, chained_from: str | None = None
    ) -> Episode | None:
        """Run one episode of ``task`` and return it (not yet written); ``None`` when the
        simulation became numerically unstable (the episode is discarded, like a robot fault)."""
        seed = int(self.rng.integers(2**31 - 1))
        start = time.time()
        obs, info = self.env.reset(seed=seed, options={**options, "task": task})
        policy, policy_name, epsilon = self.policy_for(task, policy_name)
        policy.reset(np.random.default_rng(seed), task=task)
        record_image = self.config.obs == "image"
        keys = (*OBS_KEYS, "image") if record_image else OBS_KEYS
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
        """Yield ``count`` episodes, chaining place episodes after lift episodes."""
        produced = 0
        while produced < count:
            task = str(self.rng.choice(self.tasks, p=self.task_probs))
            if self.task_set[task].skill == OBJECT_ACQUISITION:
                lift = self.run_episode(task, {"scene": "random"}, "scripted-pick")
                if lift is None:
                    continue
                yield lift
                produced += 1
                if self.config.chain_place and produced < count:
                    place_task = str(self.rng.choice(self.place_tasks, p=self.place_probs))
                    place = self.run_episode(
                        place_task, {"chain": True}, "scripted-place", lift.episode_id
                    )
                    if place is not None:
                        yield place
                        produced += 1
            else:
                place = self.run_episode(task, {"grasped": True}, "scripted-place")
                if place is not None:
                    yield place
                    produced += 1

    def close(self) -> None:
        self.env.close()


def _robot_main(
    robot_id: int, count: int, config: FleetConfig, run_tag: str, q, parent: int
) -> None:
    """Process entry point of one robot: collect ``count`` episodes into the log; stop early
    (after flushing) when the collector process ``parent`` is gone."""
    logging.basicConfig(level=logging.WARNING)
    robot = Robot(robot_id, config, run_tag)
    try:
        with EpisodeLogWriter(config.out, robot_id, config.log) as writer:
            for ep in robot.episodes(count):
                writer.note_discarded(robot.take_discarded())
                written = writer.append(ep)
                q.put(("episode", robot_id, 1, len(written)))
                if os.getppid() != parent:  # the collector was killed: flush and stop
                    logger.warning("robot %d: collector process gone, stopping", robot_id)
                    break
            q.put(("flushed", robot_id, 0, len(writer.flush())))
    except BaseException as exc:  # report, then let the process die with the error
        q.put(("error", robot_id, 0, repr(exc)))
        raise
    finally:
        robot.close()
    q.put(("done", robot_id, 0, robot.discarded))


def collect(config: FleetConfig) -> dict:
    """Collect ``config.episodes`` episodes with ``config.robots`` robot processes.

    Returns a summary with the number of episodes written (``episodes``), the number run but
    discarded for unstable physics (``discarded``; also recorded in the log's shard metadata,
    see :meth:`EpisodeLogReader.discarded_episodes`), the wall time and episodes/s; it is
    logged once at INFO (single discarded episodes only at DEBUG). Raises ``RuntimeError`` if
    a robot process fails; shards it completed stay in the log.
    """
    out = Path(config.out)
    EpisodeLogWriter.check_directory(out)
    existing = EpisodeLogReader(out).metadata().num_rows if out.exists() else 0
    run_tag = f"s{config.seed}-n{existing}"
    counts = episode_counts(config.episodes, config.robots)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_robot_main, args=(i, n, config, run_tag, q, os.getpid()), daemon=True)
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
        raise RuntimeError("collection failed: " + "; ".join(errors))
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
