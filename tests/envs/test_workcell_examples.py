"""The workcell's success-detector support: outcome-example configs and the cameras'
calibration (mtopt.envs.workcell_examples)."""

import numpy as np
import pytest

from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.envs.workcell_examples import SDExamplesConfig, workcell_camera_projections
from mtopt.success.gripper_crop import FINGERTIP_DROP, project_points


def test_examples_for_an_unknown_task_are_refused():
    with pytest.raises(ValueError, match=r"unknown task name\(s\) \['lift-anvil'\].*lift-any"):
        SDExamplesConfig(task="lift-anvil")


def test_workcell_calibration_finds_the_gripper_in_every_view():
    """Moving the gripper changes the rendered views mostly inside the crop windows around
    its fingertips before and after the move (the rest is the arm above them)."""
    size = 64
    proj = workcell_camera_projections(size)
    env = WorkcellEnv(WorkcellConfig(image=True, side_images=True, image_size=size))
    obs, _ = env.reset(seed=3)
    views, states = [], []
    for step in range(3):
        if step:
            obs, *_ = env.step(np.array([0, 1, 0, 0, 0, 0], np.float32))  # sideways, high
        if step != 1:
            views.append(np.concatenate([obs["image"][None], obs["side_images"]]))
            states.append(obs["state"])
    env.close()
    changed = np.abs(views[0].astype(int) - views[1].astype(int)).sum(-1) > 30  # (3, H, W)
    rows, cols = np.indices((size, size))
    for v in range(3):
        inside = np.zeros((size, size), bool)
        for state in states:
            tip = state[None, 0:3].astype(np.float64) - [0.0, 0.0, FINGERTIP_DROP]
            col, row = project_points(proj, tip)[0, v]
            inside |= (np.abs(cols - col) <= 8) & (np.abs(rows - row) <= 8)
        share = (changed[v] & inside).sum() / changed[v].sum()
        assert changed[v].sum() > 50 and share > 0.3, (v, share)
        assert share > 3 * inside.mean(), (v, share, inside.mean())
