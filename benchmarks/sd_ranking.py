"""How well do success detectors *rank* held-out episodes, whatever their threshold?

    python benchmarks/sd_ranking.py --log LOG --holdout-robot 1 --checkpoint SD [SD ...]

``mtopt sd eval`` scores a detector at its threshold (0.5). A detector trained on balanced
batches has a prior of one half, while a robot's episodes succeed a few percent of the time,
so its FN / FP trade-off at 0.5 says little about whether it separates the outcomes at all.
This prints, per task, the area under the ROC curve (AUC) of the detector's probability over
every held-out episode (labelled for every task from ground truth, for scoring only), and the
FN rate at the threshold that gives a 3 % FP rate on those same episodes (an oracle
threshold: it shows what the ranking allows, it is not a deployable setting). The log is read
once for all checkpoints.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtopt.success.detector import SuccessDetector
from mtopt.success.labelling import ground_truth_examples, read_log_episodes
from mtopt.tasks import default_task_set

FP_BUDGET = 0.03
"""False-positive rate at which the oracle-threshold FN rate is read."""


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for bool ``label`` (Mann-Whitney, ties half)."""
    pos, neg = np.sort(score[label]), np.sort(score[~label])
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    equal = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(pos) * len(neg)))


def fn_at_fp(score: np.ndarray, label: np.ndarray, fp_rate: float) -> float:
    """FN rate at the lowest threshold whose FP rate on these scores is at most ``fp_rate``."""
    neg = np.sort(score[~label])[::-1]
    k = int(np.floor(fp_rate * len(neg)))
    threshold = neg[k] if k < len(neg) else -np.inf  # positives must score above it
    return float((score[label] <= threshold).mean()) if label.any() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--log", required=True)
    parser.add_argument("--holdout-robot", type=int, required=True)
    parser.add_argument("--checkpoint", nargs="+", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task_set = default_task_set()
    probe = SuccessDetector.load(args.checkpoint[0], task_set)
    episodes = read_log_episodes(args.log, probe.needs_views, robots=[args.holdout_robot])
    data = ground_truth_examples(episodes, task_set, probe.needs_views)
    print(f"{len(data)} episodes of robot {args.holdout_robot}")
    for path in args.checkpoint:
        det = SuccessDetector.load(path, task_set)
        inputs = data.views if det.needs_views else data.state
        proba = det.predict_proba(inputs, state=data.state)
        print(f"\n{path}\n{'task':16s} {'succ':>5s} {'AUC':>6s} {'FN@3%FP':>8s}")
        for c, name in enumerate(task_set.names):
            label = data.labels[:, c] == 1
            a, fn = auc(proba[:, c], label), fn_at_fp(proba[:, c], label, FP_BUDGET)
            print(f"{name:16s} {int(label.sum()):5d} {a:6.3f} {100 * fn:7.1f}%")


if __name__ == "__main__":
    main()
