"""How often the logged lift episodes hit a blocked descent, and what followed it.

    python benchmarks/blocked_descents.py --log RUN/log [--json FILE]
        [--checkpoint CKPT --source round-K]

For every object-acquisition episode of an episode log, finds the steps right after a
blocked descent (``mtopt.policies.q_policy.blocked_descent``: the last action pushed down,
the gripper stayed above the bin floor and went down by less than a quarter of the command)
and classifies the action taken there:

* ``push``: another descent (``dz <= -0.2``) with the gripper open;
* ``close``: the gripper closed;
* ``escape``: anything else with the gripper open (lifting, or moving sideways or turning
  without pushing down).

Per collection source (the scripted bootstrap, and each checkpoint that collected a round) it
prints the episodes, the share with at least one blocked descent, the success rate of those
and of the rest, and the success rate by what the *first* blocked step did.

With ``--checkpoint`` it also compares the checkpoint's ``Q(s_t, a_t)`` on the logged actions
of one source's lift episodes with their Monte-Carlo returns ``gamma**(T-1-t) * success``,
grouped by blocked / free step and by the kind of action: where the Q-function's values
depart from what the logged actions returned. If the checkpoint's network has a motion model
(``network.motion_model``), each group also gets the mean commanded, achieved and predicted
z translation (cm) of its logged actions: whether the model knows a push will be blocked.
Ground-truth success is read here for analysis only; the learner never sees it.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict

import numpy as np
import torch
from tqdm import tqdm

from mtopt.data.log import EpisodeLogReader
from mtopt.envs.workcell_config import WorkcellConfig
from mtopt.policies.q_policy import BLOCKED_MIN_COMMAND, blocked_descent, load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set

logger = logging.getLogger("blocked_descents")


def classify(action: np.ndarray) -> str:
    """What an action taken at a blocked descent does: ``push``, ``close`` or ``escape``."""
    if action[4] >= 0.5:
        return "close"
    return "push" if action[2] <= -BLOCKED_MIN_COMMAND else "escape"


def blocked_steps(
    actions: np.ndarray, motion: np.ndarray, height: np.ndarray, mt: float
) -> list[int]:
    """Indices ``t`` (>= 1) of the steps taken right after a blocked descent."""
    return [
        t
        for t in range(1, len(actions))
        if blocked_descent(actions[t - 1], motion[t], float(height[t, 0]), mt)
    ]


def source_of(policy: str) -> str:
    """``scripted`` or the checkpoint's run directory (``round-K``)."""
    if not policy.startswith("checkpoint:"):
        return "scripted"
    return policy.split(":", 1)[1].split("@", 1)[0]


def analyse(log: str, max_translation: float) -> dict[str, dict]:
    """Per-source counts (see the module docstring)."""
    lift_tasks = set(default_task_set().tasks_of_skill(OBJECT_ACQUISITION))
    acc: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for ep in tqdm(
        EpisodeLogReader(log).episodes(load_images=False), desc="episodes", disable=None
    ):
        if ep.task not in lift_tasks:
            continue
        a = acc[source_of(ep.policy)]
        ok = bool(ep.success_for(ep.task))
        steps = blocked_steps(
            ep.actions,
            ep.observations["gripper_motion"],
            ep.observations["gripper_height"],
            max_translation,
        )
        a["episodes"] += 1
        a["steps"] += ep.num_steps
        a["blocked_steps"] += len(steps)
        for t in steps:
            a[f"blocked_then_{classify(ep.actions[t])}"] += 1
        key = "blocked" if steps else "free"
        a[f"{key}_episodes"] += 1
        a[f"{key}_successes"] += ok
        if steps:
            first = classify(ep.actions[steps[0]])
            a[f"first_{first}_episodes"] += 1
            a[f"first_{first}_successes"] += ok
    return {k: dict(v) for k, v in sorted(acc.items())}


