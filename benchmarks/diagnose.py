"""Diagnose before tuning (issue 31, step 2): what limits lift-any -- data, fit or search?

Usage:
  python benchmarks/diagnose.py --mode expert --seeds 0 1 2 --expert-episodes 50000 \\
      --expert-noise 0.2
  python benchmarks/diagnose.py --mode volume --seeds 0 1 2 --volumes 10000 25000 50000 100000
  python benchmarks/diagnose.py --smoke     # a tiny run of both modes' code path

The learner is the ``train`` section of ``--config`` (``configs/demo/learning.yaml`` by default)
with ``--flags`` applied, as on ``mtopt train``'s command line; every job trains it offline for
``--steps`` steps and evaluates the greedy policy with ``--focus-episodes`` attempts of
``--focus-task`` and ``--episodes`` of every other task (evaluation seed 10000 + seed, so every
row of a mode faces the same scenes).

* ``expert`` -- can the learner fit good behaviour? A frozen log of ``--expert-episodes``
  episodes of the environment's expert policies (the workcell's aimed picker and placer),
  exploring with probability ``--expert-noise`` per step on the motion dims, is
  collected once through the fleet (``mtopt collect --bootstrap expert``) into
  OUT/expert-N-noiseX-EXPLORATION-sS. Per seed: ``q`` trains the learner on it, ``bc`` trains
  behaviour cloning on its successful episodes for ``--bc-steps`` (``mtopt bc train``; labels
  as the learner's rewards, its state encoder; held-out demonstrations measure the fit), and
  the expert itself (``expert``, noise-free), the collecting policy (``behaviour``, the
  expert with the noise) and the scripted policies (``scripted``) are evaluated on the same
  scenes.
* ``volume`` -- does more data help? The learner trains on the first ``--volumes`` episodes of
  one frozen scripted log of max(volumes) episodes (the learning benchmark's OUT/log-N-sS). A
  prefix holds each robot's first shards (each robot's episodes are reproducible from the
  seed), linked into OUT/log-N-sS-first/K; its exact size is in the report.
* search (both modes): for every trained learner, on the states of the noise-free expert's
  successful ``lift-any`` episodes (a probe log of ``--probe-episodes`` episodes, collected once
  with seed ``--log-seed`` + 1000), Q of the expert's action is compared with Q of the action
  CEM picks (the evaluation's CEM) and of the action a CEM with ``--search-factor`` times the
  samples and elites picks. ``expert_above_cem`` is the fraction of states where the
  Q-function itself rates the expert's action above CEM's pick: high, the search misses
  actions the Q-function knows to be better (search); low while the greedy policy still
  fails, the Q-function over-values CEM's picks (fit, or data).

Each job writes OUT/MODE/LOG/VARIANT/seed-S/result.json; a finished job is not run again. The
report (per task: per-seed rates, their mean with a 95 % Student-t interval, the pooled
Wilson interval, the spread; each row against the first -- ``q`` or the smallest volume --
next to both spreads; then the fit and search measurements) is printed and written to
OUT/MODE/LOG/report.md and report.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the learning benchmark's helpers
from learning import (
    MEAN,
    add_job_arguments,
    evaluate_tasks,
    format_report,
    learner_variant,
    proxy_log,
    run_jobs,
    summarise,
)

from mtopt.config import load_config, to_dict
from mtopt.data.log import EpisodeLogReader
from mtopt.data.shards import ShardName, read_shard_table
from mtopt.data.stats import dataset_stats
from mtopt.evaluation.evaluate import scripted_policy_for
from mtopt.experiments.demo import DemoConfig
from mtopt.jsonio import write_json
from mtopt.learning.cem import CEMConfig, cem_maximize
from mtopt.policies.bc_policy import load_bc_policy
from mtopt.policies.exploration import bootstrap_policy
from mtopt.policies.q_policy import QPolicy, load_q_policy
from mtopt.system.bc_training import BCConfig, train_bc
from mtopt.system.fleet import FleetConfig, collect, episode_counts
from mtopt.system.training import train
from mtopt.system.training_config import TrainConfig

PROBE_TASK = "lift-any"
"""The task whose expert states the search probe scores."""


# -- frozen logs -----------------------------------------------------------------------------
def _frozen(log: Path, config: FleetConfig, spec: Any, note: str) -> Path:
    """Collect ``config`` into ``log`` unless its COMPLETE marker exists (an interrupted
    collection is started again from scratch)."""
    done = log / "COMPLETE"
    if not done.exists():
        if log.exists():
            for p in log.iterdir():
                p.unlink()
        collect(replace(config, out=str(log)), spec)
        done.write_text(note + "\n")
    return log


def expert_log(args: argparse.Namespace, demo: DemoConfig) -> Path:
    """The frozen expert log of the ``expert`` mode."""
    name = f"expert-{args.expert_episodes}-noise{args.expert_noise:g}-"
    name += f"motion-s{args.log_seed}"
    cfg = FleetConfig(
        robots=demo.robots,
        episodes=args.expert_episodes,
        seed=args.log_seed,
        bootstrap="expert",
        expert_noise=args.expert_noise,
        progress=not args.quiet,
    )
    note = f"{args.expert_episodes} expert episodes, noise {args.expert_noise:g}"
    return _frozen(Path(args.out) / name, cfg, demo.env.spec(), note)


def probe_log(args: argparse.Namespace, demo: DemoConfig) -> Path:
    """The frozen noise-free expert log of the search probe (``lift-any`` only)."""
    seed = args.log_seed + 1000
    cfg = FleetConfig(
        robots=1,
        episodes=args.probe_episodes,
        seed=seed,
        tasks=(PROBE_TASK,),
        chain_place=False,
        bootstrap="expert",
        progress=not args.quiet,
    )
    log = Path(args.out) / f"probe-{PROBE_TASK}-{args.probe_episodes}-s{seed}"
    return _frozen(log, cfg, demo.env.spec(), f"{args.probe_episodes} noise-free expert episodes")


def log_prefix(log: Path, episodes: int) -> tuple[Path, int]:
    """The first ``episodes`` episodes of ``log`` and their exact count: each robot's first
    shards in its writing order (as many as its share of ``episodes`` needs), linked into
    LOG-first/EPISODES; the whole log when it holds no more than ``episodes``."""
    shards = []
    for path in EpisodeLogReader(log).shard_paths():
        name = ShardName.parse(path.name)
        assert name is not None
        shards.append((name.robot_id, name.sequence, path))
    total_file = log / "shard-sizes.json"
    if total_file.exists():
        sizes = json.loads(total_file.read_text())
    else:
        sizes = {p.name: read_shard_table(p, columns=["episode_id"]).num_rows for *_, p in shards}
        total_file.write_text(json.dumps(sizes))
    if episodes >= sum(sizes.values()):
        return log, sum(sizes.values())
    out = log.parent / f"{log.name}-first" / str(episodes)
    robots = sorted({r for r, *_ in shards})
    quota = dict(zip(robots, episode_counts(episodes, len(robots)), strict=True))
    chosen = []
    for robot in robots:
        taken = 0
        for _, _, path in sorted(s for s in shards if s[0] == robot):
            if taken >= quota[robot]:
                break
            chosen.append(path)
            taken += sizes[path.name]
    count = sum(sizes[p.name] for p in chosen)
    if not (out / "COMPLETE").exists():
        out.mkdir(parents=True, exist_ok=True)
        for p in out.iterdir():
            p.unlink()
        for p in chosen:
            os.symlink(p.resolve(), out / p.name)
        (out / "COMPLETE").write_text(f"first {count} episodes of {log}\n")
    return out, count


# -- search probe ----------------------------------------------------------------------------
def probe_states(log: Path, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """Observations and actions of every step of the probe log's successful episodes (the
    noise-free expert's: the logged action is the expert's); ``None`` without any."""
    eps = [e for e in EpisodeLogReader(log).episodes(load_images=False) if e.success_for(e.task)]
    if not eps:
        return None
    return {
        "obs": {k: np.concatenate([e.observations[k][:-1] for e in eps]) for k in keys},
        "actions": np.concatenate([e.actions for e in eps]),
        "episodes": len(eps),
    }


@torch.no_grad()
def search_gap(policy: QPolicy, probe: dict[str, Any], spec: Any, factor: int, seed: int) -> dict:
    """Q of the expert's actions against Q of CEM's picks on the probe states (module
    docstring): mean Q of each, and the fraction of states where the expert's is higher."""
    net, cem = policy.network, policy.cem
    wide = replace(cem, num_samples=cem.num_samples * factor, num_elites=cem.num_elites * factor)
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    slot = policy.task_set.slot(PROBE_TASK)
    logits: dict[str, list[torch.Tensor]] = {"expert": [], "cem": [], "wide": []}
    n = len(probe["actions"])
    for i in range(0, n, 256):
        obs = {
            k: torch.from_numpy(v[i : i + 256]).to(policy.device)
            for k, v in probe["obs"].items()
            if k in policy.obs_keys
        }
        b = len(next(iter(obs.values())))
        score = net.score_fn(obs, torch.full((b,), slot, device=policy.device), use_logits=True)
        expert = torch.from_numpy(probe["actions"][i : i + 256]).to(policy.device)
        logits["expert"].append(score(expert[:, None, :])[:, 0])
        for key, config in (("cem", cem), ("wide", wide)):
            _, best = cem_maximize(score, b, spec.action, config, gen, policy.device)
            logits[key].append(best)
    e, c, w = (torch.cat(logits[k]).float() for k in ("expert", "cem", "wide"))
    return {
        "states": n,
        "episodes": probe["episodes"],
        "q_expert": float(torch.sigmoid(e).mean()),
        "q_cem": float(torch.sigmoid(c).mean()),
        "q_cem_wide": float(torch.sigmoid(w).mean()),
        "expert_above_cem": float((e > c).float().mean()),
        "expert_above_cem_wide": float((e > w).float().mean()),
        "wide_cem": to_dict(wide),
    }


