"""Gripper-centred crops of the success detector's views (the ``gripper_crop`` input).

Whether a lift succeeded is decided between the fingers, which cover a few pixels of a whole
view pooled to 64 px. A robot knows where its gripper is (the final ``state``'s gripper
position, from its kinematics) and where its fixed cameras are (their calibration), so the
detector can look there at the stored resolution: each view is cropped to a ``crop x crop``
window centred on the fingertips' projection into that camera.

* the cameras' calibration: every view's 3 x 4 pinhole projection, from a JSON file
  (:func:`load_camera_projections`, ``mtopt sd train --calibration FILE``) or, for a simulated
  environment, read from its model by the environment layer and passed to
  :func:`~mtopt.success.training.train_success_detector` (``mtopt sd train`` does so for the
  workcell); a trained detector stores the matrices it was trained with in its checkpoint;
* :func:`project_points` and :func:`gripper_crops`: pure functions on arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mtopt.success.dataset import NUM_VIEWS, check_views

FINGERTIP_DROP = 0.03
"""The crop is centred this far (m) below the gripper's reference point (``state[0:3]``),
where a held object sits between the fingers."""


def load_camera_projections(path: str | Path) -> np.ndarray:
    """Camera projections from a JSON file: a ``3 x 3 x 4`` nested list, one matrix per view
    in view order (over-the-shoulder, side left, side right), mapping homogeneous world points
    (m) to homogeneous pixel coordinates (column, row, 1) of the stored views."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"camera calibration file {str(path)!r} does not exist")
    try:
        value = np.asarray(json.loads(path.read_text()), dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"camera calibration {str(path)!r} is not a JSON array of numbers"
        ) from err
    if value.shape != (NUM_VIEWS, 3, 4) or not np.isfinite(value).all():
        raise ValueError(
            f"camera calibration {str(path)!r} must hold {NUM_VIEWS} finite 3 x 4 matrices, "
            f"got shape {value.shape}"
        )
    return value


def project_points(projections: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel (column, row) float ``(N, V, 2)`` of world ``points`` ``(N, 3)`` in each of the
    ``V`` cameras of ``projections`` ``(V, 3, 4)``."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    h = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    p = np.einsum("vij,nj->nvi", np.asarray(projections, dtype=np.float64), h)
    return p[..., :2] / p[..., 2:3]


def gripper_crops(
    views: np.ndarray, state: np.ndarray, projections: np.ndarray, crop: int
) -> np.ndarray:
    """uint8 ``(N, 3, crop, crop, 3)``: windows of ``views`` ``(N, 3, S, S, 3)`` centred on the
    fingertips of the gripper at ``state[:, 0:3]``, zero outside the image (a centre outside
    the image is moved to its nearest edge, so every window shows part of the view)."""
    check_views(views, None)
    state = np.asarray(state)
    n, size = len(views), views.shape[2]
    if state.ndim != 2 or len(state) != n or state.shape[1] < 3:
        raise ValueError(f"state must have shape ({n}, D >= 3), got {state.shape}")
    if projections.shape != (NUM_VIEWS, 3, 4):
        raise ValueError(
            f"projections must have shape ({NUM_VIEWS}, 3, 4), got {projections.shape}"
        )
    if not isinstance(crop, int) or not 1 <= crop <= size:
        raise ValueError(f"crop must be an integer in [1, {size}], got {crop!r}")
    tips = state[:, 0:3].astype(np.float64) - np.array([0.0, 0.0, FINGERTIP_DROP])
    centre = np.rint(project_points(projections, tips))
    half = crop // 2
    # top-left corner in a view padded by `crop` on every side
    corner = np.clip(centre, 0, size - 1).astype(np.int64) + crop - half
    out = np.zeros((n, NUM_VIEWS, crop, crop, 3), dtype=np.uint8)
    padded = np.zeros((NUM_VIEWS, size + 2 * crop, size + 2 * crop, 3), dtype=np.uint8)
    for i in range(n):
        padded[:, crop : crop + size, crop : crop + size] = views[i]
        for v in range(NUM_VIEWS):
            col, row = corner[i, v]
            out[i, v] = padded[v, row : row + crop, col : col + crop]
    return out
