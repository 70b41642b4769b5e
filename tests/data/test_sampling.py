import numpy as np
import pytest

from mtopt.data.sampling import (
    draw_bucket_counts,
    rebalanced_proportions,
    sampling_proportions,
    uniform_proportions,
)


def test_uniform_is_proportional_to_sizes():
    sizes = np.array([[10, 30], [0, 60]])
    np.testing.assert_allclose(uniform_proportions(sizes), [[0.1, 0.3], [0.0, 0.6]])


def test_rebalanced_hand_computed():
    # three tasks with data, one without; task 1 has only failures, task 2 only successes
    sizes = np.array([[10, 990], [0, 5], [7, 0], [0, 0]])
    p = rebalanced_proportions(sizes, success_fraction=0.3)
    np.testing.assert_allclose(p, [[0.1, 0.7 / 3], [0, 1 / 3], [1 / 3, 0], [0, 0]])
    assert p.sum() == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match="empty"):
        uniform_proportions(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty"):
        rebalanced_proportions(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="success_fraction"):
        rebalanced_proportions(np.ones((3, 2)), 1.0)
    with pytest.raises(ValueError, match="shape"):
        uniform_proportions(np.ones(3))
    with pytest.raises(ValueError, match="sampler must be one of"):
        sampling_proportions(np.ones((2, 2)), "greedy")


def test_draws_follow_proportions_over_many_draws():
    p = rebalanced_proportions(np.array([[1, 1000], [50, 50], [0, 3]]), 0.5)
    rng = np.random.default_rng(0)
    total = sum(draw_bucket_counts(p, 256, rng) for _ in range(400))
    np.testing.assert_allclose(total / total.sum(), p, atol=0.01)