# -- jobs ------------------------------------------------------------------------------------
def bc_config(demo: DemoConfig, **run: Any) -> BCConfig:
    """Behaviour cloning with the learner's labels and state encoder (``objects-action`` is
    ``objects`` for a policy: its extra branch scores actions)."""
    net = replace(demo.train.trainer.network, kind="mlp")
    if net.state_encoder == "objects-action":
        net = replace(net, state_encoder="objects")
    return BCConfig(
        labels=demo.train.rewards,
        success_detector=demo.train.success_detector,
        network=net,
        progress=False,
        **run,
    )


def constant(policy: Any) -> Callable[[str], Any]:
    """``task -> policy``: one multi-task policy for every task."""
    return lambda task: policy


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One (variant, seed): train (for ``q`` and ``bc``) and evaluate; writes result.json."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    args = argparse.Namespace(**job["args"])
    demo = load_config(DemoConfig, args.config)
    spec = demo.env.spec()
    out = Path(job["dir"])
    out.mkdir(parents=True, exist_ok=True)
    seed, kind, counts = job["seed"], job["kind"], job["counts"]
    t0 = time.time()
    extra: dict[str, Any] = {}
    if kind == "scripted":
        policy_for = scripted_policy_for(spec)
    elif kind in ("expert", "behaviour"):
        noise = args.expert_noise if kind == "behaviour" else 0.0

        def policy_for(task: str) -> Any:
            return bootstrap_policy(spec, task, "expert", noise, "motion")[0]

    elif kind == "bc":
        cfg = bc_config(demo, data=job["log"], out=str(out / "bc"), steps=args.bc_steps, seed=seed)
        res = train_bc(cfg, spec)
        policy_for = constant(load_bc_policy(res["checkpoint"], spec))
        extra = {"checkpoint": res["checkpoint"]}
        extra["fit"] = {"train": res["train"], "held_out": res["held_out"]}
    else:  # the Q-learner
        learner = learner_variant(demo.train, args.learner_flags)
        cfg = TrainConfig.from_learner(
            learner,
            data=job["log"],
            out=str(out / "train"),
            steps=args.steps,
            seed=seed,
            progress=False,
        )
        res = train(cfg, spec)
        policy = load_q_policy(res["checkpoint"], spec, replace(demo.policy, epsilon=0.0))
        policy_for = constant(policy)
        extra = {"samples_per_s": res["samples_per_s"], "checkpoint": res["checkpoint"]}
        extra["fit"] = {"train_loss": res.get("loss"), "mean_q": res.get("mean_q")}
        probe = probe_states(Path(job["probe"]), policy.obs_keys) if job["probe"] else None
        if probe is not None:
            extra["search"] = search_gap(policy, probe, spec, args.search_factor, seed)
    tasks = evaluate_tasks(policy_for, args, seed, spec, counts)
    result = {
        "variant": job["variant"],
        "flags": job["flags"],
        "seed": seed,
        "tasks": tasks,
        "wall_time_s": time.time() - t0,
        **extra,
    }
    write_json(result, out / "result.json")
    return result


