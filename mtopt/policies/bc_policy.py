"""The behaviour-cloning policy: acts with a :class:`~mtopt.learning.bc.BCNetwork`.

It is deterministic: each continuous dim is the network's mean and each discrete dim the more
likely value. Like the greedy Q-policy it can act for many attempts of a task at once
(:meth:`BCPolicy.act_batch`), so the evaluation protocol runs its attempts side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mtopt.learning.bc import BC_CHECKPOINT_KEYS, BCNetwork, decode_actions
from mtopt.learning.checkpoint import check_checkpoint_env, load_checkpoint, require_keys
from mtopt.spec import ActionSpec, EnvSpec
from mtopt.tasks import TaskSet


class BCPolicy:
    """A multi-task behaviour-cloning policy; ``reset(rng, task)`` then ``act(obs)``."""

    batchable = True
    """The evaluation may run its attempts side by side through :meth:`act_batch`."""

    def __init__(
        self,
        network: BCNetwork,
        task_set: TaskSet,
        action_spec: ActionSpec,
        obs_keys: tuple[str, ...],
        name: str = "bc",
    ) -> None:
        self.network = network.eval()
        self.task_set = task_set
        self.action_spec = action_spec
        self.obs_keys = obs_keys
        self.name = name
        self.device = next(network.parameters()).device
        self._task: str | None = None

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an episode of ``task`` (the policy is deterministic; ``rng`` is unused)."""
        del rng
        if task is not None:
            self.task_set.validate([task])
            self._task = task

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The action for one observation of the current task."""
        if self._task is None:
            raise RuntimeError("BCPolicy.reset(rng, task=...) must be called before act()")
        return self.act_batch([obs], self._task)[0]

    def generator_for(self, seed: int) -> None:
        """No generator: the policy draws nothing (the evaluation's lockstep interface)."""
        del seed

    @torch.no_grad()
    def act_batch(
        self, observations: list[Mapping[str, np.ndarray]], task: str, generator: object = None
    ) -> np.ndarray:
        """Actions ``(n, A)`` for ``n`` observations of ``task``, in one forward pass."""
        del generator
        self.task_set.validate([task])
        batch = {
            k: torch.from_numpy(np.stack([np.asarray(o[k]) for o in observations])).to(self.device)
            for k in self.obs_keys
        }
        slots = torch.full((len(observations),), self.task_set.slot(task), device=self.device)
        mean, logits = self.network(batch, slots)
        return decode_actions(mean, logits, self.action_spec).cpu().numpy().astype(np.float32)


def load_bc_policy(checkpoint: str | Path, spec: EnvSpec, device: str = "auto") -> BCPolicy:
    """The :class:`BCPolicy` of a behaviour-cloning checkpoint (``mtopt bc train``), loaded with
    ``weights_only=True``. A checkpoint of another environment or task set, or one that is not
    a behaviour-cloning checkpoint (a Q-learner's), is refused, naming it."""
    from mtopt.device import resolve_device
    from mtopt.learning.networks import loadable_shape, stored_network

    dev = resolve_device(device)
    payload = load_checkpoint(checkpoint, dev)
    require_keys(payload, checkpoint, BC_CHECKPOINT_KEYS)
    check_checkpoint_env(payload, spec, checkpoint)
    config, shape = stored_network(payload["network_config"], payload["network_shape"])
    shape = loadable_shape(
        shape, spec.task_set.attribute_table(), f"checkpoint {str(checkpoint)!r}"
    )
    head = payload["bc_head"]
    net = BCNetwork(config, shape, int(head["continuous"]), int(head["discrete"]), head["width"])
    net.load_state_dict(payload["bc"])
    name = f"bc:{Path(checkpoint).parent.parent.name}@{int(payload['step'])}"
    return BCPolicy(net.to(dev), spec.task_set, spec.action, tuple(payload["obs_keys"]), name)
