"""The learning benchmark: decide between learner variants with seeds (issue 31).

Usage:
  python benchmarks/learning.py --mode proxy --seeds 0 1 2 \\
      --variant shipped= --variant one-step="--replay.n-step 1"
  python benchmarks/learning.py --mode full --seeds 0 1 2 --variant shipped= \\
      --variant rounds8="--rounds 8 --round-episodes 2500 --round-steps 1500"
  python benchmarks/learning.py --mode finetune --seeds 0 1 2 --steps 4000 \\
      --variant shipped= --variant utd2="--steps 6000"
  python benchmarks/learning.py --smoke     # a tiny run of the same code path

Every variant is the learner of ``--config`` (the ``train`` section of a demo config,
``configs/demo/learning.yaml`` by default) with the variant's flags applied on top, as on the
command line of ``mtopt train`` (``--replay.n-step 1``, ``--trainer.conservative-weight 0``, ...).
The first ``--variant`` is the baseline the others are compared with. A ``--steps N`` among a
variant's flags is that variant's own training budget: its proxy training steps (e.g. a 4x
larger batch for a quarter of the steps: the same samples), or in ``finetune`` its
fine-tuning steps (the round's update-to-data ratio).

* ``proxy``: the learner trains offline for ``--steps`` steps from a frozen, reproducible log of
  ``--log-episodes`` scripted episodes (collected once, by ``--log-seed``, into
  OUT/log-N-sS and reused), then the greedy policy is evaluated with ``--focus-episodes``
  attempts of ``--focus-task`` and ``--episodes`` attempts of every other task. The scripted
  policies are evaluated on the same scenes.
* ``finetune``: one collection round, as the demo's rounds do it, from a frozen start. Per seed
  S, the config's learner (no variant flags) trains as in ``proxy`` (the ``base`` row, cached
  in OUT/finetune/base/seed-S), and the fleet collects ``--round-episodes`` episodes with that
  checkpoint and the config's ``policy`` (collection seed 1000 + S) into
  OUT/finetune/base/seed-S/round-log, shared by every variant. Each variant then fine-tunes the
  base checkpoint (networks loaded, optimizer and step fresh: ``TrainConfig.init``) on the
  frozen log and the round's episodes for ``--round-steps`` steps (training seed S + 1, as the
  demo's round 1) and is evaluated as in ``proxy``. A variant must keep the base's network.
* ``full``: the whole loop of ``--config`` (``mtopt demo``: scripted bootstrap, offline
  training, ε-greedy collection rounds with fine-tuning, evaluation) per variant and seed. A
  variant may also reshape the loop: ``--rounds``, ``--round-episodes``, ``--round-steps``,
  ``--bootstrap-episodes``, ``--bootstrap-steps``, ``--robots`` and ``--robots-per-process``
  among its flags set those fields of the demo config (e.g. more, smaller rounds within the
  same episode budget, or a smaller loop for every variant).

Each (variant, seed) job writes OUT/MODE/VARIANT/seed-S/result.json; a finished job is not run
again (a cut run resumes). The report gives per task the mean over seeds with a 95 % Student-t
interval, all attempts pooled with a Wilson interval, the seeds' spread, and every variant's
difference from the baseline next to both spreads (adopted only beyond them); it is printed
and written to OUT/MODE/report.md and report.json. The evaluation seed of seed S is 10000 + S.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import tyro

from mtopt.config import load_config, to_dict
from mtopt.data.stats import dataset_stats
from mtopt.evaluation.evaluate import scripted_policy_for
from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.evaluation.seeds import compare_to_baseline, pooled_interval, seed_interval
from mtopt.experiments.demo import DemoConfig, run_demo
from mtopt.jsonio import write_json
from mtopt.learning.cem import CEMConfig
from mtopt.learning.checkpoint import CHECKPOINT_PATTERN, latest_checkpoint
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import train
from mtopt.system.training_config import LearnerConfig, TrainConfig

MEAN = "mean (all tasks)"
RESERVED = ("scripted", "base")
"""Row names of the scripted policies and of the fine-tuning's start (not variant names)."""


LOOP_FLAGS = (
    "bootstrap_episodes",
    "bootstrap_steps",
    "rounds",
    "round_episodes",
    "round_steps",
    "robots",
    "robots_per_process",
)
"""Fields of the demo loop and its fleet that a ``full`` variant may set among its flags
(``--rounds 8 --round-episodes 2500``: more, smaller rounds within the same episode budget;
``--robots 16 --robots-per-process 8``: the rounds' robots stepped side by side)."""


