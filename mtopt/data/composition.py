"""Composition of an offline dataset and what impersonation makes of it (paper Fig. 4, 11, 12).

For every task: how many episodes were *collected for* it, by which kind of policy (scripted,
ε-greedy, greedy) and how many of them succeeded; and, for each impersonation function, how many
episodes (and successes) it *routes* to the task, i.e. how much training data the task gains from
the other tasks. Labels are the ground-truth success vector (analysis only: the learner never
reads these statistics). Only the episode metadata is read, so this is fast on large logs;
``verify`` also decodes every column, as ``mtopt data stats --verify`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from mtopt.data.episode import EXPERT_POLICY_PREFIX, SCRIPTED_POLICY_PREFIX
from mtopt.data.impersonation import Impersonation, ImpersonationConfig, OracleLabeller
from mtopt.data.log import EpisodeLogReader
from mtopt.tasks import TaskSet

DEFAULT_IMPERSONATIONS = (
    ImpersonationConfig(kind="orig"),
    ImpersonationConfig(kind="all"),
    ImpersonationConfig(kind="skill", p_success=1.0, p_failure=1.0),
    ImpersonationConfig(kind="skill", p_success=1.0, p_failure=0.15),
)
"""The impersonation functions of paper Table 4."""

POLICY_KINDS = ("scripted", "ε-greedy", "greedy")
"""Kinds of collecting policy, in plot order."""


def policy_kind(policy: str, epsilon: float) -> str:
    """``scripted`` for the bootstrap policies (scripted, or an expert's under ``bootstrap:
    expert``), else ``ε-greedy`` or ``greedy`` by ε."""
    if policy.startswith((SCRIPTED_POLICY_PREFIX, EXPERT_POLICY_PREFIX)):
        return "scripted"
    return "ε-greedy" if epsilon > 0 else "greedy"


def dataset_composition(
    directory: str | Path,
    task_set: TaskSet,
    impersonations: Sequence[ImpersonationConfig] = DEFAULT_IMPERSONATIONS,
    seed: int = 0,
    verify: bool = False,
) -> dict[str, Any]:
    """Per-task collected and impersonated episode counts of the episode log in ``directory``.

    Returns ``{"episodes", "corrupt_shards", "verified", "tasks": {task: {"episodes",
    "successes", "by_policy_kind": {kind: {"episodes", "successes"}}}}, "impersonation": {name:
    {task: {"episodes", "successes"}}}}``; impersonated counts include the task's own episodes.
    Stochastic impersonation (p < 1) is drawn from a generator seeded with ``seed``;
    ``task_set`` is the environment's. Every shard's file checksum is checked; ``verify`` also
    decodes every column of every shard, so that damage only decoding shows is found and the
    shard left out of the counts (``corrupt_shards``).
    """
    names = list(task_set.names)
    reader = EpisodeLogReader(directory)
    if verify:
        for _ in reader.episodes(load_images=True):  # marks damaged shards; metadata skips them
            pass
    rows = reader.metadata().to_pylist()
    tasks: dict[str, dict[str, Any]] = {
        t: {
            "episodes": 0,
            "successes": 0,
            "by_policy_kind": {k: {"episodes": 0, "successes": 0} for k in POLICY_KINDS},
        }
        for t in names
    }
    functions = {
        cfg.name: Impersonation(cfg, task_set, OracleLabeller(), np.random.default_rng([seed, i]))
        for i, cfg in enumerate(impersonations)
    }
    routed = {name: {t: {"episodes": 0, "successes": 0} for t in names} for name in functions}
    for row in rows:
        task = row["task"]
        if task not in tasks:
            continue
        episode = SimpleNamespace(
            success_tasks=tuple(row["success_tasks"]),
            success=np.asarray(row["success"], dtype=bool),
        )
        ok = bool(OracleLabeller()(episode, [task])[0])
        entry = tasks[task]
        kind = entry["by_policy_kind"][policy_kind(row["policy"], float(row["epsilon"]))]
        for e in (entry, kind):
            e["episodes"] += 1
            e["successes"] += int(ok)
        for name, fn in functions.items():
            for t, success in fn(episode, task):
                routed[name][t]["episodes"] += 1
                routed[name][t]["successes"] += int(success)
    return {
        "episodes": len(rows),
        "corrupt_shards": reader.corrupt_shards,
        "verified": verify,
        "tasks": tasks,
        "impersonation": routed,
    }


def format_composition_table(comp: dict[str, Any]) -> str:
    """Text table: collected episodes/successes per task, then routed successes per function."""
    names = list(comp["impersonation"])
    header = f"{'task':<17}{'episodes':>9}{'succ':>7}{'scripted':>9}{'ε-greedy':>9}"
    header += "".join(f"{('S:' + n)[:13]:>14}" for n in names)
    lines = [header, "-" * len(header)]
    for task, e in comp["tasks"].items():
        by = e["by_policy_kind"]
        line = f"{task:<17}{e['episodes']:>9}{e['successes']:>7}"
        line += f"{by['scripted']['episodes']:>9}{by['ε-greedy']['episodes']:>9}"
        for n in names:
            r = comp["impersonation"][n][task]
            line += f"{r['successes']:>7}/{r['episodes']:<6}"
        lines.append(line)
    lines.append("-" * len(header))
    checked = ""
    if "corrupt_shards" in comp:
        checked = f"; {comp['corrupt_shards']} corrupt shard(s) skipped; " + (
            "every column verified"
            if comp.get("verified")
            else "scalar columns read (--verify decodes every column)"
        )
    lines.append(
        f"{comp['episodes']} episodes{checked}. S:<function> = successes/episodes routed to the "
        "task (own episodes included)."
    )
    return "\n".join(lines)


def plot_composition(comp: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Figure in the spirit of paper Fig. 4 / 11 / 12, saved as PNG to ``path``.

    Top: episodes collected per task by policy kind (log scale) and their success rate.
    Bottom: successful episodes per task under each impersonation function, split into the
    task's own successes (dark) and successes gained from other tasks (light).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(comp["tasks"])
    x = np.arange(len(tasks))
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(max(9, len(tasks) * 0.95), 8))
    bottom = np.zeros(len(tasks))
    for kind in POLICY_KINDS:
        n = np.array([comp["tasks"][t]["by_policy_kind"][kind]["episodes"] for t in tasks])
        if n.any():
            ax0.bar(x, n, 0.6, bottom=bottom, label=f"{kind} episodes")
            bottom += n
    ax0.set_yscale("log")
    ax0.set_ylim(bottom=1)
    ax0.set_ylabel("episodes collected for the task")
    ax0.set_xticks(x, tasks, rotation=30, ha="right")
    rate_ax = ax0.twinx()
    eps = np.array([comp["tasks"][t]["episodes"] for t in tasks], dtype=float)
    succ = np.array([comp["tasks"][t]["successes"] for t in tasks], dtype=float)
    rate = np.divide(succ, eps, out=np.full_like(eps, np.nan), where=eps > 0)
    rate_ax.plot(x, rate, "kD", label="success rate of collected episodes")
    rate_ax.set_ylim(0, 1)
    rate_ax.set_ylabel("success rate")
    handles = ax0.get_legend_handles_labels()
    extra = rate_ax.get_legend_handles_labels()
    ax0.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8, loc="upper right")
    ax0.set_title(title or f"dataset composition ({comp['episodes']} episodes)")

    names = list(comp["impersonation"])
    width = 0.8 / max(1, len(names))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(names):
        routed = np.array([comp["impersonation"][name][t]["successes"] for t in tasks])
        own = np.minimum(succ, routed)
        pos = x + (i - (len(names) - 1) / 2) * width
        c = colors[i % len(colors)]
        ax1.bar(pos, own, width, color=c, label=f"{name}: own successes")
        ax1.bar(pos, routed - own, width, bottom=own, color=c, alpha=0.35, label=f"{name}: gained")
    ax1.set_yscale("symlog", linthresh=10)
    ax1.set_ylabel("successful episodes routed to the task")
    ax1.set_xticks(x, tasks, rotation=30, ha="right")
    ax1.legend(fontsize=7, ncol=2)
    ax1.set_title("data gained from impersonation (successes; light = from other tasks)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
