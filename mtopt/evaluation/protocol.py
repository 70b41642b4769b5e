"""The evaluation protocol (paper Sec. 5.1): fixed seeds, the standard evaluation scene.

Every task is attempted ``episodes_per_task`` times on the standard evaluation scene (one
object of each category plus two extras, Fig. 17); the objects are reshuffled before every
episode and episode ``k`` of task ``t`` always uses the same seed, so two policies are compared
on identical scenes. Place tasks start with an object already grasped (the place episode of
the paper's lift-then-place chain, without the lift's failures mixed in). Success is scored by
the ground-truth predicates, never by a learned model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mtopt.evaluation.summary import SUMMARY_LABELS, low_data_tasks, summarize, wilson_interval
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec, EpisodePolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolConfig:
    """Evaluation protocol settings."""

    episodes_per_task: int = 100
    """Attempts per task (paper: 100)."""
    seed: int = 10_000
    """Base seed of the evaluation scenes (kept apart from training seeds)."""
    tasks: tuple[str, ...] = ()
    """Tasks to evaluate; empty means all tasks of the task set."""
    low_data_k: int = 6
    """Number of low-data tasks (fewest training episodes) in the summary (paper: 6)."""
    lockstep: int = 16
    """Attempts of a task run side by side in this many environments, so that a policy with a
    batched action search (the greedy Q-policy's ``act_batch``) runs one CEM over all their states
    per step; the scenes are the same as one at a time. Policies without ``act_batch`` (the
    scripted ones) run one attempt at a time. 1: always one at a time."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("episodes_per_task", "lockstep"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def episode_seed(base: int, task_index: int, k: int) -> int:
    """The fixed seed of attempt ``k`` at the task in slot ``task_index``."""
    return int(np.random.SeedSequence([base, task_index, k]).generate_state(1)[0])


class Attempt(NamedTuple):
    """The outcome of one evaluation attempt."""

    success: bool
    """Ground-truth success for the attempted task."""
    unstable: bool
    """The simulation blew up (``info["physics_unstable"]``): the workcell ended the episode
    and scored it as a failure of every task."""


def run_task_attempt(
    env: Any,
    policy: EpisodePolicy,
    task: str,
    seed: int,
    spec: EnvSpec,
    attempt: int | None = None,
) -> Attempt:
    """One evaluation attempt of ``task`` in ``env`` (made by ``spec``): its success and
    whether the physics blew up. ``attempt`` is its index in the protocol (it picks the
    evaluation scene where the environment's protocol fixes one per attempt)."""
    obs, info = env.reset(seed=seed, options=spec.reset_options(task, "evaluate", attempt))
    policy.reset(np.random.default_rng(seed), task=task)
    done = False
    while not done:
        obs, _reward, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated or truncated
    return _outcome(info, task)


def _outcome(info: dict[str, Any], task: str) -> Attempt:
    names = list(info["task_names"])
    return Attempt(
        bool(info["success"][names.index(task)]), bool(info.get("physics_unstable", False))
    )


def run_lockstep_attempts(
    envs: list[Any],
    policy: Any,
    task: str,
    seeds: list[int],
    spec: EnvSpec,
    first_attempt: int | None = None,
) -> list[Attempt]:
    """Attempts of ``task`` with ``seeds`` (at most one per env), run side by side: at every
    step one ``policy.act_batch(observations, task, generator)`` call acts for every attempt
    still running. The generator of the batched action search is seeded from the first
    attempt's seed, so the outcome depends only on the seeds and their grouping.
    ``first_attempt`` is the protocol index of the first seed's attempt (the rest follow)."""
    if len(seeds) > len(envs):
        raise ValueError(f"{len(seeds)} attempts need as many envs, got {len(envs)}")
    obs = []
    for i, (env, seed) in enumerate(zip(envs, seeds, strict=False)):
        attempt = None if first_attempt is None else first_attempt + i
        obs.append(env.reset(seed=seed, options=spec.reset_options(task, "evaluate", attempt))[0])
    generator = policy.generator_for(seeds[0])
    outcomes: list[Attempt | None] = [None] * len(seeds)
    running = list(range(len(seeds)))
    while running:
        actions = policy.act_batch([obs[i] for i in running], task, generator)
        still = []
        for i, action in zip(running, actions, strict=True):
            obs[i], _reward, terminated, truncated, info = envs[i].step(action)
            if terminated or truncated:
                outcomes[i] = _outcome(info, task)
            else:
                still.append(i)
        running = still
    return [o for o in outcomes if o is not None]


def run_task_episode(env: Any, policy: EpisodePolicy, task: str, seed: int, spec: EnvSpec) -> bool:
    """One evaluation attempt of ``task``; returns the ground-truth success."""
    return run_task_attempt(env, policy, task, seed, spec).success


def evaluate(
    policy_for_task: Callable[[str], EpisodePolicy],
    config: ProtocolConfig,
    spec: EnvSpec,
    train_episode_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Evaluate a policy on every task; returns the JSON-ready result.

    ``policy_for_task(task)`` gives the policy to run for a task (the same multi-task policy
    for every task, or a scripted policy per skill). ``train_episode_counts`` (episodes per
    task in the training log) decides the low-data tasks of the summary.
    """
    task_set = spec.task_set
    judged = tuple(t for t in task_set.names if spec.has_ground_truth(t))
    tasks = task_set.validate(config.tasks) or judged
    blind = [t for t in tasks if t not in judged]
    if blind:
        raise ValueError(
            f"task(s) {blind} have no ground-truth success in env {spec.name!r} (added by "
            "outcome examples: only their success detector knows when they succeed); the "
            f"evaluation scores tasks with success predicates: {list(judged)}"
        )
    envs = [spec.make_env()]
    results: dict[str, dict[str, Any]] = {}
    total = len(tasks) * config.episodes_per_task
    bar = progress_bar(total, "eval", "ep", config.progress)
    try:
        for task in tasks:
            policy = policy_for_task(task)
            slot = task_set.slot(task)
            seeds = [episode_seed(config.seed, slot, k) for k in range(config.episodes_per_task)]
            width = config.lockstep if getattr(policy, "batchable", False) else 1
            while len(envs) < min(width, len(seeds)):
                envs.append(spec.make_env())
            wins = unstable = 0
            for start in range(0, len(seeds), width):
                group = seeds[start : start + width]
                if width == 1:
                    attempts = [run_task_attempt(envs[0], policy, task, group[0], spec, start)]
                else:
                    attempts = run_lockstep_attempts(envs, policy, task, group, spec, start)
                wins += sum(a.success for a in attempts)
                unstable += sum(a.unstable for a in attempts)
                bar.update(len(attempts))
            n = config.episodes_per_task
            lo, hi = wilson_interval(wins, n)
            results[task] = {
                "success_rate": wins / n,
                "episodes": n,
                "successes": wins,
                "ci95": [lo, hi],
                "physics_unstable": unstable,
            }
            if train_episode_counts is not None:
                results[task]["train_episodes"] = int(train_episode_counts.get(task, 0))
            logger.info("%s: %d/%d (%d ended by a physics blow-up)", task, wins, n, unstable)
    finally:
        bar.close()
        for env in envs:
            env.close()
    low = None
    if train_episode_counts is not None and len(tasks) >= config.low_data_k:
        low = low_data_tasks(
            {t: int(train_episode_counts.get(t, 0)) for t in tasks}, config.low_data_k
        )
    summary = summarize({t: r["success_rate"] for t, r in results.items()}, low)
    return {"tasks": results, "summary": summary, "low_data_tasks": low or []}


def format_eval_table(result: dict[str, Any], title: str = "success rate") -> str:
    """Per-task rows with 95 % CI, then the summary rows of paper Table 4.

    The ``unstable`` column counts the attempts that a physics blow-up ended (scored as
    failures; results written before the count existed show ``-``)."""
    w = max([18, *(len(t) + 2 for t in result["tasks"])])  # Meta-World's names run long
    header = f"{'task':<{w}}{title:>14}{'95% CI':>18}{'train eps':>11}{'unstable':>10}"
    lines = [header, "-" * len(header)]
    for task, r in result["tasks"].items():
        lo, hi = r["ci95"]
        tr = r.get("train_episodes", "")
        un = r.get("physics_unstable", "-")
        lines.append(
            f"{task:<{w}}{r['success_rate']:>14.2f}{f'[{lo:.2f}, {hi:.2f}]':>18}{tr:>11}{un:>10}"
        )
    lines.append("-" * len(header))
    for key, label in SUMMARY_LABELS.items():
        v = result["summary"][key]
        lines.append(f"{label:<{w}}{'-' if np.isnan(v) else f'{v:.2f}':>14}")
    return "\n".join(lines)


def plot_success(results: dict[str, dict[str, Any]], path: str, title: str = "") -> None:
    """Bar chart of per-task success with 95 % CIs, one bar group per policy (paper Fig. 6).

    ``results`` maps a policy name to an evaluation result of :func:`evaluate`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(results)
    tasks: Sequence[str] = list(next(iter(results.values()))["tasks"])
    x = np.arange(len(tasks))
    width = 0.8 / max(1, len(policies))
    fig, ax = plt.subplots(figsize=(max(8, len(tasks) * 0.9), 4))
    for i, name in enumerate(policies):
        rs = [results[name]["tasks"][t] for t in tasks]
        rate = np.array([r["success_rate"] for r in rs])
        # rounding can put a bound a hair past the rate (e.g. 0 successes); bars need >= 0
        err = np.clip(
            np.array(
                [[rate[j] - r["ci95"][0], r["ci95"][1] - rate[j]] for j, r in enumerate(rs)]
            ).T,
            0.0,
            None,
        )
        ax.bar(
            x + (i - (len(policies) - 1) / 2) * width, rate, width, yerr=err, capsize=2, label=name
        )
    ax.set_xticks(x, tasks, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
