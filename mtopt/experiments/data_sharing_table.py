"""The data-sharing table in the layout of paper Table 4: building, Markdown and plot.

Rows are the tasks (with the number of episodes collected for each), then the across-task
summary rows min / 25th percentile / median / mean / 75th percentile / max / mean over the
low-data tasks; columns are the strategies. Every strategy is summarised over the *same*
low-data tasks (the ``low_data_k`` tasks with the fewest collected episodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.evaluation.seeds import seed_interval
from mtopt.evaluation.summary import SUMMARY_KEYS, SUMMARY_LABELS, low_data_tasks, summarize

PAPER_TABLE4 = {
    "qtopt-single": {"mean": 0.14, "mean_low_data": 0.01},
    "orig-uniform": {"mean": 0.32, "mean_low_data": 0.18},
    "orig-rebalanced": {"mean": 0.55, "mean_low_data": 0.42},
    "all-uniform": {"mean": 0.21, "mean_low_data": 0.13},
    "all-rebalanced": {"mean": 0.35, "mean_low_data": 0.21},
    "skill-1-0.15-rebalanced": {"mean": 0.49, "mean_low_data": 0.36},
    "skill-1-1-uniform": {"mean": 0.46, "mean_low_data": 0.32},
    "skill-1-1-rebalanced": {"mean": 0.58, "mean_low_data": 0.50},
}
"""Mean and low-data mean of each strategy on the real robots (paper Table 4)."""


def build_table(
    results: Mapping[str, Mapping[str, Any]],
    train_episodes: Mapping[str, int],
    low_data_k: int = 6,
) -> dict[str, Any]:
    """The ``table.json`` content from per-strategy evaluation results.

    ``results[strategy]["tasks"][task]`` needs ``success_rate`` and ``episodes`` (evaluation
    attempts); any other per-strategy keys except ``tasks`` and ``summary`` (e.g.
    ``training``) are copied. ``train_episodes`` are the episodes collected per task, which
    pick the low-data tasks. All strategies must cover the same tasks.
    """
    if not results:
        raise ValueError("no strategy results to tabulate")
    tasks = list(next(iter(results.values()))["tasks"])
    for name, res in results.items():
        if list(res["tasks"]) != tasks:
            raise ValueError(
                f"strategy {name!r} was evaluated on tasks {list(res['tasks'])}, expected {tasks}"
            )
    missing = [t for t in tasks if t not in train_episodes]
    if missing:
        raise ValueError(f"no collected-episode count for tasks {missing}")
    counts = {t: int(train_episodes[t]) for t in tasks}
    low = low_data_tasks(counts, low_data_k) if len(tasks) >= low_data_k else []
    strategies: dict[str, Any] = {}
    for name, res in results.items():
        per_task = {
            t: {
                "success_rate": float(r["success_rate"]),
                "episodes": int(r["episodes"]),
                **{k: r[k] for k in ("successes", "ci95", "untrained") if k in r},
            }
            for t, r in res["tasks"].items()
        }
        summary = summarize({t: r["success_rate"] for t, r in per_task.items()}, low or None)
        extra = {k: v for k, v in res.items() if k not in ("tasks", "summary", "low_data_tasks")}
        strategies[name] = {"tasks": per_task, "summary": summary, **extra}
    return {
        "tasks": tasks,
        "train_episodes": counts,
        "low_data_tasks": low,
        "strategies": strategies,
    }


def _fmt(v: float) -> str:
    return "-" if v is None or np.isnan(v) else f"{v:.2f}"


def _row(label: str, values: list[float]) -> list[str]:
    finite = [v for v in values if v is not None and not np.isnan(v)]
    best = max(finite) if finite and min(finite) < max(finite) else None  # no bold on ties
    cells = [f"**{_fmt(v)}**" if best is not None and v == best else _fmt(v) for v in values]
    return [label, *cells]


def format_markdown(table: Mapping[str, Any]) -> str:
    """The table in the paper's layout (best value of each row in bold), then comparisons."""
    names = list(table["strategies"])
    strategies = table["strategies"]
    lines = [
        "| task | #eps | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for task in table["tasks"]:
        low = " (low data)" if task in table["low_data_tasks"] else ""
        rates = [strategies[n]["tasks"][task]["success_rate"] for n in names]
        cells = _row(f"{task}{low}", rates)
        row = [cells[0], str(table["train_episodes"][task]), *cells[1:]]
        lines.append("| " + " | ".join(row) + " |")
    for key in SUMMARY_KEYS:
        cells = _row(SUMMARY_LABELS[key], [strategies[n]["summary"][key] for n in names])
        lines.append("| " + " | ".join([cells[0], "", *cells[1:]]) + " |")
    attempts = {
        r["episodes"]
        for s in strategies.values()
        for r in s["tasks"].values()
        if not r.get("untrained")
    }
    lines += [
        "",
        f"Success rate over {'/'.join(str(a) for a in sorted(attempts))} evaluation attempts per "
        f"task; #eps = episodes collected for the task; low-data tasks: "
        f"{', '.join(table['low_data_tasks']) or '-'}.",
        "",
        "| strategy | mean | mean (low data) | paper mean | paper mean (low data) |",
        "|---|---:|---:|---:|---:|",
    ]
    for n in names:
        s = strategies[n]["summary"]
        p = PAPER_TABLE4.get(n, {})
        lines.append(
            f"| {n} | {_fmt(s['mean'])} | {_fmt(s['mean_low_data'])} | "
            f"{_fmt(p.get('mean', float('nan')))} | {_fmt(p.get('mean_low_data', float('nan')))} |"
        )
    timed = [n for n in names if "training" in strategies[n]]
    if timed:
        lines += [
            "",
            "| strategy | gradient steps | batch | train wall (s) | steps/s | samples/s | "
            "eval wall (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for n in timed:
            tr = strategies[n]["training"]
            lines.append(
                f"| {n} | {tr['steps']} | {tr['batch_size']} | {tr['wall_time_s']:.0f} | "
                f"{tr['steps_per_s']:.1f} | {tr['samples_per_s']:.0f} | "
                f"{strategies[n].get('eval_wall_time_s', float('nan')):.0f} |"
            )
    return "\n".join(lines)


def plot_table(table: Mapping[str, Any], path: str | Path, title: str = "") -> None:
    """Per-task success of every strategy (top) and mean / low-data mean per strategy (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table["strategies"])
    tasks = list(table["tasks"])
    strategies = table["strategies"]
    fig, (ax0, ax1) = plt.subplots(
        2, 1, figsize=(max(10, len(tasks) * 1.1), 8), gridspec_kw={"height_ratios": [3, 2]}
    )
    x = np.arange(len(tasks))
    width = 0.85 / max(1, len(names))
    for i, n in enumerate(names):
        rates = [strategies[n]["tasks"][t]["success_rate"] for t in tasks]
        ax0.bar(x + (i - (len(names) - 1) / 2) * width, rates, width, label=n)
    ax0.set_xticks(x, tasks, rotation=30, ha="right")
    ax0.set_ylim(0, 1)
    ax0.set_ylabel("success rate")
    ax0.legend(fontsize=7, ncol=4)
    ax0.set_title(title or "data-sharing strategies (paper Table 4 layout)")
    xs = np.arange(len(names))
    for j, (key, label) in enumerate((("mean", "mean"), ("mean_low_data", "mean (low data)"))):
        vals = [strategies[n]["summary"][key] for n in names]
        ax1.bar(xs + (j - 0.5) * 0.4, vals, 0.4, label=label)
    ax1.set_xticks(xs, names, rotation=20, ha="right")
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("success rate")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def seed_table(tables: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Several seeds' tables (``{seed: table.json}``) of the same strategies and dataset as one:
    per strategy the mean and low-data mean over seeds with 95 % t-intervals and spreads, each
    task's mean over seeds, and the strategies ranked by their mean."""
    if not tables:
        raise ValueError("no seeds' tables to combine")
    seeds = sorted(tables)
    first = tables[seeds[0]]
    names = list(first["strategies"])
    for s in seeds[1:]:
        t = tables[s]
        if list(t["strategies"]) != names or t["low_data_tasks"] != first["low_data_tasks"]:
            raise ValueError(
                f"seed {s}'s table has other strategies or low-data tasks than seed 0's"
            )
    strategies: dict[str, Any] = {}
    for n in names:
        runs = [tables[s]["strategies"][n] for s in seeds]
        strategies[n] = {
            "mean": seed_interval([r["summary"]["mean"] for r in runs]),
            "mean_low_data": seed_interval([r["summary"]["mean_low_data"] for r in runs]),
            "per_seed_mean": [r["summary"]["mean"] for r in runs],
            "per_seed_mean_low_data": [r["summary"]["mean_low_data"] for r in runs],
            "tasks": {
                task: float(np.mean([r["tasks"][task]["success_rate"] for r in runs]))
                for task in first["tasks"]
            },
        }
    ranking = sorted(names, key=lambda n: -strategies[n]["mean"]["mean"])
    return {
        "seeds": seeds,
        "tasks": list(first["tasks"]),
        "low_data_tasks": list(first["low_data_tasks"]),
        "strategies": strategies,
        "ranking": ranking,
    }


def plot_seed_table(table: Mapping[str, Any], path: str | Path) -> None:
    """The strategies' mean and low-data mean over seeds with 95 % t-intervals (bars), each
    seed's value (dots) and the paper's real-robot values (crosses), in table column order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table["strategies"])
    xs = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 1.2), 4.5))
    for j, (key, label) in enumerate((("mean", "mean"), ("mean_low_data", "mean (low data)"))):
        x = xs + (j - 0.5) * 0.4
        stats = [table["strategies"][n][key] for n in names]
        means = np.array([st["mean"] for st in stats])
        lo = np.array([st["lo"] for st in stats])
        hi = np.array([st["hi"] for st in stats])
        err = np.nan_to_num(np.stack([means - lo, hi - means]))
        bars = ax.bar(x, means, 0.4, yerr=err, capsize=3, label=f"{label}, mean over seeds")
        colour = bars.patches[0].get_facecolor()
        for i, n in enumerate(names):
            seeds = table["strategies"][n][f"per_seed_{key}"]
            ax.plot([x[i]] * len(seeds), seeds, "o", color="k", markersize=2.5)
            paper = PAPER_TABLE4.get(n, {}).get(key)
            if paper is not None:
                ax.plot(x[i], paper, "x", color=colour, markersize=8, markeredgecolor="k")
    ax.plot([], [], "x", color="k", label="paper (real robots)")
    ax.plot([], [], "o", color="k", markersize=2.5, label="one seed")
    ax.set_xticks(xs, names, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate")
    seeds = ", ".join(str(s) for s in table["seeds"])
    ax.set_title(f"Table 4 in simulation: data-sharing strategies, seeds {seeds}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _interval(stat: Mapping[str, Any]) -> str:
    if stat["n"] < 2:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} [{stat['lo']:.2f}, {stat['hi']:.2f}]"


def format_seed_markdown(table: Mapping[str, Any]) -> str:
    """The strategies ranked by their mean over seeds, with intervals and the paper's values."""
    lines = [
        f"Seeds {', '.join(str(s) for s in table['seeds'])}: mean over seeds [95 % t-interval]; "
        f"low-data tasks: {', '.join(table['low_data_tasks']) or '-'}.",
        "",
        "| rank | strategy | mean | mean (low data) | per seed (mean) | paper mean | "
        "paper low data |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    for rank, n in enumerate(table["ranking"], 1):
        s = table["strategies"][n]
        p = PAPER_TABLE4.get(n, {})
        seeds = " / ".join(f"{v:.2f}" for v in s["per_seed_mean"])
        lines.append(
            f"| {rank} | {n} | {_interval(s['mean'])} | {_interval(s['mean_low_data'])} | "
            f"{seeds} | {_fmt(p.get('mean', float('nan')))} | "
            f"{_fmt(p.get('mean_low_data', float('nan')))} |"
        )
    return "\n".join(lines)
