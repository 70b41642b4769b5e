"""Behaviour cloning from an episode log (``mtopt bc train``): a baseline next to the Q-learner.

*Filtered* behaviour cloning: every episode of a trained task is labelled for its own task by
the configured labeller (the success detector, or the episode's ground truth only under
``labels: oracle``), and the steps of the successful ones are the demonstrations; there is no
task impersonation. A fraction ``holdout`` of the successful episodes is kept out of training,
so the run reports how well the network fits demonstrations it has not seen (the *fit* in
"data, fit or search"). Each step samples a batch (an equal share per task by default) and
takes one Adam step on :func:`mtopt.learning.bc.bc_loss`.

The network reads the state as the Q-learner does (:class:`mtopt.learning.bc.BCNetwork`).
Checkpoints are written atomically to OUT/checkpoints with the project's checkpoint format and
loaded with ``weights_only=True`` (:func:`mtopt.policies.bc_policy.load_bc_policy`);
TensorBoard scalars go to OUT/tb and the run's summary to OUT/summary.json.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mtopt.config import save_config, to_dict
from mtopt.data.log import EpisodeLogReader
from mtopt.device import resolve_device
from mtopt.jsonio import write_json
from mtopt.learning.bc import BCNetwork, bc_loss
from mtopt.learning.checkpoint import list_checkpoints, save_checkpoint
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec
from mtopt.system.builder import PipelineBuilder, check_run_directory
from mtopt.system.training_config import LearnerConfig

logger = logging.getLogger(__name__)

EVAL_ROWS = 8192
"""Demonstration steps (a fixed subset) on which the training and held-out metrics are
measured."""


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning of a multi-task policy from the successful episodes of an episode log
    (``mtopt bc train``)."""

    data: str = "runs/log"
    """Episode-log directory to learn from."""
    out: str = "runs/bc"
    """Run directory: checkpoints in OUT/checkpoints, TensorBoard scalars in OUT/tb, the summary
    in OUT/summary.json. It must not hold a run already."""
    steps: int = 20_000
    """Adam steps."""
    seed: int = 0
    """Seed of network initialisation, the held-out split and batch sampling."""
    tasks: tuple[str, ...] = ()
    """Tasks to clone; empty means all tasks of the task set."""
    labels: Literal["success_detector", "oracle"] = "success_detector"
    """Which episodes count as successful: the learned success detector's labels
    (``success_detector``), or each episode's ground-truth success (``oracle``)."""
    success_detector: str | None = None
    """Success-detector checkpoint (or ``mtopt sd train`` run directory) under ``labels:
    success_detector``."""
    network: QNetworkConfig = field(
        default_factory=lambda: QNetworkConfig(kind="mlp", mlp_width=128)
    )
    """The state encoder (a Q-network config, of which only the per-state part is used;
    ``state_encoder: auto`` picks the object-centric encoder where the environment has one)."""
    head_width: int = 256
    """Width of the hidden layer of the action head."""
    batch_size: int = 256
    """Demonstration steps per batch."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    continuous_weight: float = 1.0
    """Weight of the continuous dims' squared error against the discrete dims' cross-entropy."""
    sampler: Literal["rebalanced", "uniform"] = "rebalanced"
    """``rebalanced``: an equal share of every batch per task with demonstrations; ``uniform``:
    every demonstration step equally likely."""
    holdout: float = 0.1
    """Fraction of the successful episodes kept out of training to measure the fit on unseen
    demonstrations, in [0, 1)."""
    checkpoint_every: int = 5000
    """Write a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Number of newest checkpoints kept."""
    log_every: int = 500
    """Write TensorBoard scalars every this many steps."""
    device: str = "auto"
    """``auto`` (CUDA when torch has it), ``cpu`` or ``cuda[:N]``."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "head_width",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.labels not in ("success_detector", "oracle"):
            raise ValueError(f"labels must be 'success_detector' or 'oracle', got {self.labels!r}")
        if self.sampler not in ("rebalanced", "uniform"):
            raise ValueError(f"sampler must be 'rebalanced' or 'uniform', got {self.sampler!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout!r}")
        if not self.learning_rate > 0 or not self.continuous_weight >= 0:
            raise ValueError(
                f"need learning_rate > 0 and continuous_weight >= 0, got "
                f"{self.learning_rate!r} and {self.continuous_weight!r}"
            )
        if self.network.kind != "mlp":
            raise ValueError(
                f"behaviour cloning reads the state: network.kind must be 'mlp', got "
                f"{self.network.kind!r}"
            )

    def builder(self, spec: EnvSpec) -> PipelineBuilder:
        """The pipeline builder of an equivalent state learner: its labeller, network config
        and shape and observation keys are this run's."""
        learner = LearnerConfig(
            obs="state",
            tasks=self.tasks,
            rewards=self.labels,
            success_detector=self.success_detector,
            trainer=TrainerConfig(network=self.network, device=self.device),
        )
        return PipelineBuilder(learner, spec)


