"""Policies from a learned Q-function: greedy CEM and ε-greedy (paper Sec. 4: ε = 0.2).

At each step the policy maximises ``Q(s, a, task)`` over actions with CEM, embedding the state
once and scoring the CEM samples from the embedding. With probability ε an ε-greedy policy
explores instead; what it randomises is set by ``exploration``:

* ``all``: a uniformly random action (continuous dims uniform in their bounds, discrete dims
  a fair coin);
* ``motion``: the greedy action with its continuous (motion) dims replaced by uniform ones;
  the gripper and terminate choices stay greedy. With ``all`` and ε = 0.2, a random step opens
  or closes the gripper against the policy's choice, or terminates, with probability 0.1 each
  per step, so most ε-greedy episodes of a 10-step carry drop the object or stop early.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from mtopt.learning.cem import CEMConfig, cem_maximize
from mtopt.learning.checkpoint import CHECKPOINT_KEYS, check_checkpoint_env, require_keys
from mtopt.learning.networks import QNetwork
from mtopt.policies import Exploration, PolicyConfig, check_exploration
from mtopt.policies.exploration import uniform_random_action
from mtopt.spec import ActionSpec, EnvSpec
from mtopt.tasks import TaskSet


class QPolicy:
    """Greedy (``epsilon=0``) or ε-greedy CEM policy over a multi-task Q-network."""

    def __init__(
        self,
        network: QNetwork,
        task_set: TaskSet,
        action_spec: ActionSpec,
        cem: CEMConfig | None = None,
        epsilon: float = 0.0,
        obs_keys: tuple[str, ...] = ("state",),
        name: str = "checkpoint",
        exploration: Exploration = "all",
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        check_exploration(exploration)
        self.exploration = exploration
        self.network = network.eval()
        self.task_set = task_set
        self.cem = cem or CEMConfig()
        self.epsilon = epsilon
        self.obs_keys = obs_keys
        self.action_spec = action_spec
        self.name = name
        self.device = next(network.parameters()).device
        self._task: str | None = None
        self._rng = np.random.default_rng(0)
        self._gen = torch.Generator(device=self.device)

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        """Start an episode of ``task`` with randomness drawn from ``rng``."""
        if task is not None:
            self.task_set.validate([task])
            self._task = task
        self._rng = rng
        self._gen.manual_seed(int(rng.integers(2**62)))

    def random_action(self) -> np.ndarray:
        """A uniformly random action (the ε branch)."""
        return uniform_random_action(self.action_spec, self._rng)

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The action for one observation of the current task."""
        if self._task is None:
            raise RuntimeError("QPolicy.reset(rng, task=...) must be called before act()")
        explore = self.epsilon > 0 and self._rng.random() < self.epsilon
        if explore and self.exploration == "all":
            return self.random_action()
        action = self._greedy(obs)
        if explore:  # motion: random continuous dims, greedy gripper and terminate
            random = self.random_action()
            for d in self.action_spec.continuous_dims:
                action[d] = random[d]
        return action

    @property
    def batchable(self) -> bool:
        """Whether :meth:`act_batch` may act for it (the greedy policy)."""
        return self.epsilon == 0

    def generator_for(self, seed: int) -> torch.Generator:
        """A generator for :meth:`act_batch` on the policy's device, seeded from ``seed``."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(np.random.default_rng(seed).integers(2**62)))
        return gen

    @torch.no_grad()
    def act_batch(
        self, observations: list[Mapping[str, np.ndarray]], task: str, generator: torch.Generator
    ) -> np.ndarray:
        """Greedy actions ``(n, A)`` for ``n`` observations of ``task``: one CEM over all of
        them (the evaluation's lockstep attempts). Only for the greedy policy (ε = 0)."""
        if self.epsilon > 0:
            raise ValueError(f"act_batch is greedy; this policy has epsilon {self.epsilon}")
        self.task_set.validate([task])
        return self._cem_best(
            observations, [self.task_set.slot(task)] * len(observations), generator
        )

    def clone(self) -> QPolicy:
        """Another policy over the same network and settings with its own episode state (task,
        generators): one per robot when several robots share a process and its network."""
        return QPolicy(
            self.network,
            self.task_set,
            self.action_spec,
            self.cem,
            self.epsilon,
            self.obs_keys,
            name=self.name,
            exploration=self.exploration,
        )

    @staticmethod
    @torch.no_grad()
    def act_together(
        policies: Sequence[QPolicy],
        observations: Sequence[Mapping[str, np.ndarray]],
        generator: torch.Generator,
    ) -> np.ndarray:
        """Actions ``(n, A)`` of ``n`` policies over one network, each in its own episode (its
        task and its ε draws, as :meth:`act` makes them), with one CEM over every state that
        needs the greedy action: robots simulated side by side in one process. The CEM samples
        come from ``generator``, so an episode's actions depend on its neighbours in the batch
        (deterministically: same seeds, same batches, same actions)."""
        if len(policies) != len(observations) or not policies:
            raise ValueError(
                f"need one observation per policy, got {len(policies)} policies and "
                f"{len(observations)} observations"
            )
        first = policies[0]
        for p in policies[1:]:
            if p.network is not first.network or p.cem != first.cem or p.obs_keys != first.obs_keys:
                raise ValueError("act_together needs policies over one network, CEM and inputs")
        actions: list[np.ndarray | None] = [None] * len(policies)
        explores = []
        for i, p in enumerate(policies):
            if p._task is None:
                raise RuntimeError("QPolicy.reset(rng, task=...) must be called before acting")
            explore = p.epsilon > 0 and p._rng.random() < p.epsilon
            explores.append(explore)
            if explore and p.exploration == "all":
                actions[i] = p.random_action()
        greedy = [i for i, a in enumerate(actions) if a is None]
        if greedy:
            slots = [first.task_set.slot(policies[i]._task) for i in greedy]
            best = first._cem_best([observations[i] for i in greedy], slots, generator)
            for row, i in enumerate(greedy):
                action = best[row]
                if explores[i]:  # motion: random continuous dims, greedy gripper and terminate
                    random = policies[i].random_action()
                    for d in first.action_spec.continuous_dims:
                        action[d] = random[d]
                actions[i] = action
        return np.stack(actions).astype(np.float32)

    def _greedy(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._cem_best([obs], [self.task_set.slot(self._task)], self._gen)[0]

    def _cem_best(
        self,
        observations: Sequence[Mapping[str, np.ndarray]],
        slots: Sequence[int],
        generator: torch.Generator,
    ) -> np.ndarray:
        """One CEM over ``Q(s_i, ., slot_i)`` for every observation: the best actions ``(n, A)``."""
        batch = {
            k: torch.from_numpy(np.stack([np.asarray(o[k]) for o in observations])).to(self.device)
            for k in self.obs_keys
        }
        task = torch.tensor(list(slots), device=self.device)
        score = self.network.score_fn(batch, task, use_logits=True)
        action, _ = cem_maximize(
            score, len(observations), self.action_spec, self.cem, generator, self.device
        )
        return action.cpu().numpy().astype(np.float32)


def load_q_policy(checkpoint: str, spec: EnvSpec, policy: PolicyConfig | None = None) -> QPolicy:
    """A :class:`QPolicy` over the online network of a training checkpoint, acting as
    ``policy`` says (greedy on the best device by default).

    The checkpoint is loaded with ``weights_only=True``; it must have been trained on the
    environment ``spec`` and its task slots must match the spec's task set (a checkpoint of
    another environment or task set is refused, naming both).
    """
    from mtopt.data.episode import learned_policy_name
    from mtopt.device import resolve_device
    from mtopt.learning.checkpoint import checkpoint_run_tag, load_checkpoint
    from mtopt.learning.network_builder import build_q_network
    from mtopt.learning.networks import loadable_shape, stored_network

    policy = policy or PolicyConfig()
    dev = resolve_device(policy.device)
    payload = load_checkpoint(checkpoint, dev)
    require_keys(payload, checkpoint, CHECKPOINT_KEYS)
    check_checkpoint_env(payload, spec, checkpoint)
    config, shape = stored_network(payload["network_config"], payload["network_shape"])
    # a care network reads the run's task attributes (a grown task set's new tasks' too)
    shape = loadable_shape(shape, spec.task_set.attribute_table(), f"checkpoint {checkpoint!r}")
    net = build_q_network(config, shape)
    net = net.to(dev)
    net.load_state_dict(payload["trainer"]["online"])
    name = learned_policy_name(checkpoint_run_tag(checkpoint), int(payload["step"]))
    return q_policy_from(net, spec, policy, tuple(payload["obs_keys"]), name)


def q_policy_from(
    network: QNetwork,
    spec: EnvSpec,
    policy: PolicyConfig,
    obs_keys: tuple[str, ...],
    name: str = "checkpoint",
) -> QPolicy:
    """A :class:`QPolicy` of ``network`` in environment ``spec``, acting as ``policy`` says."""
    return QPolicy(
        network,
        spec.task_set,
        spec.action,
        policy.cem,
        policy.epsilon,
        obs_keys,
        name=name,
        exploration=policy.exploration,
    )
