"""The project's error type: every failure a user can cause is an :class:`MtoptError` (or a
``ValueError`` naming the bad value), which the command line prints as one line."""

from __future__ import annotations


class MtoptError(Exception):
    """A failure the user can act on; its message names the value and what is allowed."""
