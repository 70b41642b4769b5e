"""How often a policy's evaluation attempts end in a contact blow-up of the simulation.

    python benchmarks/physics_blow_ups.py [--checkpoint CKPT] [--tasks lift-any ...] \
        [--episodes 100] [--seed 10000] [--cem 3 128 12] [--workcell.impratio 10] \
        [--mjcf-replace 'cone="pyramidal"' 'cone="elliptic"']

Runs the evaluation protocol's attempts (same seeds and scenes as ``mtopt eval``) with a
checkpoint's greedy CEM policy, or, without ``--checkpoint``, with the aimed controllers of
``mtopt.envs.aimed``, and counts per task the successes and the attempts that the
workcell ended as ``physics_unstable`` (a MuJoCo warning, an object thrown out of the
workcell or a gripper jump; docs/workcell.md). Physics settings can be varied through the
``--workcell.*`` fields, and, for settings the config does not expose, by plain text
replacements in the generated MJCF (``--mjcf-replace OLD NEW``, repeatable; each OLD must
occur in the model). This is an experiment knob for finding a steadier contact model, not a
way to configure the library.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import tyro

from mtopt.envs import scene
from mtopt.envs.workcell import WorkcellConfig
from mtopt.evaluation.protocol import EpisodePolicy, ProtocolConfig, evaluate
from mtopt.envs.aimed import AimedPickPolicy, AimedPlacePolicy
from mtopt.learning.cem import CEMConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.tasks import OBJECT_ACQUISITION, default_task_set


@dataclass(frozen=True)
class Args:
    """Count the evaluation attempts that a physics blow-up ends."""

    checkpoint: str | None = None
    """Training checkpoint whose greedy policy acts; none: the aimed controllers."""
    tasks: tuple[str, ...] = ()
    """Tasks to attempt (default: all 12)."""
    episodes: int = 100
    """Attempts per task."""
    seed: int = ProtocolConfig().seed
    """Base seed of the evaluation protocol's scenes."""
    cem: tuple[int, int, int] = (3, 128, 12)
    """The checkpoint policy's CEM: iterations, samples, elites (the learning benchmark's)."""
    workcell: WorkcellConfig = field(default_factory=WorkcellConfig)
    """The workcell (e.g. the sessions 4-15 contacts: ``--workcell.impratio 10``)."""
    mjcf_replace: tuple[str, ...] = ()
    """Pairs ``OLD NEW`` of text replacements in the generated MJCF."""


def patch_mjcf(pairs: tuple[str, ...]) -> None:
    """Make :func:`mtopt.envs.scene.build_mjcf` apply the ``OLD NEW`` replacements."""
    if len(pairs) % 2:
        raise ValueError(f"mjcf_replace takes OLD NEW pairs, got {len(pairs)} strings")
    if not pairs:
        return
    build = scene.build_mjcf

    def patched(n_slots: int) -> str:
        xml = build(n_slots)
        for old, new in zip(pairs[::2], pairs[1::2], strict=True):
            if old not in xml:
                raise ValueError(f"mjcf_replace: {old!r} does not occur in the workcell's MJCF")
            xml = xml.replace(old, new)
        return xml

    scene.build_mjcf = patched


def main(args: Args) -> None:
    task_set = default_task_set()
    tasks = tuple(args.tasks) or task_set.names
    patch_mjcf(args.mjcf_replace)
    if args.checkpoint is None:
        pick, place = AimedPickPolicy(args.workcell), AimedPlacePolicy(args.workcell)
    else:
        it, n, k = args.cem
        cem = CEMConfig(iterations=it, num_samples=n, num_elites=k)
        pick = place = load_q_policy(
            args.checkpoint, cem=cem, max_translation=args.workcell.max_translation
        )
    print(
        f"physics_blow_ups  policy={args.checkpoint or 'aimed'}  episodes={args.episodes}  "
        f"seed={args.seed}  impratio={args.workcell.impratio}  "
        f"timestep={args.workcell.timestep}  substeps={args.workcell.substeps}  "
        f"mjcf_replace={list(args.mjcf_replace)}  python={platform.python_version()}"
    )
    protocol = ProtocolConfig(
        episodes_per_task=args.episodes, seed=args.seed, tasks=tuple(tasks), workcell=args.workcell
    )

    def policy_for(task: str) -> EpisodePolicy:
        return pick if task_set[task].skill == OBJECT_ACQUISITION else place

    rows = evaluate(policy_for, protocol)["tasks"]
    print(f"{'task':<16}{'success':>9}{'unstable':>10}")
    totals = {"lift": [0, 0, 0], "place": [0, 0, 0]}  # attempts, successes, unstable
    for task, r in rows.items():
        print(f"{task:<16}{r['success_rate']:>9.2f}{r['physics_unstable']:>10}")
        t = totals["lift" if task_set[task].skill == OBJECT_ACQUISITION else "place"]
        t[0] += r["episodes"]
        t[1] += r["successes"]
        t[2] += r["physics_unstable"]
    for skill, (att, wins, unstable) in totals.items():
        if att:
            print(
                f"{skill} attempts: {att}, success {wins / att:.3f}, ended by a blow-up "
                f"{unstable} ({unstable / att:.1%})"
            )


if __name__ == "__main__":
    main(tyro.cli(Args))
