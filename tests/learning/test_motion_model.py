"""The motion model of the objects-action Q-network (``QNetworkConfig.motion_model``)."""

import dataclasses

import pytest
import torch

from mtopt.learning.bellman import TrainBatch
from mtopt.learning.networks import QNetworkConfig, build_q_network
from mtopt.learning.trainer import Trainer, TrainerConfig

G, OBJ, P, K = 6, 14, 4, 3
D = G + K * OBJ + P


def _config(**flags) -> QNetworkConfig:
    base = dict(kind="mlp", state_dim=D, state_encoder="objects-action", mlp_width=32)
    base.update(slot_action_width=8, motion_obs=True, motion_model=True, motion_model_width=16)
    base.update(flags)
    return QNetworkConfig(**base)


def _scene(batch: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Random scenes with one object (slot 0) and descents; a descent starting within 3 cm
    (horizontally) of the object is blocked: it achieves no z motion. Returns the
    observation, the actions and the achieved translations (m)."""
    g = torch.Generator().manual_seed(seed)
    state = torch.zeros(batch, D)
    state[:, :2] = torch.rand(batch, 2, generator=g) * 0.2 - 0.1  # gripper xy
    state[:, 2] = 0.1
    state[:, 4] = 1.0  # gripper yaw 0 (sin, cos)
    near = torch.rand(batch, generator=g) < 0.5  # half the scenes: the object right below
    offset = torch.rand(batch, 2, generator=g) * 0.04 - 0.02
    far = torch.sign(torch.rand(batch, 2, generator=g) - 0.5) * (0.06 + 0.04 * offset.abs() / 0.02)
    state[:, G : G + 2] = state[:, :2] + torch.where(near[:, None], offset, far)
    state[:, G + 2] = 0.03
    state[:, G + 4] = 1.0
    state[:, G + OBJ - 1] = 1.0  # present
    actions = torch.zeros(batch, 6)
    actions[:, 2] = -torch.rand(batch, generator=g)  # descend by up to one full step
    actions[:, :2] = torch.rand(batch, 2, generator=g) * 0.2 - 0.1
    achieved = actions[:, :3] * 0.05
    blocked = near & (state[:, G : G + 2] - state[:, :2]).norm(dim=1).lt(0.03)
    achieved[blocked, 2] = 0.0
    obs = {
        "state": state,
        "gripper_status": torch.zeros(batch, 1),
        "gripper_height": torch.full((batch, 1), 0.1),
        "gripper_motion": torch.zeros(batch, 3),
    }
    return obs, actions, achieved


def test_motion_model_needs_the_objects_action_encoder_and_motion_obs():
    with pytest.raises(ValueError, match="motion_model=True needs state_encoder='objects-action'"):
        _config(state_encoder="objects")
    with pytest.raises(ValueError, match="motion_obs=False"):
        _config(motion_obs=False)
    with pytest.raises(ValueError, match="motion_model_width must be an integer >= 1"):
        _config(motion_model_width=0)


def test_untrained_model_predicts_the_command_and_q_matches_the_plain_network():
    net = build_q_network(_config())
    plain = build_q_network(_config(motion_model=False))
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert not missing and all(k.startswith("motion_") for k in unexpected)
    obs, actions, _ = _scene(4, 0)
    task = torch.zeros(4, dtype=torch.long)
    emb = net.embed(obs, task)
    cand = actions[:, None].expand(4, 2, 6).clone()
    cand[:, 1, 2] = 0.5
    # 0.05 m per unit of action over a 0.05 m length scale: the command itself, in units
    torch.testing.assert_close(net.predict_motion(emb, cand), cand[..., :3])
    torch.testing.assert_close(
        net.q_from_embedding(emb, cand), plain.q_from_embedding(plain.embed(obs, task), cand)
    )
    with pytest.raises(ValueError, match="predict_motion needs a network built with"):
        plain.predict_motion(plain.embed(obs, task), cand)


def test_q_uses_the_predicted_move_without_training_the_model():
    net = build_q_network(_config())
    obs, actions, _ = _scene(4, 1)
    task = torch.zeros(4, dtype=torch.long)
    before = net.q_from_embedding(net.embed(obs, task), actions[:, None])
    with torch.no_grad():  # a model that predicts every move 2 units higher than commanded
        net.motion_out.bias.copy_(torch.tensor([0.0, 0.0, 2.0]))
    emb = net.embed(obs, task)
    q = net.q_from_embedding(emb, actions[:, None])
    assert not torch.allclose(before, q)
    q.sum().backward()
    assert all(
        p.grad is None or not p.grad.any()
        for name, p in net.named_parameters()
        if name.startswith("motion_")
    )


def test_trainer_learns_which_descents_are_blocked():
    cfg = TrainerConfig(network=_config(), learning_rate=3e-3, device="cpu")
    trainer = Trainer(cfg, seed=0)
    test_obs, test_actions, test_achieved = _scene(512, 99)

    def blocked_error() -> tuple[float, float]:
        with torch.no_grad():
            emb = trainer.online.embed(test_obs, torch.zeros(512, dtype=torch.long))
            z = trainer.online.predict_motion(emb, test_actions[:, None])[:, 0, 2] * 0.05
        err = (z - test_achieved[:, 2]).abs()
        blocked = test_achieved[:, 2] == 0
        return float(err[blocked].mean()), float(err[~blocked].mean())

    untrained_blocked, _ = blocked_error()
    for step in range(200):
        obs, actions, achieved = _scene(128, step)
        batch = TrainBatch(
            obs=obs,
            action=actions,
            task=torch.zeros(128, dtype=torch.long),
            target=torch.full((128,), 0.5),
            achieved_motion=achieved,
        )
        metrics = trainer.train_step(batch)
    assert "motion_loss" in metrics
    trained_blocked, trained_free = blocked_error()
    # the untrained model predicts the commanded descent (mean 2.5 cm) where it is blocked
    assert untrained_blocked > 0.02
    assert trained_blocked < 0.3 * untrained_blocked
    assert trained_free < 0.005
    with pytest.raises(ValueError, match="needs batches with achieved_motion"):
        trainer.train_step(dataclasses.replace(batch, achieved_motion=None))


def test_motion_model_weight_is_validated():
    with pytest.raises(ValueError, match="motion_model_weight must be >= 0, got -1"):
        TrainerConfig(motion_model_weight=-1.0)


def test_in_place_cem_path_equals_the_autograd_path():
    net = build_q_network(_config())
    with torch.no_grad():  # a non-trivial model
        net.motion_out.weight.normal_(generator=torch.Generator().manual_seed(3))
    obs, actions, _ = _scene(4, 2)
    cand = actions[:, None].expand(4, 5, 6) + torch.linspace(-0.3, 0.3, 5)[None, :, None]
    emb = net.embed(obs, torch.zeros(4, dtype=torch.long))
    grad_path = net.predict_motion(emb, cand)
    with torch.no_grad():
        torch.testing.assert_close(net.predict_motion(emb, cand), grad_path.detach())
        q = net.q_logits_from_embedding(emb, cand)
    torch.testing.assert_close(q, net.q_logits_from_embedding(emb, cand).detach())
