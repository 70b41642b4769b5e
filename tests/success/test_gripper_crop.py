"""Gripper-centred crops of the success detector's views (mtopt.success.gripper_crop)."""

import json

import numpy as np
import pytest
import torch

from mtopt.envs import make_spec
from mtopt.success.augment import AugmentConfig
from mtopt.success.dataset import SDExamples
from mtopt.success.detector import SuccessDetector
from mtopt.success.gripper_crop import (
    FINGERTIP_DROP,
    gripper_crops,
    load_camera_projections,
    project_points,
)
from mtopt.success.networks import SDNetworkConfig, build_sd_network
from mtopt.success.training import SDTrainConfig, train_success_detector

WORKCELL = make_spec("workcell")


def _top_down(scale: float, offset: float) -> np.ndarray:
    """An orthographic 'camera': column = offset + scale * x, row = offset + scale * y."""
    p = np.array([[scale, 0, 0, offset], [0, scale, 0, offset], [0, 0, 0, 1.0]])
    return np.stack([p, p, p])


def test_project_points_by_hand():
    # a pinhole looking down -z from the origin, focal 10 px, principal point (8, 8)
    p = np.array([[10.0, 0, -8, 0], [0, -10.0, -8, 0], [0, 0, -1.0, 0]])
    pix = project_points(np.stack([p] * 3), np.array([[0.2, 0.1, -1.0], [0.0, 0.0, -2.0]]))
    np.testing.assert_allclose(pix[0, 0], [8 + 2, 8 - 1])  # x right, y up: row decreases
    np.testing.assert_allclose(pix[1, 2], [8, 8])


def test_crops_are_the_window_around_the_fingertips_and_zero_outside():
    views = np.zeros((1, 3, 16, 16, 3), np.uint8)
    views[0, :, :, :, 0] = np.arange(16)[None, :]  # red = column
    views[0, :, :, :, 1] = np.arange(16)[:, None]  # green = row
    state = np.array([[5.0, 9.0, FINGERTIP_DROP]])  # fingertips at (x, y) = (5, 9)
    c = gripper_crops(views, state, _top_down(1.0, 0.0), 4)
    assert c.shape == (1, 3, 4, 4, 3)
    np.testing.assert_array_equal(c[0, 0, 0, :, 0], [3, 4, 5, 6])  # columns 5 - 2 .. 5 + 1
    np.testing.assert_array_equal(c[0, 0, :, 0, 1], [7, 8, 9, 10])
    edge = gripper_crops(views, np.array([[40.0, 0.0, FINGERTIP_DROP]]), _top_down(1.0, 0.0), 4)
    # beyond the right edge: centred on the last column, the outer half is padding
    np.testing.assert_array_equal(edge[0, 0, 2, :, 0], [13, 14, 15, 0])
    assert (edge[0, 0, :2, :, 1] == 0).all()  # rows above the top edge


def test_bad_crop_inputs_are_named(tmp_path):
    views = np.zeros((2, 3, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"state must have shape \(2, D >= 3\)"):
        gripper_crops(views, np.zeros((3, 5)), _top_down(1.0, 0.0), 4)
    with pytest.raises(ValueError, match=r"crop must be an integer in \[1, 16\]"):
        gripper_crops(views, np.zeros((2, 5)), _top_down(1.0, 0.0), 17)
    with pytest.raises(ValueError, match=r"network\.gripper_crop must be 0 or in"):
        SDNetworkConfig(kind="image", image_size=16, input_size=32, gripper_crop=33)
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps([[1, 2, 3]]))
    with pytest.raises(ValueError, match="must hold 3 finite 3 x 4 matrices"):
        load_camera_projections(bad)
    with pytest.raises(ValueError, match="does not exist"):
        SDTrainConfig(calibration=str(tmp_path / "missing.json"))


def test_crop_tower_needs_crops_and_gives_one_logit_per_slot():
    cfg = SDNetworkConfig(
        kind="image",
        image_size=16,
        input_size=32,
        channels=4,
        conv_layers=2,
        gripper_crop=8,
        task_capacity=16,
    )
    net = build_sd_network(cfg)
    views = torch.rand(2, 3, 3, 16, 16)
    out = net(views, torch.rand(2, 3, 3, 8, 8), torch.rand(2, 2))
    assert out.shape == (2, cfg.task_capacity)
    with pytest.raises(ValueError, match="gripper-crop tower"):
        net(views)


