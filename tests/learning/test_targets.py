"""Hand-computed tests of targets, log loss and target-network updates (mtopt.learning.targets)."""

from __future__ import annotations

import math

import pytest
import torch
from fakes import fake_shape
from torch import nn

from mtopt.envs.workcell_spec import WORKCELL_ACTION as WORKCELL_ACTION_SPEC
from mtopt.learning.cem import CEMConfig
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetwork, QNetworkConfig, StateEmbedding
from mtopt.learning.targets import (
    bellman_targets,
    clipped_double_q_target,
    conservative_penalty,
    hard_update,
    n_step_target,
    polyak_update,
    q_log_loss,
)


def test_clipped_double_q_target_hand_computed() -> None:
    target = clipped_double_q_target(
        reward=torch.tensor([0.0, 1.0, 0.0]),
        done=torch.tensor([0.0, 1.0, 1.0]),
        q1_next=torch.tensor([0.5, 0.9, 0.2]),
        q2_next=torch.tensor([0.6, 0.1, 0.3]),
        gamma=0.9,
    )
    # row 0: 0 + 0.9 * min(0.5, 0.6) = 0.45; rows 1, 2 terminal: the reward
    torch.testing.assert_close(target, torch.tensor([0.45, 1.0, 0.0]))


def test_clipped_double_q_target_validation() -> None:
    z = torch.zeros(2)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        clipped_double_q_target(z, z, z, z, gamma=1.5)
    with pytest.raises(ValueError, match="share a shape"):
        clipped_double_q_target(z, z, z, torch.zeros(3), gamma=0.9)


def test_n_step_target_hand_computed() -> None:
    target = n_step_target(
        reward=torch.tensor([0.0, 1.0, 0.0, 1.0]),
        done=torch.tensor([0.0, 1.0, 1.0, 1.0]),
        steps=torch.tensor([3.0, 2.0, 3.0, 1.0]),
        v_next=torch.tensor([0.5, 0.8, 0.7, 0.3]),
        gamma=0.9,
    )
    # row 0: 0.9^3 * 0.5 = 0.3645; row 1: a success 2 steps on: 0.9^1 * 1 = 0.9 (no bootstrap);
    # row 2: a failure ending within the 3 steps: 0; row 3: the last step of a success: 1
    torch.testing.assert_close(target, torch.tensor([0.3645, 0.9, 0.0, 1.0]))
    # one step is the clipped double-Q target
    r, d, v = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.4, 0.6])
    torch.testing.assert_close(
        n_step_target(r, d, torch.ones(2), v, 0.9), clipped_double_q_target(r, d, v, v, 0.9)
    )
    with pytest.raises(ValueError, match="steps must be >= 1"):
        n_step_target(r, d, torch.zeros(2), v, 0.9)


def test_q_log_loss_hand_computed() -> None:
    q = torch.tensor([0.8, 0.3, 0.5])
    t = torch.tensor([1.0, 0.25, 0.9])
    expected = [
        -(1.0 * math.log(0.8)),
        -(0.25 * math.log(0.3) + 0.75 * math.log(0.7)),
        -(0.9 * math.log(0.5) + 0.1 * math.log(0.5)),
    ]
    loss = q_log_loss(torch.logit(q), t)
    assert loss.item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    w = torch.tensor([2.0, 0.0, 1.0])
    weighted = q_log_loss(torch.logit(q), t, weights=w)
    assert weighted.item() == pytest.approx((2 * expected[0] + expected[2]) / 3, rel=1e-5)


def test_q_log_loss_stable_for_extreme_logits_and_gradient() -> None:
    logits = torch.tensor([100.0, -100.0], requires_grad=True)
    loss = q_log_loss(logits, torch.tensor([1.0, 1.0]))
    assert loss.item() == pytest.approx(50.0, rel=1e-5)  # (0 + 100) / 2, finite
    loss.backward()
    # d/dz BCE = (sigmoid(z) - t) / B
    torch.testing.assert_close(logits.grad, torch.tensor([0.0, -0.5]))


def test_q_log_loss_validation() -> None:
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]"):
        q_log_loss(torch.zeros(2), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="share a shape"):
        q_log_loss(torch.zeros(2), torch.zeros(3))


