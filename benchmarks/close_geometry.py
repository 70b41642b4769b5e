"""Where do a log's lift episodes close the gripper, per collecting policy?

    python benchmarks/close_geometry.py LOG [--json FILE]

For every object-acquisition episode it finds the *first close* (the first step whose logged
action closes an open gripper) and reports, grouped by the policy that collected the episode:

* how many episodes never closed;
* the share of first closes with the finger tips below 4 cm after the step;
* the median horizontal distance from the gripper (after the step's move) to the nearest
  present object, and the share closer than 2 cm: a policy that aims at objects closes near
  one; the scripted picker, which never aims, sets the baseline;
* the share of first closes that caught an object (fingers not shut in ``s_{t+1}``);
* the episodes' ``lift-any`` ground-truth success and mean length.

Ground truth is read here only for analysis. To measure a checkpoint's greedy policy, collect
a small log with it first, e.g. ``mtopt collect --out runs/greedy --robots 1 --episodes 150
--tasks lift-any --no-chain-place --policy CKPT --epsilon 0``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from mtopt.data.log import EpisodeLogReader
from mtopt.envs.workcell_config import nearest_object_offset
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

EMPTY_OPENING = 0.005
"""Finger opening (m) below which a closed gripper holds nothing."""
LOW = 0.04
"""Finger-tip height (m) below which a close counts as low."""
NEAR = 0.02
"""Horizontal distance (m) to an object's centre below which a close counts as aimed."""


def close_geometry(log: str, translation: float = 0.05) -> dict[str, dict[str, float]]:
    """Per policy: the statistics of the module docstring."""
    task_set = default_task_set()
    rows: dict[str, list[tuple[float, float, float, float, float]]] = defaultdict(list)
    for ep in EpisodeLogReader(log).episodes(load_images=False):
        if task_set[ep.task].skill != OBJECT_ACQUISITION:
            continue
        state = ep.observations["state"]
        status = ep.observations["gripper_status"][:-1, 0]
        closes = np.flatnonzero((status < 0.5) & (ep.actions[:, 4] > 0.5))
        ok = float(ep.success[list(ep.success_tasks).index("lift-any")])
        if len(closes) == 0:
            rows[ep.policy].append((np.nan, np.nan, np.nan, ok, len(ep.actions)))
            continue
        t = int(closes[0])
        after_xy = state[t, :2] + ep.actions[t, :2] * translation
        rows[ep.policy].append(
            (
                float(state[t + 1, 2]),
                float(np.linalg.norm(nearest_object_offset(state[t], after_xy))),
                float(state[t + 1, 5] > EMPTY_OPENING),
                ok,
                len(ep.actions),
            )
        )
    out = {}
    for policy, r in sorted(rows.items()):
        z, d, caught, ok, length = np.array(r, dtype=float).T
        closed = ~np.isnan(z)
        out[policy] = {
            "episodes": len(r),
            "never_closed": float(1 - closed.mean()),
            "low_close": float(np.mean(z[closed] < LOW)) if closed.any() else float("nan"),
            "median_distance_cm": float(np.median(d[closed]) * 100) if closed.any() else np.nan,
            "near_close": float(np.mean(d[closed] < NEAR)) if closed.any() else float("nan"),
            "caught": float(caught[closed].mean()) if closed.any() else float("nan"),
            "lift_any_success": float(ok.mean()),
            "mean_length": float(length.mean()),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("log")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    table = close_geometry(args.log)
    head = (
        f"{'policy':34s} {'eps':>6s} {'never':>6s} {'low':>5s} {'d med':>6s} {'d<2cm':>6s} "
        f"{'caught':>6s} {'lift':>5s} {'len':>5s}"
    )
    lines = [head, "-" * len(head)]
    for policy, s in table.items():
        lines.append(
            f"{policy:34s} {s['episodes']:6d} {s['never_closed']:6.2f} {s['low_close']:5.2f} "
            f"{s['median_distance_cm']:6.1f} {s['near_close']:6.2f} {s['caught']:6.2f} "
            f"{s['lift_any_success']:5.2f} {s['mean_length']:5.1f}"
        )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
