"""``mtopt eval``: evaluate a checkpoint (or the scripted or expert policies) with the paper's
protocol."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtopt.evaluation.protocol import ProtocolConfig, evaluate, plot_success
from mtopt.evaluation.summary import compare_policies
from mtopt.evaluation.video import check_recording, check_video_size, record_attempts
from mtopt.jsonio import write_json
from mtopt.policies import PolicyConfig
from mtopt.spec import EnvSpec, EpisodePolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy on the standard evaluation scene (paper Sec. 5.1 protocol)."""

    checkpoint: str | None = None
    """Training checkpoint to evaluate (greedy CEM policy), or a behaviour-cloning checkpoint
    (``mtopt bc train``; its deterministic policy); omit with ``--scripted`` or ``--expert``."""
    scripted: bool = False
    """Evaluate the scripted bootstrap policies instead (picking for lifts, placing for places)."""
    expert: bool = False
    """Evaluate the environment's expert policies instead, a ceiling for diagnostics (the
    workcell's aimed picker and placer; Meta-World's scripted experts without noise)."""
    beside_scripted: bool = False
    """With ``--checkpoint``: also run the scripted bootstrap policies on the same scenes (the
    same seeds), print their table and the comparison, and put both in the JSON and the plot
    (``result["scripted"]``, ``result["comparison"]``)."""
    episodes_per_task: int = 100
    """Attempts per task."""
    tasks: tuple[str, ...] = ()
    """Tasks to evaluate; empty means every task the checkpoint was trained on (or all)."""
    seed: int = 10_000
    """Base seed of the fixed evaluation scenes."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """How the evaluated Q-policy acts (greedy, QT-Opt's CEM, the best device by default)."""
    lockstep: int = 16
    """Attempts of a task run side by side, one batched action search per step for all of
    them (same scenes; 1: one attempt at a time)."""
    json: str | None = None
    """Write the result as JSON to this file."""
    plot: str | None = None
    """Save a bar chart (PNG) of per-task success to this file."""
    allow_untrained_tasks: bool = False
    """Evaluate ``tasks`` the checkpoint was not trained on (refused by default, naming the
    checkpoint's tasks: their one-hot slots hold no learned behaviour)."""
    progress: bool = True
    """Show a progress bar."""
    video: str | None = None
    """Record videos into this directory: after the evaluation, its first ``video_attempts``
    attempts of every task run again on the same scenes (the same seeds) and are written as
    ``DIR/TASK-attemptK-success.mp4`` (or ``-failure``; H.264) from the workcell's camera, with
    the task, step and ground-truth outcome drawn on the frames, and ``DIR/index.json``. The
    evaluation's numbers do not depend on it. Needs an OpenGL backend (``MUJOCO_GL=osmesa``
    on a CPU machine, ``egl`` on a GPU)."""
    video_attempts: int = 2
    """Attempts recorded per task with ``--video`` (attempts ``0 .. K-1`` of the evaluation)."""
    video_size: int = 256
    """Height and width in pixels of the videos (a multiple of 16 from 32 to 1024)."""

    def __post_init__(self) -> None:
        given = [self.checkpoint is not None, self.scripted, self.expert]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of --checkpoint PATH, --scripted or --expert; got "
                f"checkpoint={self.checkpoint!r}, scripted={self.scripted}, expert={self.expert}"
            )
        if self.beside_scripted and self.checkpoint is None:
            raise ValueError("--beside-scripted compares a --checkpoint with the scripted policies")
        v = self.video_attempts
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"video_attempts must be a positive integer, got {v!r}")
        check_video_size(self.video_size)


def scripted_policy_for(spec: EnvSpec) -> Callable[[str], EpisodePolicy]:
    """``task -> policy``: the environment's scripted bootstrap policy of each task."""
    return lambda task: spec.scripted_policy(task)[0]


def expert_policy_for(spec: EnvSpec) -> Callable[[str], EpisodePolicy]:
    """``task -> policy``: the environment's expert policy of each task (``ValueError`` naming
    the environment when it has none)."""
    if spec.task_set.names:  # an environment without experts fails before any work
        spec.expert_policy(spec.task_set.names[0])
    return lambda task: spec.expert_policy(task)[0]


def run_eval(config: EvalConfig, spec: EnvSpec) -> dict[str, Any]:
    """Evaluate in environment ``spec``; write JSON and plot when asked. Returns the result
    (see :func:`mtopt.evaluation.protocol.format_eval_table`)."""
    counts = None
    spec.task_set.validate(config.tasks)
    if config.video:  # no camera or no GL backend: say so before the evaluation, not after
        check_recording(spec, config.video_size, out=config.video)
    if config.scripted or config.expert:
        name = "scripted" if config.scripted else "expert"
        policy_for = scripted_policy_for(spec) if config.scripted else expert_policy_for(spec)
        tasks = config.tasks
    else:
        from mtopt.learning.checkpoint import load_checkpoint
        from mtopt.policies.q_policy import load_q_policy

        payload = load_checkpoint(config.checkpoint)
        if "bc" in payload:  # a behaviour-cloning checkpoint (mtopt bc train)
            from mtopt.policies.bc_policy import load_bc_policy

            policy: Any = load_bc_policy(config.checkpoint, spec, config.policy.device)
        else:
            policy = load_q_policy(config.checkpoint, spec, config.policy)
        counts = payload.get("train_episode_counts")
        trained = tuple(payload["trained_tasks"])
        untrained = [t for t in config.tasks if t not in trained]
        if untrained and not config.allow_untrained_tasks:
            raise ValueError(
                f"checkpoint {config.checkpoint!r} was not trained on {untrained}; it was "
                f"trained on {list(trained)} (pass --allow-untrained-tasks to evaluate anyway)"
            )
        # by default every trained task the environment can judge (a task added by outcome
        # examples has no ground truth; asking for one by name is refused by the protocol)
        tasks = config.tasks or tuple(t for t in trained if spec.has_ground_truth(t))
        name = policy.name

        def policy_for(task: str) -> Any:
            return policy

    protocol = ProtocolConfig(
        episodes_per_task=config.episodes_per_task,
        seed=config.seed,
        tasks=tasks,
        lockstep=config.lockstep,
        progress=config.progress,
    )
    result = evaluate(policy_for, protocol, spec, counts)
    result["policy"] = name
    plotted = {name: result}
    if config.beside_scripted:
        scripted = evaluate(scripted_policy_for(spec), protocol, spec, counts)
        result["scripted"] = plotted["scripted"] = scripted
        result["comparison"] = compare_policies(result, scripted, (name, "scripted"))
    if config.video:
        index = record_attempts(
            policy_for,
            spec,
            config.video,
            list(result["tasks"]),
            attempts=min(config.video_attempts, config.episodes_per_task),
            seed=config.seed,
            size=config.video_size,
            policy_name=name,
            progress=config.progress,
        )
        result["video"] = {"dir": config.video, "files": [v["file"] for v in index["videos"]]}
    if config.json:
        write_json(result, config.json)
    if config.plot:
        plot_success(plotted, config.plot, title=f"{name}: success per task")
    return result
