"""Tests of the Q-networks (mtopt.learning.networks / q_networks)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fakes import FakeSpec, fake_shape

from mtopt.envs import make_spec
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    QNetworkConfig,
    network_shape,
    resolve_network,
    stored_network,
    task_one_hot,
)
from mtopt.learning.q_networks import ConvQNetwork, MLPQNetwork, conv_output_size
from mtopt.learning.targets import q_log_loss

STATE_DIM = 10
# a small conv config keeps the tests fast; the defaults are exercised by the parameter count
SMALL_CONV = QNetworkConfig(kind="conv", conv_channels=16, fc_width=32)
MLP = QNetworkConfig(kind="mlp", mlp_width=64, fc_width=32, state_encoder="flat")
SHAPE = fake_shape(STATE_DIM, image_size=64)
ALL_CONFIGS = [
    SMALL_CONV,
    dataclasses.replace(SMALL_CONV, heads="multi"),
    MLP,
    dataclasses.replace(MLP, heads="multi"),
]
IDS = ["conv-single", "conv-multi", "mlp-single", "mlp-multi"]


def _obs(batch: int, seed: int = 0, hw: tuple[int, int] = (64, 64)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (batch, *hw, 3), generator=g, dtype=torch.uint8),
        "state": torch.randn(batch, STATE_DIM, generator=g),
        "gripper_status": torch.randint(0, 2, (batch, 1), generator=g).float(),
        "gripper_height": torch.rand(batch, 1, generator=g),
    }


def _net(config: QNetworkConfig, seed: int = 0, shape=SHAPE):
    torch.manual_seed(seed)
    return build_q_network(config, shape).eval()


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_shapes_and_range(config: QNetworkConfig) -> None:
    net = _net(config)
    b = 5
    obs, task = _obs(b), torch.arange(b)
    actions = torch.rand(b, 6) * 2 - 1
    q = net(obs, actions, task)
    assert q.shape == (b,) and torch.all((q >= 0) & (q <= 1))
    torch.testing.assert_close(torch.sigmoid(net.logits(obs, actions, task)), q)
    emb = net.embed(obs, task)
    assert net.q_from_embedding(emb, torch.rand(b, 7, 6)).shape == (b, 7)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_q_from_embedding_matches_forward(config: QNetworkConfig) -> None:
    net = _net(config)
    b, n = 3, 4
    obs, task = _obs(b, seed=1), torch.tensor([2, 0, 5])
    actions = torch.rand(b, n, 6, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        tiled = net.q_from_embedding(net.embed(obs, task), actions)
        for j in range(n):
            torch.testing.assert_close(
                tiled[:, j], net(obs, actions[:, j], task), atol=1e-6, rtol=0
            )
        # and per row, i.e. rows do not leak into each other
        for i in range(b):
            one = {k: v[i : i + 1] for k, v in obs.items()}
            single = net.q_from_embedding(net.embed(one, task[i : i + 1]), actions[i : i + 1])
            torch.testing.assert_close(single[0], tiled[i], atol=1e-6, rtol=0)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_task_conditioning_changes_output(config: QNetworkConfig) -> None:
    net = _net(config)
    obs, actions = _obs(2), torch.zeros(2, 6)
    with torch.no_grad():
        q_a = net(obs, actions, torch.tensor([0, 0]))
        q_b = net(obs, actions, torch.tensor([1, 1]))
    assert torch.all((q_a - q_b).abs() > 1e-6)


@pytest.mark.parametrize("config", [ALL_CONFIGS[1], ALL_CONFIGS[3]], ids=["conv", "mlp"])
def test_multi_head_selects_the_task_head(config: QNetworkConfig) -> None:
    net = _net(config)
    obs, actions = _obs(3), torch.rand(3, 6)
    task = torch.tensor([4, 1, 4])
    with torch.no_grad():
        before = net(obs, actions, task)
        last = net.heads.weights[-1]
        last[1].add_(1.0)  # perturb only head 1's output layer
        after = net(obs, actions, task)
    assert after[1] != before[1]
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]], atol=0, rtol=0)
    # gradients reach only the selected heads
    net.zero_grad()
    net.logits(obs, actions, task).sum().backward()
    grad = net.heads.weights[0].grad
    used = grad.flatten(1).abs().sum(1) > 0
    assert used.tolist() == [i in (1, 4) for i in range(SHAPE.task_capacity)]


def test_parameter_counts_reasonable() -> None:
    def count(cfg: QNetworkConfig, shape=SHAPE) -> int:
        return sum(p.numel() for p in build_q_network(cfg, shape).parameters())

    conv = count(QNetworkConfig())
    assert 200_000 < conv < 2_000_000
    assert count(QNetworkConfig(heads="multi")) > conv
    mlp = count(QNetworkConfig(kind="mlp", state_encoder="flat"), fake_shape(32))
    assert 20_000 < mlp < 1_000_000


@pytest.mark.parametrize("hw", [(64, 64), (48, 48), (40, 40)])
def test_conv_image_sizes(hw: tuple[int, int]) -> None:
    net = _net(SMALL_CONV, shape=fake_shape(STATE_DIM, image_size=hw[0]))
    q = net(_obs(2, hw=hw), torch.zeros(2, 6), torch.tensor([0, 3]))
    assert q.shape == (2,)
    tower_hw, _ = conv_output_size(SMALL_CONV, hw[0])
    assert tuple(net.embed(_obs(1, hw=hw), torch.tensor([0])).features.shape[2:]) == tower_hw
    with pytest.raises(ValueError, match="image must have shape"):
        net(_obs(2, hw=(32, 32)), torch.zeros(2, 6), torch.tensor([0, 3]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "transformer"}, r"kind must be one of \('conv', 'mlp'\), got 'transformer'"),
        ({"heads": "many"}, r"heads must be one of \('single', 'multi'\), got 'many'"),
        ({"length_scale": 0}, "length_scale must be a number > 0, got 0"),
        ({"conv_channels": 0}, "conv_channels must be an integer >= 1, got 0"),
        ({"tower_pool_after": (9,)}, r"tower_pool_after must hold layer indices in \[0, 6\]"),
        ({"mlp_merged_layers": -1}, "mlp_merged_layers must be an integer >= 0"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QNetworkConfig(**kwargs)


def test_input_validation() -> None:
    net = _net(MLP)
    with pytest.raises(ValueError, match=r"task slots must be in \[0, 15\]"):
        net(_obs(2), torch.zeros(2, 6), torch.tensor([0, 16]))
    with pytest.raises(ValueError, match="actions must have shape"):
        net(_obs(2), torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="gripper_height"):
        obs = _obs(2)
        del obs["gripper_height"]
        net(obs, torch.zeros(2, 6), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="kind='conv'"):
        ConvQNetwork(MLP, SHAPE)
    with pytest.raises(ValueError, match="kind='mlp'"):
        MLPQNetwork(SMALL_CONV, SHAPE)
    with pytest.raises(ValueError, match="state_dim >= 1"):
        build_q_network(MLP, fake_shape(0))
    torch.testing.assert_close(task_one_hot(torch.tensor([1]), 3), torch.tensor([[0.0, 1, 0]]))


def test_channels_last_model_matches() -> None:
    net = _net(SMALL_CONV)
    obs, actions, task = _obs(2), torch.rand(2, 6), torch.tensor([0, 1])
    with torch.no_grad():
        ref = net(obs, actions, task)
        net = net.to(memory_format=torch.channels_last)
        torch.testing.assert_close(net(obs, actions, task), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("heads", ["single", "multi"])
def test_mlp_learns_task_dependent_target(heads: str) -> None:
    """The log loss fits a soft target that depends on state, action and task."""
    cfg = dataclasses.replace(MLP, heads=heads)
    torch.manual_seed(0)
    net = build_q_network(cfg, dataclasses.replace(SHAPE, task_capacity=4))
    g = torch.Generator().manual_seed(0)
    b = 256
    obs = _obs(b, seed=5)
    actions = torch.rand(b, 6, generator=g) * 2 - 1
    task = torch.randint(0, 4, (b,), generator=g)
    sign = torch.tensor([1.0, -1.0, 0.5, -0.5])[task]
    target = torch.sigmoid(2.0 * sign * (obs["state"][:, 0] + actions[:, 0]) - actions[:, 1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    # the irreducible part of the cross-entropy is the entropy of the soft targets
    entropy = q_log_loss(torch.logit(target), target).item()
    first = None
    for _ in range(300):
        loss = q_log_loss(net.logits(obs, actions, task), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    excess_first, excess_last = first - entropy, loss.item() - entropy
    assert excess_last < 0.2 * excess_first, (first, loss.item(), entropy)


def test_network_shape_comes_from_the_spec():
    workcell = make_spec("workcell")
    shape = network_shape(QNetworkConfig(kind="mlp"), workcell)
    assert (shape.task_capacity, shape.action_dim, shape.state_dim) == (16, 6, 160)
    assert shape.inputs == (("gripper_status", 1), ("gripper_height", 1))
    assert shape.structure is workcell.structure
    chosen = network_shape(QNetworkConfig(kind="mlp", extra_inputs=("gripper_motion",)), workcell)
    assert chosen.inputs[-1] == ("gripper_motion", 3) and chosen.input_dim == 5
    conv = network_shape(QNetworkConfig(), workcell, obs="image")
    assert conv.image_size == 64 and conv.state_dim == 0
    point = network_shape(QNetworkConfig(kind="mlp"), make_spec("pointmass"))
    assert (point.task_capacity, point.action_dim, point.state_dim, point.inputs) == (8, 3, 10, ())


def test_the_auto_encoder_follows_the_env():
    auto = QNetworkConfig(kind="mlp")
    assert auto.state_encoder == "auto"
    assert resolve_network(auto, make_spec("workcell")).state_encoder == "objects"
    assert resolve_network(auto, make_spec("pointmass")).state_encoder == "flat"
    chosen = QNetworkConfig(kind="mlp", state_encoder="objects-action")
    assert resolve_network(chosen, make_spec("workcell")) is chosen
    with pytest.raises(ValueError, match="resolved for an environment"):
        build_q_network(auto, SHAPE)


def test_network_shape_refuses_what_the_env_cannot_feed():
    objects = QNetworkConfig(kind="mlp", state_encoder="objects")
    with pytest.raises(ValueError, match=r"state_encoder 'objects'.*env 'pointmass' has none"):
        network_shape(objects, make_spec("pointmass"))
    with pytest.raises(
        ValueError, match=r"extra_inputs \['depth'\].*allowed: \['gripper_motion'\]"
    ):
        network_shape(QNetworkConfig(kind="mlp", extra_inputs=("depth",)), make_spec("workcell"))
    with pytest.raises(ValueError, match="has no camera"):
        network_shape(QNetworkConfig(), make_spec("pointmass"), obs="image")
    with pytest.raises(ValueError, match="has no camera"):
        network_shape(QNetworkConfig(), FakeSpec(), obs="image")


def test_a_stored_config_and_shape_read_back_unchanged():
    from mtopt.config import to_dict

    workcell = make_spec("workcell")
    config = QNetworkConfig(
        kind="mlp", state_encoder="objects-action", extra_inputs=("gripper_motion",)
    )
    shape = network_shape(config, workcell)
    assert stored_network(to_dict(config), to_dict(shape)) == (config, shape)