class Demonstrations:
    """Steps of successful episodes, grouped by task: observations, actions and task slots."""

    def __init__(
        self,
        episodes: list[Any],
        tasks: tuple[str, ...],
        slots: dict[str, int],
        obs_keys: tuple[str, ...],
    ) -> None:
        self.tasks = tasks
        by_task = {t: [e for e in episodes if e.task == t] for t in tasks}
        self.episodes = {t: len(eps) for t, eps in by_task.items()}
        ordered = [e for t in tasks for e in by_task[t]]
        self.sizes = np.array([sum(e.num_steps for e in by_task[t]) for t in tasks], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.obs: dict[str, np.ndarray] = {}
        for k in obs_keys:
            parts = [e.observations[k][:-1] for e in ordered]
            self.obs[k] = np.concatenate(parts) if parts else np.zeros((0,), np.float32)
        actions = [e.actions for e in ordered]
        self.actions = np.concatenate(actions) if actions else np.zeros((0, 0), np.float32)
        self.slots = np.concatenate(
            [np.full(n, slots[t], np.int64) for t, n in zip(tasks, self.sizes, strict=True)]
        )

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def sample_rows(self, n: int, rng: np.random.Generator, sampler: str) -> np.ndarray:
        """``n`` row indices: ``rebalanced`` draws a task with demonstrations uniformly, then one
        of its steps; ``uniform`` draws any step."""
        if sampler == "uniform":
            return rng.integers(0, len(self), size=n)
        present = np.flatnonzero(self.sizes)
        t = present[rng.integers(0, len(present), size=n)]
        return self.offsets[t] + (rng.random(n) * self.sizes[t]).astype(np.int64)

    def batch(
        self, rows: np.ndarray, device: torch.device
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """``(obs, actions, task slots)`` tensors of ``rows`` on ``device``."""
        obs = {k: torch.from_numpy(v[rows]).to(device) for k, v in self.obs.items()}
        actions = torch.from_numpy(self.actions[rows]).to(device)
        return obs, actions, torch.from_numpy(self.slots[rows]).to(device)


def load_demonstrations(
    config: BCConfig, spec: EnvSpec, builder: PipelineBuilder
) -> tuple[Demonstrations, Demonstrations, Counter[str]]:
    """The training and held-out demonstrations of ``config.data`` and the episodes per task
    collected in the log. Episodes are labelled for their own task by the configured
    labeller; the split is drawn per successful episode from the run's seed, in robot order
    (so the same log and seed give the same split)."""
    data = Path(config.data)
    if not data.is_dir():
        raise ValueError(f"--data {str(data)!r} is not an episode-log directory")
    if config.labels == "success_detector" and not config.success_detector:
        raise ValueError(
            "labels: success_detector needs a success-detector checkpoint: pass "
            "--success-detector PATH (train one with 'mtopt sd train') or use --labels oracle"
        )
    tasks, keys = builder.tasks, builder.obs_keys()
    labeller = builder.labeller()
    prime = getattr(labeller, "prime", None)
    collected: Counter[str] = Counter()
    kept: list[Any] = []
    chunk: list[Any] = []

    def label(episodes: list[Any]) -> None:
        if prime is not None:
            prime(episodes)
        for ep in episodes:
            if bool(labeller(ep, [ep.task])[0]):
                kept.append(ep)

    for ep in EpisodeLogReader(data).episodes(load_images=False):
        if ep.task not in tasks:
            continue
        missing = [k for k in keys if k not in ep.observations]
        if missing:
            raise ValueError(
                f"episodes of {str(data)!r} lack the observations {missing} the network reads "
                f"(env {spec.name!r}); pass the --env the log was collected with"
            )
        collected[ep.task] += 1
        chunk.append(ep)
        if len(chunk) == 256:
            label(chunk)
            chunk = []
    label(chunk)
    if not collected:
        raise ValueError(f"the episode log {str(data)!r} holds no episodes of tasks {tasks}")
    if not kept:
        raise ValueError(
            f"no episode of {str(data)!r} is labelled a success for its task ({config.labels} "
            "labels): nothing to clone"
        )
    kept.sort(key=lambda e: e.robot_id)  # each robot's episodes in the order it wrote them
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    held = rng.random(len(kept)) < config.holdout
    slots = {t: spec.task_set.slot(t) for t in tasks}
    train = Demonstrations(
        [e for e, h in zip(kept, held, strict=True) if not h], tasks, slots, keys
    )
    held_out = Demonstrations([e for e, h in zip(kept, held, strict=True) if h], tasks, slots, keys)
    missing_tasks = [t for t in tasks if train.episodes[t] == 0]
    if len(train) == 0:
        raise ValueError("every successful episode was held out; lower --holdout")
    if missing_tasks:
        logger.warning("no training demonstrations for task(s) %s: not cloned", missing_tasks)
    return train, held_out, collected


@torch.no_grad()
def fit_metrics(
    net: BCNetwork, demos: Demonstrations, spec: EnvSpec, config: BCConfig, device: torch.device
) -> dict[str, float] | None:
    """The loss metrics on a fixed subset of at most :data:`EVAL_ROWS` demonstration steps
    (``None`` without demonstrations)."""
    if len(demos) == 0:
        return None
    rows = np.random.default_rng(0).permutation(len(demos))[:EVAL_ROWS]
    net.eval()
    totals: Counter[str] = Counter()
    for i in range(0, len(rows), 1024):
        part = np.sort(rows[i : i + 1024])
        obs, actions, slots = demos.batch(part, device)
        mean, logits = net(obs, slots)
        _, metrics = bc_loss(mean, logits, actions, spec.action, config.continuous_weight)
        for k, v in metrics.items():
            totals[k] += v * len(part)
    net.train()
    return {k: v / len(rows) for k, v in totals.items()}


def train_bc(config: BCConfig, spec: EnvSpec) -> dict[str, Any]:
    """Run behaviour cloning in environment ``spec`` as configured (module docstring); returns
    the summary (also written to OUT/summary.json)."""
    out = check_run_directory(config.out)
    ckpt_dir = out / "checkpoints"
    if list_checkpoints(ckpt_dir):
        raise ValueError(f"--out {str(out)!r} already holds a run's checkpoints; use a new --out")
    builder = config.builder(spec)
    net_config, shape = builder.network_config(), builder.network_shape()
    train, held_out, collected = load_demonstrations(config, spec, builder)
    logger.info(
        "behaviour cloning on %d steps of %d successful episodes (%d held out) per task: %s",
        len(train),
        sum(train.episodes.values()),
        sum(held_out.episodes.values()),
        train.episodes,
    )
    device = resolve_device(config.device)
    action = spec.action
    head = {
        "width": config.head_width,
        "continuous": len(action.continuous_dims),
        "discrete": len(action.discrete_dims),
    }
    with torch.random.fork_rng(devices=[]):  # seeded init; the global stream is untouched
        torch.manual_seed(config.seed)
        net = BCNetwork(net_config, shape, head["continuous"], head["discrete"], head["width"])
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2]))
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")

    def payload() -> dict[str, Any]:
        return {
            "bc": net.state_dict(),
            "bc_head": head,
            "optimizer": optimizer.state_dict(),
            "network_config": to_dict(net_config),
            "network_shape": to_dict(shape),
            "env": spec.describe(),
            "task_names": list(spec.task_set.names),
            "trained_tasks": list(builder.tasks),
            "obs_keys": list(builder.obs_keys()),
            "train_episode_counts": {t: int(collected[t]) for t in builder.tasks},
            "config": to_dict(config),
        }

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    bar = progress_bar(config.steps, "bc", "step", config.progress)
    metrics: dict[str, float] = {}
    path = None
    t0 = time.time()
    try:
        for step in range(1, config.steps + 1):
            obs, actions, slots = train.batch(
                train.sample_rows(config.batch_size, rng, config.sampler), device
            )
            mean, logits = net(obs, slots)
            loss, metrics = bc_loss(mean, logits, actions, action, config.continuous_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
            if step % config.log_every == 0:
                for k, v in metrics.items():
                    writer.add_scalar(f"bc/{k}", v, step)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                path = save_checkpoint(ckpt_dir, step, payload(), keep=config.keep_checkpoints)
    finally:
        bar.close()
        writer.close()
    wall = time.time() - t0
    summary = {
        "step": config.steps,
        "checkpoint": str(path),
        "wall_time_s": wall,
        "steps_per_s": config.steps / wall if wall > 0 else float("nan"),
        "last_batch": metrics,
        "train": fit_metrics(net, train, spec, config, device),
        "held_out": fit_metrics(net, held_out, spec, config, device),
        "demonstrations": {
            "train_episodes": train.episodes,
            "held_out_episodes": held_out.episodes,
            "train_steps": len(train),
            "held_out_steps": len(held_out),
            "collected_episodes": {t: int(collected[t]) for t in builder.tasks},
        },
    }
    logger.info("behaviour cloning: train %s, held out %s", summary["train"], summary["held_out"])
    write_json(summary, out / "summary.json")
    return summary
