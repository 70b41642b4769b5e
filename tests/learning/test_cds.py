"""Conservative data sharing: the keep mask against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from fakes import fake_shape

from mtopt.batches import TrainBatch
from mtopt.envs.workcell_spec import WORKCELL_ACTION
from mtopt.learning.cds import cds_keep_mask
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import Trainer, TrainerConfig


def _mask(q, task, shared, p):
    return cds_keep_mask(torch.tensor(q), torch.tensor(task), torch.tensor(shared), p).tolist()


def test_shared_rows_at_or_above_the_median_of_own_rows_are_kept() -> None:
    # task 0: own q 0.2, 0.4, 0.6 -> median 0.4; shared 0.3 dropped, 0.4 and 0.9 kept
    # task 1: own q 0.5 -> threshold 0.5; shared 0.1 dropped
    q = [0.2, 0.4, 0.6, 0.3, 0.4, 0.9, 0.5, 0.1]
    task = [0, 0, 0, 0, 0, 0, 1, 1]
    shared = [False, False, False, True, True, True, False, True]
    assert _mask(q, task, shared, 50.0) == [True, True, True, False, True, True, True, False]


def test_percentile_interpolates_between_own_rows() -> None:
    # own q 0.0 and 1.0: the 25th percentile is 0.25 (linear interpolation)
    q = [0.0, 1.0, 0.24, 0.26]
    task = [3, 3, 3, 3]
    shared = [False, False, True, True]
    assert _mask(q, task, shared, 25.0) == [True, True, False, True]
    # 0th percentile: the minimum of the own rows; 100th: the maximum
    assert _mask(q, task, shared, 0.0) == [True, True, True, True]
    assert _mask(q, task, shared, 100.0) == [True, True, False, False]


def test_a_task_without_own_rows_keeps_its_shared_rows() -> None:
    q = [0.1, 0.9, 0.05]
    task = [2, 2, 5]
    shared = [True, True, False]
    assert _mask(q, task, shared, 90.0) == [True, True, True]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="101"):
        cds_keep_mask(torch.zeros(2), torch.zeros(2, dtype=torch.long), torch.zeros(2), 101.0)
    with pytest.raises(ValueError, match="same shape"):
        cds_keep_mask(torch.zeros(2), torch.zeros(3, dtype=torch.long), torch.zeros(2), 50.0)


def _trainer(gradient: str = "sum", cds: float | None = 50.0) -> Trainer:
    net = QNetworkConfig(kind="mlp", mlp_width=32, state_encoder="flat")
    cfg = TrainerConfig(
        network=net, gradient=gradient, conservative_weight=0.0, device="cpu", learning_rate=1e-3
    )
    return Trainer(cfg, fake_shape(), WORKCELL_ACTION, seed=2, cds_percentile=cds)


def _batch(n: int = 32) -> TrainBatch:
    g = torch.Generator().manual_seed(1)
    obs = {
        "state": torch.randn(n, 16, generator=g),
        "gripper_status": torch.randint(0, 2, (n, 1), generator=g).float(),
        "gripper_height": torch.rand(n, 1, generator=g),
    }
    action = torch.rand(n, 6, generator=g) * 2 - 1
    task = torch.arange(n) % 2
    shared = torch.arange(n) % 4 >= 2  # half of each task's rows come from the other task
    return TrainBatch(obs, action, task, torch.rand(n, generator=g), shared)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.online.state_dict().items()}


@pytest.mark.parametrize("gradient", ["sum", "pcgrad"])
def test_the_trainer_trains_on_the_rows_cds_keeps_only(gradient):
    batch = _batch()
    cds, own = _trainer(gradient), _trainer(gradient, cds=None)
    with torch.no_grad():
        logits = cds.online.logits(batch.obs, batch.action, batch.task)
    keep = cds_keep_mask(logits, batch.task, batch.shared, 50.0)
    assert 0 < int((keep & batch.shared).sum()) < int(batch.shared.sum())
    metrics = cds.train_step(batch)
    kept = keep & batch.shared
    assert metrics["cds_shared_kept"] == pytest.approx(float(kept.sum() / batch.shared.sum()))
    own.train_step(batch.rows(keep))  # the same step on the kept rows alone
    wc, wo = _weights(cds), _weights(own)
    for k in wc:
        torch.testing.assert_close(wc[k], wo[k], rtol=1e-4, atol=1e-6)
    # without CDS every row trains: another step
    plain = _trainer(gradient, cds=None)
    plain.train_step(batch)
    assert any(not torch.allclose(wc[k], v) for k, v in _weights(plain).items())
