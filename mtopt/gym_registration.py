"""Gymnasium ids of mtopt's environments, registered on ``import mtopt``.

``gymnasium.make("mtopt/Workcell-v0", task="lift-carrot", obs="state")`` builds one workcell
task, and ``gymnasium.make_vec("mtopt/Workcell-v0", num_envs=12)`` a vector env whose sub-envs
serve all 12 tasks (:mod:`mtopt.envs.gym_api`, docs/workcell.md). The entry points are strings,
so registering imports neither MuJoCo nor any environment module; it imports Gymnasium.
Meta-World registers its own ids when it is imported; mtopt adds none for it.
"""

from __future__ import annotations

WORKCELL_ID = "mtopt/Workcell-v0"
"""Gymnasium id of the simulated workcell (one task per env)."""
WORKCELL_ENTRY_POINT = "mtopt.envs.gym_api:WorkcellGymEnv"
"""Constructor behind :data:`WORKCELL_ID` in ``gymnasium.make``."""
WORKCELL_VECTOR_ENTRY_POINT = "mtopt.envs.gym_api:make_workcell_vector_env"
"""Constructor behind :data:`WORKCELL_ID` in ``gymnasium.make_vec`` (all tasks, round-robin)."""


def register_envs() -> None:
    """Register :data:`WORKCELL_ID` with Gymnasium; a second call (or a re-import) does nothing."""
    import gymnasium

    if WORKCELL_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=WORKCELL_ID,
        entry_point=WORKCELL_ENTRY_POINT,
        vector_entry_point=WORKCELL_VECTOR_ENTRY_POINT,
        # no Gymnasium time limit: the workcell truncates at its own ``max_steps`` (20 by
        # default), where it also judges success; a shorter outer limit would cut a longer
        # episode before its only reward
    )
