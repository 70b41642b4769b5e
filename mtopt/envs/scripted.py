"""Crude scripted bootstrap policies of the workcell (paper App. 7.2).

* :class:`ScriptedPickPolicy` — from wherever the episode starts above the right bin, move
  down to the bottom of the bin, close the gripper, lift, terminate. It never aims at objects.
* :class:`ScriptedPlacePolicy` — holding an object, move to a random location above the left
  bin, descend, open the gripper, retract, terminate. It never aims at the plate.

Both read only the observation (gripper pose and height from ``obs["state"]`` /
``obs["gripper_height"]``) and inject noise into every action: Gaussian noise on the motion
part, and on the discrete part a random flip of the gripper command and a random early
termination. The discrete noise matters for learning: without it the bootstrap data never
shows what terminating or toggling the gripper does in most states, and an offline Q-function
is free to believe it is excellent.
Usage: ``policy.reset(rng)`` at the start of each episode, then ``policy.act(obs)`` per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtopt.envs import scene

_TERMINATE = np.array([0, 0, 0, 0, 0, 1], dtype=np.float32)


def _check(name: str, value: object, low: float, high: float, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class ScriptedPickConfig:
    """Parameters of the scripted picking policy (see ``benchmarks/calibrate_scripted.py``)."""

    noise_std: float = 0.45
    """Std of the Gaussian noise added to dx, dy, dz, dyaw (in action units, before clipping)."""
    gripper_flip_prob: float = 0.05
    """Probability per step that the gripper command is flipped (discrete action noise)."""
    terminate_prob: float = 0.02
    """Probability per step of terminating the episode early (discrete action noise)."""
    bottom_height: float = 0.012
    """Stop descending when the finger tips are this close to the bin floor (metres)."""
    stall_distance: float = 0.005
    """Also stop descending when a step lowered the gripper by less than this (blocked)."""
    max_descend_steps: int = 6
    """Give up descending after this many steps."""
    close_steps: int = 1
    """Steps spent closing the gripper before lifting."""
    lift_steps: int = 3
    """Steps spent lifting (at full speed) before terminating."""

    def __post_init__(self) -> None:
        _check("noise_std", self.noise_std, 0.0, 5.0)
        _check("gripper_flip_prob", self.gripper_flip_prob, 0.0, 1.0)
        _check("terminate_prob", self.terminate_prob, 0.0, 1.0)
        _check("bottom_height", self.bottom_height, 0.0, 0.2)
        _check("stall_distance", self.stall_distance, 0.0, 0.05)
        _check("max_descend_steps", self.max_descend_steps, 1, 20, integer=True)
        _check("close_steps", self.close_steps, 1, 10, integer=True)
        _check("lift_steps", self.lift_steps, 1, 10, integer=True)


class _NoisyPolicy:
    def __init__(self, noise_std: float, gripper_flip_prob: float, terminate_prob: float) -> None:
        self._noise_std = noise_std
        self._flip = gripper_flip_prob
        self._terminate = terminate_prob
        self._rng: np.random.Generator | None = None

    def _action(self, motion: np.ndarray, gripper: float) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("call reset(rng) before act()")
        noisy = motion + self._noise_std * self._rng.standard_normal(4)
        flip, terminate = self._rng.random(2)
        if terminate < self._terminate:
            return _TERMINATE.copy()
        out = np.zeros(6, dtype=np.float32)
        out[:4] = np.clip(noisy, -1.0, 1.0)
        out[4] = 1.0 - gripper if flip < self._flip else gripper
        return out


class ScriptedPickPolicy(_NoisyPolicy):
    """Down to the bin floor, close, lift, terminate (about 10 % ``lift-any`` success)."""

    def __init__(self, config: ScriptedPickConfig | None = None) -> None:
        self.config = config if config is not None else ScriptedPickConfig()
        cfg = self.config
        super().__init__(cfg.noise_std, cfg.gripper_flip_prob, cfg.terminate_prob)
        self._phase = "descend"
        self._count = 0
        self._last_height = math.inf

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start a new episode, drawing all noise from ``rng`` (the task does not matter)."""
        self._rng = rng
        self._phase = "descend"
        self._count = 0
        self._last_height = math.inf

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action for observation ``obs`` (uses only ``gripper_height``)."""
        cfg = self.config
        height = float(obs["gripper_height"][0])
        if self._phase == "descend":
            stalled = self._last_height - height < cfg.stall_distance
            if (
                height <= cfg.bottom_height
                or self._count >= cfg.max_descend_steps
                or (self._count > 0 and stalled)
            ):
                self._phase, self._count = "close", 0
            else:
                self._last_height = height
                self._count += 1
                return self._action(np.array([0.0, 0.0, -1.0, 0.0]), 0.0)
        if self._phase == "close":
            if self._count < cfg.close_steps:
                self._count += 1
                return self._action(np.zeros(4), 1.0)
            self._phase, self._count = "lift", 0
        if self._phase == "lift":
            if self._count < cfg.lift_steps:
                self._count += 1
                return self._action(np.array([0.0, 0.0, 1.0, 0.0]), 1.0)
            self._phase = "done"
        return _TERMINATE.copy()


@dataclass(frozen=True)
class ScriptedPlaceConfig:
    """Parameters of the scripted placing policy (see ``benchmarks/calibrate_scripted.py``)."""

    noise_std: float = 0.1
    """Std of the Gaussian noise added to dx, dy, dz, dyaw (in action units, before clipping)."""
    gripper_flip_prob: float = 0.015
    """Probability per step that the gripper command is flipped (discrete action noise)."""
    terminate_prob: float = 0.01
    """Probability per step of terminating the episode early (discrete action noise)."""
    target_margin: float = 0.02
    """Targets are drawn uniformly from the left bin's inside shrunk by this margin (metres)."""
    transit_height: float = 0.13
    """Finger-tip height the gripper climbs to before crossing over to the left bin."""
    release_height: float = 0.06
    """Finger-tip height at which the gripper opens."""
    reach_tolerance: float = 0.01
    """The gripper has reached the target when within this distance (metres, per axis)."""
    max_translation: float = 0.05
    """The environment's translation per unit action (``WorkcellConfig.max_translation``)."""
    max_transit_steps: int = 14
    """Open the gripper after this many steps even if the target was not reached."""
    retract_steps: int = 2
    """Steps spent moving up after opening, before terminating."""

    def __post_init__(self) -> None:
        _check("noise_std", self.noise_std, 0.0, 5.0)
        _check("gripper_flip_prob", self.gripper_flip_prob, 0.0, 1.0)
        _check("terminate_prob", self.terminate_prob, 0.0, 1.0)
        _check("target_margin", self.target_margin, 0.0, scene.BIN_HALF - 0.01)
        _check("transit_height", self.transit_height, 0.0, 0.3)
        _check("release_height", self.release_height, 0.0, 0.3)
        _check("reach_tolerance", self.reach_tolerance, 1e-4, 0.1)
        _check("max_translation", self.max_translation, 1e-3, 0.2)
        _check("max_transit_steps", self.max_transit_steps, 1, 100, integer=True)
        _check("retract_steps", self.retract_steps, 0, 10, integer=True)


