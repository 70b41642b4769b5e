"""``mtopt demo``: the main job on the embedded default (local runtime, simulated workcell).

The demo runs MT-Opt's continuous loop in miniature (paper Sec. 4, App. 9.1):

1. a fleet of scripted robots collects a bootstrap dataset into the episode log;
   with ``train.rewards: success_detector`` (the default) a state success detector is then
   trained on bootstrap episodes labelled within a per-task labelling budget, and it labels
   every episode for the learner from then on (ground truth only makes those labels and scores
   the evaluation);
2. a 12-task state-based MT-Opt policy (f_skill impersonation, re-balanced sampling) is trained
   offline on it;
3. ``rounds`` times: the fleet collects with the newest policy at ε = 0.2 into the same log, and
   the policy is fine-tuned on the grown log;
4. the final policy and the scripted policies are evaluated on the standard evaluation scene
   with identical seeds, and the table is printed;
5. one attempt of the final policy at the first task is recorded as a video (``OUT/video/``;
   environments with a camera, i.e. the workcell);
6. the results page ``OUT/report.html`` (:mod:`mtopt.evaluation.report`) is written and its
   path printed last.

The same loop at a larger scale (``configs/demo/learning.yaml``) is the learning benchmark.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtopt.config import refuse_set_fields
from mtopt.data.stats import dataset_stats, format_stats_table, write_stats_json
from mtopt.envs import EnvConfig
from mtopt.evaluation.evaluate import scripted_policy_for
from mtopt.evaluation.protocol import ProtocolConfig, evaluate, format_eval_table, plot_success
from mtopt.evaluation.report import write_report
from mtopt.evaluation.summary import compare_policies
from mtopt.evaluation.video import check_recording, record_attempts
from mtopt.jsonio import write_json
from mtopt.learning.cem import CEMConfig
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.policies.q_policy import load_q_policy
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, train_success_detector
from mtopt.system.builder import PipelineBuilder
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import train
from mtopt.system.training_config import LearnerConfig, TrainConfig, state_learner_config

logger = logging.getLogger(__name__)

DEMO_VIDEO_SIZE = 256
"""Height and width in pixels of the demo's video."""


def demo_learner() -> LearnerConfig:
    """The learning benchmark's learner (``configs/demo/learning.yaml``): the object-centric
    encoder that also embeds the action per object, and the gripper's achieved motion."""
    base = state_learner_config()
    net = replace(
        base.trainer.network, state_encoder="objects-action", extra_inputs=("gripper_motion",)
    )
    return replace(base, trainer=replace(base.trainer, network=net))


def demo_policy() -> PolicyConfig:
    """ε-greedy collection (ε = 0.2) with the learning benchmark's finer action search."""
    return replace(collection_policy(), cem=CEMConfig(iterations=3, num_samples=128, num_elites=12))


def _demo_sd_config() -> SDTrainConfig:
    return SDTrainConfig(
        budget=2000, steps=1500, batch_size=128, network=SDNetworkConfig(kind="state")
    )


@dataclass(frozen=True)
class DemoConfig:
    """Run MT-Opt end to end (the simulated workcell by default): collect, train, collect,
    fine-tune, evaluate."""

    out: str = "runs/demo"
    """Run directory: OUT/log (episode log), OUT/round-K (training runs), OUT/eval.json."""
    seed: int = 0
    """Seed of the whole demo (collection, training and evaluation streams derive from it)."""
    robots: int = 16
    """Robots in the simulated fleet."""
    robots_per_process: int = 8
    """Robots simulated side by side in each fleet process, with one batched action search per
    step in the collection rounds (``FleetConfig.robots_per_process``)."""
    bootstrap_episodes: int = 10000
    """Episodes collected by the scripted policies."""
    bootstrap_steps: int = 3000
    """Trainer steps of the first, offline training run."""
    rounds: int = 2
    """Rounds of ε-greedy collection with the newest policy followed by fine-tuning."""
    round_episodes: int = 1500
    """Episodes collected per round."""
    round_steps: int = 1500
    """Fine-tuning trainer steps per round."""
    policy: PolicyConfig = field(default_factory=demo_policy)
    """How the learned policy acts in the collection rounds (ε-greedy, ε = 0.2); the evaluation
    runs it greedily (ε = 0) with the same action search."""
    eval_episodes_per_task: int = 30
    """Evaluation attempts per task (paper: 100; fewer keeps the demo short)."""
    train: LearnerConfig = field(default_factory=demo_learner)
    """The learner (each round's data, out, steps, seed and init come from the demo)."""
    success_detector: SDTrainConfig = field(default_factory=_demo_sd_config)
    """Success detector trained on the bootstrap log under ``train.rewards: success_detector``
    when ``train.success_detector`` is not given (its log, out, seed and progress are the
    demo's own; setting them is refused)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment of the fleet and of the evaluation (``--env NAME``; its settings, e.g.
    ``--env.workcell.impratio``)."""
    progress: bool = True
    """Show progress bars."""
    video: bool = True
    """Record one attempt of the final policy at the first task (the evaluation's attempt-0
    scene) as OUT/video/TASK-attempt0-OUTCOME.mp4 with OUT/video/index.json (the workcell's
    camera; environments without one, such as pointmass and Meta-World, record none). Needs
    an OpenGL backend (``MUJOCO_GL=osmesa`` on CPU), checked before the demo starts."""

    def __post_init__(self) -> None:
        for name in (
            "robots",
            "robots_per_process",
            "bootstrap_episodes",
            "bootstrap_steps",
            "eval_episodes_per_task",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.rounds, int) or self.rounds < 0:
            raise ValueError(f"rounds must be a non-negative integer, got {self.rounds!r}")
        sd_fields = ("log", "out", "seed", "progress")
        refuse_set_fields(self.success_detector, sd_fields, "success_detector", "the demo")


