"""Success detectors know an environment only through its spec: the point-mass env (no state
structure) trains a flat state detector, the workcell's structure is stored in checkpoints."""

import dataclasses

import numpy as np
import pytest

from mtopt.envs import make_spec
from mtopt.learning.checkpoint import load_checkpoint, save_checkpoint
from mtopt.success.dataset import UNKNOWN, SDExamples
from mtopt.success.detector import SuccessDetector
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, camera_projections, train_success_detector

POINTMASS = make_spec("pointmass")
WORKCELL = make_spec("workcell")


def _reach_examples(n: int, rng: np.random.Generator) -> SDExamples:
    """Point-mass final states, labelled for one reach task each: half end on its goal."""
    cfg = POINTMASS.config
    names = POINTMASS.task_set.names
    goals = rng.uniform(-0.9, 0.9, size=(n, cfg.goals, 2))
    primary = rng.integers(cfg.goals, size=n)
    success = rng.random(n) < 0.5
    pos = rng.uniform(-1.0, 1.0, size=(n, 2))
    target = goals[np.arange(n), primary]
    pos[success] = target[success] + rng.uniform(-0.05, 0.05, size=(success.sum(), 2))
    hit = np.linalg.norm(pos - target, axis=1) <= cfg.radius
    labels = np.full((n, len(names)), UNKNOWN, dtype=np.int8)
    labels[np.arange(n), primary] = hit
    state = np.concatenate([pos, goals.reshape(n, -1)], axis=1).astype(np.float32)
    return SDExamples(names, labels, primary, np.zeros(n, np.int64), state)


def test_a_flat_state_detector_trains_on_the_point_mass_spec(tmp_path):
    _reach_examples(64, np.random.default_rng(0)).save(tmp_path / "ex")
    report = train_success_detector(
        SDTrainConfig(
            examples=(str(tmp_path / "ex"),),
            out=str(tmp_path / "sd"),
            steps=5,
            batch_size=16,
            network=SDNetworkConfig(kind="state", width=16),  # state_encoder: auto
            progress=False,
            device="cpu",
        ),
        POINTMASS,
    )
    assert report["steps"] == 5 and report["examples"] == 64
    payload = load_checkpoint(report["checkpoint"])
    assert payload["state_structure"] is None
    assert payload["network_config"]["state_encoder"] == "flat"  # auto, resolved and stored
    assert payload["network_config"]["state_dim"] == POINTMASS.observation.state_dim
    # one output per one-hot slot of the task set (8 for the point mass, 56 for MT50)
    assert payload["network_config"]["task_capacity"] == POINTMASS.task_set.capacity == 8
    detector = SuccessDetector.load(report["checkpoint"], POINTMASS.task_set)
    proba = detector.predict_proba(np.zeros((3, POINTMASS.observation.state_dim), np.float32))
    assert proba.shape == (3, len(POINTMASS.task_set))


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            SDNetworkConfig(kind="state", state_encoder="objects"),
            r"network\.state_encoder 'objects' reads the state through the environment's state "
            r"structure, but environment 'pointmass' has none .*use network\.state_encoder 'flat'",
        ),
        (
            SDNetworkConfig(kind="image", image_size=16, conv_layers=2, gripper_crop=8),
            r"network\.gripper_crop reads .* 'pointmass' has none .*use network\.gripper_crop 0",
        ),
    ],
)
def test_a_structure_reading_network_is_refused_without_a_structure(tmp_path, network, message):
    with pytest.raises(ValueError, match=message):
        train_success_detector(
            SDTrainConfig(out=str(tmp_path / "sd"), network=network, progress=False), POINTMASS
        )
    assert not (tmp_path / "sd").exists()  # refused before any data was read


def test_gripper_crops_without_calibration_or_simulated_cameras_are_refused():
    net = SDNetworkConfig(kind="image", image_size=16, conv_layers=2, gripper_crop=8)
    with pytest.raises(ValueError, match=r"needs the cameras' projections: give --calibration"):
        camera_projections(SDTrainConfig(), net, None, None)
    proj = camera_projections(SDTrainConfig(), net, None, lambda size: np.full((3, 3, 4), size))
    assert proj is not None and (proj == 16).all()  # the default, at the stored view size


def test_the_object_encoder_is_rebuilt_from_the_checkpoints_structure(tmp_path):
    rng = np.random.default_rng(0)
    dim = WORKCELL.observation.state_dim
    names = WORKCELL.task_set.names
    n = 32
    labels = np.full((n, len(names)), UNKNOWN, dtype=np.int8)
    labels[:, 0] = rng.random(n) < 0.5
    state = rng.normal(size=(n, dim)).astype(np.float32)
    SDExamples(names, labels, np.zeros(n, np.int64), np.zeros(n, np.int64), state).save(
        tmp_path / "ex"
    )
    report = train_success_detector(
        SDTrainConfig(
            examples=(str(tmp_path / "ex"),),
            out=str(tmp_path / "sd"),
            steps=3,
            batch_size=8,
            network=SDNetworkConfig(kind="state", width=16),
            progress=False,
            device="cpu",
        ),
        WORKCELL,
    )
    payload = load_checkpoint(report["checkpoint"])
    assert payload["state_structure"] == dataclasses.asdict(WORKCELL.structure)
    detector = SuccessDetector.load(report["checkpoint"], WORKCELL.task_set)
    assert detector.structure == WORKCELL.structure
    assert detector.predict_proba(state[:4]).shape == (4, len(names))
    # a checkpoint without a stored structure cannot rebuild the object encoder
    payload.pop("format_version", None)
    step = payload.pop("step")
    payload.pop("state_structure")
    old = save_checkpoint(tmp_path / "old", step, payload)
    with pytest.raises(ValueError, match=r"records none .*retrain it"):
        SuccessDetector.load(old, WORKCELL.task_set)