def _flag(name: str) -> str:
    """The command-line flag of a snake_case field name (``round_steps`` -> ``--round-steps``)."""
    return "--" + name.replace("_", "-")


def pop_int_flags(flags: list[str], names: tuple[str, ...]) -> tuple[list[str], dict[str, int]]:
    """``flags`` without the flags ``--NAME N`` / ``--NAME=N`` of ``names`` (snake_case names,
    written with dashes), and their positive integer values by name."""
    rest: list[str] = []
    found: dict[str, int] = {}
    by_flag = {_flag(n): n for n in names}
    i = 0
    while i < len(flags):
        flag, eq, value = flags[i].partition("=")
        if flag not in by_flag:
            rest.append(flags[i])
        else:
            if not eq:
                value = flags[i + 1] if i + 1 < len(flags) else ""
                i += 1
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"a variant's {flag} must be a positive integer, got {value!r}")
            found[by_flag[flag]] = int(value)
        i += 1
    return rest, found


def split_steps(flags: list[str]) -> tuple[list[str], int | None]:
    """``flags`` without a ``--steps N`` (the variant's own proxy training budget, e.g. for a
    larger batch at equal samples), and that ``N`` (``None`` if not given)."""
    rest, found = pop_int_flags(flags, ("steps",))
    return rest, found.get("steps")


def job_steps(args: argparse.Namespace, variant: str, flags: list[str]) -> int | None:
    """The training steps of a job: its variant's own ``--steps``, else ``--round-steps`` for
    a finetune variant and ``--steps`` for a proxy or base job; None when it trains nothing
    here (the scripted policies, the full mode's demo)."""
    if variant == "scripted" or args.mode == "full":
        return None
    own = split_steps(flags)[1]
    if own is not None:
        return own
    return args.round_steps if args.mode == "finetune" and variant != "base" else args.steps


def learner_variant(base: LearnerConfig, flags: list[str]) -> LearnerConfig:
    """``base`` with command-line ``flags`` of :class:`LearnerConfig` applied (a ``--steps N``
    among them is the job's training budget and the :data:`LOOP_FLAGS` of a ``full`` variant
    shape its loop, not the learner; see :func:`split_steps`)."""
    flags, _ = split_steps(flags)
    flags, _ = pop_int_flags(flags, LOOP_FLAGS)
    if not flags:
        return base
    return tyro.cli(LearnerConfig, args=flags, default=base, prog="variant")


def _parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant must be NAME=FLAGS (FLAGS may be empty), got {text!r}")
    return name, shlex.split(flags)


def proxy_log(args: argparse.Namespace, demo: DemoConfig) -> Path:
    """The frozen scripted log of the proxy (collected once; same seed, same log)."""
    log = Path(args.out) / f"log-{args.log_episodes}-s{args.log_seed}"
    done = log / "COMPLETE"
    if not done.exists():
        cfg = FleetConfig(
            out=str(log),
            robots=demo.robots,
            robots_per_process=demo.robots_per_process,
            episodes=args.log_episodes,
            seed=args.log_seed,
            progress=not args.quiet,
        )
        collect(cfg, demo.env.spec())
        done.write_text(f"{args.log_episodes} scripted episodes, seed {args.log_seed}\n")
    return log


def evaluate_tasks(policy_for: Any, args: argparse.Namespace, seed: int, spec: Any, counts: Any):
    """Per task ``(successes, attempts)``: the focus task gets more attempts."""
    names = spec.task_set.names
    out: dict[str, list[int]] = {}
    groups = [((args.focus_task,), args.focus_episodes)] if args.focus_task in names else []
    groups.append((tuple(t for t in names if t != args.focus_task), args.episodes))
    for tasks, n in groups:
        protocol = ProtocolConfig(episodes_per_task=n, seed=10_000 + seed, tasks=tasks)
        protocol = replace(protocol, progress=False)
        result = evaluate(policy_for, protocol, spec, counts)
        for task, r in result["tasks"].items():
            out[task] = [r["successes"], r["episodes"]]
    return out


