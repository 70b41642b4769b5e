"""Success-detector examples: label sharing from task relations, storage, input checks."""

import numpy as np
import pytest
from fakes import TASK_SET

from mtopt.success.dataset import (
    SDExamples,
    check_views,
    concat_examples,
    load_examples,
    share_labels,
)

NAMES = TASK_SET.names


def _row(**labels: int) -> np.ndarray:
    row = np.full(len(NAMES), -1, dtype=np.int8)
    for name, value in labels.items():
        row[NAMES.index(name.replace("_", "-"))] = value
    return row


def test_lift_carrot_success_is_lift_any_success_and_other_lift_failure():
    shared = share_labels(np.stack([_row(lift_carrot=1)]), NAMES, TASK_SET)[0]
    assert shared[NAMES.index("lift-any")] == 1
    assert shared[NAMES.index("lift-carrot")] == 1
    for cat in ("banana", "bottle", "sausage", "milk", "box", "can"):
        assert shared[NAMES.index(f"lift-{cat}")] == 0
    # nothing is said about the other skill
    for name in ("place-any", "place-bottom", "place-top-left", "place-top-right"):
        assert shared[NAMES.index(name)] == -1


def test_place_success_shares_within_places_and_failures_share_nothing():
    rows = np.stack([_row(place_top_left=1), _row(lift_carrot=0), _row(lift_any=1)])
    shared = share_labels(rows, NAMES, TASK_SET)
    assert shared[0, NAMES.index("place-any")] == 1
    assert shared[0, NAMES.index("place-bottom")] == 0
    assert shared[0, NAMES.index("place-top-right")] == 0
    # a failure (or a lift-any success) implies nothing about other tasks
    np.testing.assert_array_equal(shared[1], rows[1])
    np.testing.assert_array_equal(shared[2], rows[2])


def test_given_labels_are_never_overwritten():
    row = _row(lift_carrot=1, lift_banana=1)  # contradictory human labels stay as given
    shared = share_labels(row[None], NAMES, TASK_SET)[0]
    assert shared[NAMES.index("lift-banana")] == 1
    assert shared[NAMES.index("lift-carrot")] == 1
    assert shared[NAMES.index("lift-milk")] == 0


def test_examples_round_trip_and_subset(tmp_path):
    rng = np.random.default_rng(0)
    n = 5
    ex = SDExamples(
        NAMES,
        rng.integers(-1, 2, size=(n, len(NAMES))).astype(np.int8),
        rng.integers(0, len(NAMES), size=n),
        np.array([0, 1, 1, -1, 2]),
        rng.standard_normal((n, 7)).astype(np.float32),
        rng.integers(0, 256, size=(n, 3, 16, 16, 3), dtype=np.uint8),
    )
    ex.save(tmp_path, "a")
    ex.subset(np.array([0, 2])).save(tmp_path, "b")
    back = load_examples(tmp_path)
    assert len(back) == n + 2 and back.task_names == NAMES
    np.testing.assert_array_equal(back.labels[:n], ex.labels)
    np.testing.assert_array_equal(back.views[n:], ex.views[[0, 2]])
    np.testing.assert_array_equal(back.robot, [0, 1, 1, -1, 2, 0, 1])
    assert not list(tmp_path.glob(".tmp-*"))


def test_bad_views_and_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64, 3\).*got \(2, 3, 32, 32, 3\)"):
        check_views(np.zeros((2, 3, 32, 32, 3), np.uint8), 64)
    with pytest.raises(ValueError, match="RGB"):
        check_views(np.zeros((2, 3, 64, 64, 4), np.uint8), 64)
    with pytest.raises(ValueError, match="uint8"):
        check_views(np.zeros((2, 3, 64, 64, 3), np.float32), 64)
    with pytest.raises(ValueError, match="only -1"):
        SDExamples(NAMES, np.full((1, 12), 2, np.int8), np.zeros(1, int), np.zeros(1, int))
    with pytest.raises(ValueError, match="no success-detector examples"):
        load_examples(tmp_path)


def _paired(pair: list[int]) -> SDExamples:
    n = len(pair)
    labels = np.full((n, len(NAMES)), -1, dtype=np.int8)
    labels[:, 0] = np.arange(n) % 2
    return SDExamples(NAMES, labels, np.zeros(n, int), np.full(n, -1), pair=np.array(pair))


def test_pair_partners_by_hand():
    # pairs 0 (rows 0, 3) and 5 (rows 1, 2); id 7 has one member, id 9 three, -1 is unpaired
    ex = _paired([0, 5, 5, 0, 7, -1, -1, 9, 9, 9])
    np.testing.assert_array_equal(ex.siblings(), [3, 2, 1, 0, -1, -1, -1, -1, -1, -1])
    assert (SDExamples(NAMES, ex.labels, ex.primary, ex.robot).siblings() == -1).all()


def test_pair_ids_stay_unique_through_concat_save_and_load(tmp_path):
    a, b = _paired([0, 0, 1, 1]), _paired([0, 0, -1])
    both = concat_examples([a, b])
    np.testing.assert_array_equal(both.pair, [0, 0, 1, 1, 2, 2, -1])
    np.testing.assert_array_equal(both.siblings(), [1, 0, 3, 2, 5, 4, -1])
    a.save(tmp_path, "a")
    b.save(tmp_path, "b")
    np.testing.assert_array_equal(load_examples(tmp_path).pair, both.pair)
    np.testing.assert_array_equal(both.subset(np.array([2, 3, 6])).siblings(), [1, 0, -1])
