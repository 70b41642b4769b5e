"""Every benchmark in benchmarks/ runs end to end in its ``--smoke`` mode and reports sense.

The benchmarks are scripts, not a package: each is loaded from its file and its
``main(argv)`` called in this process (it prints its usual report and returns it). A new
script in benchmarks/ must be added to ``CHECKS`` (the coverage test fails otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def check_workcell(report: dict, out: str) -> None:
    assert set(report) == {
        "scripted pick (state)",
        "scripted place (state)",
        "scripted pick (image)",
    }
    for case in report.values():
        assert positive(case["steps_per_s"]) and positive(case["episodes_per_s"])
        assert case["steps_per_s_excl_reset"] >= case["steps_per_s"]
        assert case["mean_episode_length"] >= 1
    assert "image steps/s (32x32" in out


def check_fleet(report: dict, out: str) -> None:
    assert set(report["robots"]) == {1, 2}
    for robots, summary in report["robots"].items():
        assert summary["episodes"] == 2 and summary["robots"] == robots
        assert positive(summary["episodes_per_s"]) and positive(summary["steady_episodes_per_s"])
    assert positive(report["wall_scaling"])
    assert "scaling 2 vs 1 robot" in out
    # the lockstep case: 2 processes of 1 robot, then of 2 robots side by side
    assert set(report["lockstep"]) == {1, 2}
    for k, summary in report["lockstep"].items():  # 2 episodes: 1 each for 2 robots
        assert summary["episodes"] == 2 and summary["robots"] == 2
        assert summary["processes"] == (2 if k == 1 else 1)
    assert positive(report["wall_ratio"]) and "lockstep 2 vs 1 robot per process" in out


def check_episode_log(report: dict, out: str) -> None:
    assert list(report) == ["state-only", "16x16 image + 2 side images"]
    for case in report.values():
        assert positive(case["payload_mb"]) and positive(case["disk_mb"])
        for op in ("write", "read", "read (no images)", "metadata"):
            assert positive(case[op]["episodes_per_s"]) and positive(case[op]["mb_per_s"])
    assert report["16x16 image + 2 side images"]["payload_mb"] > report["state-only"]["payload_mb"]
    assert "state-only: 6 episodes" in out


def check_q_network(report: dict, out: str) -> None:
    assert positive(report["peak_flops_per_s"])
    rows = {(r["net"], r["stage"]): r for r in report["rows"]}
    nets = ("mlp", "learner", "soft-modular", "care", "conv64")
    assert set(rows) == {(n, s) for n in nets for s in ("bellman", "train")}
    for row in rows.values():
        assert positive(row["samples_per_s"]) and positive(row["flops_per_s"])
        assert math.isclose(
            row["fraction_of_matmul"], row["flops_per_s"] / report["peak_flops_per_s"]
        )
    assert "GFLOP/s" in out and "conv64" in out


def check_ingestion(report: dict, out: str) -> None:
    assert report["episodes"] == 8 and len(report["repeats"]) == 1
    rep = report["repeats"][0]
    assert positive(rep["one_actor_episodes_per_s"]) and positive(rep["two_actors_episodes_per_s"])
    assert rep["busy_one_actor"]["log read"] > 0
    assert "repeat 0: 1 actor" in out


def check_run(report: dict, out: str) -> None:
    runs = {r["backend"]: r for r in report["runs"]}
    assert set(runs) == {"local", "ray"}
    for r in runs.values():
        assert r["step"] == 6 and r["episodes_written"] > 0
        assert positive(r["steps_per_s"])
    assert {"collection", "targets", "training"} <= set(report["stages"])
    assert positive(report["stages"]["training"]["rate"])
    assert report["bottleneck"] in report["stages"]
    assert "ray / local training throughput" in out and "bottleneck:" in out


def check_calibrate(report: dict, out: str) -> None:
    assert set(report) == {"lift-any", "place-any"}
    for r in report.values():
        assert r["episodes"] == 3 and 0 <= r["successes"] <= 3
        lo, hi = r["ci"]
        assert 0 <= lo <= r["rate"] <= hi <= 1
    assert "95% CI" in out


def check_sd_labelling(report: dict, out: str) -> None:
    assert report["kind"] == "state" and report["episodes"] == 48
    for key in ("per_episode", "batched", "log_replay_primed"):
        assert positive(report[f"{key}_episodes_per_s"])
    # the report is printed as JSON (parsed from its lines: Ray may print to stdout too)
    printed = out[out.index("{\n") : out.index("\n}") + 2]
    assert json.loads(printed) == report


def check_data_sharing_cost(report: dict, out: str) -> None:
    assert report["transitions"] > 0 and report["load_cpu_s"] >= 0
    for key in ("train_step_cpu_ms", "train_step_wall_ms", "eval_episode_wall_ms"):
        assert positive(report[key])
    assert "train step" in out and "eval episode" in out


def check_reliability(report: dict, out: str) -> None:
    assert report["probes_tried"] == 3 and report["probes_clean"] == 3
    assert all(p["clean"] and p["exit_code"] != 0 for p in report["probes"])
    assert set(report["shards"]) == {"data stats", "data stats --verify"}
    for row in report["shards"].values():
        assert len(row) == 2 and all(c["detected"] and c["episodes"] == 16 for c in row.values())
    assert report["kills_tried"] == 1 and report["kills_ok"] == 1
    assert report["kills"][0]["episodes"] >= report["kills"][0]["episodes_before"] > 0
    assert "3 of 3 clean" in out and "1 of 1 kills with nothing lost or duplicated" in out


def check_learning(report: dict, out: str) -> None:
    assert set(report["variants"]) == {"shipped", "one-step", "scripted"}
    for v in report["variants"].values():
        assert v["seeds"] == [0, 1] and "mean (all tasks)" in v["tasks"]
        for row in v["tasks"].values():
            assert len(row["seeds"]) == 2 and 0.0 <= row["mean"] <= 1.0
    lift = report["variants"]["shipped"]["tasks"]["lift-any"]
    assert lift["pooled"]["attempts"] == 4  # 2 focus-task attempts per seed
    assert set(report["comparisons"]) == {"one-step"}
    assert report["full"]["variants"]["shipped"]["seeds"] == [0]
    assert "Against the baseline (shipped)" in out
    finetune = report["finetune"]
    assert list(finetune["variants"]) == ["shipped", "one-step", "short", "base", "scripted"]
    assert all(v["seeds"] == [0, 1] for v in finetune["variants"].values())
    assert finetune["variants"]["short"]["flags"] == ["--steps", "1"]
    assert set(finetune["comparisons"]) == {"one-step", "short", "base"}


def test_a_finetune_variant_fine_tunes_for_its_own_steps_and_the_base_for_the_proxy_steps():
    learning = load_benchmark("learning.py")
    args = learning._parser().parse_args(["--mode", "finetune", "--steps", "40"])
    args.round_steps = 30

    def steps(variant: str, flags: tuple[str, ...] = ()) -> int | None:
        return learning.job_steps(args, variant, list(flags))

    assert steps("base") == 40  # the fine-tuning's start: the proxy's training
    assert steps("a") == 30 and steps("b", ("--steps", "60")) == 60
    assert steps("scripted") is None
    args.mode = "proxy"
    assert steps("a") == 40


def check_diagnose(report: dict, out: str) -> None:
    assert set(report["variants"]) == {"q", "bc", "expert", "behaviour", "scripted"}
    for v in report["variants"].values():
        assert v["seeds"] == [0, 1] and "mean (all tasks)" in v["tasks"]
        assert v["tasks"]["lift-any"]["pooled"]["attempts"] == 4  # 2 focus attempts per seed
    assert set(report["comparisons"]) == {"bc", "expert", "behaviour"}  # against q
    search = report["diagnostics"]["q"]["search"]
    assert search["states"] > 0 and 0.0 <= search["expert_above_cem"] <= 1.0
    assert 0.0 < search["q_expert"] < 1.0
    assert "train_discrete_accuracy" in report["diagnostics"]["bc"]["fit"]
    volume = report["volume"]
    assert set(volume["variants"]) == {"12", "24", "scripted"}
    assert 12 <= volume["episodes"]["12"] <= volume["episodes"]["24"] == 24
    assert "search" in volume["diagnostics"]["24"]
    assert "### Data volume" in out and "### Search: Q of the expert's action" in out
    assert "### Fit: behaviour cloning" in out


def check_calibrate_metaworld(report: dict, out: str) -> None:
    chosen = report["chosen"]
    assert list(chosen) == ["reach-v3", "push-v3"]
    assert set(report["rates"]) == {"expert", "expert x0.5", "0.5/0.1", "1/0.1"}
    assert set(report["scale"]) <= {"reach-v3", "push-v3"}
    assert set(report["scale"].values()) <= {0.5}
    for rates in report["rates"].values():
        assert all(0.0 <= r <= 1.0 for r in rates.values())
    assert all(c in ([0.5, 0.1], [1.0, 0.1]) for c in chosen.values()) and "chosen" in out


def check_metaworld_speed(report: dict, out: str) -> None:
    rates = report["steps_per_s"]
    assert set(rates) == {"plain-random", "plain-expert", "mtopt-scripted"}
    assert all(r > 0 for r in rates.values()) and report["ratio_to_plain"]["plain-random"] == 1
    log = report["scripted_log"]  # the log's simulator steps: up to 500 per episode
    assert log["episodes"] == 2 and 2 <= log["env_steps"] <= 1000
    assert "x plain-random" in out


def check_pcgrad(report: dict, out: str) -> None:
    assert set(report["ms_per_step"]) == {"sum", "pcgrad"}
    assert all(positive(v) for v in report["ms_per_step"].values())
    assert positive(report["ratio"]) and "pcgrad / sum" in out


def check_video(report: dict, out: str) -> None:
    assert set(report["policies"]) == {"scripted", "q"} and report["sizes"] == [32]
    for row in report["policies"].values():
        assert positive(row["plain_s_per_attempt"]) and row["frames_per_attempt"] > 1
        case = row["video-32"]
        assert positive(case["s_per_attempt"]) and positive(case["ratio"])
        assert math.isclose(case["ratio"], case["s_per_attempt"] / row["plain_s_per_attempt"])
        assert len(case["ratios"]) == 1
    frame = report["per_frame_ms"][32]
    assert positive(frame["render"]) and positive(frame["annotate"])
    assert positive(frame["encode_video_start_finish"])
    assert "recorded / unrecorded (scripted, 32 px)" in out and "one 32 px frame" in out


def check_lerobot_export(report: dict, out: str) -> None:
    cases = report["cases"]
    assert set(cases) == {"state", "video"} and cases["video"]["images"] == "video"
    for case in cases.values():
        assert case["episodes"] >= 1 and case["frames"] > case["episodes"]
        assert positive(case["episodes_per_s"]) and positive(case["import_episodes_per_s"])
    assert "round trip checked" in out


CHECKS: dict[str, Callable[[dict, str], None]] = {
    "bench_workcell.py": check_workcell,
    "bench_fleet.py": check_fleet,
    "bench_episode_log.py": check_episode_log,
    "bench_q_network.py": check_q_network,
    "bench_pcgrad.py": check_pcgrad,
    "bench_lerobot_export.py": check_lerobot_export,
    "bench_video.py": check_video,
    "bench_ingestion.py": check_ingestion,
    "bench_run.py": check_run,
    "calibrate_scripted.py": check_calibrate,
    "bench_sd_labelling.py": check_sd_labelling,
    "bench_data_sharing_cost.py": check_data_sharing_cost,
    "bench_reliability.py": check_reliability,
    "learning.py": check_learning,
    "diagnose.py": check_diagnose,
    "calibrate_metaworld.py": check_calibrate_metaworld,
    "bench_metaworld.py": check_metaworld_speed,
}
NEEDS_METAWORLD = {"calibrate_metaworld.py", "bench_metaworld.py"}
"""Benchmarks of the optional Meta-World environments (skipped without ``metaworld``)."""
"""Every benchmark script and what its smoke report must satisfy."""
EXTRA_ARGS = {"bench_q_network.py": ["--threads", "1", "--architectures", "soft-modular", "care"]}
RAY = {"bench_ingestion.py", "bench_run.py"}
"""Benchmarks on Ray: they join one small Ray session shared by this module."""
SLOW = {"bench_fleet.py", "bench_reliability.py", "learning.py", "diagnose.py", *RAY}
"""Benchmarks that start processes (robot processes, Ray and its actors), each importing torch:
most of this file's time (``-m "not slow"`` leaves them out)."""


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    from mtopt.system.backends import init_ray
    from mtopt.system.run_config import RayConfig

    init_ray(RayConfig(num_cpus=2, object_store_mb=128))
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def load_benchmark(name: str):
    """Import benchmarks/NAME as a module (registered so dataclass annotations resolve)."""
    module_name = f"benchmark_{Path(name).stem}"
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_has_a_smoke_check():
    scripts = {p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh")}
    assert scripts == set(CHECKS), "add new benchmarks (with a --smoke mode) to CHECKS"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in sorted(CHECKS)]
)
def test_smoke(name, request, capsys):
    if name in NEEDS_METAWORLD and importlib.util.find_spec("metaworld") is None:
        pytest.skip("metaworld is not installed")
    if name == "bench_lerobot_export.py" and importlib.util.find_spec("av") is None:
        pytest.skip("PyAV (the lerobot extra) is not installed")
    if name in RAY:
        request.getfixturevalue("ray_session")
    report = load_benchmark(name).main(["--smoke", *EXTRA_ARGS.get(name, [])])
    CHECKS[name](report, capsys.readouterr().out)