# -- report ----------------------------------------------------------------------------------
def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else math.nan


def diagnostics(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant, the means over seeds of its fit and search measurements."""
    out: dict[str, Any] = {}
    for name, runs in results.items():
        row: dict[str, Any] = {}
        searches = [r["search"] for r in runs if r.get("search")]
        if searches:
            keys = ("q_expert", "q_cem", "q_cem_wide", "expert_above_cem", "expert_above_cem_wide")
            row["search"] = {k: _mean([s[k] for s in searches]) for k in keys}
            row["search"]["states"] = searches[0]["states"]
        fits = [r["fit"] for r in runs if r.get("fit")]
        if fits and "held_out" in fits[0]:
            row["fit"] = {
                f"{part}_{k}": _mean([(f[part] or {}).get(k) for f in fits])
                for part in ("train", "held_out")
                for k in ("loss", "mse", "bce", "discrete_accuracy")
            }
        elif fits:
            row["fit"] = {"train_loss": _mean([f["train_loss"] for f in fits])}
        if row:
            out[name] = row
    return out


def format_diagnostics(diag: dict[str, Any]) -> str:
    """Markdown tables of :func:`diagnostics`: search, then behaviour cloning's fit."""
    lines = []
    search = {n: d["search"] for n, d in diag.items() if "search" in d}
    if search:
        lines += [
            f"\n### Search: Q of the expert's action vs CEM's pick on {PROBE_TASK} expert states\n",
            "| variant | states | Q(expert) | Q(CEM) | Q(wide CEM) | expert above CEM | "
            "expert above wide CEM |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, s in search.items():
            lines.append(
                f"| {name} | {s['states']} | {s['q_expert']:.3f} | {s['q_cem']:.3f} | "
                f"{s['q_cem_wide']:.3f} | {s['expert_above_cem']:.2f} | "
                f"{s['expert_above_cem_wide']:.2f} |"
            )
    fits = {n: d["fit"] for n, d in diag.items() if "fit" in d}
    bc = {n: f for n, f in fits.items() if "held_out_loss" in f}
    q = {n: f for n, f in fits.items() if "held_out_loss" not in f}
    if bc:
        lines += [
            "\n### Fit: behaviour cloning on its training and held-out demonstrations\n",
            "| variant | loss (train / held out) | MSE | BCE | discrete accuracy |",
            "|---|---|---|---|---|",
        ]
        for name, f in bc.items():
            cells = [
                f"{f[f'train_{k}']:.3f} / {f[f'held_out_{k}']:.3f}"
                for k in ("loss", "mse", "bce", "discrete_accuracy")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if q:
        lines += ["\n| Q-learner | last batch's training loss |", "|---|---:|"]
        lines += [f"| {n} | {f['train_loss']:.4f} |" for n, f in q.items()]
    return "\n".join(lines)


def format_curve(report: dict[str, Any], sizes: dict[str, int], focus: str) -> str:
    """The data-volume curve: per prefix, the focus task's and the mean success."""
    lines = [
        "\n### Data volume\n",
        f"| variant | episodes | {focus}: mean [95 % t] | {focus}: pooled | "
        "mean (all tasks) [95 % t] |",
        "|---|---:|---|---|---|",
    ]
    for name, size in sizes.items():
        rows = report["variants"][name]["tasks"]
        f, m = rows[focus], rows[MEAN]
        p = f["pooled"]
        lines.append(
            f"| {name} | {size} | {f['mean']:.3f} [{f['lo']:.2f}, {f['hi']:.2f}] | "
            f"{p['rate']:.3f} [{p['lo']:.2f}, {p['hi']:.2f}] | "
            f"{m['mean']:.3f} [{m['lo']:.2f}, {m['hi']:.2f}] |"
        )
    return "\n".join(lines)


# -- driver ----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("expert", "volume"), default="expert")
    p.add_argument("--config", default="configs/demo/learning.yaml")
    p.add_argument("--flags", default="", help="learner flags, as on mtopt train's command line")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/diagnose")
    p.add_argument("--log-seed", type=int, default=0)
    p.add_argument("--expert-episodes", type=int, default=50_000)
    p.add_argument("--expert-noise", type=float, default=0.2)
    p.add_argument("--volumes", type=int, nargs="+", default=[10_000, 25_000, 50_000, 100_000])
    p.add_argument("--steps", type=int, default=8000, help="Q-learner training steps")
    p.add_argument("--bc-steps", type=int, default=20_000, help="behaviour-cloning steps")
    p.add_argument("--probe-episodes", type=int, default=200, help="search probe (0: none)")
    p.add_argument("--search-factor", type=int, default=4, help="wide CEM: x samples, elites")
    add_job_arguments(p)
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the diagnostics, print the report and return it (with ``--smoke``: the expert
    mode's report, and the volume mode's under ``"volume"``)."""
    args = _parser().parse_args(argv)
    if not args.smoke:
        return run(args, argv)
    with tempfile.TemporaryDirectory() as tmp:
        args.out, args.seeds, args.workers = tmp, [0, 1], 1
        args.expert_episodes, args.steps, args.bc_steps, args.probe_episodes = 24, 4, 4, 4
        args.focus_episodes, args.episodes = 2, 1
        report = run(args, argv)
        volume = argparse.Namespace(**{**vars(args), "mode": "volume", "seeds": [0]})
        volume.volumes = [12, 24]
        report["volume"] = run(volume, argv)
    return report


def _smoke_demo(demo: DemoConfig) -> DemoConfig:
    tiny = CEMConfig(iterations=1, num_samples=8, num_elites=2)
    demo = replace(demo, robots=1, policy=replace(demo.policy, cem=tiny))
    train_cfg = replace(demo.train, batch_size=16, cem=tiny)
    return replace(demo, train=train_cfg)


def run(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """Run ``args``' jobs (skipping finished ones), print the report and return it."""
    args.learner_flags = shlex.split(args.flags)
    demo = load_config(DemoConfig, args.config)
    if args.smoke:
        demo = _smoke_demo(demo)
    learner_variant(demo.train, args.learner_flags)  # bad flags fail before any work
    spec = demo.env.spec()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, torch {torch.__version__}"
    )
    print("command: python benchmarks/diagnose.py " + shlex.join(argv or sys.argv[1:]))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    probe = str(probe_log(args, demo)) if args.probe_episodes > 0 else None
    q_flags = [*args.learner_flags, f"steps={args.steps}"]
    runs: list[tuple[str, str, list[str], Path, int | None]] = []  # variant, kind, flags, log
    if args.mode == "expert":
        log = expert_log(args, demo)
        runs += [
            ("q", "q", q_flags, log, None),
            ("bc", "bc", [f"steps={args.bc_steps}"], log, None),
        ]
        runs += [("expert", "expert", [], log, None)]
        if args.expert_noise > 0:
            noise = [f"noise={args.expert_noise:g}", "motion"]
            runs.append(("behaviour", "behaviour", noise, log, None))
        runs.append(("scripted", "scripted", [], log, None))
        root = Path(args.out) / "expert" / log.name
    else:
        args.log_episodes = max(args.volumes)
        full = proxy_log(args, demo)
        for k in sorted(set(args.volumes)):
            prefix, size = log_prefix(full, k)
            name = f"{k // 1000}k" if k % 1000 == 0 else str(k)
            runs.append((name, "q", [*q_flags, f"episodes={size}"], prefix, size))
        runs.append(("scripted", "scripted", [], full, None))
        root = Path(args.out) / "volume" / full.name
    job_args = {**vars(args)}
    if args.smoke:  # the smoke run's tiny demo goes to the jobs through a config file
        root.mkdir(parents=True, exist_ok=True)
        job_args["config"] = str(root / "demo.yaml")
        (root / "demo.yaml").write_text(json.dumps(to_dict(demo)))
    jobs = []
    for name, kind, flags, log, _ in runs:
        stats = dataset_stats(log, spec.task_set.names)
        counts = {t: v["episodes"] for t, v in stats["tasks"].items()}
        for seed in args.seeds:
            jobs.append(
                {
                    "variant": name,
                    "kind": kind,
                    "flags": flags,
                    "seed": seed,
                    "dir": str(root / name / f"seed-{seed}"),
                    "log": str(log),
                    "probe": probe,
                    "counts": counts,
                    "args": job_args,
                    "threads": 1 if args.workers > 1 else 0,
                }
            )
    results = run_jobs(jobs, args.workers, run_job, [name for name, *_ in runs])
    baseline = runs[0][0]
    report = summarise(results, baseline)
    report["diagnostics"] = diagnostics(results)
    parts = [format_report(report, baseline), format_diagnostics(report["diagnostics"])]
    if args.mode == "volume":
        sizes = {name: size for name, _, _, _, size in runs if size is not None}
        report["episodes"] = sizes
        parts.insert(0, format_curve(report, sizes, args.focus_task))
    text = "\n".join(parts)
    print(text)
    write_json(report, root / "report.json")
    (root / "report.md").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
