"""Tests of soft modularization, ``architecture: soft-modular`` (mtopt.learning.soft_modular)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from architectures import (
    COMBOS,
    IDS,
    POINTMASS,
    WORKCELL,
    assert_learns_a_task_dependent_target,
    build,
    random_obs,
    small_config,
)
from fakes import fake_shape

from mtopt.config import to_dict
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    QNetworkConfig,
    network_shape,
    stored_network,
)
from mtopt.learning.q_networks import MLPQNetwork

SMALL = small_config("soft-modular")


@pytest.mark.parametrize(("spec", "encoder", "heads"), COMBOS, ids=IDS)
def test_shapes_routes_and_cem_scoring(spec, encoder: str, heads: str) -> None:
    cfg = dataclasses.replace(SMALL, state_encoder=encoder, heads=heads, module_layers=3)
    net = build(spec, cfg)
    b, n, a = 3, 5, net.shape.action_dim
    obs, task = random_obs(net.shape, b), torch.tensor([0, 1, 2])
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
    net = build(WORKCELL, dataclasses.replace(SMALL, state_encoder=encoder))
    one = random_obs(net.shape, 1, seed=3)
    obs = {k: v.expand(2, -1) for k, v in one.items()}  # the same state twice
    with torch.no_grad():
        ex = net.embed(obs, torch.tensor([0, 9])).extras
    assert not torch.allclose(ex["routes"][0], ex["routes"][1], atol=1e-4)
    assert not torch.allclose(ex["route_out"][0], ex["route_out"][1], atol=1e-4)


def test_the_modules_replace_the_merged_layers() -> None:
    net = build(WORKCELL, dataclasses.replace(SMALL, module_width=24, modules=3, heads="multi"))
    assert len(net.merged) == 0
    names = {n for n, _ in net.named_parameters()}
    assert "modular.first.weight" in names and "modular.weights.0" in names
    assert net.modular.weights[0].shape == (3, 24, 24)  # one 24x24 layer per module
    assert net.heads.weights[0].shape[1] == 24  # the heads read the modules' width
    # two layers: one 3x3 routing between them, then the combination of the last 3 modules
    assert [r.out_features for r in net.modular.route_out] == [9, 3]
    single = build(POINTMASS, dataclasses.replace(SMALL, module_layers=1, modules=2))
    assert [r.out_features for r in single.modular.route_out] == [2]
    obs, task = random_obs(single.shape, 2), torch.tensor([0, 1])
    with torch.no_grad():
        assert single.embed(obs, task).extras["routes"].shape == (2, 0, 2, 2)
        assert single(obs, torch.zeros(2, 3), task).shape == (2,)


def test_a_stored_config_and_shape_rebuild_the_same_network() -> None:
    cfg = dataclasses.replace(SMALL, state_encoder="objects-action", modules=3)
    net = build(WORKCELL, cfg)
    config, shape = stored_network(to_dict(net.config), to_dict(net.shape))
    assert (config, shape) == (net.config, net.shape)
    torch.manual_seed(7)  # other initial weights, then the stored ones
    again = build_q_network(config, shape).eval()
    again.load_state_dict(net.state_dict())
    obs, task, actions = random_obs(shape, 2), torch.tensor([3, 4]), torch.rand(2, 6) * 2 - 1
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
        bare.embed(random_obs(fake_shape(), 1), torch.tensor([0]))


def test_soft_modular_learns_a_task_dependent_target() -> None:
    """Q = 1 for task 0 when action[0] > 0, for task 1 when action[0] < 0."""
    shape = dataclasses.replace(fake_shape(), task_capacity=2)
    assert_learns_a_task_dependent_target(SMALL, shape)
