"""One self-contained HTML results page per run (``mtopt report RUN``).

:func:`write_report` reads what a run directory holds and writes ``RUN/report.html``, a single
file that needs nothing else to show: charts are PNG data URIs (matplotlib, Agg), videos MP4
data URIs, no external CSS or JavaScript. Its sections (stable ids, for people and tests):

* ``#success``: per-task success, successes / attempts and the 95 % Wilson interval of every
  evaluated policy (``RUN/eval.json``: the demo's, or ``mtopt eval --json``'s layout), the
  summary rows of paper Table 4 and the Fig. 6-style bar chart with interval error bars;
* ``#composition``: the episode log's composition and impersonation gains (paper Fig. 4,
  :mod:`mtopt.data.composition`): ``RUN/log``, else the log a ``config.yaml`` under the run
  names as ``data`` or ``log``;
* ``#curves``: learning curves of the scalars in every TensorBoard directory under the run
  (``round-K/tb`` of the demo, ``tb`` of ``mtopt train`` and ``mtopt run``);
* ``#videos``: the videos every ``index.json`` under the run lists (``mtopt eval --video``,
  the demo's ``video/``).

A part the run does not have (a training run has no evaluation, a ``mtopt run`` no videos) is
named in its section as missing; the page is written all the same.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)

CURVE_TAGS = ("train/loss", "train/mean_q")
"""Scalars plotted first when present; other ``train/``, ``bc/`` and ``fleet/`` ones follow."""
MAX_CURVES = 8
"""Most scalar tags plotted."""
MAX_VIDEO_BYTES = 32 * 2**20
"""Most bytes of video embedded in one page; further videos are named, not embedded."""

_CSS = """
body{font-family:sans-serif;margin:2em auto;max-width:1150px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}
tr.summary-row{background:#f3f3f3}
img.chart{max-width:100%;display:block;margin:1em 0}
p.missing{color:#a33;font-style:italic}
figure.video{display:inline-block;margin:.5em}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}
"""


def write_report(
    run_dir: str | Path, out: str | Path | None = None, task_set: TaskSet | None = None
) -> Path:
    """Write the run's HTML report to ``out`` (default ``RUN/report.html``); returns its path.

    ``task_set`` is the environment's, for the dataset composition (without it the page says
    so; :func:`run_env_name` names the environment a run recorded)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise NotADirectoryError(f"run directory {str(run)!r} does not exist")
    path = Path(out) if out is not None else run / "report.html"
    sections = [
        _success_section(run),
        _composition_section(run, task_set),
        _curves_section(run),
        _videos_section(run),
    ]
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    title = f"MT-Opt run {run.resolve().name}"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>Run directory <code>{_e(str(run.resolve()))}</code>, "
        f"report written {_e(stamp)}.</p>{''.join(sections)}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info("report of %s: %s (%.1f MB)", run, path, path.stat().st_size / 2**20)
    return path


# -- helpers ----------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text))


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _missing(what: str) -> str:
    return f'<p class="missing">Missing: {_e(what)}</p>'


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("report: cannot read %s: %s", path, exc)
        return None


