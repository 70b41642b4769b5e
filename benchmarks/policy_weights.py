"""Greedy success of a checkpoint's online network against its Polyak-averaged target network.

    python benchmarks/policy_weights.py CKPT [CKPT ...] [--episodes 100] [--tasks T ...]
        [--cem ITERS SAMPLES ELITES]

Every checkpoint holds the online network the policy normally uses and target network 1, a
Polyak average of recent online weights (``trainer.polyak``). Both are run greedily with the
evaluation protocol's seeds (the same scenes for both), and the success rates are printed per
checkpoint. The point is to see how much of the checkpoint-to-checkpoint swing of the greedy
policy an average of recent weights removes (docs/RESULTS.md, session 7).
"""

from __future__ import annotations

import argparse
import logging

import torch

from mtopt.evaluation.protocol import ProtocolConfig, evaluate
from mtopt.learning.checkpoint import load_checkpoint
from mtopt.learning.cem import CEMConfig
from mtopt.policies.q_policy import load_q_policy

WEIGHTS = ("online", "target_1")
"""The trainer state dicts compared."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--tasks", nargs="+", default=["lift-any", "place-any"])
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument(
        "--cem",
        type=int,
        nargs=3,
        default=None,
        metavar=("ITERS", "SAMPLES", "ELITES"),
        help="the policy's action search (default: QT-Opt's 2 x 64 / 6)",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    protocol = ProtocolConfig(
        episodes_per_task=args.episodes, seed=args.seed, tasks=tuple(args.tasks), progress=False
    )
    header = " ".join(f"{w}:{t}" for w in WEIGHTS for t in args.tasks)
    print(f"checkpoint {header}")
    cem = None
    if args.cem is not None:
        cem = CEMConfig(iterations=args.cem[0], num_samples=args.cem[1], num_elites=args.cem[2])
    for ckpt in args.checkpoints:
        policy = load_q_policy(ckpt, cem=cem)
        trainer_state = load_checkpoint(ckpt)["trainer"]
        rates = []
        for which in WEIGHTS:
            policy.network.load_state_dict(trainer_state[which])
            result = evaluate(lambda task, p=policy: p, protocol)
            rates += [result["tasks"][t]["success_rate"] for t in args.tasks]
        print(ckpt, " ".join(f"{r:.2f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