def _train_and_evaluate(
    job: dict[str, Any], demo: DemoConfig, spec: Any, run: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train ``demo``'s learner with the job's flags (``run``: the run's own TrainConfig
    fields), then evaluate its greedy policy: per task ``(successes, attempts)``, and facts."""
    args = argparse.Namespace(**job["args"])
    latest = latest_checkpoint(Path(run["out"]) / "checkpoints")
    if latest is not None:  # a job cut during its training continues it bit for bit
        if int(CHECKPOINT_PATTERN.match(latest.name).group(1)) > run["steps"]:
            raise SystemExit(f"{latest} is beyond {run['steps']} steps: use another --out")
        run = {**run, "resume": True, "init": None}
    learner = learner_variant(demo.train, job["flags"])
    res = train(TrainConfig.from_learner(learner, progress=False, **run), spec)
    policy = load_q_policy(res["checkpoint"], spec, replace(demo.policy, epsilon=0.0))
    tasks = evaluate_tasks(lambda task: policy, args, job["seed"], spec, job["counts"])
    extra = {"checkpoint": res["checkpoint"], "steps": run["steps"]}
    if res["samples_per_s"] > 0:  # not when a resume found the training finished
        extra["samples_per_s"] = res["samples_per_s"]
    return tasks, extra


def round_log(job: dict[str, Any], demo: DemoConfig, checkpoint: str) -> Path:
    """The finetune mode's round: ``--round-episodes`` episodes of ``checkpoint`` acting as the
    config's ``policy``, collected once into the base's round-log (a cut collection is redone
    from scratch)."""
    args = argparse.Namespace(**job["args"])
    log = Path(job["dir"]) / "round-log"
    done = log / "COMPLETE"
    if not done.exists():
        if log.exists():
            print(f"removing the incomplete round log {log}")
            shutil.rmtree(log)
        seed = 1000 + job["seed"]
        cfg = FleetConfig(
            out=str(log),
            robots=demo.robots,
            robots_per_process=demo.robots_per_process,
            episodes=args.round_episodes,
            seed=seed,
            checkpoint=checkpoint,
            policy=demo.policy,
            progress=False,
        )
        collect(cfg, demo.env.spec())
        text = f"{args.round_episodes} episodes of {checkpoint} at ε {demo.policy.epsilon}"
        done.write_text(f"{text}, seed {seed}\n")
    return log


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One (variant, seed): train and evaluate, write result.json; returns it."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    args = argparse.Namespace(**job["args"])
    demo = load_config(DemoConfig, args.config)
    spec = demo.env.spec()
    out = Path(job["dir"])
    out.mkdir(parents=True, exist_ok=True)
    seed = job["seed"]
    t0 = time.time()
    if job["variant"] == "scripted":
        counts = job["counts"]
        tasks = evaluate_tasks(scripted_policy_for(spec), args, seed, spec, counts)
        extra: dict[str, Any] = {}
    elif args.mode == "proxy" or job["variant"] == "base":
        run = {"data": job["log"], "out": str(out / "train"), "steps": job["steps"], "seed": seed}
        tasks, extra = _train_and_evaluate(job, demo, spec, run)
        if args.mode == "finetune":
            extra["round_log"] = str(round_log(job, demo, extra["checkpoint"]))
    elif args.mode == "finetune":
        base = json.loads((Path(job["base"]) / "result.json").read_text())
        run = {
            "data": job["log"],
            "extra_data": (base["round_log"],),
            "init": base["checkpoint"],
            "out": str(out / "train"),
            "steps": job["steps"],
            "seed": seed + 1,
        }
        tasks, extra = _train_and_evaluate(job, demo, spec, run)
        extra["init"] = base["checkpoint"]
    else:
        learner = learner_variant(demo.train, job["flags"])
        loop = pop_int_flags(job["flags"], LOOP_FLAGS)[1]
        run = {"out": str(out / "run"), "seed": seed, "train": learner, "progress": False}
        cfg = replace(demo, **run, **loop)
        summary = run_demo(cfg)
        tasks = {
            t: [r["successes"], r["episodes"]]
            for t, r in summary["results"]["mt-opt"]["tasks"].items()
        }
        extra = {"timings_s": summary["timings_s"], "checkpoint": summary["checkpoint"]}
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


def run_jobs(
    jobs: list[dict[str, Any]],
    workers: int,
    job_fn: Callable[[dict[str, Any]], dict[str, Any]],
    variants: list[str],
) -> dict[str, list[dict[str, Any]]]:
    """Per variant, the results of ``jobs`` sorted by seed: a job whose ``dir`` holds a
    result.json is not run again (it must have the job's flags); the others run through
    ``job_fn``, ``workers`` at a time in separate processes."""
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in variants}
    todo = []
    for job in jobs:
        path = Path(job["dir"]) / "result.json"
        if path.exists():
            done = json.loads(path.read_text())
            if done["flags"] != job["flags"]:
                raise SystemExit(
                    f"{path} was run with flags {done['flags']}, not {job['flags']}: "
                    f"use another --out or variant name"
                )
            steps = job.get("steps")
            if steps is not None and done.get("steps", steps) != steps:
                raise SystemExit(
                    f"{path} trained {done['steps']} steps, not {steps}: "
                    f"use another --out or variant name"
                )
            results[job["variant"]].append(done)
        else:
            todo.append(job)
    print(f"{len(jobs) - len(todo)} of {len(jobs)} jobs already done; running {len(todo)}")
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for r in pool.map(job_fn, todo):
                results[r["variant"]].append(r)
                print(f"done: {r['variant']} seed {r['seed']} in {r['wall_time_s']:.0f} s")
    else:
        for job in todo:
            r = job_fn(job)
            results[r["variant"]].append(r)
    for runs in results.values():
        runs.sort(key=lambda r: r["seed"])
    return results


def _rate(result: dict[str, Any], task: str) -> float:
    wins, n = result["tasks"][task]
    return wins / n


def _task_mean(result: dict[str, Any]) -> float:
    return sum(_rate(result, t) for t in result["tasks"]) / len(result["tasks"])


def summarise(results: dict[str, list[dict[str, Any]]], baseline: str) -> dict[str, Any]:
    """Per variant and task: seed interval, pooled interval, per-seed rates; comparisons."""
    report: dict[str, Any] = {"variants": {}, "comparisons": {}}
    for name, runs in results.items():
        tasks = list(runs[0]["tasks"])
        rows = {}
        for task in tasks:
            rates = [_rate(r, task) for r in runs]
            pooled = pooled_interval(
                [r["tasks"][task][0] for r in runs], [r["tasks"][task][1] for r in runs]
            )
            rows[task] = {"seeds": rates, **seed_interval(rates), "pooled": pooled}
        means = [_task_mean(r) for r in runs]
        rows[MEAN] = {"seeds": means, **seed_interval(means), "pooled": None}
        throughput = [r["samples_per_s"] for r in runs if "samples_per_s" in r]
        report["variants"][name] = {
            "flags": runs[0]["flags"],
            "seeds": [r["seed"] for r in runs],
            "tasks": rows,
            "samples_per_s": sum(throughput) / len(throughput) if throughput else None,
        }
    base = report["variants"].get(baseline)
    for name, v in report["variants"].items():
        if name in (baseline, "scripted") or base is None:
            continue
        report["comparisons"][name] = {
            task: compare_to_baseline(base["tasks"][task]["seeds"], v["tasks"][task]["seeds"])
            for task in v["tasks"]
            if task in base["tasks"]
        }
    return report


def format_report(report: dict[str, Any], baseline: str) -> str:
    """Markdown tables: one per variant, then the comparisons with the baseline."""
    lines = []
    for name, v in report["variants"].items():
        flags = " ".join(v["flags"]) or "(no flags)"
        sps = f", {v['samples_per_s']:.0f} samples/s" if v["samples_per_s"] else ""
        lines += [
            f"\n### {name}: {flags} (seeds {v['seeds']}{sps})\n",
            "| task | per seed | mean | 95 % t-interval (seeds) | pooled, Wilson 95 % | spread |",
            "|---|---|---:|---|---|---:|",
        ]
        for task, row in v["tasks"].items():
            seeds = " / ".join(f"{r:.2f}" for r in row["seeds"])
            pooled = row["pooled"]
            p = (
                f"{pooled['rate']:.3f} [{pooled['lo']:.2f}, {pooled['hi']:.2f}] of "
                f"{pooled['attempts']}"
                if pooled
                else "-"
            )
            lines.append(
                f"| {task} | {seeds} | {row['mean']:.3f} | [{row['lo']:.2f}, {row['hi']:.2f}] "
                f"| {p} | {row['spread']:.2f} |"
            )
    if report["comparisons"]:
        lines += [
            f"\n### Against the baseline ({baseline})\n",
            "| variant | task | difference of means | baseline spread | variant spread | verdict |",
            "|---|---|---:|---:|---:|---|",
        ]
        verdicts = {
            1: "better beyond the spread",
            0: "within the spread",
            -1: "worse beyond the spread",
        }
        for name, rows in report["comparisons"].items():
            for task, c in rows.items():
                lines.append(
                    f"| {name} | {task} | {c['diff']:+.3f} | {c['baseline_spread']:.2f} | "
                    f"{c['variant_spread']:.2f} | {verdicts[c['beyond_spread']]} |"
                )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("proxy", "finetune", "full"), default="proxy")
    p.add_argument("--config", default="configs/demo/learning.yaml")
    p.add_argument("--variant", action="append", default=None, help="NAME=FLAGS; first: baseline")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/bench-learning")
    p.add_argument("--log-episodes", type=int, default=30_000)
    p.add_argument("--log-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8000, help="proxy (and finetune base) steps")
    p.add_argument("--round-episodes", type=int, default=3000, help="finetune: round episodes")
    p.add_argument("--round-steps", type=int, default=3000, help="finetune: fine-tuning steps")
    add_job_arguments(p)
    return p


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation, parallelism and smoke flags shared by this benchmark and diagnose.py."""
    p.add_argument("--focus-task", default="lift-any")
    p.add_argument("--focus-episodes", type=int, default=400)
    p.add_argument("--episodes", type=int, default=100, help="attempts per other task")
    p.add_argument("--workers", type=int, default=2, help="jobs in parallel (processes)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny run: checks the code path")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its report and return it (with ``--smoke``: the proxy's report,
    the full mode's under ``"full"`` and the finetune mode's under ``"finetune"``)."""
    args = _parser().parse_args(argv)
    if not args.smoke:
        return run(args, argv)
    with tempfile.TemporaryDirectory() as tmp:
        args.out, args.log_episodes, args.steps, args.seeds = tmp, 24, 4, [0, 1]
        args.focus_episodes, args.episodes, args.workers = 2, 1, 1
        args.variant = args.variant or ["shipped=", "one-step=--replay.n-step 1"]
        report = run(args, argv)
        full = argparse.Namespace(**{**vars(args), "mode": "full", "seeds": [0]})
        full.variant = full.variant[:1]
        report["full"] = run(full, argv)
        ft = argparse.Namespace(**{**vars(args), "mode": "finetune"})
        ft.round_episodes, ft.round_steps = 3, 2
        ft.variant = [*args.variant, "short=--steps 1"]
        report["finetune"] = run(ft, argv)
    return report


def run(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """Run ``args``' jobs (skipping finished ones), print the report and return it."""
    variants = dict(_parse_variant(v) for v in (args.variant or ["shipped="]))
    if any(n in variants for n in RESERVED):
        raise SystemExit(f"variant names {list(RESERVED)} are reserved for report rows")
    baseline = next(iter(variants))
    demo = load_config(DemoConfig, args.config)
    if args.smoke:
        tiny = CEMConfig(iterations=1, num_samples=8, num_elites=2)
        demo = replace(demo, bootstrap_episodes=16, bootstrap_steps=4, round_episodes=8)
        demo = replace(demo, rounds=1, round_steps=2, eval_episodes_per_task=1, robots=1)
        demo = replace(demo, policy=replace(demo.policy, cem=tiny))
    for flags in variants.values():  # bad flags fail before any work
        if args.mode == "full" and split_steps(flags)[1] is not None:
            raise SystemExit(f"a variant's --steps is for --mode proxy or finetune: {flags}")
        if args.mode != "full" and pop_int_flags(flags, LOOP_FLAGS)[1]:
            names = ", ".join(_flag(n) for n in LOOP_FLAGS)
            raise SystemExit(f"a variant's loop flags ({names}) are for --mode full: {flags}")
        learner_variant(demo.train, flags)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, torch {torch.__version__}"
    )
    print("command: python benchmarks/learning.py " + shlex.join(argv or sys.argv[1:]))
    root = Path(args.out) / args.mode
    log = counts = None
    if args.mode == "full":
        phases = [variants]
    else:
        log = proxy_log(args, demo)
        stats = dataset_stats(log, demo.env.spec().task_set.names)
        counts = {t: v["episodes"] for t, v in stats["tasks"].items()}
        if args.mode == "finetune":  # the bases (and their round logs), then the variants
            phases = [{"base": [], "scripted": []}, variants]
        else:
            phases = [{**variants, "scripted": []}]
    job_args = {**vars(args), "config": args.config}
    if args.smoke:  # the smoke run's tiny demo goes to the jobs through a config file
        root.mkdir(parents=True, exist_ok=True)
        job_args["config"] = str(root / "demo.yaml")
        (root / "demo.yaml").write_text(json.dumps(to_dict(demo)))
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in variants}  # variants first
    for phase in phases:
        jobs = [
            {
                "variant": name,
                "flags": flags,
                "seed": seed,
                "dir": str(root / name / f"seed-{seed}"),
                "base": str(root / "base" / f"seed-{seed}"),
                "log": str(log),
                "counts": counts,
                "args": job_args,
                "threads": 1 if args.workers > 1 else 0,
                "steps": job_steps(args, name, flags),
            }
            for name, flags in phase.items()
            for seed in args.seeds
        ]
        results.update(run_jobs(jobs, args.workers, run_job, list(phase)))
    report = summarise(results, baseline)
    text = format_report(report, baseline)
    print(text)
    write_json(report, root / "report.json")
    (root / "report.md").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
