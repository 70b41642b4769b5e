"""Behaviour cloning's pure parts: targets, loss and decoding on hand-computed numbers, and the
network's refusals."""

from __future__ import annotations

import math

import pytest
import torch
from fakes import fake_shape

from mtopt.learning.bc import BCNetwork, action_targets, bc_loss, decode_actions
from mtopt.learning.networks import QNetworkConfig
from mtopt.spec import ActionSpec

# dims 0 and 1 continuous (bounds [-1, 1] and [0, 2]), dim 2 a binary choice between 0 and 1
SPEC = ActionSpec((-1.0, 0.0, 0.0), (1.0, 2.0, 1.0), discrete_dims=(2,))


def test_targets_normalise_continuous_dims_and_binarise_discrete_ones():
    actions = torch.tensor([[0.5, 1.5, 1.0], [-1.0, 0.0, 0.0]])
    continuous, discrete = action_targets(actions, SPEC)
    torch.testing.assert_close(continuous, torch.tensor([[0.5, 0.5], [-1.0, -1.0]]))
    torch.testing.assert_close(discrete, torch.tensor([[1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"actions must have shape \(B, 3\), got \(2, 2\)"):
        action_targets(actions[:, :2], SPEC)


def test_loss_on_hand_computed_values():
    actions = torch.tensor([[0.5, 1.5, 1.0]])  # normalised (0.5, 0.5), discrete 1
    mean = torch.tensor([[0.0, 1.0]])  # squared errors 0.25 and 0.25: MSE 0.25
    logits = torch.tensor([[0.0]])  # BCE of p = 1/2 against 1: ln 2
    loss, metrics = bc_loss(mean, logits, actions, SPEC, continuous_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * 0.25 + math.log(2.0))
    assert metrics["mse"] == pytest.approx(0.25)
    assert metrics["bce"] == pytest.approx(math.log(2.0))
    assert metrics["discrete_accuracy"] == 0.0  # logit 0 is not > 0
    # a confident right choice: BCE log(1 + e^-3), accuracy 1
    _, metrics = bc_loss(mean, torch.tensor([[3.0]]), actions, SPEC)
    assert metrics["bce"] == pytest.approx(math.log1p(math.exp(-3.0)), rel=1e-5)
    assert metrics["discrete_accuracy"] == 1.0
    with pytest.raises(ValueError, match="do not match"):
        bc_loss(mean[:, :1], logits, actions, SPEC)


def test_an_action_space_without_discrete_dims_has_no_cross_entropy():
    spec = ActionSpec((-1.0,), (1.0,))
    loss, metrics = bc_loss(torch.zeros(1, 1), torch.zeros(1, 0), torch.ones(1, 1), spec)
    assert loss.item() == pytest.approx(1.0) and metrics["bce"] == 0.0
    assert metrics["discrete_accuracy"] == 1.0


def test_decoding_maps_back_to_the_bounds():
    mean = torch.tensor([[0.5, -1.0], [2.0, 0.0]])  # out of range is clamped
    logits = torch.tensor([[2.0], [-0.5]])
    expected = torch.tensor([[0.5, 0.0, 1.0], [1.0, 1.0, 0.0]])
    torch.testing.assert_close(decode_actions(mean, logits, SPEC), expected)
    # decoding the targets gives the actions back
    actions = torch.tensor([[0.25, 1.75, 0.0]])
    continuous, discrete = action_targets(actions, SPEC)
    torch.testing.assert_close(decode_actions(continuous, 2 * discrete - 1, SPEC), actions)


def test_network_outputs_and_refusals():
    config = QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat")
    net = BCNetwork(config, fake_shape(8), continuous=4, discrete=2, head_width=8)
    obs = {
        "state": torch.randn(5, 8),
        "gripper_status": torch.zeros(5, 1),
        "gripper_height": torch.zeros(5, 1),
    }
    mean, logits = net(obs, torch.arange(5))
    assert mean.shape == (5, 4) and logits.shape == (5, 2)
    assert mean.abs().max() < 1
    with pytest.raises(ValueError, match=r"network\.kind must be 'mlp', got 'conv'"):
        BCNetwork(QNetworkConfig(kind="conv"), fake_shape(8), 4, 2)
    with pytest.raises(ValueError, match="do not make the network's 6 action dims"):
        BCNetwork(config, fake_shape(8), 4, 1)
