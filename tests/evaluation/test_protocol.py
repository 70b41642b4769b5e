"""The evaluation attempt reports physics blow-ups, and the table shows their count."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mtopt.envs import make_spec
from mtopt.envs.workcell import WorkcellEnv
from mtopt.envs.workcell_spec import WorkcellSpec
from mtopt.evaluation.protocol import (
    Attempt,
    ProtocolConfig,
    evaluate,
    format_eval_table,
    run_task_attempt,
)
from mtopt.evaluation.summary import summarize

TERMINATE = np.array([0, 0, 0, 0, 0, 1], dtype=np.float32)


class _Policy:
    """Terminates at once; with ``blow_up`` it first corrupts the simulation as a contact
    explosion would (MuJoCo meets a NaN velocity)."""

    def __init__(self, env: WorkcellEnv, blow_up: bool) -> None:
        self.env, self.blow_up = env, blow_up

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        self.steps = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.steps += 1
        if self.blow_up and self.steps == 1:
            self.env.data.qvel[0] = np.nan
            return np.zeros(6, dtype=np.float32)
        return TERMINATE


def test_an_attempt_ended_by_a_blow_up_is_a_failure_and_is_reported():
    env, tasks = WorkcellEnv(), WorkcellSpec()
    try:
        calm = run_task_attempt(env, _Policy(env, False), "lift-any", 5, tasks)
        assert calm == Attempt(success=False, unstable=False)
        broken = run_task_attempt(env, _Policy(env, True), "lift-any", 5, tasks)
        assert broken == Attempt(success=False, unstable=True)
    finally:
        env.close()


def test_the_table_shows_the_unstable_count_and_a_dash_for_old_results():
    rows = {
        "lift-any": {"success_rate": 0.5, "ci95": [0.3, 0.7], "physics_unstable": 7},
        "place-any": {"success_rate": 0.8, "ci95": [0.6, 0.9]},  # written before the count
    }
    table = format_eval_table({"tasks": rows, "summary": summarize({"a": 0.5, "b": 0.8})})
    lift = next(line for line in table.splitlines() if line.startswith("lift-any"))
    place = next(line for line in table.splitlines() if line.startswith("place-any"))
    assert "unstable" in table.splitlines()[0]
    assert lift.split()[-1] == "7" and place.split()[-1] == "-"


class _HalfwayPolicy:
    """Deterministic: half a step toward goal 0 of the point mass, stops when near; acts one
    observation at a time or a batch (recording the batch sizes)."""

    batchable = True

    def __init__(self) -> None:
        self.batches: list[int] = []

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = obs["state"]
        move = np.clip(0.5 * (state[2:4] - state[:2]) / 0.1, -1, 1)
        return np.array([*move, float(np.linalg.norm(state[2:4] - state[:2]) < 0.05)], np.float32)

    def generator_for(self, seed: int) -> None:
        return None

    def act_batch(self, observations, task, generator) -> np.ndarray:
        self.batches.append(len(observations))
        return np.stack([self.act(o) for o in observations])


def test_lockstep_attempts_see_the_same_scenes_as_one_at_a_time():
    spec = make_spec("pointmass")
    config = ProtocolConfig(episodes_per_task=5, tasks=("reach-0", "reach-1"), progress=False)
    one, batched = _HalfwayPolicy(), _HalfwayPolicy()
    alone = evaluate(lambda task: one, replace(config, lockstep=1), spec)
    side_by_side = evaluate(lambda task: batched, replace(config, lockstep=3), spec)
    assert alone["tasks"] == side_by_side["tasks"]
    assert alone["tasks"]["reach-0"]["successes"] > 0  # the outcomes are not all alike
    assert one.batches == [] and max(batched.batches) == 3  # groups of 3 + 2 per task
    with pytest.raises(ValueError, match="lockstep must be a positive integer, got 0"):
        ProtocolConfig(lockstep=0)
