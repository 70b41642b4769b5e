"""Choosing a success detector's per-task decision thresholds (``mtopt sd calibrate``).

A detector trained on batches balanced between successes and failures (paper App. 8) has a
prior of one half, while a robot's episodes succeed a few percent of the time; at the default
threshold of 0.5 it trades false negatives for false positives in a way nobody chose. Paper
Table 3 counts both kinds of error, so calibration picks, per task, the threshold that makes
the larger of the two rates smallest (the *balanced* threshold) on episodes that a user
labels within a labelling budget: a log other than the training data, and never the robot an
evaluation holds out. The result is a copy of the checkpoint with per-task ``thresholds``; the
weights are unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.learning.checkpoint import load_checkpoint, save_checkpoint
from mtopt.success.dataset import share_labels
from mtopt.success.detector import SuccessDetector, resolve_sd_checkpoint
from mtopt.success.labelling import read_log_episodes, relabel_episodes
from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)


def balanced_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """The threshold ``t`` (success iff ``score >= t``) minimising ``max(FN rate, FP rate)``
    over bool ``labels``, with those two rates. Candidates lie halfway between neighbouring
    distinct scores (and beyond both ends); of equally good ones the middle one is taken.
    Needs both outcomes in ``labels``."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be equal 1-D arrays, got {scores.shape}")
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"need successes and failures, got {pos} and {neg}")
    values = np.unique(scores)
    # candidate thresholds: below every score, between neighbours, above every score
    cands = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2, [values[-1] + 1.0]])
    pos_scores, neg_scores = np.sort(scores[labels]), np.sort(scores[~labels])
    fn = np.searchsorted(pos_scores, cands, side="left") / pos  # positives below t
    fp = (neg - np.searchsorted(neg_scores, cands, side="left")) / neg  # negatives at or above t
    worst = np.maximum(fn, fp)
    best = np.flatnonzero(worst == worst.min())
    k = int(best[len(best) // 2])  # the middle one of equally good thresholds
    return float(cands[k]), float(fn[k]), float(fp[k])


@dataclass(frozen=True)
class SDCalibrateConfig:
    """Choose a success detector's per-task thresholds on episodes labelled within a budget."""

    checkpoint: str = ""
    """Success-detector checkpoint (or its run directory) to calibrate."""
    log: str = ""
    """Episode log whose episodes are labelled (within ``budget``) for calibration; not the
    detector's training data."""
    budget: int = 2000
    """Label queries per task on the log's episodes."""
    exclude_robots: tuple[int, ...] = ()
    """Robots whose episodes are never used (e.g. an evaluation's held-out robot)."""
    out: str = ""
    """Run directory of the calibrated checkpoint (OUT/checkpoints/ckpt-STEP.pt)."""
    min_outcomes: int = 10
    """A task keeps its old threshold unless the labelled episodes hold at least this many
    successes and this many failures of it."""
    seed: int = 0
    """Seed of the labelling choices."""
    batch_size: int = 256
    """Episodes per forward pass."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give the success detector with --checkpoint PATH")
        if not self.log:
            raise ValueError("give the calibration episodes with --log DIR")
        if not self.out:
            raise ValueError("give the calibrated run directory with --out DIR")
        for name in ("budget", "min_outcomes", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")


def calibrate_success_detector(config: SDCalibrateConfig, task_set: TaskSet) -> dict[str, Any]:
    """Calibrate as configured for the environment's ``task_set`` (the detector's must match);
    returns per-task thresholds and rates, and the checkpoint."""
    path = resolve_sd_checkpoint(config.checkpoint)
    detector = SuccessDetector.load(path, task_set, config.device)
    episodes = read_log_episodes(
        config.log, detector.needs_views, exclude_robots=config.exclude_robots
    )
    if not episodes:
        raise ValueError(f"episode log {config.log!r} holds no episodes to calibrate on")
    rng = np.random.default_rng(config.seed)
    data, spent = relabel_episodes(episodes, task_set, config.budget, rng, detector.needs_views)
    del episodes
    labels = share_labels(data.labels, data.task_names, task_set)
    inputs = data.views if detector.needs_views else data.state
    proba = detector.predict_proba(inputs, config.batch_size, data.state)
    thresholds = detector.thresholds.astype(float).tolist()
    tasks: dict[str, Any] = {}
    for c, name in enumerate(task_set.names):
        known = labels[:, c] >= 0
        y = labels[known, c] == 1
        row: dict[str, Any] = {"labelled": int(known.sum()), "successes": int(y.sum())}
        if y.sum() >= config.min_outcomes and (~y).sum() >= config.min_outcomes:
            t, fn, fp = balanced_threshold(proba[known, c], y)
            thresholds[c] = t
            row.update(threshold=t, fn_rate=fn, fp_rate=fp)
        else:
            row.update(threshold=thresholds[c], kept="too few successes or failures")
        tasks[name] = row
    payload = load_checkpoint(path)
    payload.pop("format_version", None)
    step = int(payload.pop("step", 0))
    payload["thresholds"] = thresholds
    payload["calibration"] = {
        "from": str(path),
        "log": config.log,
        "label_queries": spent,
        "episodes": len(data),
    }
    out = save_checkpoint(Path(config.out) / "checkpoints", step, payload, keep=1)
    logger.info("calibrated %s on %d episodes -> %s", path, len(data), out)
    return {"checkpoint": str(out), "episodes": len(data), "label_queries": spent, "tasks": tasks}


def format_calibration(result: dict[str, Any]) -> str:
    """The per-task thresholds and their rates on the calibration episodes, as a table."""
    lines = [
        f"calibrated on {result['episodes']} episodes -> {result['checkpoint']}",
        f"{'task':16s} {'labelled':>8s} {'succ':>5s} {'threshold':>9s} {'FN':>6s} {'FP':>6s}",
    ]
    for name, r in result["tasks"].items():
        fn = f"{100 * r['fn_rate']:5.1f}%" if "fn_rate" in r else "     -"
        fp = f"{100 * r['fp_rate']:5.1f}%" if "fp_rate" in r else "     -"
        lines.append(
            f"{name:16s} {r['labelled']:8d} {r['successes']:5d} {r['threshold']:9.4f} {fn} {fp}"
        )
    return "\n".join(lines)