def test_a_learning_variant_may_carry_its_own_proxy_steps():
    learning = load_benchmark("learning.py")
    assert learning.split_steps(["--batch-size", "512", "--steps", "1000"]) == (
        ["--batch-size", "512"],
        1000,
    )
    assert learning.split_steps(["--steps=250"]) == ([], 250)
    assert learning.split_steps(["--replay.n-step", "1"]) == (["--replay.n-step", "1"], None)
    with pytest.raises(SystemExit, match="positive integer, got 'x'"):
        learning.split_steps(["--steps", "x"])
    with pytest.raises(SystemExit, match="positive integer, got ''"):
        learning.split_steps(["--steps"])


def test_a_full_variant_may_reshape_the_loop_and_other_modes_refuse_it():
    learning = load_benchmark("learning.py")
    flags = ["--rounds", "8", "--round-episodes=2500", "--replay.n-step", "1"]
    flags += ["--robots", "16", "--robots-per-process", "8"]
    rest, loop = learning.pop_int_flags(flags, learning.LOOP_FLAGS)
    assert rest == ["--replay.n-step", "1"]
    assert loop == {"rounds": 8, "round_episodes": 2500, "robots": 16, "robots_per_process": 8}
    base = learning.load_config(learning.DemoConfig, "configs/demo/learning.yaml").train
    assert learning.learner_variant(base, flags).replay.n_step == 1
    with pytest.raises(SystemExit, match="--rounds must be a positive integer, got '0'"):
        learning.pop_int_flags(["--rounds", "0"], learning.LOOP_FLAGS)
    with pytest.raises(SystemExit, match=r"loop flags .* are for --mode full"):
        learning.main(["--mode", "proxy", "--variant", "r8=--rounds 8", "--out", "/nonexistent"])


def test_calibration_keeps_good_experts_and_picks_the_best_factor_otherwise():
    choose_scale = load_benchmark("calibrate_metaworld.py").choose_scale
    assert choose_scale({1.0: 0.9, 0.5: 1.0}) == 1.0  # at least 0.8 at factor 1: kept
    assert choose_scale({1.0: 0.1, 0.5: 0.9, 0.3: 0.9}) == 0.5  # a tie: the larger factor
    assert choose_scale({1.0: 0.0, 0.5: 0.6, 0.3: 0.8}) == 0.3
    assert choose_scale({1.0: 0.5, 0.5: 0.2}) == 1.0  # no factor does better