def metaworld_demo_config(env: str) -> DemoConfig:
    """The demo's defaults on a Meta-World benchmark (``mtopt demo --env metaworld-mt10``;
    ``configs/demo/metaworld-mt10.yaml``). A Meta-World episode is up to 500 simulator steps,
    so the loop is smaller than the workcell's to fit 15 minutes on 2 cores, and the learner
    reads the flat 39-d state (the object encoders need the workcell's state structure, and
    Meta-World records no ``gripper_motion``) and backs up one step at a time: on MT10's
    noisy-expert data the one-step backup beat 5-step returns beyond the seeds' spread (0.353
    against 0.215 on the offline proxy, 3 seeds, session 25; docs/metaworld.md)."""
    base = DemoConfig()
    net = replace(base.train.trainer.network, state_encoder="flat", extra_inputs=())
    train = replace(
        base.train,
        trainer=replace(base.train.trainer, network=net),
        replay=replace(base.train.replay, n_step=1),
    )
    # every robot keeps one Meta-World environment per task it ran (about 26 MB each): MT50's
    # 50 per robot allow 2 robots per process in the memory MT10's 8 take (docs/metaworld.md)
    robots, per_process = (
        (4, 2) if env == "metaworld-mt50" else (base.robots, base.robots_per_process)
    )
    return replace(
        base,
        out=f"runs/demo-{env.removeprefix('metaworld-')}",
        robots=robots,
        robots_per_process=per_process,
        bootstrap_episodes=2000,
        bootstrap_steps=2000,
        rounds=1,
        round_episodes=500,
        round_steps=1000,
        eval_episodes_per_task=50,
        train=train,
        env=EnvConfig(name=env),
    )


