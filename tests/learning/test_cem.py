"""Tests of the cross-entropy method (mtopt.learning.cem)."""

from __future__ import annotations

import pytest
import torch

from mtopt.envs.workcell_spec import WORKCELL_ACTION as WORKCELL_ACTION_SPEC
from mtopt.learning.cem import (
    ActionSpec,
    CEMConfig,
    cem_maximize,
    refit,
    sample_uniform_actions,
)

CONT_SPEC = ActionSpec(low=(-1.0, -1.0), high=(1.0, 1.0), discrete_dims=())
# more iterations and a larger elite fraction than QT-Opt's 2 x 64 / 6, so that the std does
# not collapse before the mean reaches the optimum (tests of convergence, not of tuning)
_WIDE = CEMConfig(iterations=6, num_samples=256, num_elites=32)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_refit_hand_computed() -> None:
    # one row, 4 samples, 2 dims; elites (k=2) are samples 1 and 3 (scores 5 and 4).
    samples = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [9.0, 9.0], [3.0, 1.0]]])
    scores = torch.tensor([[1.0, 5.0, -2.0, 4.0]])
    mean, std = refit(samples, scores, 2)
    # mean = ((1 + 3) / 2, (0 + 1) / 2); population std = (|1 - 3| / 2, |0 - 1| / 2)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 0.5]]))
    torch.testing.assert_close(std, torch.tensor([[1.0, 0.5]]))


def test_refit_discrete_frequency_and_batch_rows() -> None:
    samples = torch.tensor(
        [
            [[0.0], [1.0], [1.0], [0.0]],
            [[1.0], [0.0], [0.0], [0.0]],
        ]
    )
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0], [3.0, 2.0, 1.0, 0.0]])
    mean, std = refit(samples, scores, 3)
    # row 0 elites: 1, 1, 0 -> freq 2/3; row 1 elites: 1, 0, 0 -> freq 1/3
    torch.testing.assert_close(mean, torch.tensor([[2 / 3], [1 / 3]]))
    expected_std = (2 / 9) ** 0.5  # sqrt(p (1 - p)) with p = 1/3 or 2/3
    torch.testing.assert_close(std, torch.full((2, 1), expected_std))


def test_refit_rejects_bad_elites() -> None:
    with pytest.raises(ValueError, match="num_elites"):
        refit(torch.zeros(1, 3, 2), torch.zeros(1, 3), 4)


def test_concave_quadratic_interior_max() -> None:
    target = torch.tensor([0.3, -0.6])

    def score(a: torch.Tensor) -> torch.Tensor:
        return -((a - target) ** 2).sum(-1)

    best, val = cem_maximize(score, 3, CONT_SPEC, _WIDE, _gen(1))
    assert best.shape == (3, 2) and val.shape == (3,)
    torch.testing.assert_close(best, target.expand(3, -1), atol=0.05, rtol=0)
    torch.testing.assert_close(val, score(best.unsqueeze(1))[:, 0])


def test_max_on_boundary_is_clipped_to_bound() -> None:
    def score(a: torch.Tensor) -> torch.Tensor:
        return -((a - torch.tensor([2.0, -3.0])) ** 2).sum(-1)

    best, _ = cem_maximize(score, 2, CONT_SPEC, _WIDE, _gen(1))
    assert torch.all(best.abs() <= 1.0)  # samples are clipped to the bounds
    torch.testing.assert_close(best, torch.tensor([[1.0, -1.0], [1.0, -1.0]]), atol=0.02, rtol=0)


def test_discrete_dims_pick_right_values_and_stay_binary() -> None:
    spec = WORKCELL_ACTION_SPEC

    def score(a: torch.Tensor) -> torch.Tensor:
        # best: gripper closed (1), terminate 0, dx near 0.5
        return -((a[..., 0] - 0.5) ** 2) + 2.0 * a[..., 4] - 3.0 * a[..., 5]

    best, _ = cem_maximize(score, 4, spec, CEMConfig(), _gen(3))
    assert torch.all(best[:, 4] == 1.0) and torch.all(best[:, 5] == 0.0)
    assert torch.all((best[:, 4:] == 0) | (best[:, 4:] == 1))
    assert torch.all(best[:, :4].abs() <= 1.0)


