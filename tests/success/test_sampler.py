"""The balanced sampler: equal share per task, half successes and half failures."""

import numpy as np
import pytest

from mtopt.success.sampler import BalancedSampler, balanced_proportions, bucket_sizes


def _labels() -> np.ndarray:
    # task 0: 90 successes / 10 failures; task 1: 2 / 98; task 2: failures only; task 3: unknown
    labels = np.full((200, 4), -1, dtype=np.int8)
    labels[:100, 0] = 0
    labels[:90, 0] = 1
    labels[100:200, 1] = 0
    labels[100:102, 1] = 1
    labels[150:170, 2] = 0
    return labels


def test_bucket_sizes_and_proportions_by_hand():
    labels = _labels()
    np.testing.assert_array_equal(bucket_sizes(labels), [[90, 10], [2, 98], [0, 20], [0, 0]])
    probs = balanced_proportions(labels)
    third = 1 / 3
    np.testing.assert_allclose(
        probs, [[third / 2, third / 2], [third / 2, third / 2], [0, third], [0, 0]]
    )


def test_sampler_draws_the_balanced_proportions():
    labels = _labels()
    sampler = BalancedSampler(labels, np.random.default_rng(0))
    rows, tasks = sampler.sample(60_000)
    drawn = labels[rows, tasks]
    assert (drawn >= 0).all()  # every pair has a known label for its task
    for t, want_success in ((0, 0.5), (1, 0.5), (2, 0.0)):
        mine = tasks == t
        assert abs(mine.mean() - 1 / 3) < 0.01
        assert abs((drawn[mine] == 1).mean() - want_success) < 0.01
    assert not (tasks == 3).any()
    # the two rare successes of task 1 are each drawn about equally often
    counts = np.bincount(rows[(tasks == 1) & (drawn == 1)], minlength=102)[100:102]
    assert abs(counts[0] - counts[1]) < 0.1 * counts.sum()


def test_sampler_is_reproducible():
    a = BalancedSampler(_labels(), np.random.default_rng(3)).sample(50)
    b = BalancedSampler(_labels(), np.random.default_rng(3)).sample(50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_paired_draws_put_both_outcomes_of_a_scene_in_the_batch():
    # rows 2i and 2i+1 are a success/failure pair of task 0; rows 40.. are unpaired failures
    labels = np.full((60, 2), -1, dtype=np.int8)
    labels[:40, 0] = np.arange(40) % 2 == 0
    labels[40:, 0] = 0
    siblings = np.full(60, -1)
    siblings[:40] = np.arange(40) ^ 1
    sampler = BalancedSampler(labels, np.random.default_rng(1), 0.5, siblings, 0.5)
    for _ in range(20):
        rows, tasks = sampler.sample(16)
        assert len(rows) == len(tasks) == 16 and (tasks == 0).all()
        # 4 matched pairs (half of the 16 rows) lead the batch, each draw next to its partner
        np.testing.assert_array_equal(rows[0:8:2] ^ 1, rows[1:8:2])
        assert (rows[:8] < 40).all()
    with pytest.raises(ValueError, match="pair_fraction"):
        BalancedSampler(labels, np.random.default_rng(1), 0.5, siblings, 1.5)


def test_episode_fraction_splits_each_bucket_between_episodes_and_examples():
    # task 0: 100 example successes and 4 episode successes; failures only among examples
    labels = np.full((204, 1), -1, dtype=np.int8)
    labels[:104, 0] = 1
    labels[104:, 0] = 0
    is_episode = np.zeros(204, dtype=bool)
    is_episode[100:104] = True
    sampler = BalancedSampler(
        labels, np.random.default_rng(2), is_episode=is_episode, episode_fraction=0.25
    )
    rows, _ = sampler.sample(40_000)
    successes = rows[labels[rows, 0] == 1]
    assert abs(is_episode[successes].mean() - 0.25) < 0.01  # uniform rows would give 4 / 104
    assert abs(len(successes) / len(rows) - 0.5) < 0.01
    assert not is_episode[rows[labels[rows, 0] == 0]].any()  # no episode failures to draw
    with pytest.raises(ValueError, match="episode_fraction"):
        BalancedSampler(labels, np.random.default_rng(2), is_episode=is_episode, episode_fraction=2)