def test_polyak_and_hard_update() -> None:
    target, source = nn.Linear(1, 2), nn.Linear(1, 2)
    with torch.no_grad():
        target.weight.copy_(torch.tensor([[1.0], [2.0]]))
        target.bias.copy_(torch.tensor([0.0, 10.0]))
        source.weight.copy_(torch.tensor([[3.0], [-2.0]]))
        source.bias.copy_(torch.tensor([1.0, 0.0]))
    polyak_update(target, source, tau=0.75)
    # 0.75 * target + 0.25 * source
    torch.testing.assert_close(target.weight, torch.tensor([[1.5], [1.0]]))
    torch.testing.assert_close(target.bias, torch.tensor([0.25, 7.5]))
    assert not target.weight.requires_grad or target.weight.grad is None
    polyak_update(target, source, tau=1.0)  # keeps the target
    torch.testing.assert_close(target.bias, torch.tensor([0.25, 7.5]))
    hard_update(target, source)
    torch.testing.assert_close(target.weight, source.weight)
    torch.testing.assert_close(target.bias, source.bias)
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\]"):
        polyak_update(target, source, tau=-0.1)
    with pytest.raises(ValueError, match="different parameters"):
        hard_update(target, nn.Sequential(nn.Linear(1, 2)))


class _QuadraticQ(QNetwork):
    """Toy network: Q = sigmoid(logit) with logit = scale * (3 - |a - c(s)|^2) + g * a_grip.

    The state is ``obs['state'][:, :4]`` = the optimal continuous action ``c(s)``; the gripper
    bonus ``g`` comes from the task (slot 0: +1, slot 1: -1), so the best gripper value is 1
    for task 0 and 0 for task 1 and terminate is irrelevant-but-penalised.
    """

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.config = QNetworkConfig(kind="mlp", state_encoder="flat")
        self.shape = fake_shape(4)
        self.scale = scale
        self.embed_calls = 0

    def embed(self, obs, task):  # type: ignore[override]
        self.embed_calls += 1
        return StateEmbedding(obs["state"], torch.zeros(len(task), 0), task)

    def q_logits_from_embedding(self, embedding, actions):  # type: ignore[override]
        center = embedding.features.unsqueeze(1)
        bonus = torch.where(embedding.task == 0, 1.0, -1.0).unsqueeze(1)
        dist = ((actions[..., :4] - center) ** 2).sum(-1)
        return self.scale * (3.0 - dist) + bonus * actions[..., 4] - actions[..., 5]


def test_bellman_targets_with_known_argmax() -> None:
    center = torch.tensor([[0.2, -0.3, 0.0, 0.4], [0.0, 0.1, -0.2, 0.3], [0.5, 0.5, 0.5, 0.5]])
    obs = {"state": center}
    task = torch.tensor([0, 1, 0])
    net_1, net_2 = _QuadraticQ(1.0), _QuadraticQ(0.5)
    reward, done = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0])
    cfg = CEMConfig(iterations=6, num_samples=512, num_elites=32)
    gen = torch.Generator().manual_seed(0)
    target = bellman_targets(
        net_1, net_2, obs, task, reward, done, cfg, WORKCELL_ACTION_SPEC, gen, gamma=0.9
    )
    # a* ~ (c, gripper = 1 for task 0 / 0 for task 1, terminate 0):
    # Q1* = sigmoid(3 + 1) for task 0 and sigmoid(3) for task 1;
    # Q2* = sigmoid(1.5 + 1) and sigmoid(1.5)
    v = torch.tensor(
        [
            min(torch.sigmoid(torch.tensor(4.0)), torch.sigmoid(torch.tensor(2.5))),
            min(torch.sigmoid(torch.tensor(3.0)), torch.sigmoid(torch.tensor(1.5))),
        ]
    )
    torch.testing.assert_close(target[:2], 0.9 * v, atol=2e-3, rtol=0)
    assert target[2].item() == 1.0  # terminal: reward, no bootstrap
    assert net_1.embed_calls == 1  # the next state is embedded once, CEM reuses it