def _checker_examples(n: int, rng: np.random.Generator) -> SDExamples:
    """64 px views of noise; lift-any succeeded iff a 4 x 4 checkerboard of 0 / 255 sits at the
    gripper (x, y) in view 0. Failures show it elsewhere. Pooled 4x (the checkerboard fills
    one pooled pixel), it is the mean grey of the noise, so only the full-resolution crop shows
    the outcome."""
    names = WORKCELL.task_set.names
    views = rng.integers(0, 256, size=(n, 3, 64, 64, 3), dtype=np.uint8)
    state = np.zeros((n, WORKCELL.observation.state_dim), np.float32)
    state[:, 0:2] = 4 * rng.integers(2, 14, size=(n, 2)) + 2
    state[:, 2] = FINGERTIP_DROP
    success = rng.random(n) < 0.5
    board = (np.indices((4, 4)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    for i in range(n):
        x, y = state[i, 0:2].astype(int)
        if not success[i]:  # the same pattern away from the gripper
            x, y = 4 * ((x // 4 + 6) % 12 + 2) + 2, 4 * ((y // 4 + 6) % 12 + 2) + 2
        views[i, 0, y - 2 : y + 2, x - 2 : x + 2] = board
    labels = np.full((n, len(names)), -1, np.int8)
    col = names.index("lift-any")
    labels[:, col] = success
    robot = np.where(np.arange(n) < n - 100, 0, 1)
    return SDExamples(names, labels, np.full(n, col), robot, state, views)


def test_crop_detector_learns_what_only_the_full_resolution_shows(tmp_path):
    rng = np.random.default_rng(0)
    ex = _checker_examples(700, rng)
    ex.save(tmp_path / "ex")
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(_top_down(1.0, 0.0).tolist()))
    net = dict(
        kind="image",
        image_size=16,
        input_size=64,
        channels=4,
        conv_layers=2,
        view_features=16,
        width=64,
        norm="batch",
    )
    results = {}
    for crop in (0, 8):
        report = train_success_detector(
            SDTrainConfig(
                examples=(str(tmp_path / "ex"),),
                holdout_robot=1,
                out=str(tmp_path / f"sd{crop}"),
                steps=300,
                batch_size=32,
                calibration=str(cal),
                network=SDNetworkConfig(**net, gripper_crop=crop, crop_channels=8),
                augment=AugmentConfig(enabled=False),
                progress=False,
                device="cpu",
            ),
            WORKCELL,
        )
        det = SuccessDetector.load(report["checkpoint"], WORKCELL.task_set)
        held = ex.subset(ex.robot == 1)
        col = WORKCELL.task_set.names.index("lift-any")
        pred = det.predict_examples(held)[:, col]
        results[crop] = (pred == (held.labels[:, col] == 1)).mean()
    assert results[8] >= 0.9, results  # the crop shows it
    assert results[0] <= 0.7, results  # the pooled views alone do not


def test_extend_init_adds_a_crop_tower_to_a_trained_detector(tmp_path):
    from mtopt.learning.checkpoint import load_checkpoint
    from mtopt.success.training import load_matching

    base = dict(
        kind="image",
        image_size=16,
        input_size=64,
        channels=4,
        conv_layers=2,
        width=32,
        task_capacity=16,
    )
    old = build_sd_network(SDNetworkConfig(**base))
    new = build_sd_network(SDNetworkConfig(**base, gripper_crop=8, crop_channels=4))
    fresh = load_matching(new, old.state_dict())
    assert any(k.startswith("crop_tower.") for k in fresh) and "head.0.weight" in fresh
    assert not any(k.startswith("tower.") for k in fresh)
    torch.testing.assert_close(new.tower[0].weight, old.tower[0].weight)

    rng = np.random.default_rng(1)
    ex = _checker_examples(120, rng)
    ex.save(tmp_path / "ex")
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(_top_down(1.0, 0.0).tolist()))
    common = dict(examples=(str(tmp_path / "ex"),), steps=5, batch_size=8, progress=False)
    first = train_success_detector(
        SDTrainConfig(**common, out=str(tmp_path / "a"), network=SDNetworkConfig(**base)), WORKCELL
    )
    second = train_success_detector(
        SDTrainConfig(
            **common,
            out=str(tmp_path / "b"),
            init=first["checkpoint"],
            extend_init=True,
            calibration=str(cal),
            network=SDNetworkConfig(**base, gripper_crop=8, crop_channels=4),
        ),
        WORKCELL,
    )
    payload = load_checkpoint(second["checkpoint"])
    assert payload["network_config"]["gripper_crop"] == 8
    np.testing.assert_allclose(payload["camera_projections"], _top_down(1.0, 0.0))
    det = SuccessDetector.load(second["checkpoint"], WORKCELL.task_set)
    with pytest.raises(ValueError, match="pass the final states"):
        det.predict_proba(ex.views[:2])
    assert det.predict_proba(ex.views[:2], state=ex.state[:2]).shape == (2, 12)
