"""Tests of CARE, ``architecture: care`` (mtopt.learning.care), and of the task attributes it
reads (mtopt.tasks, the environments' task sets, a grown task set)."""

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

from mtopt.added_tasks import AddedTask, add_tasks
from mtopt.config import to_dict
from mtopt.envs.metaworld import metaworld_task_set
from mtopt.learning.care import attribute_bucket, attribute_vectors
from mtopt.learning.checkpoint import load_checkpoint, save_checkpoint
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import (
    QNetworkConfig,
    loadable_shape,
    network_shape,
    resolve_network,
    stored_network,
)
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.builder import PipelineBuilder
from mtopt.system.training_config import TrainConfig
from mtopt.tasks import TaskSet, default_attributes

SMALL = small_config("care")


@pytest.mark.parametrize(("spec", "encoder", "heads"), COMBOS, ids=IDS)
def test_shapes_and_cem_scoring(spec, encoder: str, heads: str) -> None:
    net = build(spec, dataclasses.replace(SMALL, state_encoder=encoder, heads=heads))
    assert len(net.care.encoders) == 3  # encoder 0 is the network's own (today's names)
    b, n, a = 3, 5, net.shape.action_dim
    obs, task = random_obs(net.shape, b), torch.tensor([0, 1, 2])
    actions = torch.rand(b, n, a, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        emb = net.embed(obs, task)
        assert emb.features.shape == (b, 32)
        tiled = net.q_logits_from_embedding(emb, actions)
        assert tiled.shape == (b, n)
        for j in range(n):  # N actions at once == N single-action calls
            torch.testing.assert_close(
                tiled[:, j], net.logits(obs, actions[:, j], task), atol=1e-5, rtol=0
            )
        q = net(obs, actions[:, 0], task)
        assert q.shape == (b,) and torch.all((q >= 0) & (q <= 1))


def test_the_attention_is_a_distribution_that_follows_the_attributes() -> None:
    net = build(WORKCELL, dataclasses.replace(SMALL, state_encoder="objects-action"))
    with torch.no_grad():
        alpha = net.care.weights(net.care.context(torch.arange(16)))
    assert alpha.shape == (16, 4) and torch.all(alpha >= 0)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(16))
    assert not torch.allclose(alpha[1], alpha[9], atol=1e-4)  # lift-banana vs place-bottom
    torch.testing.assert_close(alpha[12], alpha[15])  # free slots: no words, same context
    # the mixture follows the weights: all on encoder 0, the features are those of the plain
    # network (encoder 0 keeps its parameter names and draws) plus the task context
    plain_config = dataclasses.replace(SMALL, state_encoder="objects-action", architecture="mtopt")
    plain = build(WORKCELL, plain_config)
    obs, task = random_obs(net.shape, 2), torch.tensor([1, 9])
    with torch.no_grad():
        net.care.attention.weight.zero_()
        net.care.attention.bias.copy_(torch.tensor([50.0, 0, 0, 0]))
        context = net.care.context_fc(net.care.context(task))
        expected = plain.embed(obs, task).features + context
        torch.testing.assert_close(net.embed(obs, task).features, expected)


def test_the_hashed_attribute_table_is_deterministic() -> None:
    # CRC-32, not Python's per-process salted hash: the same bucket in every process
    assert [attribute_bucket(w, 128) for w in ("lift", "carrot", "cloth")] == [12, 78, 62]
    table = WORKCELL.task_set.attribute_table()
    first = attribute_vectors(table, 64)
    assert torch.equal(first, attribute_vectors(table, 64))
    assert first.shape == (16, 64) and torch.all(first[12:] == 0)  # free slots
    assert first[7, attribute_bucket("carrot", 64)] == 1  # lift-carrot
    shape = network_shape(SMALL, WORKCELL)
    a = build_q_network(resolve_network(SMALL, WORKCELL), shape)
    b = build_q_network(resolve_network(SMALL, WORKCELL), shape)
    assert torch.equal(a.care.attributes, b.care.attributes)
    assert "care.attributes" not in a.state_dict()  # rebuilt from the shape, never stored


def test_the_environments_describe_their_tasks() -> None:
    table = WORKCELL.task_set.attribute_table()
    assert table[7] == ("lift", "grasp", "carrot", "vegetable", "orange", "long")
    assert table[10] == ("place", "release", "plate", "top", "left", "section")
    grown = add_tasks(WORKCELL, [AddedTask("lift-cloth", "object-acquisition")])
    assert grown.task_set["lift-cloth"].attributes[:3] == ("lift", "grasp", "cloth")
    cover = add_tasks(WORKCELL, [AddedTask("cover-object", "object-manipulation")])
    assert "cover" in cover.task_set["cover-object"].attributes
    mt = metaworld_task_set(("reach-v3", "door-open-v3", "hammer-v3"), 1)
    assert mt["door-open-v3"].attributes == ("open", "door", "pull", "hinge", "swing")
    assert mt["hammer-v3"].attributes == ("hammer",)  # MT50's others: name and skill words
    assert POINTMASS.task_set["reach-2"].attributes[:3] == ("reach", "goal", "goal-2")
    assert default_attributes("push-back-v3", "puck") == ("push", "back", "puck")
    ts = TaskSet(2)
    assert ts.add("Stack-Blocks", "stack", attributes=(" Stack", "blocks")).attributes == (
        "stack",
        "blocks",
    )
    with pytest.raises(
        ValueError, match=r"task 'x': attributes must be non-empty words, got \[''\]"
    ):
        ts.add("x", "stack", attributes=("ok", ""))


