"""``mtopt eval``: evaluate a checkpoint (or the scripted policies) with the paper's protocol."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mtopt.envs.workcell import WorkcellConfig
from mtopt.evaluation.protocol import ProtocolConfig, evaluate, plot_success
from mtopt.jsonio import write_json
from mtopt.policies.cem import CEMConfig
from mtopt.policies.scripted import (
    ScriptedPickConfig,
    ScriptedPickPolicy,
    ScriptedPlaceConfig,
    ScriptedPlacePolicy,
)
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy on the standard evaluation scene (paper Sec. 5.1 protocol)."""

    checkpoint: str | None = None
    """Training checkpoint to evaluate (greedy CEM policy); omit with ``--scripted``."""
    scripted: bool = False
    """Evaluate the scripted bootstrap policies instead (picking for lifts, placing for places)."""
    episodes_per_task: int = 100
    """Attempts per task."""
    tasks: tuple[str, ...] = ()
    """Tasks to evaluate; empty means every task the checkpoint was trained on (or all)."""
    seed: int = 10_000
    """Base seed of the fixed evaluation scenes."""
    epsilon: float = 0.0
    """Exploration of the evaluated policy (0 = greedy)."""
    cem: CEMConfig = field(default_factory=CEMConfig)
    """CEM of the evaluated Q-policy (QT-Opt's: 2 iterations, 64 samples, 6 elites); a finer
    search is a deployment choice."""
    device: str = "auto"
    """``auto``, ``cpu`` or ``cuda[:N]``."""
    json: str | None = None
    """Write the result as JSON to this file."""
    plot: str | None = None
    """Save a bar chart (PNG) of per-task success to this file."""
    progress: bool = True
    """Show a progress bar."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated workcell."""

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (not self.scripted):
            raise ValueError("give exactly one of --checkpoint PATH or --scripted")
        default_task_set().validate(self.tasks)


def scripted_policy_for(task: str) -> ScriptedPickPolicy | ScriptedPlacePolicy:
    """The scripted bootstrap policy of a task's skill (picking for lifts, placing otherwise)."""
    if default_task_set()[task].skill == OBJECT_ACQUISITION:
        return ScriptedPickPolicy(ScriptedPickConfig())
    return ScriptedPlacePolicy(ScriptedPlaceConfig())


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Evaluate; write JSON and plot when asked. Returns the result (see format_eval_table)."""
    counts = None
    if config.scripted:
        name = "scripted"

        policy_for = scripted_policy_for

        tasks = config.tasks
    else:
        from mtopt.learning.checkpoint import load_checkpoint
        from mtopt.policies.q_policy import load_q_policy

        policy = load_q_policy(config.checkpoint, config.epsilon, config.device, cem=config.cem)
        payload = load_checkpoint(config.checkpoint)
        counts = payload.get("train_episode_counts")
        tasks = config.tasks or tuple(payload.get("trained_tasks", ()))
        name = policy.name

        def policy_for(task: str) -> Any:
            return policy

    protocol = ProtocolConfig(
        episodes_per_task=config.episodes_per_task,
        seed=config.seed,
        tasks=tasks,
        progress=config.progress,
        workcell=config.workcell,
    )
    result = evaluate(policy_for, protocol, counts)
    result["policy"] = name
    if config.json:
        write_json(result, config.json)
    if config.plot:
        plot_success({name: result}, config.plot, title=f"{name}: success per task")
    return result
