"""Does a Q-function prefer horizontal moves toward objects? And does the data reward them?

    python benchmarks/q_aiming.py --log LOG --checkpoint CKPT [--phase low|high]
    python benchmarks/q_aiming.py --log LOG --fit-mc ENCODER [--fit-steps 4000]
    python benchmarks/q_aiming.py --log LOG --data-signal

A grasp succeeds when the fingers close around an object, so a useful lift Q-function must
prefer moves that bring the gripper over one. This script takes up to ``--states`` logged
lift-skill states with the gripper open and the nearest object 2-5 cm away horizontally,
either low (finger tips below 4 cm, candidate actions close the gripper in place) or high
(above 10 cm, candidate actions descend a full step), scores a 21 x 21 grid of (dx, dy) moves
with the ``lift-any`` Q-function and reports how the best move points relative to the nearest
object: the mean cosine and the share within 45 degrees (uniformly random directions give 0
and 0.25). It also prints the spread of Q over the grid and the mean and spread of the best
moves (a Q-function that ignores the objects picks the same move everywhere).

* ``--checkpoint`` measures a training checkpoint.
* ``--fit-mc ENCODER`` first fits a fresh network of that state encoder by supervised
  regression on the log's Monte-Carlo returns (``lift-any`` label times ``gamma ** steps to
  go``, lift-skill episodes, successes and failures weighted 50/50 like the re-balanced
  sampler), then measures it: whether the data and the architecture can express aiming at all,
  without bootstrapping or a conservative penalty.
* ``--data-signal`` measures the log itself: the ``lift-any`` success of episodes whose logged
  move pointed toward, sideways or away from the nearest object.

Ground truth (the episodes' success vectors) is read here only for analysis.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtopt.data.log import EpisodeLogReader
from mtopt.envs.workcell_config import nearest_object_offset
from mtopt.learning.networks import QNetwork, QNetworkConfig, build_q_network
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

KEYS = ("state", "gripper_status", "gripper_height")
GAMMA = 0.9


def _lift_episodes(log: str):
    task_set = default_task_set()
    for ep in EpisodeLogReader(log).episodes(load_images=False):
        if task_set[ep.task].skill == OBJECT_ACQUISITION:
            yield ep, float(ep.success[list(ep.success_tasks).index("lift-any")])


def _in_phase(ep, t: int, phase: str) -> bool:
    z = float(ep.observations["state"][t, 2])
    open_ = ep.observations["gripper_status"][t, 0] < 0.5
    return open_ and (z < 0.04 if phase == "low" else z > 0.10)


def aiming(net: QNetwork, log: str, phase: str, states: int) -> dict[str, float]:
    """The direction statistics of the module docstring for ``net``."""
    slot = default_task_set().slot("lift-any")
    grid = np.linspace(-1, 1, 21)
    gx, gy = np.meshgrid(grid, grid, indexing="ij")
    actions = np.zeros((grid.size**2, 6), np.float32)
    actions[:, 0], actions[:, 1] = gx.ravel(), gy.ravel()
    actions[:, 2] = -1.0 if phase == "high" else 0.0
    actions[:, 4] = 1.0 if phase == "low" else 0.0
    cosines, spreads, means, bests = [], [], [], []
    for ep, _ in _lift_episodes(log):
        for t in range(len(ep.actions)):
            if not _in_phase(ep, t, phase):
                continue
            rel = nearest_object_offset(ep.observations["state"][t])
            if not 0.02 < np.linalg.norm(rel) < 0.05:
                continue
            obs = {k: torch.from_numpy(ep.observations[k][t : t + 1]) for k in KEYS}
            with torch.no_grad():
                q = net.score_fn(obs, torch.tensor([slot]))(torch.from_numpy(actions)[None])[0]
            q = q.numpy()
            best = actions[int(np.argmax(q)), :2]
            cosines.append(best @ rel / (np.linalg.norm(best) * np.linalg.norm(rel) + 1e-9))
            spreads.append(float(q.max() - q.min()))
            means.append(float(q.mean()))
            bests.append(best)
            break  # one state per episode
        if len(cosines) >= states:
            break
    c, b = np.array(cosines), np.array(bests)
    return {
        "states": len(c),
        "mean_cos": float(c.mean()),
        "within_45deg": float(np.mean(c > np.cos(np.pi / 4))),
        "q_spread": float(np.mean(spreads)),
        "q_mean": float(np.mean(means)),
        "best_move_mean": b.mean(axis=0).round(2).tolist(),
        "best_move_std": b.std(axis=0).round(2).tolist(),
    }


def fit_mc(
    log: str, encoder: str, steps: int, seed: int = 0, pair_geometry: bool = True
) -> QNetwork:
    """A network fitted to the log's Monte-Carlo ``lift-any`` returns (see the docstring)."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (*KEYS, "action", "ret", "ok")}
    for ep, ok in _lift_episodes(log):
        n = len(ep.actions)
        for k in KEYS:
            cols[k].append(ep.observations[k][:-1])
        cols["action"].append(ep.actions)
        cols["ret"].append((ok * GAMMA ** np.arange(n - 1, -1, -1)).astype(np.float32))
        cols["ok"].append(np.full(n, ok))
    data = {k: np.concatenate(v) for k, v in cols.items()}
    rate = data["ok"].mean()
    weights = np.where(data["ok"] > 0, 0.5 / rate, 0.5 / (1 - rate))
    weights /= weights.sum()
    torch.manual_seed(seed)
    cfg = QNetworkConfig(
        kind="mlp",
        mlp_width=128,
        state_encoder=encoder,
        state_dim=data["state"].shape[1],
        pair_geometry=pair_geometry,
    )
    net = build_q_network(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    rng = np.random.default_rng(seed)
    slot = torch.full((128,), default_task_set().slot("lift-any"))
    for _ in range(steps):
        b = rng.choice(len(weights), 128, p=weights)
        obs = {k: torch.from_numpy(data[k][b]) for k in KEYS}
        logits = net.logits(obs, torch.from_numpy(data["action"][b]), slot)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(data["ret"][b])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def data_signal(log: str) -> list[tuple[str, str, int, float]]:
    """``(phase, direction, steps, lift-any success)`` of logged moves by direction."""
    rows = []
    for ep, ok in _lift_episodes(log):
        for t in range(len(ep.actions)):
            for phase in ("low", "high"):
                if not _in_phase(ep, t, phase):
                    continue
                rel, move = nearest_object_offset(ep.observations["state"][t]), ep.actions[t, :2]
                if np.linalg.norm(move) < 0.3 or not 0.02 < np.linalg.norm(rel) < 0.05:
                    continue
                cos = move @ rel / (np.linalg.norm(move) * np.linalg.norm(rel))
                rows.append((phase, cos, ok))
    out = []
    for phase in ("low", "high"):
        for name, lo, hi in (("away", -1.01, -0.7), ("sideways", -0.7, 0.7), ("toward", 0.7, 1.01)):
            ok = [r[2] for r in rows if r[0] == phase and lo <= r[1] < hi]
            out.append((phase, name, len(ok), float(np.mean(ok)) if ok else float("nan")))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--log", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--fit-mc", default=None, metavar="ENCODER")
    p.add_argument("--fit-steps", type=int, default=4000)
    p.add_argument("--no-pair-geometry", action="store_true", help="objects-action without it")
    p.add_argument("--data-signal", action="store_true")
    p.add_argument("--phase", choices=("low", "high"), default="low")
    p.add_argument("--states", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.data_signal:
        print(f"{'phase':6s} {'logged move':12s} {'steps':>6s} {'lift-any success':>17s}")
        for phase, name, n, rate in data_signal(args.log):
            print(f"{phase:6s} {name:12s} {n:6d} {rate:17.3f}")
        return
    if args.checkpoint:
        net = load_q_policy(args.checkpoint).network
    elif args.fit_mc:
        net = fit_mc(args.log, args.fit_mc, args.fit_steps, pair_geometry=not args.no_pair_geometry)
    else:
        p.error("give --checkpoint, --fit-mc ENCODER or --data-signal")
    net.eval()
    r = aiming(net, args.log, args.phase, args.states)
    print(
        f"{args.phase}: {r['states']} states; best move toward the nearest object: mean cos "
        f"{r['mean_cos']:.2f}, within 45 deg {r['within_45deg']:.2f} (random: 0.00, 0.25); "
        f"Q over the grid: mean {r['q_mean']:.3f}, spread {r['q_spread']:.3f}; "
        f"best moves (dx, dy) mean "
        f"({r['best_move_mean'][0]:.2f}, {r['best_move_mean'][1]:.2f}) std "
        f"({r['best_move_std'][0]:.2f}, {r['best_move_std'][1]:.2f})"
    )


if __name__ == "__main__":
    main()
