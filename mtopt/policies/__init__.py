"""mtopt.policies: the greedy / ε-greedy Q-policies and the one config of a Q-policy that acts.

The scripted bootstrap policies belong to their environment (``mtopt.envs``); CEM, which both
acting and learning use, is :mod:`mtopt.learning.cem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from mtopt.learning.cem import CEMConfig

Exploration = Literal["all", "motion"]
"""What the ε step of an ε-greedy Q-policy randomises (see :mod:`mtopt.policies.q_policy`)."""
EXPLORATION_MODES: tuple[str, ...] = get_args(Exploration)


def check_exploration(value: str, name: str = "exploration") -> None:
    """Raise ``ValueError`` naming ``value`` unless it is one of :data:`EXPLORATION_MODES`."""
    if value not in EXPLORATION_MODES:
        raise ValueError(f"{name} must be one of {EXPLORATION_MODES}, got {value!r}")


@dataclass(frozen=True)
class PolicyConfig:
    """How a learned Q-policy acts: its exploration, its action search and its device. Every
    command in which a Q-policy acts (collection, the continuous system's robots, evaluation,
    the demo) holds one of these and nothing else about acting."""

    epsilon: float = 0.0
    """Probability of an exploring step per step (0: greedy; the paper collects with 0.2)."""
    exploration: Exploration = "motion"
    """What an exploring step randomises: ``all`` dims (a uniformly random action) or only the
    continuous ``motion`` dims, keeping the greedy discrete choices (gripper, terminate)."""
    cem: CEMConfig = field(default_factory=CEMConfig)
    """The action search (QT-Opt's: 2 iterations, 64 samples, 6 elites)."""
    device: str = "auto"
    """``auto`` (CUDA when torch has it), ``cpu`` or ``cuda[:N]``."""

    def __post_init__(self) -> None:
        e = self.epsilon
        if isinstance(e, bool) or not isinstance(e, int | float) or not 0.0 <= e <= 1.0:
            raise ValueError(f"policy.epsilon must be a number in [0, 1], got {e!r}")
        check_exploration(self.exploration, "policy.exploration")


def collection_policy() -> PolicyConfig:
    """The acting config of collection robots: ε = 0.2 (the paper's), one CPU core each."""
    return PolicyConfig(epsilon=0.2, device="cpu")