def _img(png: bytes, alt: str, cls: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="chart {cls}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _plot_png(plot: Any, *args: Any, **kwargs: Any) -> bytes:
    """PNG bytes of a ``plot(..., path, ...)`` function that saves a figure to a file."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "chart.png"
        plot(*args, str(file), **kwargs)
        return file.read_bytes()


def _under(run: Path, name: str) -> list[Path]:
    return sorted(p for p in run.rglob(name) if p.is_file())


# -- sections ---------------------------------------------------------------------------------
def _eval_results(run: Path) -> dict[str, dict[str, Any]] | None:
    data = _read_json(run / "eval.json") if (run / "eval.json").is_file() else None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("results"), dict):  # the demo's summary
        return {k: v for k, v in data["results"].items() if isinstance(v, dict) and "tasks" in v}
    if "tasks" in data:  # mtopt eval --json [--beside-scripted]
        results = {"policy": data}
        if isinstance(data.get("scripted"), dict):
            results["scripted"] = data["scripted"]
        return results
    return None


def _success_section(run: Path) -> str:
    from mtopt.evaluation.protocol import plot_success
    from mtopt.evaluation.summary import SUMMARY_LABELS

    results = _eval_results(run)
    if not results:
        return _section("success", "Success", _missing("no evaluation (eval.json) in the run"))
    names = list(results)
    tasks = list(next(iter(results.values()))["tasks"])
    head = "<tr><th>task</th><th>train episodes</th>" + "".join(
        f"<th>{_e(n)} success</th><th>{_e(n)} successes / attempts</th><th>{_e(n)} 95 % CI</th>"
        for n in names
    )
    rows = [head + "</tr>"]
    for task in tasks:
        first = results[names[0]]["tasks"][task]
        cells = [f"<td>{_e(task)}</td><td>{_e(first.get('train_episodes', '-'))}</td>"]
        for n in names:
            r = results[n]["tasks"].get(task)
            if r is None:
                cells.append("<td>-</td>" * 3)
                continue
            ci = r.get("ci95")  # absent in older evaluation files
            interval = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"
            cells.append(
                f"<td>{r['success_rate']:.2f}</td><td>{r['successes']} / {r['episodes']}</td>"
                f"<td>{interval}</td>"
            )
        rows.append(f'<tr class="task-row" data-task="{_e(task)}">{"".join(cells)}</tr>')
    for key, label in SUMMARY_LABELS.items():
        cells = [f"<td>{_e(label)}</td><td></td>"]
        for n in names:
            v = results[n].get("summary", {}).get(key, float("nan"))
            shown = "-" if v is None or math.isnan(v) else f"{v:.2f}"
            cells.append(f'<td>{shown}</td><td colspan="2"></td>')
        rows.append(f'<tr class="summary-row">{"".join(cells)}</tr>')
    body = f'<table class="success-table">{"".join(rows)}</table>'
    demo = _read_json(run / "eval.json") or {}
    if len(names) == 2:
        from mtopt.evaluation.summary import compare_policies

        try:
            text = compare_policies(results[names[0]], results[names[1]], (names[0], names[1]))
            body += f'<pre class="comparison">{_e(text)}</pre>'
        except (ValueError, KeyError) as exc:
            logger.warning("report: cannot compare the policies: %s", exc)
    if demo.get("checkpoint"):
        body += f"<p>Checkpoint <code>{_e(demo['checkpoint'])}</code>; rewards: "
        body += f"{_e(demo.get('rewards', '-'))}.</p>"
    try:
        png = _plot_png(plot_success, results, title="success rate with 95 % intervals")
        body += _img(png, "success rate per task with 95 % intervals", "success-chart")
    except Exception as exc:  # a chart is no reason to lose the page
        logger.warning("report: success chart failed: %s", exc)
        body += _missing(f"the success chart ({exc})")
    return _section("success", "Success", body)


def _log_dir(run: Path) -> Path | None:
    if (run / "log").is_dir():
        return run / "log"
    import yaml

    for cfg in _under(run, "config.yaml"):
        try:
            data = yaml.safe_load(cfg.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for key in ("data", "log"):
            value = data.get(key) if isinstance(data, dict) else None
            if isinstance(value, str) and value and Path(value).is_dir():
                return Path(value)
    return None


def run_env_name(run_dir: str | Path) -> str | None:
    """The environment a run's video index names (``index.json`` under the run), if any: the
    caller makes its task set (this layer knows environments only through their specs)."""
    for index in _under(Path(run_dir), "index.json"):
        env = (_read_json(index) or {}).get("env")
        if isinstance(env, str) and env:
            return env
    return None


def _composition_section(run: Path, task_set: TaskSet | None) -> str:
    from mtopt.data.composition import POLICY_KINDS, dataset_composition, plot_composition

    log = _log_dir(run)
    if log is None:
        return _section(
            "composition", "Dataset composition", _missing("no episode log (RUN/log) in the run")
        )
    if task_set is None:
        return _section(
            "composition", "Dataset composition", _missing("no task set given (pass --env)")
        )
    try:
        comp = dataset_composition(log, task_set)
    except Exception as exc:
        logger.warning("report: cannot read the log %s: %s", log, exc)
        return _section(
            "composition", "Dataset composition", _missing(f"log {log} unreadable ({exc})")
        )
    body = f"<p>Episode log <code>{_e(log)}</code>: {comp['episodes']} episodes"
    counted = sum(t["episodes"] for t in comp["tasks"].values())
    if counted < comp["episodes"]:
        body += f" ({comp['episodes'] - counted} of tasks outside the task set: pass --env)"
    body += f", {comp['corrupt_shards']} corrupt shard(s) skipped.</p>"
    head = "<tr><th>task</th><th>episodes</th><th>successes</th>"
    head += "".join(f"<th>{_e(k)}</th>" for k in POLICY_KINDS)
    head += "".join(f"<th>routed by {_e(n)}</th>" for n in comp["impersonation"]) + "</tr>"
    rows = [head]
    for task, e in comp["tasks"].items():
        cells = f"<td>{_e(task)}</td><td>{e['episodes']}</td><td>{e['successes']}</td>"
        cells += "".join(f"<td>{e['by_policy_kind'][k]['episodes']}</td>" for k in POLICY_KINDS)
        for r in (comp["impersonation"][n][task] for n in comp["impersonation"]):
            cells += f"<td>{r['successes']} / {r['episodes']}</td>"
        rows.append(f'<tr class="composition-row">{cells}</tr>')
    body += f'<table class="composition-table">{"".join(rows)}</table>'
    try:
        body += _img(_plot_png(plot_composition, comp), "dataset composition", "composition-chart")
    except Exception as exc:
        logger.warning("report: composition chart failed: %s", exc)
        body += _missing(f"the composition chart ({exc})")
    return _section("composition", "Dataset composition", body)


def read_scalars(tb_dir: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar tag of the TensorBoard event files in ``tb_dir``: ``{tag: (steps,
    values)}``, all points (no reservoir sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out: dict[str, tuple[list[int], list[float]]] = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events])
    return out


def _curve_tags(tags: Sequence[str]) -> list[str]:
    first = [t for t in CURVE_TAGS if t in tags]
    rest = sorted(t for t in tags if t.startswith(("train/", "bc/", "fleet/")) and t not in first)
    return (first + rest)[:MAX_CURVES]


def _curves_section(run: Path) -> str:
    dirs = sorted({p.parent for p in _under(run, "events.out.tfevents.*")})
    runs = {}
    for d in dirs:
        try:
            runs[str(d.relative_to(run))] = read_scalars(d)
        except Exception as exc:
            logger.warning("report: cannot read TensorBoard events in %s: %s", d, exc)
    runs = {k: v for k, v in runs.items() if v}
    if not runs:
        return _section(
            "curves", "Learning curves", _missing("no TensorBoard scalars (tb/) in the run")
        )
    tags = _curve_tags(sorted({t for scalars in runs.values() for t in scalars}))
    if not tags:
        return _section("curves", "Learning curves", _missing("no train/ scalars in the run"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2
    nrows = math.ceil(len(tags) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(11, 3.2 * nrows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for name, scalars in runs.items():
            if tag in scalars:
                steps, values = scalars[tag]
                ax.plot(steps, values, marker="." if len(steps) < 20 else None, label=name)
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tags) :]:
        ax.set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    listed = ", ".join(f"<code>{_e(k)}</code>" for k in runs)
    body = f"<p>TensorBoard runs: {listed}.</p>" + _img(
        buf.getvalue(), "learning curves", "curves-chart"
    )
    return _section("curves", "Learning curves", body)


def _videos_section(run: Path) -> str:
    figures: list[str] = []
    skipped: list[str] = []
    budget = MAX_VIDEO_BYTES
    for index_path in _under(run, "index.json"):
        index = _read_json(index_path)
        if not isinstance(index, dict) or not isinstance(index.get("videos"), list):
            continue
        for v in index["videos"]:
            file = index_path.parent / str(v.get("file", ""))
            if not file.is_file():
                skipped.append(f"{file} (missing)")
                continue
            size = file.stat().st_size
            if size > budget:
                skipped.append(f"{file} (over the page's video budget)")
                continue
            budget -= size
            data = base64.b64encode(file.read_bytes()).decode("ascii")
            outcome = "success" if v.get("success") else "failure"
            caption = f"{index.get('policy') or 'policy'}: {v.get('task')}, attempt "
            caption += f"{v.get('attempt')}, {outcome} ({v.get('steps')} steps)"
            figures.append(
                f'<figure class="video"><video controls loop muted playsinline '
                f'src="data:video/mp4;base64,{data}"></video>'
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
    if not figures and not skipped:
        return _section("videos", "Videos", _missing("no videos (video/index.json) in the run"))
    body = "".join(figures)
    if skipped:
        body += _missing("videos not embedded: " + "; ".join(skipped))
    return _section("videos", "Videos", body)
