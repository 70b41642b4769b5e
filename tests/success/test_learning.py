"""Tiny success detectors learn to separate successes from failures on a few tasks."""

import numpy as np
import pytest

from mtopt.envs import make_spec
from mtopt.envs.workcell_examples import SDExamplesConfig, make_examples
from mtopt.success.dataset import SDExamples, load_examples
from mtopt.success.detector import SuccessDetector
from mtopt.success.evaluate import SDEvalConfig, run_sd_eval
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, train_success_detector

WORKCELL = make_spec("workcell")

TASKS = ("lift-carrot", "place-top-left")


@pytest.fixture(scope="module")
def state_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    for seed, name in ((0, "train"), (1, "test")):
        for task in TASKS:
            make_examples(
                SDExamplesConfig(
                    task=task,
                    out=str(root / name),
                    pairs=120 if name == "train" else 25,
                    seed=seed,
                    images=False,
                    progress=False,
                )
            )
    return root


def test_state_sd_learns_outcomes_of_arranged_scenes(state_examples, tmp_path):
    report = train_success_detector(
        SDTrainConfig(
            examples=(str(state_examples / "train"),),
            out=str(tmp_path / "sd"),
            steps=1500,
            batch_size=64,
            network=SDNetworkConfig(kind="state", width=64),
            progress=False,
            device="cpu",
        ),
        WORKCELL,
    )
    # label sharing gave lift-any and place-any labels although no example was made for them
    assert report["labels"]["lift-any"]["successes"] == 120
    assert report["labels"]["place-any"]["successes"] == 120
    result = run_sd_eval(
        SDEvalConfig(checkpoint=report["checkpoint"], data=str(state_examples / "test")),
        WORKCELL.task_set,
    )
    for task in TASKS:
        row = result["tasks"][task]
        assert row["count"] == 50 and row["successes"] == 25
        assert row["fn_rate"] <= 0.15 and row["fp_rate"] <= 0.15, (task, row)
    # shared labels: a lift-carrot success is predicted a lift-any success, too
    assert result["tasks"]["lift-any"]["other_fn_rate"] <= 0.15


@pytest.mark.parametrize("stored", [16, 32])
def test_image_sd_learns_which_view_shows_the_outcome(tmp_path, stored):
    """Synthetic 16x16 views: lift-any succeeded iff view 0 shows a bright square, place-any
    iff view 1 does (two tasks without relations, so label sharing adds nothing). Stored at
    32x32, the views are pooled to the network's 16x16 when training loads them and per batch
    when the detector predicts."""
    rng = np.random.default_rng(0)
    names = WORKCELL.task_set.names
    n = 600
    views = rng.integers(0, 100, size=(n, 3, 16, 16, 3), dtype=np.uint8)
    labels = np.full((n, len(names)), -1, dtype=np.int8)
    cols = [names.index("lift-any"), names.index("place-any")]
    success = rng.random((n, 2)) < 0.5
    for k, col in enumerate(cols):
        for i in np.flatnonzero(success[:, k]):
            y, x = rng.integers(0, 11, size=2)
            views[i, k, y : y + 5, x : x + 5] = 255
        labels[:, col] = success[:, k]
    primary = rng.choice(cols, size=n)
    ex = SDExamples(names, labels, primary, np.where(np.arange(n) < 500, 0, 1), None, views)
    if stored != 16:
        views = views.repeat(stored // 16, axis=2).repeat(stored // 16, axis=3)
        ex = SDExamples(names, labels, primary, ex.robot, None, views)
    ex.save(tmp_path / "ex")
    report = train_success_detector(
        SDTrainConfig(
            examples=(str(tmp_path / "ex"),),
            holdout_robot=1,
            out=str(tmp_path / "sd"),
            steps=250,
            batch_size=32,
            network=SDNetworkConfig(
                kind="image",
                image_size=16,
                input_size=stored if stored != 16 else 0,
                channels=8,
                conv_layers=2,
                view_features=32,
                width=64,
            ),
            progress=False,
            device="cpu",
        ),
        WORKCELL,
    )
    assert report["examples"] == 500  # robot 1 held out
    detector = SuccessDetector.load(report["checkpoint"], WORKCELL.task_set)
    held = load_examples(tmp_path / "ex")
    held = held.subset(held.robot == 1)
    pred = detector.predict_examples(held)[:, cols]
    accuracy = (pred == success[500:]).mean()
    assert accuracy >= 0.9, accuracy