def test_only_care_reads_the_attributes() -> None:
    assert network_shape(QNetworkConfig(kind="mlp"), WORKCELL).task_attributes == ()
    soft = QNetworkConfig(kind="mlp", architecture="soft-modular")
    assert network_shape(soft, WORKCELL).task_attributes == ()
    assert len(network_shape(SMALL, WORKCELL).task_attributes) == 16
    # a checkpoint written before the field existed reads back without attributes
    config = resolve_network(QNetworkConfig(kind="mlp"), WORKCELL)
    old = to_dict(network_shape(config, WORKCELL))
    del old["task_attributes"]
    assert stored_network(to_dict(config), old)[1] == network_shape(config, WORKCELL)


def test_a_stored_config_and_shape_rebuild_the_same_network() -> None:
    net = build(WORKCELL, dataclasses.replace(SMALL, state_encoder="objects", care_encoders=2))
    config, shape = stored_network(to_dict(net.config), to_dict(net.shape))
    assert (config, shape) == (net.config, net.shape)
    torch.manual_seed(7)
    again = build_q_network(config, shape).eval()
    again.load_state_dict(net.state_dict())
    obs, task, actions = random_obs(shape, 2), torch.tensor([3, 11]), torch.rand(2, 6) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(again(obs, actions, task), net(obs, actions, task))


def test_a_grown_task_set_loads_a_care_checkpoint(tmp_path) -> None:
    """A checkpoint of the 12 tasks loads into a run that added lift-cloth (new slot, new
    words), for training (restore_trainer) and for acting (load_q_policy); a changed slot is
    refused, naming the slot and both values."""
    net = dataclasses.replace(SMALL, state_encoder="objects", care_encoders=2)
    config = TrainConfig()
    config = dataclasses.replace(
        config, trainer=dataclasses.replace(config.trainer, network=net, device="cpu")
    )
    old = PipelineBuilder(config, WORKCELL)
    trainer = old.trainer(seed=0)
    path = save_checkpoint(tmp_path, 1, old.checkpoint_payload(trainer, {}, config))
    payload = load_checkpoint(path)
    grown_spec = add_tasks(WORKCELL, [AddedTask("lift-cloth", "object-acquisition")])
    grown = PipelineBuilder(config, grown_spec)
    fresh = grown.trainer(seed=1)
    assert fresh.shape.task_attributes[12] == grown_spec.task_set["lift-cloth"].attributes
    grown.restore_trainer(fresh, payload, full=False, path=path)
    for name, value in trainer.online.state_dict().items():
        assert torch.equal(fresh.online.state_dict()[name], value), name
    policy = load_q_policy(str(path), grown_spec, PolicyConfig(epsilon=0.0, device="cpu"))
    table = policy.network.care.attributes
    assert table[12].sum() > 0  # the new task's words reach the old network
    torch.testing.assert_close(table, fresh.online.care.attributes)

    changed = list(fresh.shape.task_attributes)
    changed[7] = ("lift", "grasp", "parsnip")
    fresh.shape = dataclasses.replace(fresh.shape, task_attributes=tuple(changed))
    with pytest.raises(ValueError, match=r"task slot 7 has attributes \['lift', 'grasp', 'carrot'"):
        grown.restore_trainer(fresh, payload, full=False, path=path)
    stored = stored_network(payload["network_config"], payload["network_shape"])[1]
    with pytest.raises(ValueError, match=r"but \['lift', 'grasp', 'parsnip'\] in this run"):
        loadable_shape(stored, tuple(changed), "checkpoint 'x'")
    # the other architectures do not read attributes: nothing to check
    plain = dataclasses.replace(stored, task_attributes=())
    assert loadable_shape(plain, tuple(changed), "checkpoint 'x'") is plain


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"architecture": "CARE"}, r"architecture must be one of .*'care'\), got 'CARE'"),
        ({"care_encoders": 0}, "care_encoders must be an integer >= 1, got 0"),
        ({"context_width": 0}, "context_width must be an integer >= 1, got 0"),
        ({"attribute_buckets": 0}, "attribute_buckets must be an integer >= 1, got 0"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QNetworkConfig(**kwargs)


def test_the_conv_trunk_and_a_shape_without_attributes_are_refused() -> None:
    conv = QNetworkConfig(kind="conv", conv_channels=8, architecture="care")
    with pytest.raises(ValueError, match="architecture 'care' needs the state trunk"):
        build_q_network(conv, network_shape(conv, WORKCELL, obs="image"))
    flat = dataclasses.replace(SMALL, state_encoder="flat")
    with pytest.raises(ValueError, match=r"needs every task slot's attributes .* got 0 entries"):
        build_q_network(flat, fake_shape())


def test_care_learns_a_task_dependent_target() -> None:
    """Q = 1 for task 0 when action[0] > 0, for task 1 when action[0] < 0."""
    table = (("reach", "left"), ("reach", "right"))
    shape = dataclasses.replace(fake_shape(), task_capacity=2, task_attributes=table)
    assert_learns_a_task_dependent_target(SMALL, shape)
