"""Per-task decision thresholds (mtopt.success.calibration)."""

import numpy as np
import pytest
import torch
from fakes import TASK_SET
from test_pipeline import _write_log, sd_run  # noqa: F401  (the shared detector fixture)

from mtopt.learning.checkpoint import load_checkpoint
from mtopt.success.calibration import (
    SDCalibrateConfig,
    balanced_threshold,
    calibrate_success_detector,
)
from mtopt.success.detector import SuccessDetector
from mtopt.success.labelling import ground_truth_examples, read_log_episodes
from mtopt.success.networks import SDNetworkConfig


def test_balanced_threshold_by_hand():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    labels = np.array([0, 0, 0, 1, 0, 1, 1], bool)
    # t = 0.35: no positive below, 1 of 4 negatives above (max 0.25); t = 0.5 or 0.65 miss the
    # positive at 0.4 (1/3); t = 0.25 lets 2 of 4 negatives through
    assert balanced_threshold(scores, labels) == pytest.approx((0.35, 0.0, 0.25))
    # separable: the middle of the gap between the outcomes, no errors
    t, fn, fp = balanced_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert (t, fn, fp) == pytest.approx((0.5, 0.0, 0.0))
    # a detector biased towards failure: every success scores below 0.5
    t, fn, fp = balanced_threshold(np.array([0.01, 0.02, 0.2, 0.3]), np.array([0, 0, 1, 1], bool))
    assert t == pytest.approx(0.11) and fn == fp == 0.0


def test_balanced_threshold_needs_both_outcomes():
    with pytest.raises(ValueError, match="need successes and failures, got 0 and 2"):
        balanced_threshold(np.array([0.1, 0.2]), np.array([0, 0], bool))
    with pytest.raises(ValueError, match="equal 1-D arrays"):
        balanced_threshold(np.zeros(3), np.zeros(2, bool))


def test_calibration_writes_per_task_thresholds_that_do_no_worse(sd_run, tmp_path):  # noqa: F811
    _, _, report = sd_run
    log = _write_log(tmp_path / "calib", n=160, seed=7)
    result = calibrate_success_detector(
        SDCalibrateConfig(
            checkpoint=report["checkpoint"],
            log=str(log),
            budget=160,  # every episode labelled for every task
            out=str(tmp_path / "cal"),
            min_outcomes=5,
            device="cpu",
        ),
        TASK_SET,
    )
    before = SuccessDetector.load(report["checkpoint"], TASK_SET)
    after = SuccessDetector.load(result["checkpoint"], TASK_SET)
    chosen = [r["threshold"] for r in result["tasks"].values()]
    np.testing.assert_allclose(after.thresholds, chosen)
    assert sum("fn_rate" in r for r in result["tasks"].values()) >= 6
    a, b = (
        load_checkpoint(report["checkpoint"])["model"],
        load_checkpoint(result["checkpoint"])["model"],
    )
    assert all((a[k] == b[k]).all() for k in a)  # weights unchanged
    data = ground_truth_examples(read_log_episodes(log, False), TASK_SET)
    truth = data.labels == 1
    for det, name in ((before, "0.5"), (after, "calibrated")):
        pred = det.predict_examples(data)
        fn = (~pred & truth).sum(0) / np.maximum(truth.sum(0), 1)
        fp = (pred & ~truth).sum(0) / np.maximum((~truth).sum(0), 1)
        if name == "0.5":
            worst_before = np.maximum(fn, fp)
        else:
            calibrated = [i for i, r in enumerate(result["tasks"].values()) if "fn_rate" in r]
            worst = np.maximum(fn, fp)
            assert (worst[calibrated] <= worst_before[calibrated] + 1e-12).all()


def test_bad_calibration_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="--log DIR"):
        SDCalibrateConfig(checkpoint="x.pt", out="o")
    with pytest.raises(ValueError, match="budget must be a positive integer, got 0"):
        SDCalibrateConfig(checkpoint="x.pt", log="l", out="o", budget=0)
    with pytest.raises(ValueError, match="one threshold or one per task"):
        SuccessDetector(torch.nn.Linear(1, 1), SDNetworkConfig(), ("a", "b"), [0.5, 0.5, 0.5])
