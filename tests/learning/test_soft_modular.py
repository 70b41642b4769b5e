"""Tests of soft modularization, ``architecture: soft-modular`` (mtopt.learning.soft_modular)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fakes import fake_shape

from mtopt.config import to_dict
from mtopt.envs import EnvConfig, make_spec
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    QNetworkConfig,
    network_shape,
    resolve_network,
    stored_network,
)
from mtopt.learning.q_networks import MLPQNetwork
from mtopt.learning.targets import q_log_loss

WORKCELL = EnvConfig().spec()
POINTMASS = make_spec("pointmass")
SMALL = QNetworkConfig(
    kind="mlp", mlp_width=32, fc_width=16, slot_action_width=8, architecture="soft-modular"
)
COMBOS = [
    (WORKCELL, encoder, heads)
    for encoder in ("flat", "objects", "objects-action")
    for heads in ("single", "multi")
] + [(POINTMASS, "flat", heads) for heads in ("single", "multi")]
IDS = [f"{spec.name}-{encoder}-{heads}" for spec, encoder, heads in COMBOS]


def _build(spec, config: QNetworkConfig, seed: int = 0):
    config = resolve_network(config, spec)
    shape = network_shape(config, spec)
    torch.manual_seed(seed)
    return build_q_network(config, shape).eval()


def _obs(shape, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = {"state": torch.randn(batch, shape.state_dim, generator=g)}
    for key, width in shape.inputs:
        obs[key] = torch.rand(batch, width, generator=g)
    return obs


@pytest.mark.parametrize(("spec", "encoder", "heads"), COMBOS, ids=IDS)
def test_shapes_routes_and_cem_scoring(spec, encoder: str, heads: str) -> None:
    cfg = dataclasses.replace(SMALL, state_encoder=encoder, heads=heads, module_layers=3)
    net = _build(spec, cfg)
    b, n, a = 3, 5, net.shape.action_dim
    obs, task = _obs(net.shape, b), torch.tensor([0, 1, 2])
    actions = torch.rand(b, n, a, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        emb = net.embed(obs, task)
        routes, out = emb.extras["routes"], emb.extras["route_out"]
        assert routes.shape == (b, 2, 4, 4) and out.shape == (b, 4)
        for p in (routes, out):  # every row of every routing is a distribution
            assert torch.all(p >= 0)
            torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))
        tiled = net.q_logits_from_embedding(emb, actions)
        assert tiled.shape == (b, n)
        for j in range(n):  # N actions at once == N single-action calls
            torch.testing.assert_close(
                tiled[:, j], net.logits(obs, actions[:, j], task), atol=1e-5, rtol=0
            )
        q = net(obs, actions[:, 0], task)
        assert q.shape == (b,) and torch.all((q >= 0) & (q <= 1))


@pytest.mark.parametrize("encoder", ["flat", "objects-action"])
def test_the_routes_depend_on_the_task(encoder: str) -> None:
    net = _build(WORKCELL, dataclasses.replace(SMALL, state_encoder=encoder))
    one = _obs(net.shape, 1, seed=3)
    obs = {k: v.expand(2, -1) for k, v in one.items()}  # the same state twice
    with torch.no_grad():
        ex = net.embed(obs, torch.tensor([0, 9])).extras
    assert not torch.allclose(ex["routes"][0], ex["routes"][1], atol=1e-4)
    assert not torch.allclose(ex["route_out"][0], ex["route_out"][1], atol=1e-4)


def test_the_modules_replace_the_merged_layers() -> None:
    net = _build(WORKCELL, dataclasses.replace(SMALL, module_width=24, modules=3, heads="multi"))
    assert len(net.merged) == 0
    names = {n for n, _ in net.named_parameters()}
    assert "modular.first.weight" in names and "modular.weights.0" in names
    assert net.modular.weights[0].shape == (3, 24, 24)  # one 24x24 layer per module
    assert net.heads.weights[0].shape[1] == 24  # the heads read the modules' width
    # two layers: one 3x3 routing between them, then the combination of the last 3 modules
    assert [r.out_features for r in net.modular.route_out] == [9, 3]
    single = _build(POINTMASS, dataclasses.replace(SMALL, module_layers=1, modules=2))
    assert [r.out_features for r in single.modular.route_out] == [2]
    obs, task = _obs(single.shape, 2), torch.tensor([0, 1])
    with torch.no_grad():
        assert single.embed(obs, task).extras["routes"].shape == (2, 0, 2, 2)
        assert single(obs, torch.zeros(2, 3), task).shape == (2,)


def test_a_stored_config_and_shape_rebuild_the_same_network() -> None:
    cfg = dataclasses.replace(SMALL, state_encoder="objects-action", modules=3)
    net = _build(WORKCELL, cfg)
    config, shape = stored_network(to_dict(net.config), to_dict(net.shape))
    assert (config, shape) == (net.config, net.shape)
    torch.manual_seed(7)  # other initial weights, then the stored ones
    again = build_q_network(config, shape).eval()
    again.load_state_dict(net.state_dict())
    obs, task, actions = _obs(shape, 2), torch.tensor([3, 4]), torch.rand(2, 6) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(again(obs, actions, task), net(obs, actions, task))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"architecture": "modular"}, r"architecture must be one of \('mtopt', 'soft-modular', "),
        ({"modules": 1}, "modules must be an integer >= 2, got 1"),
        ({"module_layers": 0}, "module_layers must be an integer >= 1, got 0"),
        ({"module_width": -8}, "module_width must be an integer >= 0, got -8"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QNetworkConfig(**kwargs)


def test_the_conv_trunk_and_a_bare_network_are_refused() -> None:
    conv = QNetworkConfig(kind="conv", conv_channels=8, architecture="soft-modular")
    with pytest.raises(ValueError, match="architecture 'soft-modular' needs the state trunk"):
        build_q_network(conv, network_shape(conv, WORKCELL, obs="image"))
    bare = MLPQNetwork(dataclasses.replace(SMALL, state_encoder="flat"), fake_shape())
    with pytest.raises(ValueError, match=r"build it with .*build_q_network"):
        bare.embed(_obs(fake_shape(), 1), torch.tensor([0]))


def test_soft_modular_learns_a_task_dependent_target() -> None:
    """Q = 1 for task 0 when action[0] > 0, for task 1 when action[0] < 0."""
    cfg = dataclasses.replace(SMALL, state_encoder="flat")
    shape = dataclasses.replace(fake_shape(), task_capacity=2)
    torch.manual_seed(0)
    net = build_q_network(cfg, shape)
    g = torch.Generator().manual_seed(0)
    b = 384
    obs = _obs(shape, b, seed=1)
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
    probe = _obs(shape, 16, seed=2)
    with torch.no_grad():
        for slot, sign in ((0, 1.0), (1, -1.0)):
            task = torch.full((16,), slot)
            emb = net.embed(probe, task)
            cand = torch.zeros(16, 2, 6)
            cand[:, 0, 0], cand[:, 1, 0] = 0.8, -0.8
            best = net.q_logits_from_embedding(emb, cand).argmax(dim=1)
            greedy = cand[torch.arange(16), best, 0]
            assert torch.all(torch.sign(greedy) == sign), (slot, greedy)
