"""How well the Q-network's motion model predicts blocked descents, fitted offline.

    python benchmarks/motion_model_fit.py --log RUN/log [--source scripted] [--steps 3000]
        [--seed 0] [--json FILE]

Fits only the motion model of an ``objects-action`` network (``QNetworkConfig.motion_model``)
by regression onto the logged achieved translations of lift episodes, once without and once
with ``motion_model_history`` (the last step's achieved motion as an input), and reports on
held-out episodes (every 10th) the mean absolute error of the predicted z translation, by
the groups of ``blocked_descents.py``: steps right after a blocked descent or not, by the
action taken (``push``, ``close``, ``escape``). The ``command`` row is the error of
assuming that the commanded move happens, which is what the branch did before the model.
Neither the Q-function nor ground-truth success is involved.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch
from blocked_descents import blocked_steps, classify, source_of
from tqdm import tqdm

from mtopt.data.log import EpisodeLogReader
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.learning.networks import QNetworkConfig, build_q_network
from mtopt.learning.targets import motion_model_loss
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

logger = logging.getLogger("motion_model_fit")
KEYS = ("state", "gripper_status", "gripper_height", "gripper_motion")


def load_steps(log: str, source: str | None, mt: float) -> dict[str, np.ndarray]:
    """Every lift step of the log (of ``source`` if given): observation, action, achieved
    translation (m), group and whether its episode is held out."""
    lift = set(default_task_set().tasks_of_skill(OBJECT_ACQUISITION))
    cols: dict[str, list] = {k: [] for k in (*KEYS, "action", "achieved", "group", "held_out")}
    n = 0
    for ep in EpisodeLogReader(log).episodes(load_images=False):
        if ep.task not in lift or (source and source_of(ep.policy) != source):
            continue
        o = ep.observations
        blocked = set(blocked_steps(ep.actions, o["gripper_motion"], o["gripper_height"], mt))
        for t in range(ep.num_steps):
            for k in KEYS:
                cols[k].append(o[k][t])
            cols["action"].append(ep.actions[t])
            cols["achieved"].append(o["gripper_motion"][t + 1])
            cols["group"].append(
                f"{'blocked' if t in blocked else 'free'} {classify(ep.actions[t])}"
            )
            cols["held_out"].append(n % 10 == 9)
        n += 1
    if n == 0:
        raise ValueError(f"no lift episodes{f' of source {source!r}' if source else ''} in {log}")
    return {k: np.asarray(v) for k, v in cols.items()}


def fit(data: dict[str, np.ndarray], history: bool, steps: int, seed: int) -> np.ndarray:
    """Fit the motion model on the training steps; its predicted z (m) on every step."""
    torch.manual_seed(seed)
    cfg = QNetworkConfig(
        kind="mlp",
        state_dim=int(data["state"].shape[1]),
        mlp_width=128,
        state_encoder="objects-action",
        motion_obs=True,
        motion_model=True,
        motion_model_history=history,
    )
    net = build_q_network(cfg)
    params = [p for name, p in net.named_parameters() if name.startswith("motion_")]
    opt = torch.optim.Adam(params, lr=1e-3)
    tensors = {k: torch.from_numpy(data[k]).float() for k in (*KEYS, "action", "achieved")}
    train = np.flatnonzero(~data["held_out"])
    rng = np.random.default_rng(seed)
    task = torch.zeros(256, dtype=torch.long)
    for _ in tqdm(range(steps), desc=f"fit (history={history})", mininterval=5):
        idx = torch.from_numpy(rng.choice(train, 256))
        emb = net.embed({k: tensors[k][idx] for k in KEYS}, task)
        pred = net.predict_motion(emb, tensors["action"][idx, None])[:, 0]
        loss = motion_model_loss(pred, tensors["achieved"][idx] / cfg.length_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = []
    with torch.no_grad():
        for i in range(0, len(data["action"]), 4096):
            part = {k: tensors[k][i : i + 4096] for k in KEYS}
            emb = net.embed(part, torch.zeros(len(part["state"]), dtype=torch.long))
            z = net.predict_motion(emb, tensors["action"][i : i + 4096, None])[:, 0, 2]
            out.append(z.numpy() * cfg.length_scale)
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="episode log directory")
    parser.add_argument("--source", default=None, help="e.g. scripted, round-3 (default: all)")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps per fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the table to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mt = WorkcellConfig().max_translation
    data = load_steps(args.log, args.source, mt)
    achieved = data["achieved"][:, 2]
    predictions = {"command": data["action"][:, 2] * mt}
    for history in (False, True):
        predictions[f"model, history={history}"] = fit(data, history, args.steps, args.seed)
    held = data["held_out"]
    groups = sorted(set(data["group"][held]))
    result: dict[str, dict[str, float]] = {}
    header = "| held-out z error (cm) | " + " | ".join(
        f"{g} (n={(data['group'][held] == g).sum()})" for g in groups
    )
    lines = [header + " |", "|---|" + "---:|" * len(groups)]
    for name, z in predictions.items():
        err = np.abs(z - achieved)
        result[name] = {g: 100 * float(err[held & (data["group"] == g)].mean()) for g in groups}
        lines.append(f"| {name} | " + " | ".join(f"{result[name][g]:.2f}" for g in groups) + " |")
    logger.info("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
