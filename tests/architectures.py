"""Shared checks of the multi-task network architectures (soft modularization, CARE): the
encoder x heads combinations, building, random observations, and the tiny learning test."""

from __future__ import annotations

import dataclasses

import torch

from mtopt.envs import EnvConfig, make_spec
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    NetworkShape,
    QNetwork,
    QNetworkConfig,
    network_shape,
    resolve_network,
)
from mtopt.learning.targets import q_log_loss

WORKCELL = EnvConfig().spec()
POINTMASS = make_spec("pointmass")
COMBOS = [
    (WORKCELL, encoder, heads)
    for encoder in ("flat", "objects", "objects-action")
    for heads in ("single", "multi")
] + [(POINTMASS, "flat", heads) for heads in ("single", "multi")]
"""(spec, state_encoder, heads) of every combination an architecture must support."""
IDS = [f"{spec.name}-{encoder}-{heads}" for spec, encoder, heads in COMBOS]


def small_config(architecture: str) -> QNetworkConfig:
    """A small MLP network of ``architecture``."""
    return QNetworkConfig(
        kind="mlp", mlp_width=32, fc_width=16, slot_action_width=8, architecture=architecture
    )


def build(spec, config: QNetworkConfig, seed: int = 0) -> QNetwork:
    """The network of ``config`` for ``spec``, seeded, in eval mode."""
    config = resolve_network(config, spec)
    shape = network_shape(config, spec)
    torch.manual_seed(seed)
    return build_q_network(config, shape).eval()


def random_obs(shape: NetworkShape, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random observations for a network of ``shape``."""
    g = torch.Generator().manual_seed(seed)
    obs = {"state": torch.randn(batch, shape.state_dim, generator=g)}
    for key, width in shape.inputs:
        obs[key] = torch.rand(batch, width, generator=g)
    return obs


def assert_learns_a_task_dependent_target(config: QNetworkConfig, shape: NetworkShape) -> None:
    """Q = 1 for task 0 when action[0] > 0, for task 1 when action[0] < 0: the loss falls and
    CEM-style scoring picks the right sign for both tasks."""
    cfg = dataclasses.replace(config, state_encoder="flat")
    torch.manual_seed(0)
    net = build_q_network(cfg, shape)
    g = torch.Generator().manual_seed(0)
    b = 384
    obs = random_obs(shape, b, seed=1)
    actions = torch.rand(b, 6, generator=g) * 2 - 1
    task = torch.randint(0, 2, (b,), generator=g)
    target = ((actions[:, 0] > 0) == (task == 0)).float()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        loss = q_log_loss(net.logits(obs, actions, task), target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.35 * losses[0], (losses[0], losses[-1])
    probe = random_obs(shape, 16, seed=2)
    with torch.no_grad():
        for slot, sign in ((0, 1.0), (1, -1.0)):
            task = torch.full((16,), slot)
            cand = torch.zeros(16, 2, 6)
            cand[:, 0, 0], cand[:, 1, 0] = 0.8, -0.8
            best = net.q_logits_from_embedding(net.embed(probe, task), cand).argmax(dim=1)
            greedy = cand[torch.arange(16), best, 0]
            assert torch.all(torch.sign(greedy) == sign), (slot, greedy)
