"""mtopt.policies: scripted bootstrap policies, CEM and the greedy / ε-greedy Q-policies."""

from __future__ import annotations

from typing import Literal, get_args

Exploration = Literal["all", "motion"]
"""What the ε step of an ε-greedy Q-policy randomises (see :mod:`mtopt.policies.q_policy`)."""
EXPLORATION_MODES: tuple[str, ...] = get_args(Exploration)


def check_exploration(value: str, name: str = "exploration") -> None:
    """Raise ``ValueError`` naming ``value`` unless it is one of :data:`EXPLORATION_MODES`."""
    if value not in EXPLORATION_MODES:
        raise ValueError(f"{name} must be one of {EXPLORATION_MODES}, got {value!r}")
