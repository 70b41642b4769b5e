"""Can gripper-centred crops of the final views tell lift successes apart? (an issue-5 proxy)

    python benchmarks/sd_gripper_crop.py --examples DIR [DIR ...] --log LOG --holdout-robot 1

The shipped image detector sees every view pooled to 64 px, where an object between the
fingers covers a few pixels; its lift tasks are its weakest (docs/RESULTS.md). This trains a
small lifts-only detector on crops of the stored 128 px views centred on the gripper, which a
robot knows from its kinematics (the final ``state``'s gripper position) and the fixed camera
calibration, and reports the held-out robot's per-task AUC and FN rate at a 3 % FP rate, the
numbers ``benchmarks/sd_ranking.py`` gives for the shipped detector. Training data: the lift
outcome examples of ``--examples`` and the other robots' episodes of ``--log`` (ground-truth
labels, as the relabelling with the default budget gives for this log's size). Nothing here is
used by the library; it measures whether the crop is worth building in.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from sd_ranking import FP_BUDGET, auc, fn_at_fp  # sibling benchmark
from torch import nn

from mtopt.envs.workcell_examples import VIEW_CAMERAS, workcell_camera_projections
from mtopt.success.dataset import load_examples, share_labels
from mtopt.success.gripper_crop import gripper_crops
from mtopt.success.labelling import ground_truth_examples, read_log_episodes
from mtopt.success.networks import crop_tower
from mtopt.tasks import default_task_set

logger = logging.getLogger("sd_gripper_crop")


class CropDetector(nn.Module):
    """A tower shared across the three crops, plus the gripper height, into per-task logits."""

    def __init__(self, n_tasks: int, crop: int, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.tower = crop_tower(c, "batch")  # the library's crop tower
        self.head = nn.Sequential(nn.Linear(3 * 8 * c + 1, 256), nn.ReLU(), nn.Linear(256, n_tasks))

    def forward(self, crops: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
        b = crops.shape[0]
        x = crops.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0
        f = self.tower(x).reshape(b, -1)
        return self.head(torch.cat([f, height[:, None] * 5.0], dim=1))


def balanced_batch(
    labels: np.ndarray, rng: np.random.Generator, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and task columns: a task drawn uniformly, then a success or failure with equal
    probability, then a row with that label for that task."""
    tasks = rng.integers(labels.shape[1], size=batch)
    want = rng.random(batch) < 0.5
    rows = np.empty(batch, np.int64)
    for i, (t, w) in enumerate(zip(tasks, want, strict=True)):
        pool = np.flatnonzero(labels[:, t] == int(w))
        if len(pool) == 0:
            pool = np.flatnonzero(labels[:, t] >= 0)
        rows[i] = pool[rng.integers(len(pool))]
    return rows, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--examples", nargs="+", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--holdout-robot", type=int, required=True)
    parser.add_argument("--crop", type=int, default=32, help="crop size in 128 px view pixels")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-crops", default=None, help="PNG of a few example crops")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    task_set = default_task_set()
    lifts = [i for i, n in enumerate(task_set.names) if n.startswith("lift-")]
    proj = workcell_camera_projections(128)

    crops, states, labels = [], [], []
    for d in args.examples:
        ex = load_examples(d)
        keep = np.isin(ex.primary, lifts)
        lab = share_labels(ex.labels, ex.task_names, task_set)[keep][:, lifts]
        crops.append(gripper_crops(ex.views[keep], ex.state[keep], proj, args.crop))
        states.append(ex.state[keep])
        labels.append(lab)
        logger.info("%s: %d lift examples", d, int(keep.sum()))
    robots = read_log_episodes(args.log, True)
    train_eps = [e for e in robots if e.robot_id != args.holdout_robot]
    test_eps = [e for e in robots if e.robot_id == args.holdout_robot]
    tr = ground_truth_examples(train_eps, task_set, True)
    te = ground_truth_examples(test_eps, task_set, True)
    del robots, train_eps, test_eps
    crops.append(gripper_crops(tr.views, tr.state, proj, args.crop))
    states.append(tr.state)
    labels.append(tr.labels[:, lifts])
    x_crop = torch.from_numpy(np.concatenate(crops))
    x_h = torch.from_numpy(np.concatenate(states)[:, 2].copy())
    y = np.concatenate(labels)
    te_crop = torch.from_numpy(gripper_crops(te.views, te.state, proj, args.crop))
    te_h = torch.from_numpy(te.state[:, 2].copy())
    te_y = te.labels[:, lifts] == 1
    logger.info("train rows %d, held-out episodes %d", len(y), len(te_y))
    if args.save_crops:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(6, 3, figsize=(4, 8))
        pos = np.flatnonzero(te_y[:, 0])[:3].tolist() + np.flatnonzero(~te_y[:, 0])[:3].tolist()
        for r, i in enumerate(pos):
            for v in range(3):
                ax[r, v].imshow(te_crop[i, v].numpy())
                ax[r, v].set_title(f"{'S' if te_y[i, 0] else 'F'} {VIEW_CAMERAS[v]}", fontsize=6)
                ax[r, v].axis("off")
        fig.savefig(args.save_crops, dpi=80)

    net = CropDetector(len(lifts), args.crop)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.time()
    net.train()
    for step in range(1, args.steps + 1):
        rows, tasks = balanced_batch(y, rng, args.batch_size)
        logits = net(x_crop[rows], x_h[rows])
        target = torch.from_numpy(y[rows, tasks].astype(np.float32))
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits[torch.arange(len(rows)), torch.from_numpy(tasks)], target
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0:
            logger.info("step %d loss %.4f (%.0f s)", step, loss.item(), time.time() - t0)
    net.eval()
    with torch.no_grad():
        proba = torch.cat(
            [
                torch.sigmoid(net(te_crop[i : i + 256], te_h[i : i + 256]))
                for i in range(0, len(te_h), 256)
            ]
        ).numpy()
    print(f"held-out robot {args.holdout_robot}: {len(te_y)} episodes; crop {args.crop} px")
    print(f"{'task':14s} {'succ':>5s} {'AUC':>6s} {'FN@3%FP':>8s} {'FN@0.5':>7s} {'FP@0.5':>7s}")
    for j, c in enumerate(lifts):
        lab, p = te_y[:, j], proba[:, j]
        fn_half, fp_half = (p[lab] < 0.5).mean(), (p[~lab] >= 0.5).mean()
        print(
            f"{task_set.names[c]:14s} {int(lab.sum()):5d} {auc(p, lab):6.3f} "
            f"{100 * fn_at_fp(p, lab, FP_BUDGET):7.1f}% {100 * fn_half:6.1f}% {100 * fp_half:6.1f}%"
        )


if __name__ == "__main__":
    main()