def q_against_returns(
    checkpoint: str, log: str, source: str, max_translation: float, gamma: float = 0.9
) -> dict[str, dict[str, float]]:
    """Per group (``blocked push``, ``free close``, ...): steps, mean Monte-Carlo return and
    mean Q of the logged action, over the lift episodes that ``source`` collected."""
    policy = load_q_policy(checkpoint)
    task_set = default_task_set()
    lift_tasks = set(task_set.tasks_of_skill(OBJECT_ACQUISITION))
    obs: dict[str, list] = {k: [] for k in policy.obs_keys}
    actions, returns, groups, slots, achieved = [], [], [], [], []
    for ep in EpisodeLogReader(log).episodes(load_images=False):
        if ep.task not in lift_tasks or source_of(ep.policy) != source:
            continue
        o = ep.observations
        blocked = set(
            blocked_steps(ep.actions, o["gripper_motion"], o["gripper_height"], max_translation)
        )
        success = float(ep.success_for(ep.task))
        for t in range(ep.num_steps):
            for k in policy.obs_keys:
                obs[k].append(o[k][t])
            actions.append(ep.actions[t])
            achieved.append(o["gripper_motion"][t + 1][2])
            returns.append(success * gamma ** (ep.num_steps - 1 - t))
            groups.append(f"{'blocked' if t in blocked else 'free'} {classify(ep.actions[t])}")
            slots.append(task_set.slot(ep.task))
    if not actions:
        raise ValueError(f"no lift episodes of source {source!r} in {log}")
    batch = {k: torch.from_numpy(np.stack(v)) for k, v in obs.items()}
    acts, task = torch.from_numpy(np.stack(actions)), torch.tensor(slots)
    net = policy.network
    has_model = bool(getattr(net.config, "motion_model", False))
    q, predicted = [], []
    with torch.no_grad():
        for i in range(0, len(slots), 4096):
            part = {k: v[i : i + 4096] for k, v in batch.items()}
            emb = net.embed(part, task[i : i + 4096])
            q.append(net.q_from_embedding(emb, acts[i : i + 4096, None]).reshape(-1).numpy())
            if has_model:  # length units -> metres
                z = net.predict_motion(emb, acts[i : i + 4096, None])[:, 0, 2]
                predicted.append(z.numpy() * net.config.length_scale)
    q_all, ret, grp = np.concatenate(q), np.asarray(returns), np.asarray(groups)
    command = acts[:, 2].numpy() * max_translation
    achieved_z = np.asarray(achieved)
    predicted_z = np.concatenate(predicted) if has_model else None
    result = {}
    for g in sorted(set(groups)):
        m = grp == g
        row = {"steps": int(m.sum()), "mc_return": float(ret[m].mean())}
        row["q"] = float(q_all[m].mean())
        if has_model:
            row["dz_commanded_cm"] = 100 * float(command[m].mean())
            row["dz_achieved_cm"] = 100 * float(achieved_z[m].mean())
            row["dz_predicted_cm"] = 100 * float(predicted_z[m].mean())
        result[g] = row
    return result


def _rate(a: dict, key: str) -> str:
    n = a.get(f"{key}_episodes", 0)
    return f"{a.get(f'{key}_successes', 0) / n:.2f} ({n})" if n else "- (0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="episode log directory")
    parser.add_argument("--json", default=None, help="also write the counts to this JSON file")
    parser.add_argument("--checkpoint", default=None, help="compare its Q with the returns")
    parser.add_argument("--source", default=None, help="with --checkpoint: e.g. round-3")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = analyse(args.log, WorkcellConfig().max_translation)
    header = (
        "| source | lift episodes | with a blocked descent | success, blocked | success, free "
        "| blocked steps: push / close / escape | success by the first blocked step: push "
        "| close | escape |"
    )
    rows = [header, "|" + "---|" * 9]
    for source, a in result.items():
        share = a.get("blocked_episodes", 0) / a["episodes"]
        acts = " / ".join(str(a.get(f"blocked_then_{k}", 0)) for k in ("push", "close", "escape"))
        firsts = " | ".join(_rate(a, f"first_{k}") for k in ("push", "close", "escape"))
        rows.append(
            f"| {source} | {a['episodes']} | {share:.2f} | {_rate(a, 'blocked')} "
            f"| {_rate(a, 'free')} | {acts} | {firsts} |"
        )
    logger.info("\n".join(rows))
    if args.checkpoint:
        if not args.source:
            parser.error("--checkpoint needs --source (e.g. round-3, scripted)")
        calib = q_against_returns(
            args.checkpoint, args.log, args.source, WorkcellConfig().max_translation
        )
        model = any("dz_predicted_cm" in v for v in calib.values())
        extra = " dz commanded / achieved / predicted (cm) |" if model else ""
        lines = [f"| steps of {args.source} | n | Monte-Carlo return | Q | Q / return |{extra}"]
        lines.append("|---|---:|---:|---:|---:|" + ("---|" if model else ""))
        for g, v in calib.items():
            ratio = v["q"] / v["mc_return"] if v["mc_return"] > 0 else float("nan")
            dz = (
                f" {v['dz_commanded_cm']:.2f} / {v['dz_achieved_cm']:.2f} / "
                f"{v['dz_predicted_cm']:.2f} |"
                if model
                else ""
            )
            lines.append(
                f"| {g} | {v['steps']} | {v['mc_return']:.3f} | {v['q']:.3f} | {ratio:.2f} |{dz}"
            )
        logger.info("\n".join(lines))
        result["q_against_returns"] = calib
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
