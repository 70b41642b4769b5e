"""Evaluating a success detector in the layout of paper Table 3 (``mtopt sd eval``).

The evaluation data is either an episode log, whose episodes are labelled for *every* task from
ground truth (scoring is the one use of ground truth besides making examples), or a directory of
outcome examples. ``holdout_robot`` keeps only that robot's episodes: train with
``mtopt sd train --holdout-robot R`` and evaluate with ``--holdout-robot R`` to measure
generalisation to an unseen robot, as in the paper.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from mtopt.jsonio import write_json
from mtopt.success.dataset import is_examples_dir, load_examples, share_labels
from mtopt.success.detector import SuccessDetector
from mtopt.success.labelling import ground_truth_examples, read_log_episodes
from mtopt.success.metrics import table3, worst_rates
from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SDEvalConfig:
    """Evaluate a success detector: per-task error rates in the layout of paper Table 3."""

    checkpoint: str = ""
    """Success-detector checkpoint (or its run directory)."""
    data: str = ""
    """Episode log (labelled from ground truth) or outcome-examples directory."""
    holdout_robot: int | None = None
    """Evaluate only the episodes / examples of this robot."""
    json: str | None = None
    """Also write the result as JSON to this file."""
    batch_size: int = 256
    """Examples per forward pass."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give the success detector with --checkpoint PATH")
        if not self.data:
            raise ValueError("give the evaluation data with --data DIR (episode log or examples)")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")


def run_sd_eval(config: SDEvalConfig, task_set: TaskSet) -> dict[str, Any]:
    """Evaluate for the environment's ``task_set`` (the detector's must match); returns
    ``{"tasks": {...}, "overall": {...}, "worst": {...}, ...}``."""
    detector = SuccessDetector.load(config.checkpoint, task_set, config.device)
    if is_examples_dir(config.data):
        data = load_examples(config.data)
        data.labels = share_labels(data.labels, data.task_names, task_set)
        if config.holdout_robot is not None:
            data = data.subset(data.robot == config.holdout_robot)
        source = "examples"
    else:
        robots = [config.holdout_robot] if config.holdout_robot is not None else None
        episodes = read_log_episodes(config.data, detector.needs_views, robots=robots)
        data = ground_truth_examples(episodes, task_set, detector.needs_views)
        source = "episode log"
    if len(data) == 0:
        raise ValueError(
            f"no evaluation examples in {config.data!r}"
            + (f" for robot {config.holdout_robot}" if config.holdout_robot is not None else "")
        )
    t0 = time.perf_counter()
    pred = detector.predict_examples(data, config.batch_size)
    wall = time.perf_counter() - t0
    result = table3(pred, data.labels, data.primary, data.task_names)
    result.update(
        {
            "worst": worst_rates(result),
            "checkpoint": detector.name,
            "kind": detector.config.kind,
            "data": config.data,
            "source": source,
            "holdout_robot": config.holdout_robot,
            "examples": len(data),
            "labelling_examples_per_s": len(data) / wall if wall > 0 else float("nan"),
        }
    )
    if config.json:
        write_json(result, config.json)
    return result