def test_bellman_targets_uses_min_of_both_nets_and_is_deterministic() -> None:
    torch.manual_seed(0)
    cfg = QNetworkConfig(kind="mlp", mlp_width=32, fc_width=16, state_encoder="flat")
    net_1, net_2 = (
        build_q_network(cfg, fake_shape(3)).eval(),
        build_q_network(cfg, fake_shape(3)).eval(),
    )
    b = 6
    obs = {
        "state": torch.randn(b, 3),
        "gripper_status": torch.zeros(b, 1),
        "gripper_height": torch.rand(b, 1),
    }
    task = torch.randint(0, 16, (b,))
    reward, done = torch.zeros(b), torch.zeros(b)

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return bellman_targets(
            net_1, net_2, obs, task, reward, done, CEMConfig(), WORKCELL_ACTION_SPEC, gen, 0.9
        )

    t1, t2 = run(3), run(3)
    torch.testing.assert_close(t1, t2, rtol=0, atol=0)
    assert not t1.requires_grad
    # recompute from the CEM argmax of net 1 with the same generator draws
    from mtopt.learning.cem import cem_maximize

    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        a_star, q1 = cem_maximize(
            net_1.score_fn(obs, task), b, WORKCELL_ACTION_SPEC, CEMConfig(), gen
        )
        q2 = net_2(obs, a_star, task)
    torch.testing.assert_close(t1, 0.9 * torch.minimum(q1, q2), atol=1e-6, rtol=0)
    # the CEM score is Q1 at the returned action
    torch.testing.assert_close(q1, net_1(obs, a_star, task), atol=1e-6, rtol=0)


def test_bellman_targets_all_terminal_skips_networks() -> None:
    net = _QuadraticQ(1.0)
    out = bellman_targets(
        net,
        net,
        {"state": torch.zeros(2, 4)},
        torch.tensor([0, 1]),
        torch.tensor([1.0, 0.0]),
        torch.tensor([1.0, 1.0]),
        CEMConfig(),
        WORKCELL_ACTION_SPEC,
        torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(out, torch.tensor([1.0, 0.0]))
    assert net.embed_calls == 0


def test_conservative_penalty_hand_computed() -> None:
    # row 0: Q = (0.5, 0.5) -> soft max 0.5, data Q 0.5 -> 0
    # row 1: Q = (0.75, 0.25), tau = 0.1 -> 0.1 * log((e^7.5 + e^2.5) / 2), data Q 0.5
    sampled = torch.tensor([[0.0, 0.0], [math.log(3.0), -math.log(3.0)]], requires_grad=True)
    data = torch.tensor([0.0, 0.0], requires_grad=True)
    penalty = conservative_penalty(sampled, data, temperature=0.1)
    row1 = 0.1 * math.log((math.exp(7.5) + math.exp(2.5)) / 2) - 0.5
    assert penalty.item() == pytest.approx(row1 / 2, rel=1e-5)
    assert row1 == pytest.approx(0.181357, abs=1e-6)
    penalty.backward()
    # d/d logit_n = softmax_n(Q / tau) * Q_n (1 - Q_n) / B; d/d data logit = -Q (1 - Q) / B
    w = 1 / (1 + math.exp(-5.0))
    expected = torch.tensor([[0.0625, 0.0625], [0.5 * w * 0.1875, 0.5 * (1 - w) * 0.1875]])
    assert torch.allclose(sampled.grad, expected, atol=1e-6)
    assert torch.allclose(data.grad, torch.tensor([-0.125, -0.125]))


def test_conservative_penalty_stays_bounded_for_saturated_logits() -> None:
    # the logit-space version pulled a logged action up by a constant force; on Q it fades
    data = torch.tensor([30.0], requires_grad=True)
    conservative_penalty(torch.zeros(1, 4), data).backward()
    assert abs(float(data.grad)) < 1e-9


def test_conservative_penalty_validation() -> None:
    with pytest.raises(ValueError, match="sampled_logits"):
        conservative_penalty(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="data_logits"):
        conservative_penalty(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="temperature"):
        conservative_penalty(torch.zeros(3, 2), torch.zeros(3), temperature=0.0)