def demo_defaults(env: str) -> DemoConfig:
    """The demo's defaults for environment ``env`` (an ``--env`` name): Meta-World's own
    (:func:`metaworld_demo_config`), else :class:`DemoConfig`'s with that environment."""
    if env.startswith("metaworld-"):
        return metaworld_demo_config(env)
    return replace(DemoConfig(), env=EnvConfig(name=env))


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the demo; returns the results, with ``report`` (statistics and tables) as text."""
    out = Path(config.out)
    log_dir = out / "log"
    spec = config.env.spec()
    # a learner this environment cannot feed fails here, before any collection
    PipelineBuilder(config.train, spec).network_shape()
    video = config.video and spec.observation.image_size is not None
    if video:  # no GL backend: say so now, not after the demo's run
        check_recording(spec, DEMO_VIDEO_SIZE)
    elif config.video:
        logger.info("environment %r has no camera: the demo records no video", spec.name)
    timings: dict[str, float] = {}
    t_start = time.time()

    def fleet(episodes: int, seed: int, policy: str | None) -> None:
        t = time.time()
        cfg = FleetConfig(
            out=str(log_dir),
            robots=config.robots,
            robots_per_process=config.robots_per_process,
            episodes=episodes,
            seed=seed,
            checkpoint=policy,
            policy=config.policy,
            progress=config.progress,
        )
        s = collect(cfg, spec)
        key = "collect-scripted" if policy is None else f"collect-round-{seed - config.seed}"
        timings[key] = time.time() - t
        logger.info(
            "%s: %d episodes at %.1f episodes/s, %d discarded for unstable physics",
            key,
            s["episodes"],
            s["episodes_per_s"],
            s.get("discarded", 0),
        )

    def fit(round_index: int, steps: int, init: str | None) -> str:
        t = time.time()
        cfg = TrainConfig.from_learner(
            config.train,
            data=str(log_dir),
            out=str(out / f"round-{round_index}"),
            steps=steps,
            seed=config.seed + round_index,
            init=init,
            resume=False,
            progress=config.progress,
        )
        res = train(cfg, spec)
        timings[f"train-round-{round_index}"] = time.time() - t
        logger.info(
            "round %d: %d steps, %.0f samples/s, loss %.4f",
            round_index,
            res["step"],
            res["samples_per_s"],
            res["loss"],
        )
        return res["checkpoint"]

    fleet(config.bootstrap_episodes, config.seed, None)
    sd_report = None
    if config.train.rewards == "success_detector" and not config.train.success_detector:
        t = time.time()
        sd_cfg = replace(
            config.success_detector,
            log=str(log_dir),
            out=str(out / "sd"),
            seed=config.seed,
            progress=config.progress,
        )
        sd_report = train_success_detector(sd_cfg, spec, spec.camera_projections())
        timings["train-success-detector"] = time.time() - t
        config = replace(
            config, train=replace(config.train, success_detector=sd_report["checkpoint"])
        )
        logger.info(
            "success detector: %s (%.0f s)",
            sd_report["checkpoint"],
            timings["train-success-detector"],
        )
    checkpoint = fit(0, config.bootstrap_steps, None)
    for r in range(1, config.rounds + 1):
        fleet(config.round_episodes, config.seed + r, checkpoint)
        checkpoint = fit(r, config.round_steps, checkpoint)

    stats = dataset_stats(log_dir, spec.task_set.names)
    write_stats_json(stats, out / "stats.json")
    counts = {t: v["episodes"] for t, v in stats["tasks"].items()}
    protocol = ProtocolConfig(
        episodes_per_task=config.eval_episodes_per_task,
        seed=10_000 + config.seed,
        progress=config.progress,
    )
    t = time.time()
    policy = load_q_policy(checkpoint, spec, replace(config.policy, epsilon=0.0))
    results = {
        "mt-opt": evaluate(lambda task: policy, protocol, spec, counts),
        "scripted": evaluate(scripted_policy_for(spec), protocol, spec, counts),
    }
    timings["eval"] = time.time() - t
    video_path = None
    if video:
        t = time.time()
        index = record_attempts(
            lambda task: policy,
            spec,
            out / "video",
            list(results["mt-opt"]["tasks"])[:1],
            attempts=1,
            seed=protocol.seed,
            size=DEMO_VIDEO_SIZE,
            policy_name="mt-opt",
            progress=False,
        )
        video_path = str(out / "video" / index["videos"][0]["file"])
        timings["video"] = time.time() - t
        logger.info("video of the final policy: %s", video_path)
    timings["total"] = time.time() - t_start
    page = out / "report.html"
    report = "\n".join(
        [
            format_stats_table(stats),
            f"\nMT-Opt policy ({checkpoint}):\n{format_eval_table(results['mt-opt'])}",
            f"\nscripted policies (same scenes):\n{format_eval_table(results['scripted'])}",
            "\nwhat it learned: "
            + compare_policies(results["mt-opt"], results["scripted"], ("MT-Opt", "scripted")),
            f"\nrewards: {config.train.rewards}"
            + (f" (success detector {config.train.success_detector})" if sd_report else ""),
            *([f"\nvideo of the final policy: {video_path}"] if video_path else []),
            f"\ndemo wall time: {timings['total']:.0f} s",
            f"results page (success, data, learning curves, video): {page}",
        ]
    )
    summary = {
        "report": report,
        "checkpoint": checkpoint,
        "results": results,
        "timings_s": timings,
        "episodes": stats["episodes"],
        "rewards": config.train.rewards,
        "success_detector": sd_report,
        "video": video_path,
        "html_report": str(page),
    }
    write_json(summary, out / "eval.json")
    plot_success(results, str(out / "eval.png"), title="MT-Opt demo vs scripted policies")
    write_report(out, page, spec.task_set)
    return summary
