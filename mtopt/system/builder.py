"""The one builder of the learning pipeline: every piece, made from a config and a spec.

``mtopt train``, the demo, the experiments and both backends of ``mtopt run`` build their
log replay, task replay, impersonation, labeller, networks, trainer and Bellman updater here,
and write and restore one checkpoint format (:func:`checkpoint_payload`,
:func:`restore_trainer`). The pieces are wired by their callers: the local training loop
(:mod:`mtopt.system.training`) and the workers of the continuous system
(:mod:`mtopt.system.workers`).

A checkpoint is a dict saved with :func:`mtopt.learning.checkpoint.save_checkpoint` and loaded
with ``weights_only=True``; its keys are :data:`CHECKPOINT_KEYS` (plus, for a local training run,
the sampler's and updater's RNG states, so a resumed run continues bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtopt.config import to_dict
from mtopt.data.impersonation import Impersonation, OracleLabeller, SuccessLabeller
from mtopt.data.log_replay import LogReplay
from mtopt.data.replay import TaskReplay
from mtopt.learning.bellman import BellmanUpdater
from mtopt.learning.checkpoint import CHECKPOINT_KEYS, check_checkpoint_env, require_keys
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    NetworkShape,
    QNetworkConfig,
    loadable_shape,
    network_obs_keys,
    network_shape,
    resolve_network,
    stored_network,
)
from mtopt.learning.trainer import Trainer
from mtopt.spec import EnvSpec
from mtopt.system.training_config import LearnerConfig


class PipelineBuilder:
    """Makes the pieces of one learner for learner config ``config`` in environment ``spec``."""

    def __init__(self, config: LearnerConfig, spec: EnvSpec) -> None:
        if config.obs == "image" and spec.observation.image_size is None:
            raise ValueError(f"env {spec.name!r} has no camera: train with --obs state")
        self.config = config
        self.spec = spec
        self.task_set = spec.task_set
        self.tasks: tuple[str, ...] = self.task_set.validate(config.tasks) or self.task_set.names

    # -- shapes ------------------------------------------------------------------------------
    def network_config(self) -> QNetworkConfig:
        """The Q-network config: the user's choices (``trainer.network``), with the trunk
        that reads ``obs`` (conv for ``image``, MLP for ``state``)."""
        net = resolve_network(self.config.trainer.network, self.spec)
        return replace(net, kind="conv" if self.config.obs == "image" else "mlp")

    def network_shape(self) -> NetworkShape:
        """The sizes the spec fixes: task slots, action and state widths, image size, inputs,
        the state's structure."""
        return network_shape(self.network_config(), self.spec, self.config.obs)

    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys the learner reads: ``image`` or ``state``, then the network's
        low-dimensional inputs."""
        return network_obs_keys(self.network_config(), self.network_shape())

    # -- data --------------------------------------------------------------------------------
    def labeller(self) -> SuccessLabeller:
        """The success labeller of ``rewards``: the learned success detector, or (only under
        ``rewards: oracle``) the episodes' ground truth."""
        cfg = self.config
        if cfg.rewards == "oracle":
            blind = [t for t in self.tasks if not self.spec.has_ground_truth(t)]
            if blind:
                raise ValueError(
                    f"rewards: oracle needs ground-truth success, which task(s) {blind} lack "
                    "(added by outcome examples); use rewards: success_detector"
                )
            return OracleLabeller()
        if not cfg.success_detector:
            raise ValueError(
                "rewards: success_detector needs a success-detector checkpoint: pass "
                "--success-detector PATH (train one with 'mtopt sd train') or use --rewards oracle"
            )
        from mtopt.success.detector import SuccessDetector, SuccessDetectorLabeller

        detector = SuccessDetector.load(cfg.success_detector, self.task_set, cfg.trainer.device)
        return SuccessDetectorLabeller(detector)

    def replay(self, rng: np.random.Generator) -> TaskReplay:
        """An empty task replay for the trained tasks, holding the learner's observation keys."""
        replay_cfg = replace(self.config.replay, obs_keys=self.obs_keys())
        return TaskReplay(replay_cfg, self.task_set, rng, self.tasks)

    def impersonation(self, labeller: SuccessLabeller, rng: np.random.Generator) -> Impersonation:
        """The configured impersonation function over the trained tasks."""
        return Impersonation(self.config.impersonation, self.task_set, labeller, rng, self.tasks)

    def log_replay(
        self,
        directory: str | Path,
        labeller: SuccessLabeller,
        replay_rng: np.random.Generator,
        impersonation_rng: np.random.Generator,
        more_directories: Sequence[str | Path] = (),
    ) -> LogReplay:
        """Log replay from ``directory`` (then ``more_directories``) into a new task replay
        (``.replay``)."""
        return LogReplay(
            directory,
            self.impersonation(labeller, impersonation_rng),
            self.replay(replay_rng),
            more_directories,
        )

    # -- learning ----------------------------------------------------------------------------
    def trainer(self, seed: int) -> Trainer:
        """The trainer (online network, Adam, two target networks; CDS's filter under
        ``impersonation: cds``)."""
        trainer_config = replace(self.config.trainer, network=self.network_config())
        return Trainer(
            trainer_config,
            self.network_shape(),
            self.spec.action,
            seed=seed,
            cds_percentile=self.config.impersonation.cds_percentile,
        )

    def updater(
        self,
        generator: torch.Generator,
        target_1: torch.nn.Module | None = None,
        target_2: torch.nn.Module | None = None,
    ) -> BellmanUpdater:
        """A Bellman updater over ``target_1`` / ``target_2`` (fresh, gradient-free copies of
        the network when not given: a remote updater loads published weights into them)."""
        cfg = self.config
        if target_1 is None or target_2 is None:
            net, shape = self.network_config(), self.network_shape()
            target_1 = build_q_network(net, shape).requires_grad_(False)
            target_2 = build_q_network(net, shape).requires_grad_(False)
        return BellmanUpdater(
            target_1,
            target_2,
            cfg.cem,
            cfg.gamma,
            generator,
            self.spec.action,
        )

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_payload(
        self,
        trainer: Trainer,
        train_episode_counts: dict[str, int],
        config: Any,
        **extra: Any,
    ) -> dict[str, Any]:
        """The checkpoint of ``trainer``: :data:`CHECKPOINT_KEYS` and ``extra`` entries."""
        return {
            "trainer": trainer.state_dict(),
            "network_config": to_dict(trainer.config.network),
            "network_shape": to_dict(trainer.shape),
            "env": self.spec.describe(),
            "task_names": list(self.task_set.names),
            "trained_tasks": list(self.tasks),
            "obs_keys": list(self.obs_keys()),
            "train_episode_counts": {t: int(train_episode_counts.get(t, 0)) for t in self.tasks},
            "config": to_dict(config),
            **extra,
        }

    def restore_trainer(
        self, trainer: Trainer, payload: dict[str, Any], full: bool, path: str | Path
    ) -> None:
        """Load a checkpoint's networks into ``trainer`` (and with ``full`` its optimizer and
        step). Refuses a checkpoint of another environment, task set or network, naming the
        difference; a grown task set's new tasks may bring attributes (:func:`~mtopt.learning.
        networks.loadable_shape`)."""
        require_keys(payload, path, CHECKPOINT_KEYS)
        check_checkpoint_env(payload, self.spec, path)
        config, shape = stored_network(payload["network_config"], payload["network_shape"])
        stored = (
            config,
            loadable_shape(shape, trainer.shape.task_attributes, f"checkpoint {str(path)!r}"),
        )
        mine = (trainer.config.network, trainer.shape)
        if stored != mine:
            diff = {
                f.name: (getattr(a, f.name), getattr(b, f.name))
                for a, b in zip(stored, mine, strict=True)
                for f in fields(a)
                if getattr(a, f.name) != getattr(b, f.name)
            }
            raise ValueError(
                f"the network of checkpoint {str(path)!r} differs from this run's "
                "(field: checkpoint, run): "
                + ", ".join(f"{k}: {a!r}, {b!r}" for k, (a, b) in diff.items())
                + "; set the run's trainer.network to match or use a new --out"
            )
        state = payload["trainer"]
        if full:
            trainer.load_state_dict(state)
        else:
            for key in ("online", "target_1", "target_2"):
                getattr(trainer, key).load_state_dict(state[key])


def check_run_directory(out: str | Path) -> Path:
    """``out`` as a run directory: refused with a message naming it when it is an existing file
    (checked before any data is read, so a mistyped ``--out`` fails at once)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--out {str(path)!r} is an existing file; give a directory")
    return path
