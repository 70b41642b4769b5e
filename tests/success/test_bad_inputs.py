"""Bad input to success detectors gets clear errors."""

import numpy as np
import pytest
import torch

from mtopt.envs.workcell_tasks import workcell_task_set
from mtopt.learning.checkpoint import save_checkpoint
from mtopt.success.detector import SDTaskSetMismatchError, SuccessDetector
from mtopt.success.networks import SDNetworkConfig, build_sd_network
from mtopt.tasks import TaskSet


def _image_detector() -> SuccessDetector:
    cfg = SDNetworkConfig(
        kind="image", image_size=16, channels=4, conv_layers=2, width=8, task_capacity=16
    )
    return SuccessDetector(build_sd_network(cfg), cfg, workcell_task_set().names)


def test_images_of_wrong_size_or_channels_are_refused():
    det = _image_detector()
    assert det.predict_proba(np.zeros((2, 3, 16, 16, 3), np.uint8)).shape == (2, 12)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16, 3\).*got \(2, 3, 32, 32, 3\)"):
        det.predict_proba(np.zeros((2, 3, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"RGB.*got \(2, 3, 16, 16, 1\)"):
        det.predict_proba(np.zeros((2, 3, 16, 16, 1), np.uint8))
    with pytest.raises(ValueError, match=r"3 views.*got \(2, 2, 16, 16, 3\)"):
        det.predict_proba(np.zeros((2, 2, 16, 16, 3), np.uint8))


def test_checkpoint_for_another_task_set_is_refused(tmp_path):
    cfg = SDNetworkConfig(kind="state", state_dim=150, state_encoder="flat", task_capacity=16)
    net = build_sd_network(cfg)
    from mtopt.config import to_dict

    payload = {
        "kind": "success_detector",
        "model": net.state_dict(),
        "network_config": to_dict(cfg),
        "task_names": ["lift-any", "lift-carrot"],
        "threshold": 0.5,
    }
    path = save_checkpoint(tmp_path, 1, payload)
    with pytest.raises(
        SDTaskSetMismatchError, match=r"tasks missing from the checkpoint: \['lift-banana'"
    ):
        SuccessDetector.load(path, workcell_task_set())
    other = TaskSet()
    other.add("lift-carrot", "object-acquisition")
    other.add("lift-any", "object-acquisition")
    with pytest.raises(SDTaskSetMismatchError, match=r"slots differ.*lift-any \(slot 0 vs 1\)"):
        SuccessDetector.load(path, other)
    ok = SuccessDetector.load(path)  # no task set given: loads as trained
    assert ok.task_names == ("lift-any", "lift-carrot")
    with pytest.raises(ValueError, match=r"states must have shape \(N, 150\)"):
        ok.predict_proba(torch.zeros(3, 149).numpy())


def test_q_checkpoint_is_not_a_success_detector(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"trainer": {}, "task_names": []})
    with pytest.raises(ValueError, match="not a success-detector checkpoint"):
        SuccessDetector.load(path)


def test_larger_stored_views_are_pooled_only_by_an_integer_factor():
    cfg = SDNetworkConfig(
        kind="image", image_size=16, input_size=32, conv_layers=2, width=8, task_capacity=16
    )
    det = SuccessDetector(build_sd_network(cfg), cfg, workcell_task_set().names)
    assert det.predict_proba(np.zeros((1, 3, 32, 32, 3), np.uint8)).shape == (1, 12)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32, 3\).*got \(1, 3, 16, 16, 3\)"):
        det.predict_proba(np.zeros((1, 3, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="multiple of image_size"):
        SDNetworkConfig(kind="image", image_size=16, input_size=24)


def test_an_episode_without_final_views_names_what_is_missing():
    from fakes import make_fake_episode

    from mtopt.success.labelling import episode_inputs

    rng = np.random.default_rng(0)
    no_views = make_fake_episode(rng, side_images=True)  # side images but no shoulder image
    with pytest.raises(ValueError, match=r"has no image;.*--final-views"):
        episode_inputs(no_views, need_views=True)
    mixed = make_fake_episode(rng, image_size=16, side_images=True, final_image=False)
    mixed.final_side_images = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"side images \(8, 8, 3\).*\(16, 16, 3\)"):
        episode_inputs(mixed, need_views=True)
    ok = make_fake_episode(rng, side_images=True, final_image=True)
    _, views = episode_inputs(ok, need_views=True)
    np.testing.assert_array_equal(views[0], ok.final_image)
