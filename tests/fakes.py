"""Shared test fakes: realistic random episodes from a seeded generator.

``make_fake_episode(rng, ...)`` builds an :class:`~mtopt.data.episode.Episode` that looks like
one from the workcell: the gripper descends, closes and lifts, the last action terminates,
and the ground-truth success vector respects the task relations of the paper's task set
(a ``lift-carrot`` success implies ``lift-any`` and excludes the other semantic lifts).
Same generator state, same episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mtopt.data.episode import Episode, new_episode_id
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.envs.workcell_tasks import OBJECT_CATEGORIES, PLATE_SECTIONS, workcell_task_set
from mtopt.learning.networks import NetworkShape
from mtopt.spec import EnvSpec, ObservationSpec

TASK_SET = workcell_task_set()
"""The 12 paper tasks; fake episodes carry success labels for all of them."""
STATE_DIM = 16
"""Width of the fake low-dimensional ``state`` observation."""


GRIPPER_INPUTS = (("gripper_status", 1), ("gripper_height", 1))
"""The gripper inputs fake episodes carry (and the workcell's default network inputs)."""


def fake_shape(
    state_dim: int = STATE_DIM,
    image_size: int = 0,
    inputs: tuple[tuple[str, int], ...] = GRIPPER_INPUTS,
    structure: Any = None,
) -> NetworkShape:
    """A network shape for fake observations: the paper's 16 task slots, the workcell's 6-D
    action, the gripper inputs (height in metres)."""
    return NetworkShape(16, 6, state_dim, image_size, inputs, ("gripper_height",), structure)


@dataclass(frozen=True)
class FakeSpec(EnvSpec):
    """The spec of logs made of fake episodes (and of :class:`ReachTask`): the workcell's task
    set and action space, a flat ``state`` of width ``state_dim``, the gripper's status and
    height as proprioceptive inputs. It has no environment to run."""

    state_dim: int = STATE_DIM
    """Width of the ``state`` observation."""
    image_size: int | None = None
    """Side of the ``image`` observation, if the fake log has one."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", "fake")
        set_(self, "task_set", TASK_SET)
        set_(self, "action", WORKCELL_ACTION)
        proprio = (("gripper_status", 1), ("gripper_height", 1))
        obs = ObservationSpec(self.state_dim, proprio, image_size=self.image_size)
        set_(self, "observation", obs)
        set_(self, "structure", None)
        set_(self, "horizon", 20)

    def make_env(self, image: bool = False, side_images: bool = False) -> Any:
        raise NotImplementedError("FakeSpec describes fake logs; it has no environment")

    def reset_options(self, task: str, mode: str, attempt: int | None = None) -> dict[str, Any]:
        return {"task": task}

    def scripted_policy(self, task: str) -> tuple[Any, str]:
        raise NotImplementedError("FakeSpec has no scripted policies")


def _success_vector(rng: np.random.Generator, task: str) -> np.ndarray:
    """Ground-truth successes consistent with the task relations."""
    success = np.zeros(len(TASK_SET), dtype=bool)
    if task.startswith("lift"):
        if rng.random() < 0.5:  # something was lifted
            cat = OBJECT_CATEGORIES[int(rng.integers(len(OBJECT_CATEGORIES)))]
            success[TASK_SET.slot("lift-any")] = True
            success[TASK_SET.slot(f"lift-{cat}")] = True
    elif rng.random() < 0.4:  # something was placed
        sec = PLATE_SECTIONS[int(rng.integers(len(PLATE_SECTIONS)))]
        success[TASK_SET.slot("place-any")] = True
        success[TASK_SET.slot(f"place-{sec}")] = True
    return success


def make_fake_episode(
    rng: np.random.Generator,
    *,
    robot_id: int = 0,
    task: str | None = None,
    num_steps: int | None = None,
    state_dim: int = STATE_DIM,
    image_size: int | None = None,
    side_images: bool = False,
    final_image: bool = False,
    chained_from: str | None = None,
    policy: str | None = None,
    epsilon: float | None = None,
    start_time: float = 1_700_000_000.0,
    extra: dict[str, str | float | int] | None = None,
) -> Episode:
    """A random but plausible episode; every draw comes from ``rng``.

    ``task`` defaults to a random paper task, ``num_steps`` to 3..20, ``policy`` to a
    scripted policy matching the task's skill (or ``checkpoint:fake`` half the time) with a
    random ε for checkpoints. ``image_size`` adds an ``image`` observation of that
    height and width; ``side_images`` adds two final side-camera images of the same size
    (64 if ``image_size`` is None); ``final_image`` adds a final over-the-shoulder image of
    that size (as collection with ``final_views`` records without per-step images).
    """
    names = TASK_SET.names
    task = task or names[int(rng.integers(len(names)))]
    T = int(num_steps if num_steps is not None else rng.integers(3, 21))
    if policy is None:
        if rng.random() < 0.5:
            policy = "scripted-pick" if task.startswith("lift") else "scripted-place"
        else:
            policy = "checkpoint:fake"
    if epsilon is None:
        epsilon = float(rng.choice([0.0, 0.1, 0.2])) if policy.startswith("checkpoint:") else 0.0

    actions = rng.uniform(-1.0, 1.0, size=(T, 6)).astype(np.float32)
    actions[:, 5] = 0.0
    if T:
        actions[-1, 5] = 1.0  # terminate
    # gripper goes down, closes, comes up
    t = np.linspace(0.0, 1.0, T + 1, dtype=np.float32)
    height = (0.3 * np.abs(2.0 * t - 1.0) + 0.02 * rng.standard_normal(T + 1)).astype(np.float32)
    closed = (t >= 0.5).astype(np.float32)
    state = rng.standard_normal((T + 1, state_dim)).astype(np.float32)
    state[:, 0] = height
    observations = {
        "state": state,
        "gripper_status": closed[:, None].copy(),
        "gripper_height": height[:, None].copy(),
    }
    if image_size is not None:
        observations["image"] = rng.integers(
            0, 256, size=(T + 1, image_size, image_size, 3), dtype=np.uint8
        )
    side = None
    if side_images:
        size = image_size or 64
        side = rng.integers(0, 256, size=(2, size, size, 3), dtype=np.uint8)
    final = None
    if final_image:
        size = image_size or 64
        final = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    duration = float(rng.uniform(5.0, 40.0))
    return Episode(
        episode_id=new_episode_id(robot_id, rng),
        robot_id=robot_id,
        task=task,
        policy=policy,
        epsilon=epsilon,
        seed=int(rng.integers(0, 2**31)),
        start_time=start_time,
        end_time=start_time + duration,
        observations=observations,
        actions=actions,
        success=_success_vector(rng, task),
        success_tasks=names,
        final_side_images=side,
        final_image=final,
        chained_from=chained_from,
        extra=dict(extra or {}),
    )


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    """Exact equality of every field, array values and dtypes included."""
    for name in (
        "episode_id",
        "robot_id",
        "task",
        "policy",
        "epsilon",
        "seed",
        "start_time",
        "end_time",
        "success_tasks",
        "chained_from",
        "extra",
    ):
        assert getattr(a, name) == getattr(b, name), name
    assert sorted(a.observations) == sorted(b.observations)
    pairs = [(a.actions, b.actions), (a.success, b.success)]
    pairs += [(a.observations[k], b.observations[k]) for k in a.observations]
    for x, y in pairs:
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    for name in ("final_side_images", "final_image"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y)


class ReachTask:
    """A tiny, easy task for learning tests: move a point ``x`` to a goal ``g`` on a line.

    ``state = [x, g]``; action dim 0 moves ``x`` by ``0.3 * a[0]``; ``a[5] >= 0.5`` terminates;
    at most 6 steps. The episode succeeds when it ends with ``|x - g| < 0.15``. A random
    policy succeeds about 13 % of the time, a good one about half the time (far goals are out
    of reach in 6 steps).
    """

    max_steps = 6

    def reset(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        self.x, self.g, self.t = float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), 0
        return self.obs()

    def obs(self) -> dict[str, np.ndarray]:
        zero = np.zeros(1, np.float32)
        return {
            "state": np.array([self.x, self.g], np.float32),
            "gripper_status": zero,
            "gripper_height": zero,
        }

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
        self.t += 1
        self.x = float(np.clip(self.x + 0.3 * action[0], -1, 1))
        return self.obs(), bool(action[5] >= 0.5 or self.t >= self.max_steps)

    def success(self) -> bool:
        return abs(self.x - self.g) < 0.15

    @staticmethod
    def random_action(rng: np.random.Generator) -> np.ndarray:
        a = rng.uniform(-1, 1, 6).astype(np.float32)
        a[4] = float(rng.integers(2))
        a[5] = float(rng.random() < 0.2)
        return a

    def rollout(self, rng: np.random.Generator, policy=None, task: str = "lift-any"):
        """Run one episode (random actions when ``policy`` is None); returns an Episode."""
        obs = [self.reset(rng)]
        if policy is not None:
            policy.reset(rng, task=task)
        actions, done = [], False
        while not done:
            a = self.random_action(rng) if policy is None else policy.act(obs[-1])
            o, done = self.step(a)
            obs.append(o)
            actions.append(a)
        success = np.zeros(len(TASK_SET), bool)
        success[TASK_SET.slot(task)] = self.success()
        return Episode(
            episode_id=new_episode_id(0, rng),
            robot_id=0,
            task=task,
            policy="scripted-random" if policy is None else "checkpoint:test",
            epsilon=0.0,
            seed=0,
            start_time=0.0,
            end_time=0.0,
            observations={k: np.stack([o[k] for o in obs]) for k in obs[0]},
            actions=np.stack(actions),
            success=success,
            success_tasks=TASK_SET.names,
        )
