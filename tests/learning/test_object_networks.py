import dataclasses
import math

import pytest
import torch
from fakes import GRIPPER_INPUTS, fake_shape

from mtopt.envs.workcell_config import OBJECT_DIM
from mtopt.envs.workcell_spec import WorkcellSpec
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.object_networks import ObjectActionQNetwork, ObjectMLPQNetwork

G, OBJ, P, K = 6, OBJECT_DIM, 4, 5
D = G + K * OBJ + P
STRUCTURE = WorkcellSpec().structure
MOTION = ("gripper_motion", 3)


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


ENCODERS = pytest.mark.parametrize("encoder", ["objects", "objects-action"])


def _shape(inputs=GRIPPER_INPUTS):
    shape = fake_shape(D, inputs=inputs, structure=STRUCTURE)
    return dataclasses.replace(shape, length_inputs=("gripper_height", "gripper_motion"))


def _net(encoder="objects", inputs=GRIPPER_INPUTS, **flags):
    torch.manual_seed(0)
    cfg = QNetworkConfig(
        kind="mlp", state_encoder=encoder, mlp_width=32, slot_action_width=8, **flags
    )
    return build_q_network(cfg, _shape(inputs))


@ENCODERS
def test_builds_object_encoder_and_matches_tiled_path(encoder):
    net = _net(encoder)
    expected = ObjectActionQNetwork if encoder == "objects-action" else ObjectMLPQNetwork
    assert type(net) is expected and net.n_slots == K
    obs, task = _obs(), torch.tensor([0, 3, 8])
    actions = torch.rand(3, 7, 6)
    tiled = net.q_from_embedding(net.embed(obs, task), actions)
    single = torch.stack([net(obs, actions[:, i], task) for i in range(7)], dim=1)
    torch.testing.assert_close(tiled, single, atol=1e-6, rtol=1e-5)


@ENCODERS
def test_slot_order_and_absent_slots_do_not_matter(encoder):
    net = _net(encoder)
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
        build_q_network(
            QNetworkConfig(kind="mlp", state_encoder="objects"),
            fake_shape(D + 1, structure=STRUCTURE),
        )
    with pytest.raises(ValueError, match="needs the state's object structure"):
        build_q_network(QNetworkConfig(kind="mlp", state_encoder="objects"), fake_shape(D))
    with pytest.raises(ValueError, match="state_encoder must be one of"):
        QNetworkConfig(kind="mlp", state_encoder="graph")


def test_objects_action_in_place_path_equals_autograd_path():
    """CEM scores actions under no_grad with in-place ops; training uses autograd ops."""
    net = _net("objects-action")
    obs, task, actions = _obs(), torch.tensor([0, 8, 11]), torch.rand(3, 5, 6) * 2 - 1
    with torch.no_grad():
        fast = net.q_logits_from_embedding(net.embed(obs, task), actions)
    slow = net.q_logits_from_embedding(net.embed(obs, task), actions)
    assert slow.requires_grad
    torch.testing.assert_close(fast, slow.detach())


def test_objects_action_per_object_branch_sees_the_move():
    """With the plain action input and the plate-frame branch zeroed, a move still changes
    the score: it enters through the objects' offsets after the move."""
    net = _net("objects-action")
    obs, task = _obs(batch=1), torch.tensor([0])
    with torch.no_grad():
        net.action_fc.weight.zero_()
        net.move_fc.weight.zero_()
    emb = net.embed(obs, task)
    a = torch.zeros(1, 2, 6)
    a[0, 1, 0] = 1.0  # the second action moves the gripper one step along +x
    q = net.q_logits_from_embedding(emb, a)
    assert not torch.allclose(q[0, 0], q[0, 1])  # the move changes the score


def test_gripper_frame_features_hand_computed():
    from mtopt.learning.object_networks import _gripper_frame

    # gripper yawed by +90 degrees; an object 1 unit along world +x, heading 90 + 30 degrees
    rel = torch.tensor([[[1.0, 0.0, 0.0]]])
    grip_yaw = torch.tensor([[1.0, 0.0]])  # sin, cos of 90 degrees
    a = math.radians(120)
    obj_yaw = torch.tensor([[[math.sin(a), math.cos(a)]]])
    out = _gripper_frame(rel, obj_yaw, grip_yaw)[0, 0]
    # world +x is the gripper's -y (across); relative heading 30 degrees -> sin/cos of 60
    expected = torch.tensor([0.0, -1.0, math.sin(math.radians(60)), math.cos(math.radians(60))])
    torch.testing.assert_close(out, expected)


def test_gripper_frame_makes_the_slot_encoder_see_the_gripper_yaw():
    net = _net("objects")
    assert net.config.gripper_frame
    obs = _obs(batch=1)
    turned = {k: v.clone() for k, v in obs.items()}
    turned["state"][:, 3:5] = torch.tensor([1.0, 0.0])  # only the gripper's yaw changes
    task = torch.zeros(1, dtype=torch.long)
    h0 = net._encode(obs, task)["slot_embedding"]
    h1 = net._encode(turned, task)["slot_embedding"]
    assert not torch.allclose(h0, h1)
    off_config = QNetworkConfig(**{**vars(net.config), "gripper_frame": False})
    off = build_q_network(off_config, net.shape)
    g0 = off._encode(obs, task)["slot_embedding"]
    g1 = off._encode(turned, task)["slot_embedding"]
    torch.testing.assert_close(g0, g1)  # without it, the per-slot encoder is blind to the yaw


def test_pair_geometry_hand_computed():
    from mtopt.learning.object_networks import pair_geometry

    rel = torch.tensor([[[1.0, 2.0, -0.5]]])  # one object, offset (1, 2, -0.5)
    move = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, -0.5]]])  # two candidate moves
    yaw_after = torch.tensor([[0.0, math.pi / 2]])
    out = pair_geometry(rel, move, yaw_after)[0, :, 0]  # (N, 6)
    # move 1: offset after (0, 2, -0.5), gripper unturned: along 0, across 2, distance 2
    torch.testing.assert_close(
        out[0], torch.tensor([0.0, 2.0, -0.5, 2.0, 0.0, 2.0]), atol=1e-3, rtol=0
    )
    # move 2: offset after (1, 2, 0), gripper turned 90 degrees: along = y = 2, across = -x = -1
    d = math.sqrt(5.0)
    torch.testing.assert_close(
        out[1], torch.tensor([2.0, -1.0, 0.0, d, 2.0, 1.0]), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize("encoder", ["flat", "objects", "objects-action"])
def test_an_extra_input_is_an_input_of_the_state_networks(encoder):
    net = _net(encoder, inputs=(*GRIPPER_INPUTS, MOTION))
    obs, task, actions = _obs(), torch.tensor([0, 3, 8]), torch.rand(3, 4, 6)
    with pytest.raises(ValueError, match="observation lacks 'gripper_motion'"):
        net.embed(obs, task)
    still = {**obs, "gripper_motion": torch.zeros(3, 3)}
    blocked = {**obs, "gripper_motion": torch.tensor([[0.0, 0.0, -0.02]] * 3)}
    q_still = net.q_from_embedding(net.embed(still, task), actions)
    q_moved = net.q_from_embedding(net.embed(blocked, task), actions)
    assert not torch.allclose(q_still, q_moved)
    # a network without it ignores the key
    plain = _net("objects" if encoder == "flat" else encoder)
    torch.testing.assert_close(
        plain.q_from_embedding(plain.embed(still, task), actions),
        plain.q_from_embedding(plain.embed(blocked, task), actions),
    )
