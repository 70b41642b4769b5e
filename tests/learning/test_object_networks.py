import pytest
import torch

from mtopt.learning.networks import QNetworkConfig, build_q_network
from mtopt.learning.object_networks import ObjectMLPQNetwork

G, OBJ, P, K = 6, 14, 4, 5
D = G + K * OBJ + P


def _obs(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(batch, D, generator=g)
    for k in range(K):  # present flags: slots 0..2 present, 3..4 absent (zeros)
        base = G + k * OBJ
        if k < 3:
            state[:, base + OBJ - 1] = 1.0
        else:
            state[:, base : base + OBJ] = 0.0
    return {
        "state": state,
        "gripper_status": torch.ones(batch, 1),
        "gripper_height": torch.rand(batch, 1, generator=g),
    }


def _net():
    torch.manual_seed(0)
    cfg = QNetworkConfig(kind="mlp", state_dim=D, state_encoder="objects", mlp_width=32)
    return build_q_network(cfg)


def test_builds_object_encoder_and_matches_tiled_path():
    net = _net()
    assert isinstance(net, ObjectMLPQNetwork) and net.n_slots == K
    obs, task = _obs(), torch.tensor([0, 3, 8])
    actions = torch.rand(3, 7, 6)
    tiled = net.q_from_embedding(net.embed(obs, task), actions)
    single = torch.stack([net(obs, actions[:, i], task) for i in range(7)], dim=1)
    torch.testing.assert_close(tiled, single, atol=1e-6, rtol=1e-5)


def test_slot_order_and_absent_slots_do_not_matter():
    net = _net()
    obs, task, a = _obs(), torch.tensor([1, 2, 3]), torch.rand(3, 6)
    q = net(obs, a, task)
    swapped = {k: v.clone() for k, v in obs.items()}
    s = swapped["state"]
    s0, s2 = s[:, G : G + OBJ].clone(), s[:, G + 2 * OBJ : G + 3 * OBJ].clone()
    s[:, G : G + OBJ], s[:, G + 2 * OBJ : G + 3 * OBJ] = s2, s0
    torch.testing.assert_close(net(swapped, a, task), q)
    junk = {k: v.clone() for k, v in obs.items()}
    junk["state"][:, G + 3 * OBJ : G + 4 * OBJ - 1] = 5.0  # an absent slot's (stale) contents
    torch.testing.assert_close(net(junk, a, task), q)
    assert not torch.allclose(net(obs, a, torch.tensor([4, 5, 6])), q)  # task matters


def test_bad_layout_is_refused():
    with pytest.raises(ValueError, match="does not split into"):
        QNetworkConfig(kind="mlp", state_dim=D + 1, state_encoder="objects")
    with pytest.raises(ValueError, match="state_encoder must be one of"):
        QNetworkConfig(kind="mlp", state_dim=D, state_encoder="graph")
