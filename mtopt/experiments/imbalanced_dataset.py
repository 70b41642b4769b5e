"""``mtopt data imbalanced``: an imbalanced offline dataset in the spirit of paper Fig. 4.

The paper's offline dataset is dominated by the broad tasks (lift-any: 635K episodes,
place-any: 30K) with a few thousand episodes for each specific lift and place, and mixes
scripted, ε-greedy and on-policy data (App. 9.1). This builder reproduces that shape in three
phases, each written to ``OUT``:

1. ``scripted``: the scripted fleet collects ``scripted_episodes`` (per task, times ``scale``)
   into ``OUT/log``, tasks drawn with those counts as weights;
2. ``policy``: a multi-task Q-function is trained on that log (``policy_train``) into
   ``OUT/policy``;
3. ``eps-greedy``: the fleet collects ``policy_episodes`` (per task, times ``scale``) with
   that policy at ε = ``epsilon`` into the same log.

Then the dataset statistics (``OUT/stats.json``), its impersonation composition
(``OUT/composition.json``) and the Fig. 4 / Fig. 12 style plot (``OUT/composition.png``) are
written. Finished phases are recorded in ``OUT/phases.json`` and skipped when the command is
run again, so an interrupted build resumes at the phase it was in (a phase interrupted while
collecting is refused: its partial episodes would distort the composition).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtopt.config import refuse_set_fields, save_config
from mtopt.data.composition import dataset_composition, plot_composition
from mtopt.data.stats import dataset_stats, write_stats_json
from mtopt.envs import EnvConfig
from mtopt.experiments.runtime import set_torch_threads
from mtopt.jsonio import write_json
from mtopt.policies import PolicyConfig, collection_policy
from mtopt.spec import EnvSpec
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.training import train
from mtopt.system.training_config import TrainConfig, state_learner_config

logger = logging.getLogger(__name__)

PHASES = ("scripted", "policy", "eps-greedy")
"""The build phases, in order."""


# Episodes per task (before ``scale``), shaped after the "#Eps." column of paper Table 4:
# lift-any dominates, lift-carrot and place-any have a few thousand, the other specific lifts
# and the specific places a few hundred. Roughly 3/4 scripted, 1/4 ε-greedy.
SCRIPTED_EPISODES = {
    "lift-any": 12_000,
    "lift-banana": 220,
    "lift-bottle": 280,
    "lift-sausage": 130,
    "lift-milk": 160,
    "lift-box": 160,
    "lift-can": 160,
    "lift-carrot": 1_500,
    "place-any": 2_500,
    "place-bottom": 130,
    "place-top-left": 110,
    "place-top-right": 110,
}
POLICY_EPISODES = {
    "lift-any": 4_000,
    "lift-banana": 80,
    "lift-bottle": 100,
    "lift-sausage": 50,
    "lift-milk": 60,
    "lift-box": 60,
    "lift-can": 60,
    "lift-carrot": 500,
    "place-any": 800,
    "place-bottom": 50,
    "place-top-left": 40,
    "place-top-right": 40,
}


def _policy_train_config() -> TrainConfig:
    # ground-truth labels: the dataset is for comparing data sharing, not reward sources
    return TrainConfig.from_learner(state_learner_config(rewards="oracle"), steps=4000)


@dataclass(frozen=True)
class ImbalancedDatasetConfig:
    """Build an imbalanced multi-task offline dataset (scripted + ε-greedy data, paper Fig. 4)."""

    out: str = "runs/imbalanced"
    """Dataset directory: the episode log is OUT/log; OUT/stats.json, OUT/composition.png."""
    scale: float = 1.0
    """Multiplies every per-task episode count (rounded, at least 1 episode per listed task)."""
    seed: int = 0
    """Seed of the whole build (collection and training streams derive from it)."""
    robots: int = 2
    """Robots in the simulated fleet."""
    robots_per_process: int = 1
    """Robots simulated side by side in each fleet process, with one batched action search per
    step in the ε-greedy phase (``FleetConfig.robots_per_process``)."""
    scripted_episodes: dict[str, int] = field(default_factory=lambda: dict(SCRIPTED_EPISODES))
    """Episodes collected by the scripted policies, per task (before ``scale``)."""
    policy_episodes: dict[str, int] = field(default_factory=lambda: dict(POLICY_EPISODES))
    """Episodes collected by the ε-greedy learned policy, per task (before ``scale``); empty
    skips the policy phases."""
    policy: PolicyConfig = field(default_factory=collection_policy)
    """How the learned collection policy acts (ε-greedy, ε = 0.2)."""
    chain_place: bool = False
    """Chain a place episode after every lift episode. Off by default: chaining would give the
    place tasks as many episodes as all lifts together, not the paper's imbalance."""
    policy_train: TrainConfig = field(default_factory=_policy_train_config)
    """Training of the collection policy on the scripted data (its data, out, seed, tasks,
    resume, init and progress are the build's own; setting them is refused)."""
    torch_threads: int = 1
    """Torch intra-op threads for training and evaluation in this process; 0 keeps torch's
    default. 1 is much faster on a shared 2-core machine, where more threads oversubscribe."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment (the workcell: the per-task counts name its tasks)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale!r}")
        if not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0, got {self.torch_threads!r}")
        for name in ("robots", "robots_per_process"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        own = ("data", "out", "seed", "tasks", "resume", "init", "progress")
        refuse_set_fields(self.policy_train, own, "policy_train", "the dataset build")
        if not self.scripted_episodes:
            raise ValueError("scripted_episodes must name at least one task")
        task_set = self.env.spec().task_set
        for name in ("scripted_episodes", "policy_episodes"):
            counts = getattr(self, name)
            task_set.validate(list(counts))
            bad = {t: n for t, n in counts.items() if not isinstance(n, int) or n < 0}
            if bad:
                raise ValueError(f"{name} must be non-negative integers, got {bad}")

    def scaled(self, counts: dict[str, int]) -> dict[str, int]:
        """``counts`` times ``scale``, rounded, at least 1 for every task listed with n > 0."""
        return {t: max(1, round(n * self.scale)) for t, n in counts.items() if n > 0}


def _fleet(config: ImbalancedDatasetConfig, counts: dict[str, int], seed: int, policy=None):
    return FleetConfig(
        out=str(Path(config.out) / "log"),
        robots=config.robots,
        robots_per_process=config.robots_per_process,
        episodes=sum(counts.values()),
        seed=seed,
        tasks=tuple(counts),
        task_weights=tuple(float(n) for n in counts.values()),
        checkpoint=policy,
        policy=config.policy,
        chain_place=config.chain_place,
        progress=config.progress,
    )


def build_imbalanced_dataset(config: ImbalancedDatasetConfig) -> dict[str, Any]:
    """Run the build phases that are not done yet; returns statistics and timings."""
    set_torch_threads(config.torch_threads)
    spec: EnvSpec = config.env.spec()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    phases_path = out / "phases.json"
    done: dict[str, Any] = json.loads(phases_path.read_text()) if phases_path.exists() else {}
    ours = {"scripted", "scripted-started"} & done.keys()
    if not ours and (out / "log").exists() and any((out / "log").iterdir()):
        raise ValueError(
            f"{str(out / 'log')!r} already holds episodes that this build did not write; "
            "delete it or choose another --out"
        )
    if done.get("config") not in (None, _fingerprint(config)):
        raise ValueError(
            f"{str(out)!r} was built with a different config; choose another --out to rebuild"
        )
    save_config(config, out / "config.yaml")
    done["config"] = _fingerprint(config)
    scripted = config.scaled(config.scripted_episodes)
    on_policy = config.scaled(config.policy_episodes)
    phases = PHASES if on_policy else PHASES[:1]

    def finish(phase: str, info: dict[str, Any]) -> None:
        done.pop(f"{phase}-started", None)
        done[phase] = info
        write_json(done, phases_path)

    for phase in phases:
        if phase in done:
            logger.info("phase %s already done, skipped", phase)
            continue
        if f"{phase}-started" in done:
            raise ValueError(
                f"the {phase} phase of {str(out)!r} was interrupted while collecting (its "
                "partial episodes would distort the composition); delete the directory and rebuild"
            )
        if phase != "policy":
            done[f"{phase}-started"] = True
            write_json(done, phases_path)
        t = time.time()
        if phase == "scripted":
            summary = collect(_fleet(config, scripted, config.seed), spec)
            finish(phase, {"wall_time_s": time.time() - t, "episodes": summary["episodes"]})
        elif phase == "policy":
            cfg = replace(
                config.policy_train,
                data=str(out / "log"),
                out=str(out / "policy"),
                seed=config.seed,
                tasks=(),
                resume=(out / "policy" / "checkpoints").is_dir(),
                init=None,
                progress=config.progress,
            )
            res = train(cfg, spec)
            finish(phase, {"wall_time_s": time.time() - t, "checkpoint": res["checkpoint"]})
        else:
            fleet = _fleet(config, on_policy, config.seed + 1, done["policy"]["checkpoint"])
            summary = collect(fleet, spec)
            finish(phase, {"wall_time_s": time.time() - t, "episodes": summary["episodes"]})
    stats = dataset_stats(out / "log", spec.task_set.names)
    write_stats_json(stats, out / "stats.json")
    comp = dataset_composition(out / "log", spec.task_set, seed=config.seed)
    write_json(comp, out / "composition.json")
    plot_composition(comp, out / "composition.png")
    return {
        "log": str(out / "log"),
        "stats": stats,
        "composition": comp,
        "phases": {p: done[p] for p in phases},
    }


def _fingerprint(config: ImbalancedDatasetConfig) -> dict[str, Any]:
    from mtopt.config import to_dict

    d = to_dict(config)
    for key in ("out", "progress"):
        d.pop(key)
    d["policy_train"].pop("progress")
    return d
