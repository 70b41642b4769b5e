"""Cost of recording evaluation videos (``mtopt eval --video``, ``mtopt demo``'s video).

Two policies on the workcell, one attempt at a time: ``scripted`` (the scripted picker and
placer) and ``q`` (the demo learner's Q-network acting greedily with the demo's CEM, 3 x 128 /
12, on the CPU; untrained unless ``--checkpoint``: its cost per step is a trained one's, and
its terminate choice is masked so that every attempt runs the full horizon). For
each, windows of ``--attempts`` attempts of lift-any and of place-any alternate between the
attempts unrecorded (``run_task_attempt``, as the evaluation runs them) and the same attempts
(the same seeds, so the same scenes and steps) recorded by
:func:`mtopt.evaluation.video.record_attempts` at every size of ``--sizes`` (render, annotate,
encode, index), in swapped order every repetition. The report gives seconds per attempt (the
median over ``--repeats`` windows), the ratio recorded / unrecorded (ratio of the medians and
the median of the per-repetition ratios) and the extra seconds per attempt and per frame; then
what one frame costs: rendering, annotating, encoding (and ffmpeg's start and finish per video).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_video.py --threads 1 --attempts 3 --repeats 5
    python benchmarks/bench_video.py --smoke    # tiny sizes: checks the code path
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import torch

from mtopt.envs import EnvConfig
from mtopt.evaluation import video
from mtopt.evaluation.evaluate import scripted_policy_for
from mtopt.evaluation.protocol import episode_seed, run_task_attempt
from mtopt.experiments.demo import DemoConfig
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy, q_policy_from
from mtopt.system.builder import PipelineBuilder

TASKS = ("lift-any", "place-any")
SMOKE = {"attempts": 1, "repeats": 1, "sizes": [32], "frames": 4}
"""``--smoke``: one window per case of one attempt per task, 32-pixel videos."""
SMOKE_CEM = CEMConfig(iterations=1, num_samples=8, num_elites=2)


class FullHorizon:
    """A policy whose terminate choice is masked: every attempt runs to the horizon (an
    untrained network terminates at random, after a few steps; a trained one's attempts are
    long)."""

    def __init__(self, policy, terminate_dim: int) -> None:
        self.policy, self.dim, self.name = policy, terminate_dim, f"{policy.name} (no terminate)"

    def reset(self, rng, task=None) -> None:
        self.policy.reset(rng, task=task)

    def act(self, obs):
        action = self.policy.act(obs)
        action[self.dim] = 0.0
        return action


def q_policy(spec, checkpoint: str | None, cem: CEMConfig):
    """The demo learner's greedy CEM policy on the CPU: ``checkpoint``'s, else untrained and
    run to the horizon (:class:`FullHorizon`)."""
    policy = PolicyConfig(epsilon=0.0, cem=cem, device="cpu")
    if checkpoint:
        return load_q_policy(checkpoint, spec, policy)
    builder = PipelineBuilder(DemoConfig().train, spec)
    torch.manual_seed(0)
    net = build_q_network(builder.network_config(), builder.network_shape())
    untrained = q_policy_from(net, spec, policy, builder.obs_keys(), "untrained-demo-learner")
    return FullHorizon(untrained, spec.action.terminate_dim)


def frame_costs(spec, size: int, frames: int) -> dict[str, float]:
    """Milliseconds per frame of rendering, annotating and encoding ``frames`` frames."""
    env = spec.make_env()
    try:
        env.reset(seed=0, options=spec.reset_options("lift-any", "evaluate", 0))
        env.render_camera(video.CAMERA, size)  # the renderer's first use makes its context
        t = time.perf_counter()
        shots = [env.render_camera(video.CAMERA, size) for _ in range(frames)]
        render = time.perf_counter() - t
    finally:
        env.close()
    t = time.perf_counter()
    marked = [
        video.annotate(f, ["lift-any", f"attempt 0  step {i}/20"]) for i, f in enumerate(shots)
    ]
    annotate = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        video.write_mp4(os.path.join(tmp, "one.mp4"), marked[:1])
        one = time.perf_counter() - t
        t = time.perf_counter()
        video.write_mp4(os.path.join(tmp, "all.mp4"), marked)
        encode = time.perf_counter() - t
    return {
        "render": render / frames * 1e3,
        "annotate": annotate / frames * 1e3,
        "encode": (encode - one) / (frames - 1) * 1e3,
        "encode_video_start_finish": one * 1e3,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (per policy: seconds per attempt)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=10_000, help="base seed of the evaluation scenes")
    p.add_argument("--attempts", type=int, default=3, help="attempts per task in every window")
    p.add_argument("--repeats", type=int, default=5, help="windows per case")
    p.add_argument("--sizes", type=int, nargs="+", default=[256], help="video sizes (pixels)")
    p.add_argument("--frames", type=int, default=40, help="frames of the per-frame breakdown")
    p.add_argument("--checkpoint", default=None, help="a trained checkpoint for the q policy")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code path")
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    for size in args.sizes:
        video.check_video_size(size)
    torch.set_num_threads(args.threads)
    spec = EnvConfig().spec()
    cem = SMOKE_CEM if args.smoke else DemoConfig().policy.cem
    scripted = scripted_policy_for(spec)
    learned = q_policy(spec, args.checkpoint, cem)
    policies = {"scripted": scripted, "q": lambda task: learned}
    seeds = {
        t: [episode_seed(args.seed, spec.task_set.slot(t), k) for k in range(args.attempts)]
        for t in TASKS
    }
    n = len(TASKS) * args.attempts

    def plain(policy_for) -> float:
        """Seconds per attempt, unrecorded."""
        env = spec.make_env()
        start = time.perf_counter()
        try:
            for task in TASKS:
                for k, s in enumerate(seeds[task]):
                    run_task_attempt(env, policy_for(task), task, s, spec, k)
        finally:
            env.close()
        return (time.perf_counter() - start) / n

    def recorded(policy_for, size: int, tmp: str) -> tuple[float, int]:
        """Seconds per attempt recorded at ``size``, and the frames written."""
        start = time.perf_counter()
        index = video.record_attempts(
            policy_for, spec, tmp, TASKS, args.attempts, args.seed, size, progress=False
        )
        return (time.perf_counter() - start) / n, sum(v["frames"] for v in index["videos"])

    print(
        "command:", " ".join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    )
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, MUJOCO_GL "
        f"{os.environ.get('MUJOCO_GL')}, seed {args.seed}" + (" (smoke)" if args.smoke else "")
    )
    print(
        f"{args.attempts} attempt(s) of each of {', '.join(TASKS)} per window, {args.repeats} "
        f"window(s) per case; q: {learned.name}, CEM {cem.iterations} x {cem.num_samples} / "
        f"{cem.num_elites}; videos at {video.FPS} fps, final frame held {video.HOLD_S} s"
    )
    print(f"load average (1 min) before the run: {os.getloadavg()[0]:.2f}")
    cases = ["plain", *(f"video-{s}" for s in args.sizes)]
    report: dict = {"attempts_per_window": n, "sizes": list(args.sizes), "policies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, policy_for in policies.items():
            plain(policy_for)  # warm-up: first-use costs (GL context, torch) out of the windows
            recorded(policy_for, args.sizes[0], tmp)
            times: dict[str, list[float]] = {c: [] for c in cases}
            frames = 0
            for rep in range(args.repeats):
                for case in cases if rep % 2 == 0 else cases[::-1]:
                    if case == "plain":
                        times[case].append(plain(policy_for))
                    else:
                        s, frames = recorded(policy_for, int(case.removeprefix("video-")), tmp)
                        times[case].append(s)
            median = {c: statistics.median(v) for c, v in times.items()}
            row: dict = {"plain_s_per_attempt": median["plain"], "frames_per_attempt": frames / n}
            for size in args.sizes:
                case = f"video-{size}"
                ratios = [r / q for q, r in zip(times["plain"], times[case], strict=True)]
                extra = median[case] - median["plain"]
                row[case] = {
                    "s_per_attempt": median[case],
                    "ratio": median[case] / median["plain"],
                    "ratios": ratios,
                    "median_ratio": statistics.median(ratios),
                    "extra_s_per_attempt": extra,
                    "extra_ms_per_frame": extra / (frames / n) * 1e3,
                }
            report["policies"][name] = row
    print(
        f"\n{'policy':9} {'case':11} {'s/attempt':>10} {'x plain':>8} {'extra s/attempt':>16} "
        f"{'extra ms/frame':>15}"
    )
    for name, row in report["policies"].items():
        print(f"{name:9} {'plain':11} {row['plain_s_per_attempt']:10.3f}")
        for size in args.sizes:
            r = row[f"video-{size}"]
            print(
                f"{name:9} {f'video-{size}':11} {r['s_per_attempt']:10.3f} {r['ratio']:8.2f} "
                f"{r['extra_s_per_attempt']:16.3f} {r['extra_ms_per_frame']:15.1f}"
            )
            print(
                f"  recorded / unrecorded ({name}, {size} px): {r['ratio']:.2f}x (ratio of "
                f"medians), "
                f"{r['median_ratio']:.2f}x (median of {args.repeats}; per repetition: "
                f"{', '.join(f'{x:.2f}' for x in r['ratios'])}); "
                f"{row['frames_per_attempt']:.1f} frames per attempt"
            )
    report["per_frame_ms"] = {s: frame_costs(spec, s, args.frames) for s in args.sizes}
    for size, ms in report["per_frame_ms"].items():
        print(
            f"one {size} px frame: render {ms['render']:.2f} ms, annotate {ms['annotate']:.2f} "
            f"ms, encode {ms['encode']:.2f} ms; ffmpeg's start and finish per video "
            f"{ms['encode_video_start_finish']:.0f} ms"
        )
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    return report


if __name__ == "__main__":
    main()
