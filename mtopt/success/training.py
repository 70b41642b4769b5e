"""Training a multi-task success detector (``mtopt sd train``; paper Sec. 4, App. 8).

Training data, as a user would give it: outcome-example directories (``mtopt sd examples``)
and/or episodes of an episode log relabelled within a labelling budget per task
(:func:`~mtopt.success.labelling.relabel_episodes`); every episode of ``holdout_robot`` is left
out for evaluation. Labels are extended by label sharing from the task relations, batches are
balanced between tasks and between successes and failures
(:class:`~mtopt.success.sampler.BalancedSampler`), image views are augmented, and the loss is a
weighted binary cross-entropy: weight 1 for the (example, task) pair that was drawn and
``other_label_weight`` for the example's other known labels.

``init`` fine-tunes an existing detector on new examples (continual fine-tuning); checkpoints
are atomic (:mod:`mtopt.learning.checkpoint`) and record the task set and the environment's
state structure (:class:`~mtopt.spec.StateStructure`, which the object-centric state encoder
and the gripper crops read).

:func:`train_success_detector` knows the environment only through its
:class:`~mtopt.spec.EnvSpec` (the task set and the state structure) and, for gripper crops,
the simulated cameras' projections its caller passes (``mtopt sd train`` reads the workcell's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as nnf

from mtopt.config import from_dict, save_config, to_dict
from mtopt.device import resolve_device
from mtopt.learning.checkpoint import load_checkpoint, save_checkpoint
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec
from mtopt.success.augment import AugmentConfig, augment_views
from mtopt.success.dataset import (
    USER_ROBOT,
    SDExamples,
    align_examples,
    concat_examples,
    load_examples,
    share_labels,
)
from mtopt.success.detector import PAYLOAD_KIND, check_task_names, resolve_sd_checkpoint
from mtopt.success.gripper_crop import load_camera_projections
from mtopt.success.labelling import read_log_episodes, relabel_episodes
from mtopt.success.networks import (
    SDNetworkConfig,
    build_sd_network,
    crops_to_tensor,
    final_gripper_features,
    image_inputs,
    state_to_tensor,
    views_to_tensor,
)
from mtopt.success.sampler import BalancedSampler, bucket_sizes
from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)

DEFAULT_BUDGET = 3000
"""Default labelling budget: label queries per task on episodes from the log."""


@dataclass(frozen=True)
class SDTrainConfig:
    """Train (or fine-tune) a multi-task success detector."""

    examples: tuple[str, ...] = ()
    """Outcome-example directories made by ``mtopt sd examples``."""
    log: str | None = None
    """Episode log whose episodes are relabelled (within ``budget``) as training examples."""
    budget: int = DEFAULT_BUDGET
    """Labelling budget: label queries per task on episodes of the log."""
    holdout_robot: int | None = None
    """Leave out every episode of this robot (the evaluation holdout of paper Table 3)."""
    out: str = "runs/sd"
    """Run directory: checkpoints in OUT/checkpoints, the config in OUT/config.yaml."""
    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 64
    """Examples per batch."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam (L2) weight decay."""
    success_fraction: float = 0.5
    """Fraction of each task's share of a batch drawn from its successes."""
    other_label_weight: float = 0.5
    """Loss weight of an example's known labels for tasks other than the one it was drawn for."""
    pair_fraction: float = 0.0
    """Fraction of each batch drawn as matched success/failure pairs of outcome examples (both
    examples of a pair in the batch; see :mod:`mtopt.success.sampler`)."""
    episode_fraction: float | None = None
    """Fraction of each (task, success / failure) bucket's draws taken from relabelled robot
    episodes when it holds both episodes and outcome examples (None: rows drawn uniformly)."""
    network: SDNetworkConfig = field(default_factory=SDNetworkConfig)
    """Architecture (``kind: image`` or ``state``)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Image augmentation (image detector only)."""
    init: str | None = None
    """Fine-tune this success-detector checkpoint (its architecture is kept unless
    ``extend_init``)."""
    calibration: str | None = None
    """JSON file of the cameras' 3 x 4 projections for ``network.gripper_crop``
    (:func:`~mtopt.success.gripper_crop.load_camera_projections`); None = the ``init``
    checkpoint's, else the simulated environment's (given by the caller of
    :func:`train_success_detector`; ``mtopt sd train`` gives the workcell's)."""
    extend_init: bool = False
    """With ``init``: build the configured ``network`` instead of the checkpoint's and start
    every parameter whose name and shape match from the checkpoint, the rest fresh (e.g. add a
    gripper-crop tower to a trained detector)."""
    seed: int = 0
    """Seed of initialisation, labelling choices, sampling and augmentation."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
    torch_threads: int = 1
    """CPU threads of torch (0 = torch's default); small batches run fastest on one."""
    checkpoint_every: int = 1000
    """Write a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Number of newest checkpoints kept."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 0:
            raise ValueError(f"budget must be a non-negative integer, got {self.budget!r}")
        if (
            isinstance(self.torch_threads, bool)
            or not isinstance(self.torch_threads, int)
            or (self.torch_threads < 0)
        ):
            raise ValueError(f"torch_threads must be an integer >= 0, got {self.torch_threads!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0.0 < self.success_fraction < 1.0:
            raise ValueError(f"success_fraction must be in (0, 1), got {self.success_fraction!r}")
        if self.episode_fraction is not None and not 0.0 <= self.episode_fraction <= 1.0:
            raise ValueError(
                f"episode_fraction must be None or in [0, 1], got {self.episode_fraction!r}"
            )
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise ValueError(f"calibration file {self.calibration!r} does not exist")
        if not 0.0 <= self.pair_fraction <= 1.0:
            raise ValueError(f"pair_fraction must be in [0, 1], got {self.pair_fraction!r}")
        if not 0.0 <= self.other_label_weight <= 1.0:
            raise ValueError(
                f"other_label_weight must be in [0, 1], got {self.other_label_weight!r}"
            )


def collect_training_examples(
    config: SDTrainConfig,
    task_set: TaskSet,
    need_views: bool,
    rng: np.random.Generator,
    network: SDNetworkConfig | None = None,
    projections: np.ndarray | None = None,
) -> tuple[SDExamples, dict[str, Any]]:
    """Outcome examples plus relabelled log episodes, with label sharing applied. Given the
    image ``network``, each source is turned into what it sees as it loads
    (:func:`~mtopt.success.networks.image_inputs`): gripper crops cut with the cameras'
    ``projections``, and views stored larger than it sees them pooled (``input_size /
    image_size`` times less memory)."""
    parts: list[SDExamples] = []
    info: dict[str, Any] = {}

    prepare = None
    if network is not None and (network.input_size or network.gripper_crop):
        prepare = partial(image_inputs, config=network, projections=projections)
    for directory in config.examples:
        ex = load_examples(directory, prepare)
        ex = align_examples(ex, task_set.names, f"examples {directory!r}")
        if config.holdout_robot is not None:
            ex = ex.subset(ex.robot != config.holdout_robot)
        parts.append(ex)
    if config.log is not None:
        exclude = [config.holdout_robot] if config.holdout_robot is not None else []
        episodes = read_log_episodes(config.log, need_views, exclude_robots=exclude)
        relabelled, spent = relabel_episodes(episodes, task_set, config.budget, rng, need_views)
        del episodes
        info["label_queries"] = spent
        info["log_episodes"] = len(relabelled)
        parts.append(relabelled if prepare is None else prepare(relabelled))
    if not parts or sum(len(p) for p in parts) == 0:
        raise ValueError(
            "no success-detector training examples: give --examples DIR (from 'mtopt sd "
            "examples') and/or --log DIR with a labelling --budget > 0"
        )
    if need_views and any(p.views is None for p in parts):
        raise ValueError(
            "the image success detector needs views in every example source; make examples "
            "with images (the default of 'mtopt sd examples') and collect the log with "
            "--obs image --side-images"
        )
    data = concat_examples(parts)
    data.labels = share_labels(data.labels, data.task_names, task_set)
    sizes = bucket_sizes(data.labels)
    info["examples"] = len(data)
    info["labels"] = {
        t: {"successes": int(sizes[i, 0]), "failures": int(sizes[i, 1])}
        for i, t in enumerate(data.task_names)
    }
    return data, info


def _load_init(config: SDTrainConfig) -> tuple[Path, dict[str, Any]] | None:
    """The ``init`` checkpoint's path and payload (checked to be a success detector), if any."""
    if config.init is None:
        return None
    path = resolve_sd_checkpoint(config.init)
    payload = load_checkpoint(path)
    if payload.get("kind") != PAYLOAD_KIND:
        raise ValueError(f"--init {str(path)!r} is not a success-detector checkpoint")
    return path, payload


def _network_config(
    config: SDTrainConfig,
    data: SDExamples,
    init: tuple[Path, dict[str, Any]] | None,
    task_capacity: int,
) -> tuple[SDNetworkConfig, Any]:
    """The architecture (from ``init`` when fine-tuning) and the initial weights, if any."""
    net = config.network
    if net.task_capacity == 0:  # one output per one-hot slot of the task set
        net = replace(net, task_capacity=task_capacity)
    if net.kind == "state" and net.state_dim == 0:
        if data.state is None:
            raise ValueError("the examples have no final states for a state detector")
        net = replace(net, state_dim=int(data.state.shape[1]))
    if init is None:
        return net, None
    path, payload = init
    # a detector fine-tuned after tasks were added keeps its slots (the head spans them all)
    check_task_names(payload["task_names"], data.task_names, repr(str(path)), grow=True)
    if config.extend_init:
        return net, payload["model"]
    return from_dict(SDNetworkConfig, payload["network_config"]), payload["model"]


def load_matching(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Copy the entries of ``weights`` whose name and shape match ``model``'s; returns the
    names of the model's entries that stay freshly initialised."""
    own = model.state_dict()
    kept = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    return [k for k in own if k not in kept]


ProjectionsAt = Callable[[int], np.ndarray]
"""The simulated cameras' ``(3, 3, 4)`` projections for views of a given side (pixels)."""


def camera_projections(
    config: SDTrainConfig,
    network: SDNetworkConfig,
    init: tuple[Path, dict[str, Any]] | None,
    default: ProjectionsAt | None,
) -> np.ndarray | None:
    """The cameras' projections a gripper-crop detector is trained with: ``calibration``'s,
    else the ``init`` checkpoint's when it has them, else ``default``'s at the stored view size
    (the simulated environment's cameras; ``ValueError`` when there is none)."""
    if network.kind != "image" or not network.gripper_crop:
        return None
    if config.calibration is not None:
        return load_camera_projections(config.calibration)
    if init is not None and init[1].get("camera_projections") is not None:
        return np.asarray(init[1]["camera_projections"], dtype=np.float64)
    if default is None:
        raise ValueError(
            "network.gripper_crop needs the cameras' projections: give --calibration FILE "
            "(this environment has no simulated cameras to read them from)"
        )
    return default(network.input_size or network.image_size)


def _augmented(x: torch.Tensor, config: SDTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Views or crops ``(N, V, 3, H, W)`` augmented per image as configured."""
    n, v = x.shape[:2]
    return augment_views(x.reshape(n * v, *x.shape[2:]), config.augment, gen).reshape(x.shape)


def train_success_detector(
    config: SDTrainConfig, spec: EnvSpec, camera_projections_at: ProjectionsAt | None = None
) -> dict:
    """Train as configured for the environment of ``spec`` (its task set; its state structure
    for ``state_encoder: objects`` and gripper crops); returns a report (steps, loss, data
    counts, checkpoint path). ``camera_projections_at`` gives the environment's simulated
    cameras' projections at a view size, used for gripper crops when neither ``calibration``
    nor the ``init`` checkpoint gives them (None: the environment has no simulated cameras)."""
    task_set = spec.task_set
    device = resolve_device(config.device)
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    streams = np.random.SeedSequence(config.seed).spawn(3)
    init = _load_init(config)
    planned = config.network  # the init checkpoint decides the architecture
    if init is not None and not config.extend_init:
        planned = from_dict(SDNetworkConfig, init[1]["network_config"])
    structure = spec.structure
    if planned.state_encoder == "auto":  # resolved for the environment, and stored so
        planned = replace(planned, state_encoder="objects" if structure is not None else "flat")
        config = replace(
            config, network=replace(config.network, state_encoder=planned.state_encoder)
        )
    if planned.needs_structure and structure is None:
        what, fix = (
            ("state_encoder 'objects'", "state_encoder 'flat'")
            if planned.kind == "state"
            else ("gripper_crop", "gripper_crop 0")
        )
        raise ValueError(
            f"network.{what} reads the state through the environment's state structure, but "
            f"environment {spec.name!r} has none (its spec's structure is None); use "
            f"network.{fix}"
        )
    need_views = planned.kind == "image"
    projections = camera_projections(config, planned, init, camera_projections_at)
    data, info = collect_training_examples(
        config,
        task_set,
        need_views,
        np.random.default_rng(streams[0]),
        planned if need_views else None,
        projections,
    )
    net_cfg, weights = _network_config(config, data, init, task_set.capacity)
    if net_cfg.task_capacity < len(task_set):
        raise ValueError(
            f"network.task_capacity {net_cfg.task_capacity} < {len(task_set)} tasks in the task set"
        )
    torch.manual_seed(int(streams[1].generate_state(1)[0]))
    model = build_sd_network(net_cfg, structure).to(device)
    if weights is not None and config.extend_init:
        fresh = load_matching(model, weights)
        logger.info("extended %s; freshly initialised: %s", config.init, fresh)
    elif weights is not None:
        model.load_state_dict(weights)
    opt = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    sampler = BalancedSampler(
        data.labels,
        np.random.default_rng(streams[2]),
        config.success_fraction,
        data.siblings(),
        config.pair_fraction,
        data.robot != USER_ROBOT,
        config.episode_fraction,
    )
    gen = torch.Generator(device=device).manual_seed(config.seed)
    if net_cfg.kind == "image":  # views were pooled to the network's size as they loaded
        views_to_tensor(data.views[:1], net_cfg.image_size, device)
    labels_all = torch.as_tensor(data.labels, dtype=torch.float32)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    payload_base = {
        "kind": PAYLOAD_KIND,
        "network_config": to_dict(net_cfg),
        "task_names": list(task_set.names),
        "threshold": 0.5,
        "camera_projections": None if projections is None else projections.tolist(),
        "state_structure": None if structure is None else asdict(structure),
        "train_data": info,
        "config": to_dict(config),
    }
    bar = progress_bar(config.steps, "sd train", "step", config.progress)
    t0 = time.time()
    model.train()
    loss_sum, acc_sum, n_sum, path = 0.0, 0.0, 0, None
    try:
        for step in range(1, config.steps + 1):
            rows, tasks = sampler.sample(config.batch_size)
            if net_cfg.kind == "image":
                x = _augmented(
                    views_to_tensor(data.views[rows], net_cfg.image_size, device), config, gen
                )
                extra = ()
                if net_cfg.gripper_crop:
                    crops = crops_to_tensor(data.crops[rows], net_cfg.gripper_crop, device)
                    extra = (
                        _augmented(crops, config, gen),
                        final_gripper_features(data.state[rows], structure, device),
                    )
            else:
                x, extra = state_to_tensor(data.state[rows], net_cfg.state_dim, device), ()
            y = labels_all[rows].to(device)
            known = (y >= 0).float()
            w = known * config.other_label_weight
            idx = torch.arange(len(rows), device=device)
            t = torch.as_tensor(tasks, device=device)
            w[idx, t] = known[idx, t]  # a pair partner's drawn label may be unknown
            logits = model(x, *extra)[:, : len(task_set)]
            bce = nnf.binary_cross_entropy_with_logits(logits, y.clamp_min(0.0), reduction="none")
            loss = (bce * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                drawn = known[idx, t] > 0
                hit = ((logits[idx, t] > 0).float() == y[idx, t])[drawn].float().mean()
            loss_sum += float(loss.detach())
            acc_sum += float(hit)
            n_sum += 1
            bar.update(1)
            if step % 100 == 0:
                bar.set_postfix(loss=f"{loss_sum / n_sum:.4f}", acc=f"{acc_sum / n_sum:.3f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                payload = {**payload_base, "model": model.state_dict()}
                path = save_checkpoint(
                    out / "checkpoints", step, payload, keep=config.keep_checkpoints
                )
                logger.info(
                    "sd step %d: loss %.4f, drawn-pair accuracy %.3f",
                    step,
                    loss_sum / n_sum,
                    acc_sum / n_sum,
                )
                last = (loss_sum / n_sum, acc_sum / n_sum)
                loss_sum, acc_sum, n_sum = 0.0, 0.0, 0
    finally:
        bar.close()
    wall = time.time() - t0
    return {
        "checkpoint": str(path),
        "steps": config.steps,
        "kind": net_cfg.kind,
        "wall_time_s": wall,
        "examples_per_s": config.steps * config.batch_size / wall if wall > 0 else float("nan"),
        "loss": last[0],
        "pair_accuracy": last[1],
        **info,
    }