class ScriptedPlacePolicy(_NoisyPolicy):
    """To a random spot above the left bin, descend, open, retract, terminate (about 47 %
    ``place-any`` success)."""

    def __init__(self, config: ScriptedPlaceConfig | None = None) -> None:
        self.config = config if config is not None else ScriptedPlaceConfig()
        cfg = self.config
        super().__init__(cfg.noise_std, cfg.gripper_flip_prob, cfg.terminate_prob)
        self._target = np.zeros(2)
        self._phase = "transit"
        self._count = 0

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start a new episode: draw the release location from ``rng`` (task-agnostic)."""
        self._rng = rng
        half = scene.BIN_HALF - self.config.target_margin
        self._target = rng.uniform(-half, half, size=2) + np.array([0.0, scene.BIN_CENTER_Y])
        self._phase = "transit"
        self._count = 0

    @property
    def target(self) -> np.ndarray:
        """The release location (x, y) of the current episode."""
        return self._target.copy()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action for observation ``obs`` (uses the gripper position in ``obs["state"]``)."""
        cfg = self.config
        pos = np.asarray(obs["state"][:3], dtype=float)
        if self._phase == "transit":
            delta = self._target - pos[:2]
            reached = np.all(np.abs(delta) <= cfg.reach_tolerance)
            low = pos[2] <= cfg.release_height + 0.01
            if (reached and low) or self._count >= cfg.max_transit_steps:
                self._phase, self._count = "open", 0
            else:
                self._count += 1
                over_left = pos[1] > scene.BIN_CENTER_Y - scene.BIN_HALF + 0.03
                goal_z = cfg.release_height if over_left else max(cfg.transit_height, pos[2])
                step_xy = np.clip(delta / cfg.max_translation, -1.0, 1.0)
                if not over_left and pos[2] < cfg.transit_height - 0.01:
                    step_xy[:] = 0.0  # climb first so the held object clears the bin walls
                dz = np.clip((goal_z - pos[2]) / cfg.max_translation, -1.0, 1.0)
                return self._action(np.array([step_xy[0], step_xy[1], dz, 0.0]), 1.0)
        if self._phase == "open":
            self._phase = "retract"
            return self._action(np.zeros(4), 0.0)
        if self._phase == "retract":
            if self._count < cfg.retract_steps:
                self._count += 1
                return self._action(np.array([0.0, 0.0, 1.0, 0.0]), 0.0)
            self._phase = "done"
        return _TERMINATE.copy()
