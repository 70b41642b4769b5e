"""mtopt.policies: scripted bootstrap policies, CEM and the greedy / ε-greedy Q-policies."""

from __future__ import annotations

from typing import Literal, get_args

Exploration = Literal["all", "motion"]
"""What the ε step of an ε-greedy Q-policy randomises (see :mod:`mtopt.policies.q_policy`)."""
EXPLORATION_MODES: tuple[str, ...] = get_args(Exploration)
StuckEscape = Literal["random", "up-turn"]
"""What an exploring step right after a blocked descent does: the ``exploration`` mode's
``random`` step, or ``up-turn``: lift by a full step and turn the wrist by a full step either
way, with the greedy gripper and terminate choices
(:func:`mtopt.policies.q_policy.escape_motion`)."""
STUCK_ESCAPES: tuple[str, ...] = get_args(StuckEscape)


def check_exploration(value: str, name: str = "exploration") -> None:
    """Raise ``ValueError`` naming ``value`` unless it is one of :data:`EXPLORATION_MODES`."""
    if value not in EXPLORATION_MODES:
        raise ValueError(f"{name} must be one of {EXPLORATION_MODES}, got {value!r}")


def check_stuck_exploration(epsilon: float, escape: str, prefix: str = "") -> None:
    """Raise ``ValueError`` naming the value unless ``epsilon`` is a probability in [0, 1] and
    ``escape`` one of :data:`STUCK_ESCAPES` (``prefix`` is prepended to the field names)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
        raise ValueError(f"{prefix}stuck_epsilon must be a probability in [0, 1], got {epsilon!r}")
    if escape not in STUCK_ESCAPES:
        raise ValueError(f"{prefix}stuck_escape must be one of {STUCK_ESCAPES}, got {escape!r}")
