"""How the success detector's rewards compare with ground truth on a whole episode log.

For every task: the episodes f_skill impersonation routes to it (the episodes of its skill),
how many are successes by ground truth and by the SD, and the fraction of labels that agree.

    PYTHONPATH=. python benchmarks/sd_reward_agreement.py --checkpoint runs/sd-state --log runs/log
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mtopt.success.detector import SuccessDetector
from mtopt.success.labelling import read_log_episodes
from mtopt.tasks import default_task_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    task_set = default_task_set()
    detector = SuccessDetector.load(args.checkpoint, task_set, "cpu")
    episodes = read_log_episodes(args.log, detector.needs_views)
    pred = detector.label(episodes, task_set.names)
    truth = np.array([[ep.success_for(t) for t in task_set.names] for ep in episodes])
    skills = np.array([task_set[ep.task].skill for ep in episodes])
    out = {}
    for j, task in enumerate(task_set.names):
        routed = skills == task_set[task].skill
        out[task] = {
            "routed": int(routed.sum()),
            "successes_truth": int(truth[routed, j].sum()),
            "successes_sd": int(pred[routed, j].sum()),
            "agreement": round(float((truth[routed, j] == pred[routed, j]).mean()), 4),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
