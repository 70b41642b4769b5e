"""Exploration around an acting policy: uniformly random actions, and a policy that takes one
instead of its base policy's action with a fixed probability per step.

* :func:`uniform_random_action` is the random action of every exploring step: continuous dims
  uniform in their bounds, binary discrete dims (gripper, terminate) a fair coin. The ε-greedy
  Q-policy (:mod:`mtopt.policies.q_policy`) and :class:`NoisyPolicy` both draw it.
* :class:`NoisyPolicy` wraps an episode policy (an environment's expert policy when the fleet
  collects with ``bootstrap: expert``): with probability ``noise`` per step it explores, as the
  ε-greedy Q-policy does: ``all`` takes a uniformly random action, ``motion`` replaces only the
  continuous (motion) dims and keeps the base policy's gripper and terminate choices. The base
  policy still sees every observation and computes its action at every step, so a stateful
  controller (the aimed picker's phases) follows the episode as it happened.
* :func:`bootstrap_policy` is the policy a fleet robot runs for a task before it has a learned
  one: the environment's scripted policy, or its expert policy with exploration noise.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from mtopt.policies import Exploration, check_exploration
from mtopt.spec import ActionSpec, EnvSpec, EpisodePolicy

Bootstrap = Literal["scripted", "expert"]
"""Which policies a fleet robot runs without a learned policy: the environment's ``scripted``
bootstrap policies (the paper's) or its ``expert`` policies (diagnostics)."""
BOOTSTRAP_KINDS: tuple[str, ...] = get_args(Bootstrap)


def uniform_random_action(spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random float32 action of ``spec``: every dim drawn uniform in its bounds,
    then each discrete dim set to ``low`` or ``high`` by a fair coin (in dim order)."""
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    a = rng.uniform(low, high).astype(np.float32)
    for d in spec.discrete_dims:
        a[d] = high[d] if rng.random() < 0.5 else low[d]
    return a


def check_noise(value: object, name: str = "noise") -> float:
    """``value`` as a float; ``ValueError`` naming it unless it is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class NoisyPolicy:
    """``base``'s action, with probability ``noise`` per step replaced by a uniformly random
    one (``exploration: all``) or with its continuous dims replaced (``motion``). The random
    draws come from a child of the episode's generator (``rng.spawn``), so the base policy sees
    the same generator as without the noise, and ``noise == 0`` reproduces its actions exactly
    (nothing is drawn)."""

    def __init__(
        self,
        base: EpisodePolicy,
        action_spec: ActionSpec,
        noise: float,
        exploration: Exploration = "all",
    ) -> None:
        check_exploration(exploration)
        self.base = base
        self.action_spec = action_spec
        self.noise = check_noise(noise)
        self.exploration = exploration
        self._rng: np.random.Generator | None = None

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an episode of ``task``: reset the base policy with ``rng`` and draw this
        episode's noise from a child generator of it."""
        self.base.reset(rng, task=task)
        self._rng = rng.spawn(1)[0] if self.noise > 0 else None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The base policy's action for ``obs``, or (with probability ``noise``) an exploring
        one; the base policy computes its action either way."""
        action = np.array(self.base.act(obs), dtype=np.float32)
        if self._rng is None or self._rng.random() >= self.noise:
            return action
        random = uniform_random_action(self.action_spec, self._rng)
        if self.exploration == "all":
            return random
        dims = list(self.action_spec.continuous_dims)
        action[dims] = random[dims]
        return action


def bootstrap_policy(
    spec: EnvSpec,
    task: str,
    kind: str = "scripted",
    noise: float = 0.0,
    exploration: Exploration = "all",
) -> tuple[EpisodePolicy, str, float]:
    """``(policy, name, epsilon)`` of a robot's bootstrap policy for ``task``: the scripted
    policy (``epsilon`` 0), or the expert policy exploring with probability ``noise`` per step
    as ``exploration`` says (``epsilon`` = ``noise``). ``ValueError`` naming the value for an
    unknown ``kind``, a noise outside [0, 1], noise on the scripted policies, or an environment
    without an expert policy."""
    noise = check_noise(noise, "expert_noise")
    if kind == "scripted":
        if noise > 0:
            raise ValueError(
                f"expert_noise {noise!r} applies to bootstrap 'expert' only; the scripted "
                "policies carry their own noise (leave expert_noise at 0)"
            )
        policy, name = spec.scripted_policy(task)
        return policy, name, 0.0
    if kind == "expert":
        expert, name = spec.expert_policy(task)
        return NoisyPolicy(expert, spec.action, noise, exploration), name, noise
    raise ValueError(f"bootstrap must be one of {BOOTSTRAP_KINDS}, got {kind!r}")
