"""A simulated robot of the fleet: its environment, its collection policies, its episodes.

A :class:`Robot` repeatedly picks a task at random and runs the policy for that task (paper
Sec. 4 and App. 9.1): the environment's scripted bootstrap policy, or the learned Q-policy.
Where the spec chains episodes (the workcell: after a *lift*, a place episode for a random place
task runs on the same scene, starting from whatever the gripper holds), the chained episode
follows at once. For diagnostics (``bootstrap: expert``) the bootstrap policy is the
environment's expert policy instead, with exploration noise (``expert_noise``).

A robot's episodes are coroutines (:meth:`Robot.collection`): they yield an
:class:`ActRequest` at every step and are sent the action, so one process can step several
robots side by side and act for all of them at once (:mod:`mtopt.system.lockstep`);
:meth:`Robot.episodes` runs a robot alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mtopt.data.episode import Episode
from mtopt.data.log import EpisodeLogConfig
from mtopt.policies.exploration import (
    BOOTSTRAP_KINDS,
    Bootstrap,
    bootstrap_policy,
    check_noise,
)
from mtopt.spec import EnvSpec, EpisodePolicy

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
        environment's task set and the environment has the ``bootstrap`` policies a robot builds
        (one per task of the task set: e.g. an expert under ``bootstrap: expert``, or a
        calibrated noise level for Meta-World's scripted policies), so that a fleet fails here
        rather than in its robot processes."""
        spec.task_set.validate(self.tasks)
        n = len(self.tasks or spec.task_set.names)
        if self.task_weights and len(self.task_weights) != n:
            raise ValueError(
                f"task_weights must give one weight per task ({n}), got {len(self.task_weights)}"
            )
        for task in spec.task_set.names:  # as Robot.__init__ builds them
            bootstrap_policy(spec, task, self.bootstrap, self.expert_noise, "motion")


def _probabilities(weights: list[float]) -> np.ndarray | None:
    """Normalised weights, or None (uniform) when no weights are given or they are all 0."""
    total = float(sum(weights))
    return np.asarray(weights, dtype=np.float64) / total if weights and total > 0 else None


@dataclass(frozen=True)
class ActRequest:
    """A robot's request for the action at one step: its current policy and observation."""

    policy: EpisodePolicy
    """The policy acting in the robot's episode (reset for that episode)."""
    obs: dict[str, np.ndarray]
    """The observation to act on."""


def serve_alone(
    steps: Generator[ActRequest | Episode, np.ndarray | None, None],
) -> Iterator[Episode]:
    """Drive a collection coroutine (:meth:`Robot.collection`) alone: each step acted for by
    its own policy; yield its episodes."""
    reply: np.ndarray | None = None
    while True:
        try:
            item = steps.send(reply)
        except StopIteration:
            return
        if isinstance(item, Episode):
            reply = None
            yield item
        else:
            reply = item.policy.act(item.obs)


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

    def episode_steps(
        self, task: str, options: dict, chained_from: str | None = None
    ) -> Generator[ActRequest, np.ndarray, Episode | None]:
        """Run one episode of ``task`` as a coroutine: it yields an :class:`ActRequest` at every
        step and is sent the action, so a driver may act for several robots at once
        (:mod:`mtopt.system.lockstep`). It returns the episode (not yet written), or ``None``
        when the simulation became numerically unstable (the episode is discarded, like a
        robot fault)."""
        seed = int(self.rng.integers(2**31 - 1))
        start = time.time()
        # the spec's options may start the episode as another task (an added task's carrier)
        obs, info = self.env.reset(seed=seed, options={"task": task, **options})
        policy, policy_name, epsilon = self.policy_for(task)
        policy.reset(np.random.default_rng(seed), task=task)
        record_image = self.obs == "image"
        keys = self.obs_keys
        observations: dict[str, list[np.ndarray]] = {k: [obs[k]] for k in keys}
        actions = []
        done = False
        while not done:
            action = np.asarray((yield ActRequest(policy, obs)), dtype=np.float32)
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
            extra=dict(info.get("episode_extra", {})),
        )

    def episodes(self, count: int) -> Iterator[Episode]:
        """Yield ``count`` episodes, each possibly followed by a chained one (the spec's
        :meth:`~mtopt.spec.EnvSpec.chain_skill`; ``chain_place``)."""
        return serve_alone(self.collection(count))

    def collection(self, count: int) -> Generator[ActRequest | Episode, np.ndarray | None, None]:
        """:meth:`episodes` as a coroutine: it yields an :class:`ActRequest` (and is sent the
        action) at every step and each finished :class:`Episode` (and is sent ``None``)."""
        produced = 0
        while produced < count:
            task = str(self.rng.choice(self.tasks, p=self.task_probs))
            first = yield from self.episode_steps(task, self.spec.reset_options(task, "collect"))
            if first is None:
                continue
            yield first
            produced += 1
            skill = self.spec.chain_skill(task)
            if skill is None or not self.config.chain_place or produced >= count:
                continue
            chained, probs = self.chain[skill]
            next_task = str(self.rng.choice(chained, p=probs))
            second = yield from self.episode_steps(
                next_task, self.spec.chain_options(next_task), first.episode_id
            )
            if second is not None:
                yield second
                produced += 1

    def close(self) -> None:
        self.env.close()
