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
   with identical seeds, and the table is printed.

The same loop at a larger scale (``configs/demo/learning.yaml``) is the learning benchmark of
docs/RESULTS.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtopt.data.stats import dataset_stats, format_stats_table, write_stats_json
from mtopt.envs import make_spec
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.evaluation.evaluate import scripted_policy_for
from mtopt.evaluation.protocol import ProtocolConfig, evaluate, format_eval_table, plot_success
from mtopt.jsonio import write_json
from mtopt.policies import (
    Exploration,
    PolicyWeights,
    StuckEscape,
    check_exploration,
    check_policy_weights,
    check_stuck_exploration,
)
from mtopt.policies.cem import CEMConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.sd_commands import simulated_camera_projections
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, train_success_detector
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import TrainConfig, state_learner_config, train
from mtopt.tasks import default_task_set

logger = logging.getLogger(__name__)


def _demo_train_config() -> TrainConfig:
    return state_learner_config()


def _demo_sd_config() -> SDTrainConfig:
    return SDTrainConfig(
        budget=2000, steps=1500, batch_size=128, network=SDNetworkConfig(kind="state")
    )


@dataclass(frozen=True)
class DemoConfig:
    """Run MT-Opt end to end on the simulated workcell: collect, train, collect, fine-tune, eval."""

    out: str = "runs/demo"
    """Run directory: OUT/log (episode log), OUT/round-K (training runs), OUT/eval.json."""
    seed: int = 0
    """Seed of the whole demo (collection, training and evaluation streams derive from it)."""
    robots: int = 2
    """Robots in the simulated fleet (one process each)."""
    bootstrap_episodes: int = 6000
    """Episodes collected by the scripted policies."""
    bootstrap_steps: int = 3000
    """Trainer steps of the first, offline training run."""
    rounds: int = 2
    """Rounds of ε-greedy collection with the newest policy followed by fine-tuning."""
    round_episodes: int = 1500
    """Episodes collected per round."""
    round_steps: int = 1500
    """Fine-tuning trainer steps per round."""
    round_task_weights: tuple[float, ...] = ()
    """Relative collection weight of every task in the rounds, in the task set's order
    (``mtopt.tasks.default_task_set().names``); empty means uniform. The paper's fleet spent
    most of its learned-policy episodes on lift-anything and place-anywhere (App. 9.1). The
    scripted bootstrap is always uniform."""
    epsilon: float = 0.2
    """ε of the collection policy (paper: 0.2)."""
    exploration: Exploration = "motion"
    """What an ε step of the collection policy randomises: ``all`` dims or only the
    ``motion`` dims (see ``mtopt.policies.q_policy``)."""
    stuck_epsilon: float = 0.0
    """ε right after a blocked descent, when larger than ``epsilon`` (0: off, the paper; see
    ``mtopt.policies.q_policy``)."""
    stuck_escape: StuckEscape = "random"
    """What that exploring step does (:data:`mtopt.policies.StuckEscape`)."""
    policy_weights: PolicyWeights = "online"
    """Which of a checkpoint's networks the learned policy acts with, in the collection rounds
    and in the evaluation: ``online`` (the latest SGD iterate) or ``polyak`` (target network 1,
    the Polyak average of the online weights over about ``1 / (1 - train.trainer.polyak)``
    steps; :data:`mtopt.policies.PolicyWeights`)."""
    policy_cem: CEMConfig = field(default_factory=CEMConfig)
    """The learned policy's action search when it acts: in the collection rounds and in the
    evaluation (the trainer's targets use ``train.cem``). QT-Opt's 2 x 64 / 6 by default."""
    eval_episodes_per_task: int = 30
    """Evaluation attempts per task (paper: 100; fewer keeps the demo short)."""
    train: TrainConfig = field(default_factory=_demo_train_config)
    """Training settings (data, out, steps, seed and init are set by the demo)."""
    success_detector: SDTrainConfig = field(default_factory=_demo_sd_config)
    """Success detector trained on the bootstrap log under ``train.rewards: success_detector``
    when ``train.success_detector`` is not given (log, out, seed are set by the demo)."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The simulated workcell of the fleet and of the evaluation (e.g. its contact settings,
    ``--workcell.impratio``)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        for name in ("robots", "bootstrap_episodes", "bootstrap_steps", "eval_episodes_per_task"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_exploration(self.exploration)
        check_stuck_exploration(self.stuck_epsilon, self.stuck_escape)
        check_policy_weights(self.policy_weights)
        if not isinstance(self.rounds, int) or self.rounds < 0:
            raise ValueError(f"rounds must be a non-negative integer, got {self.rounds!r}")
        if self.round_task_weights:
            names = default_task_set().names
            w = self.round_task_weights
            if len(w) != len(names) or min(w) < 0 or sum(w) <= 0:
                raise ValueError(
                    f"round_task_weights must give one non-negative weight per task of "
                    f"{list(names)} with a positive sum, got {list(w)}"
                )


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the demo; returns the results, with ``report`` (statistics and tables) as text."""
    out = Path(config.out)
    log_dir = out / "log"
    timings: dict[str, float] = {}
    t_start = time.time()

    def fleet(episodes: int, seed: int, policy: str | None) -> None:
        t = time.time()
        cfg = FleetConfig(
            task_weights=config.round_task_weights if policy is not None else (),
            out=str(log_dir),
            robots=config.robots,
            episodes=episodes,
            seed=seed,
            policy=policy,
            epsilon=config.epsilon,
            exploration=config.exploration,
            stuck_epsilon=config.stuck_epsilon,
            stuck_escape=config.stuck_escape,
            policy_weights=config.policy_weights,
            cem=config.policy_cem,
            workcell=config.workcell,
            progress=config.progress,
        )
        s = collect(cfg)
        key = "collect-scripted" if policy is None else f"collect-round-{seed - config.seed}"
        timings[key] = time.time() - t
        logger.info("%s: %d episodes at %.1f episodes/s", key, s["episodes"], s["episodes_per_s"])

    def fit(round_index: int, steps: int, init: str | None) -> str:
        t = time.time()
        cfg = replace(
            config.train,
            data=str(log_dir),
            out=str(out / f"round-{round_index}"),
            steps=steps,
            seed=config.seed + round_index,
            init=init,
            resume=False,
            progress=config.progress,
        )
        res = train(cfg)
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
        spec = make_spec("workcell")
        sd_report = train_success_detector(sd_cfg, spec, simulated_camera_projections(spec))
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

    stats = dataset_stats(log_dir)
    write_stats_json(stats, out / "stats.json")
    counts = {t: v["episodes"] for t, v in stats["tasks"].items()}
    protocol = ProtocolConfig(
        episodes_per_task=config.eval_episodes_per_task,
        seed=10_000 + config.seed,
        progress=config.progress,
        workcell=config.workcell,
    )
    t = time.time()
    policy = load_q_policy(
        checkpoint,
        cem=config.policy_cem,
        max_translation=config.workcell.max_translation,
        weights=config.policy_weights,
    )
    results = {
        "mt-opt": evaluate(lambda task: policy, protocol, counts),
        "scripted": evaluate(scripted_policy_for, protocol, counts),
    }
    timings["eval"] = time.time() - t
    timings["total"] = time.time() - t_start
    report = "\n".join(
        [
            format_stats_table(stats),
            f"\nMT-Opt policy ({checkpoint}):\n{format_eval_table(results['mt-opt'])}",
            f"\nscripted policies (same scenes):\n{format_eval_table(results['scripted'])}",
            f"\nrewards: {config.train.rewards}"
            + (f" (success detector {config.train.success_detector})" if sd_report else ""),
            f"\ndemo wall time: {timings['total']:.0f} s",
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
    }
    write_json(summary, out / "eval.json")
    plot_success(results, str(out / "eval.png"), title="MT-Opt demo vs scripted policies")
    return summary
