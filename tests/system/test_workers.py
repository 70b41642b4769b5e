"""The workers' hand-over of sampled batches between processes."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from mtopt.batches import TransitionBatch
from mtopt.system.workers import _writable


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def test_writable_keeps_every_field_and_makes_arrays_writable() -> None:
    n = 4
    batch = TransitionBatch(
        obs={"state": _read_only(np.ones((n, 3), np.float32))},
        action=_read_only(np.zeros((n, 2), np.float32)),
        next_obs={"state": _read_only(np.ones((n, 3), np.float32))},
        reward=_read_only(np.array([0, 0, 1, 0], np.float32)),
        done=_read_only(np.array([0, 1, 1, 0], np.float32)),
        task=_read_only(np.array([0, 1, 1, 2])),
        bucket_counts=np.ones((3, 2), np.int64),
        label=_read_only(np.array([0, 1, 1, 0], np.float32)),
        steps_to_go=_read_only(np.array([7, 0, 0, 3], np.float32)),
        steps=_read_only(np.array([5, 1, 1, 4], np.float32)),
        shared=_read_only(np.array([False, True, False, True])),
    )
    out = _writable(batch)
    for f in fields(batch):
        got, want = getattr(out, f.name), getattr(batch, f.name)
        if isinstance(want, dict):
            assert got.keys() == want.keys()
            for k in want:
                np.testing.assert_array_equal(got[k], want[k])
                assert got[k].flags.writeable
        else:
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable, f.name
