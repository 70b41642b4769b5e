"""PCGrad (Yu et al. 2020): the projection on hand-computed cases, the per-task gradients, and
the trainer's ``gradient: pcgrad`` option."""

import pytest
import torch
from fakes import fake_shape
from torch.nn import functional

from mtopt.batches import TrainBatch
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.learning.network_builder import build_q_network
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.pcgrad import (
    conflict_fraction,
    project_conflicting,
    random_orders,
    task_gradients,
    write_flat_grad,
)
from mtopt.learning.targets import conservative_penalty, q_log_loss
from mtopt.learning.trainer import GRADIENT_KINDS, Trainer, TrainerConfig

IDENTITY_2 = torch.tensor([[0, 1], [0, 1]])


def _t(*rows: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_two_conflicting_gradients_are_projected_on_each_others_normal_plane():
    grads = _t((1.0, 0.0), (-1.0, 1.0))
    projected = project_conflicting(grads, IDENTITY_2)
    # g1' = g1 - (g1.g2 / |g2|^2) g2 = (1, 0) + 0.5 (-1, 1); g2' = g2 - (g2.g1 / |g1|^2) g1
    torch.testing.assert_close(projected, _t((0.5, 0.5), (0.0, 1.0)))
    torch.testing.assert_close(float(conflict_fraction(grads)), 1.0)


def test_gradients_without_conflict_are_unchanged():
    grads = _t((1.0, 0.0), (1.0, 1.0), (0.0, 2.0))  # all pairwise dots >= 0
    order = torch.tensor([[2, 1, 0], [0, 2, 1], [1, 0, 2]])
    assert torch.equal(project_conflicting(grads, order), grads)
    assert float(conflict_fraction(grads)) == 0.0


def test_a_zero_gradient_is_skipped_without_nan():
    grads = _t((0.0, 0.0), (-1.0, 1.0), (1.0, 0.0))
    projected = project_conflicting(grads, torch.tensor([[1, 2, 0], [0, 2, 1], [0, 1, 2]]))
    assert torch.isfinite(projected).all()
    torch.testing.assert_close(projected[0], _t((0.0, 0.0))[0])
    torch.testing.assert_close(projected[1:], _t((0.0, 1.0), (0.5, 0.5)))


def test_with_three_tasks_the_visiting_order_matters():
    g = _t((1.0, 0.0), (-1.0, 1.0), (-1.0, -2.0))  # every pair conflicts
    # row i: the order task i visits the others in (its own index is skipped)
    order = torch.tensor([[0, 1, 2], [2, 1, 0], [0, 2, 1]])
    # task 0, via 1 then 2: (1,0) + 1/2 (-1,1) = (.5,.5); dot g2 = -1.5: + 1.5/5 (-1,-2)
    # task 1, via 2 then 0: (-1,1) + 1/5 (-1,-2) = (-1.2,.6); dot g0 = -1.2: + 1.2 (1,0)
    # task 2, via 0 then 1: (-1,-2) + (1,0) = (0,-2); dot g1 = -2: + 2/2 (-1,1)
    expected = _t((0.2, -0.1), (0.0, 0.6), (-1.0, -1.0))
    torch.testing.assert_close(project_conflicting(g, order), expected)
    # the reverse orders: task 0 via 2 then 1: (1,0) + 1/5 (-1,-2) = (.8,-.4); + 1.2/2 (-1,1)
    reverse = torch.tensor([[2, 1, 0], [0, 1, 2], [1, 2, 0]])
    expected = _t((0.2, 0.2), (-0.4, 0.2), (0.0, -1.5))
    torch.testing.assert_close(project_conflicting(g, reverse), expected)
    assert float(conflict_fraction(g)) == 1.0


def test_projection_uses_the_original_gradients_of_the_others():
    # after task 1 is projected its dot with g0 changes; task 0 still projects on the original
    g = _t((1.0, 0.0), (-1.0, 1.0))
    projected = project_conflicting(g, IDENTITY_2)
    assert float(projected[0] @ g[1]) == pytest.approx(0.0, abs=1e-12)
    assert float(projected[1] @ g[0]) == pytest.approx(0.0, abs=1e-12)


def _pcgrad_reference(grads: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 of the paper, one task and one vector at a time."""
    out = []
    for i in range(len(grads)):
        g = grads[i].clone()
        for j in order[i].tolist():
            norm2 = float(grads[j] @ grads[j])
            if j != i and norm2 > 0 and float(g @ grads[j]) < 0:
                g = g - float(g @ grads[j]) / norm2 * grads[j]
        out.append(g)
    return torch.stack(out)


def test_the_batched_surgery_matches_the_papers_algorithm():
    g = torch.Generator().manual_seed(1)
    for k in (1, 2, 5, 12):
        grads = torch.randn(k, 9, generator=g, dtype=torch.float64)
        grads[k // 2] = 0.0  # and a task with a zero gradient
        order = random_orders(k, g)
        expected = _pcgrad_reference(grads, order)
        torch.testing.assert_close(project_conflicting(grads, order), expected)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="order"):
        project_conflicting(torch.zeros(3, 4), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="grads"):
        project_conflicting(torch.zeros(4), torch.zeros(4, 4, dtype=torch.long))


def test_random_orders_are_seeded_permutations():
    a = random_orders(5, torch.Generator().manual_seed(3))
    b = random_orders(5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(a.sort(dim=1).values, torch.arange(5).expand(5, 5))


def test_projected_gradients_never_conflict_with_the_others_originals():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        grads = torch.randn(2, 7, generator=g, dtype=torch.float64)
        projected = project_conflicting(grads, random_orders(2, g))
        scale = float(grads.norm(dim=1).prod())
        assert float(projected[0] @ grads[1]) >= -1e-12 * scale
        assert float(projected[1] @ grads[0]) >= -1e-12 * scale


def _tiny_q_batch(batch: int = 24, tasks: int = 4, seed: int = 0) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    obs = {
        "state": torch.randn(batch, 16, generator=g),
        "gripper_status": torch.randint(0, 2, (batch, 1), generator=g).float(),
        "gripper_height": torch.rand(batch, 1, generator=g),
    }
    action = torch.rand(batch, 6, generator=g) * 2 - 1
    task = torch.arange(batch) % tasks
    return TrainBatch(obs, action, task, torch.rand(batch, generator=g))


@pytest.mark.parametrize("heads", ["single", "multi"])
def test_per_task_gradients_sum_to_the_batch_loss_gradient(heads):
    torch.manual_seed(0)
    cfg = QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat", heads=heads)
    net = build_q_network(cfg, fake_shape())
    batch = _tiny_q_batch(tasks=3)
    logits = net.logits(batch.obs, batch.action, batch.task)
    row_loss = functional.binary_cross_entropy_with_logits(logits, batch.target, reduction="none")
    params = list(net.parameters())
    plain = torch.autograd.grad(row_loss.mean(), params, retain_graph=True)
    flat = torch.cat([g.reshape(-1) for g in plain])

    def own_rows(rows):  # a forward pass over the task's rows only, as the trainer does
        sub = batch.rows(rows)
        sub_logits = net.logits(sub.obs, sub.action, sub.task)
        return functional.binary_cross_entropy_with_logits(
            sub_logits, sub.target, reduction="sum"
        ) / len(batch)

    for task_loss in (lambda rows: row_loss[rows].sum() / len(batch), own_rows):
        per_task = task_gradients(batch.task, params, task_loss)
        assert per_task.tasks.tolist() == [0, 1, 2]
        assert per_task.grads.shape == (3, sum(p.numel() for p in params))
        torch.testing.assert_close(per_task.grads.sum(dim=0), flat, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(per_task.losses.sum(), row_loss.mean().detach())


def test_a_networks_conflicting_task_gradients_are_projected_out_of_conflict():
    torch.manual_seed(0)
    cfg = QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat")
    net = build_q_network(cfg, fake_shape())
    batch = _tiny_q_batch(tasks=2)
    logits = net.logits(batch.obs, batch.action, batch.task)
    row_loss = functional.binary_cross_entropy_with_logits(logits, batch.target, reduction="none")
    params = list(net.parameters())
    grads = task_gradients(batch.task, params, lambda rows: row_loss[rows].sum()).grads
    assert float(grads[0] @ grads[1]) < 0  # this seed's two tasks conflict
    assert float(conflict_fraction(grads)) == 1.0
    projected = project_conflicting(grads, random_orders(2, torch.Generator().manual_seed(0)))
    scale = float(grads.norm(dim=1).prod())
    assert float(projected[0] @ grads[1]) >= -1e-5 * scale
    assert float(projected[1] @ grads[0]) >= -1e-5 * scale


def test_write_flat_grad_fills_used_parameters_and_leaves_unused_ones_empty():
    a, b = torch.zeros(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True)
    unused = torch.zeros(1, requires_grad=True)
    x = torch.arange(3.0)
    loss = (a @ x).sum().reshape(1) + b.sum()
    per_task = task_gradients(torch.tensor([5]), [a, unused, b], lambda rows: loss[rows].sum())
    assert per_task.used == (True, False, True)
    write_flat_grad([a, unused, b], per_task.grads.sum(dim=0), per_task.used)
    torch.testing.assert_close(a.grad, x.expand(2, 3))
    torch.testing.assert_close(b.grad, torch.ones(4))
    assert unused.grad is None
    with pytest.raises(ValueError, match="shape"):
        write_flat_grad([a, b], torch.zeros(3))


def test_the_losses_per_row_average_to_the_batch_losses():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(10, generator=g), torch.rand(10, generator=g)
    rows = q_log_loss(logits, target, reduction="none")
    assert rows.shape == (10,) and torch.equal(rows.mean(), q_log_loss(logits, target))
    sampled = torch.randn(10, 4, generator=g)
    rows = conservative_penalty(sampled, logits, 0.1, reduction="none")
    assert rows.shape == (10,)
    assert torch.equal(rows.mean(), conservative_penalty(sampled, logits, 0.1))
    with pytest.raises(ValueError, match="sum"):
        q_log_loss(logits, target, reduction="sum")


def _trainer(gradient: str = "pcgrad", seed: int = 0, **kw) -> Trainer:
    net = QNetworkConfig(kind="mlp", mlp_width=32, state_encoder="flat")
    kw = {"learning_rate": 1e-3, "device": "cpu", "target_lag_steps": 3, **kw}
    cfg = TrainerConfig(network=net, gradient=gradient, **kw)
    return Trainer(cfg, fake_shape(), WORKCELL_ACTION, seed=seed)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.online.state_dict().items()}


def test_trainer_pcgrad_steps_deterministically_and_reports_conflicts():
    a, b = _trainer(seed=1), _trainer(seed=1)
    before = _weights(a)
    for step in range(4):
        batch = _tiny_q_batch(seed=step)
        ma, mb = a.train_step(batch), b.train_step(batch)
        assert ma == mb
        assert 0.0 <= ma["pcgrad_conflicts"] <= 1.0 and "conservative_penalty" in ma
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], before[k]) for k in wa)
    assert "pcgrad_conflicts" not in _trainer("sum").train_step(_tiny_q_batch())


def test_trainer_pcgrad_resumes_from_its_state_dict():
    full = _trainer(seed=2)
    for step in range(4):
        full.train_step(_tiny_q_batch(seed=step))
    first = _trainer(seed=2)
    for step in range(2):
        first.train_step(_tiny_q_batch(seed=step))
    resumed = _trainer(seed=5)
    resumed.load_state_dict(first.state_dict())
    for step in range(2, 4):
        resumed.train_step(_tiny_q_batch(seed=step))
    wf, wr = _weights(full), _weights(resumed)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)


def test_with_one_task_pcgrad_is_the_plain_gradient():
    plain, pcgrad = _trainer("sum", seed=3), _trainer("pcgrad", seed=3)
    batch = _tiny_q_batch(tasks=1)
    plain.train_step(batch)
    assert pcgrad.train_step(batch)["pcgrad_conflicts"] == 0.0
    wp, wq = _weights(plain), _weights(pcgrad)
    for k in wp:  # a sum over B rows divided by B against a mean: rounding only
        torch.testing.assert_close(wp[k], wq[k], rtol=1e-4, atol=1e-5)


def test_an_unknown_gradient_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="bogus") as err:
        TrainerConfig(gradient="bogus")
    assert all(kind in str(err.value) for kind in GRADIENT_KINDS)


def test_trainer_pcgrad_fits_constant_per_task_targets():
    trainer = _trainer(conservative_weight=0.0, learning_rate=3e-3)
    batch = _tiny_q_batch(batch=48, tasks=4)
    # opposite constant targets for tasks 0/1 and 2/3: the shared layers get conflicting pulls
    batch.target = torch.tensor([0.9, 0.1, 0.8, 0.2]).repeat(12)
    losses = [trainer.train_step(batch)["loss"] for _ in range(150)]
    floor = float(functional.binary_cross_entropy(batch.target, batch.target))
    assert losses[-1] - floor < 0.2 * (losses[0] - floor), (losses[0], losses[-1], floor)