def test_batch_rows_are_independent() -> None:
    targets = torch.tensor([[0.8, 0.8], [-0.5, 0.2], [0.0, -0.9]])

    def score(a: torch.Tensor) -> torch.Tensor:
        return -((a - targets.unsqueeze(1)) ** 2).sum(-1)

    best, _ = cem_maximize(score, 3, CONT_SPEC, _WIDE, _gen(1))
    torch.testing.assert_close(best, targets, atol=0.05, rtol=0)


def test_deterministic_with_same_seed() -> None:
    def score(a: torch.Tensor) -> torch.Tensor:
        return torch.sin(3 * a).sum(-1)

    r1 = cem_maximize(score, 5, WORKCELL_ACTION_SPEC, CEMConfig(), _gen(7))
    r2 = cem_maximize(score, 5, WORKCELL_ACTION_SPEC, CEMConfig(), _gen(7))
    r3 = cem_maximize(score, 5, WORKCELL_ACTION_SPEC, CEMConfig(), _gen(8))
    torch.testing.assert_close(r1, r2, rtol=0, atol=0)
    assert not torch.equal(r1[0], r3[0])


def test_second_iteration_samples_around_refit() -> None:
    # score calls are recorded: the second iteration must be centred on the elites of the first.
    calls: list[torch.Tensor] = []

    def score(a: torch.Tensor) -> torch.Tensor:
        calls.append(a.clone())
        return a[..., 0]

    cfg = CEMConfig(iterations=2, num_samples=64, num_elites=6, min_std=0.0)
    cem_maximize(score, 1, CONT_SPEC, cfg, _gen(2))
    mean, std = refit(calls[0], calls[0][..., 0], 6)
    second = calls[1][0]
    # all second-iteration samples lie within a few refit stds of the refit mean (or clipped)
    z = ((second - mean) / std).abs()
    assert torch.all((z < 6) | (second.abs() == 1.0))
    assert second[:, 0].mean() > calls[0][0][:, 0].mean()


def test_score_fn_shape_checked() -> None:
    with pytest.raises(ValueError, match="score_fn must return shape"):
        cem_maximize(lambda a: a.sum(-1).flatten(), 2, CONT_SPEC, CEMConfig(), _gen(1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"iterations": 0}, "iterations"),
        ({"num_samples": 4, "num_elites": 6}, "num_elites"),
        ({"init_std": 0.0}, "init_std"),
        ({"min_std": -1.0}, "min_std"),
        ({"min_prob": 0.5}, "min_prob"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CEMConfig(**kwargs)


def test_action_spec_validation() -> None:
    with pytest.raises(ValueError, match="low < high"):
        ActionSpec(low=(1.0,), high=(0.0,), discrete_dims=())
    with pytest.raises(ValueError, match="discrete dim 3"):
        ActionSpec(low=(0.0,), high=(1.0,), discrete_dims=(3,))
    assert WORKCELL_ACTION_SPEC.continuous_dims == (0, 1, 2, 3)


def test_sample_uniform_actions_bounds_discrete_values_and_moments() -> None:
    gen = torch.Generator().manual_seed(0)
    spec = WORKCELL_ACTION_SPEC
    a = sample_uniform_actions(spec, 200, 50, gen, torch.device("cpu"))
    assert a.shape == (200, 50, 6)
    cont = a[..., :4]
    assert cont.min() >= -1 and cont.max() <= 1
    assert abs(float(cont.mean())) < 0.02 and abs(float(cont.var()) - 1 / 3) < 0.01
    for d in spec.discrete_dims:
        values = a[..., d]
        assert set(values.unique().tolist()) == {0.0, 1.0}
        assert abs(float(values.mean()) - 0.5) < 0.02
    again = sample_uniform_actions(spec, 200, 50, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(a, again)
    with pytest.raises(ValueError, match="num"):
        sample_uniform_actions(spec, 2, 0, gen, torch.device("cpu"))
