"""Dataset statistics of an episode log (paper Fig. 4 and Fig. 11).

Episodes are counted by the task they were *collected for*; a success is the ground-truth
success for that task. Counts are split by collecting policy (``scripted-pick``,
``scripted-place``, ``checkpoint:<id>`` with its ε). These statistics are analysis only; they
never feed the learner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data.log import EpisodeLogReader
from mtopt.jsonio import write_json


def policy_label(policy: str, epsilon: float) -> str:
    """Label of a collecting policy in the statistics, e.g. ``checkpoint:abc (eps=0.2)``."""
    return f"{policy} (eps={epsilon:g})" if epsilon > 0 else policy


def dataset_stats(
    directory: str | Path, task_names: Sequence[str] | None = None, verify: bool = False
) -> dict[str, Any]:
    """Per-task episode and success counts of the episode log in ``directory``.

    Returns ``{"episodes", "env_steps", "policy_steps", "discarded_episodes", "corrupt_shards",
    "shards", "tasks": {task: {"episodes", "successes", "success_rate", "env_steps",
    "policy_steps", "by_policy": {policy: {"episodes", "successes"}}}}}``. ``env_steps`` counts
    simulator steps (an episode's ``extra["env_steps"]`` where its environment repeats each
    policy step's action, e.g. Meta-World; its policy steps otherwise).
    Tasks of ``task_names`` (e.g. the environment's task set) with no episodes are listed
    with zero counts, so gaps in the data are visible; without it the log's own tasks are.
    ``discarded_episodes`` counts the episodes the robots ran but discarded for unstable
    physics, which are not in the log (from the shards' metadata; see
    ``docs/episode-format.md``).

    Every shard's file checksum is checked either way; only its scalar columns are decoded.
    ``verify`` also decodes every column of every shard (observations, images: what training
    reads), so a shard whose damage lies there is found and left out of the counts; ``verified``
    in the result says which was done.
    """
    reader = EpisodeLogReader(directory)
    if verify:
        for _ in reader.episodes():  # decoding marks damaged shards, which metadata() skips
            pass
    meta = reader.metadata().to_pylist()
    names = list(task_names or ())
    tasks: dict[str, dict[str, Any]] = {n: _empty_entry() for n in names}
    for row in meta:
        task = row["task"]
        entry = tasks.setdefault(task, _empty_entry())
        # simulator steps: an environment whose policy step repeats its action records them
        entry["env_steps"] += int(json.loads(row["extra"]).get("env_steps", row["num_steps"]))
        entry["policy_steps"] += int(row["num_steps"])
        success_tasks = list(row["success_tasks"])
        succeeded = (
            bool(row["success"][success_tasks.index(task)]) if task in success_tasks else False
        )
        label = policy_label(row["policy"], float(row["epsilon"]))
        pol = entry["by_policy"].setdefault(label, {"episodes": 0, "successes": 0})
        entry["episodes"] += 1
        pol["episodes"] += 1
        entry["successes"] += int(succeeded)
        pol["successes"] += int(succeeded)
    for entry in tasks.values():
        n = entry["episodes"]
        entry["success_rate"] = entry["successes"] / n if n else float("nan")
    return {
        "episodes": len(meta),
        "env_steps": sum(e["env_steps"] for e in tasks.values()),
        "policy_steps": sum(e["policy_steps"] for e in tasks.values()),
        "discarded_episodes": reader.discarded_episodes(),
        "corrupt_shards": reader.corrupt_shards,
        "shards": len(reader.shard_paths()),
        "verified": verify,
        "tasks": tasks,
    }


def _empty_entry() -> dict[str, Any]:
    return {"episodes": 0, "successes": 0, "env_steps": 0, "policy_steps": 0, "by_policy": {}}


def format_stats_table(stats: dict[str, Any]) -> str:
    """A fixed-width text table of :func:`dataset_stats`, one row per task and policy."""
    w = max([18, *(len(t) + 2 for t in stats["tasks"])])  # Meta-World's names run long
    header = f"{'task':<{w}}{'policy':<34}{'episodes':>10}{'successes':>11}{'rate':>8}"
    lines = [header, "-" * len(header)]
    for task, entry in stats["tasks"].items():
        rate = entry["success_rate"]
        rate_s = "-" if np.isnan(rate) else f"{rate:.3f}"
        lines.append(
            f"{task:<{w}}{'all':<34}{entry['episodes']:>10}{entry['successes']:>11}{rate_s:>8}"
        )
        for pol, c in sorted(entry["by_policy"].items()):
            r = c["successes"] / c["episodes"] if c["episodes"] else float("nan")
            lines.append(f"{'':<{w}}{pol:<34}{c['episodes']:>10}{c['successes']:>11}{r:>8.3f}")
    lines.append("-" * len(header))
    lines.append(
        f"{stats['episodes']} episodes in {stats['shards']} shards; "
        f"{stats['corrupt_shards']} corrupt shard(s) skipped"
        + (
            "; every column verified"
            if stats.get("verified")
            else "; scalar columns read (--verify decodes every column)"
        )
    )
    if "env_steps" in stats:
        lines.append(
            f"{stats['env_steps']} environment steps in {stats['policy_steps']} policy steps"
        )
    if "discarded_episodes" in stats:
        lines.append(
            f"{stats['discarded_episodes']} episode(s) discarded for unstable physics "
            "(not in the log)"
        )
    return "\n".join(lines)


def write_stats_json(stats: dict[str, Any], path: str | Path) -> None:
    """Write :func:`dataset_stats` as JSON (NaN rates become ``null``)."""
    write_json(stats, path)
