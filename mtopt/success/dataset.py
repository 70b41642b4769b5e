"""Success-detector examples: final outcomes with per-task labels, stored as ``.npz`` files.

An example is the final state of an episode (or an arranged scene): its low-dimensional
``state`` and/or its three final camera *views* (over-the-shoulder, left side, right side), and
a label per task: ``1`` success, ``0`` failure, ``-1`` unknown. Each example also records its
*primary* task (the task it was shown or labelled for; the row of paper Table 3 it counts in)
and the robot that produced it (``-1`` for user-made outcome examples), so that an evaluation can
hold out every episode of one robot. Outcome examples also record their *pair*: the success and
the failure arranged on the same scene share a pair id (``-1``: not paired, e.g. a relabelled
episode), so training can show both in one batch.

A directory of examples holds ``examples-*.npz`` files written atomically (temporary name,
fsync, rename) with plain arrays only; they are loaded with ``allow_pickle=False``.

Label sharing from task relations (paper App. 8) is :func:`share_labels`: a ``lift-carrot``
success is also a ``lift-any`` success and a failure for every other semantic lift.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)

UNKNOWN, FAILURE, SUCCESS = -1, 0, 1
"""Values of the label matrix."""
NUM_VIEWS = 3
"""Cameras seen by the image success detector: over-the-shoulder, side left, side right."""
USER_ROBOT = -1
"""Robot id of outcome examples made by a user (never an evaluation holdout robot)."""
NO_PAIR = -1
"""Pair id of an example without a partner."""
EXAMPLE_GLOB = "examples-*.npz"
"""File names of example shards in an examples directory."""


@dataclass(eq=False)
class SDExamples:
    """A batch of success-detector examples (see the module docstring)."""

    task_names: tuple[str, ...]
    """Task of each label column."""
    labels: np.ndarray
    """int8 ``(N, n_tasks)``: 1 success, 0 failure, -1 unknown."""
    primary: np.ndarray
    """int64 ``(N,)``: column of the task each example was made or labelled for."""
    robot: np.ndarray
    """int64 ``(N,)``: robot that produced the example (``-1``: user-made)."""
    state: np.ndarray | None = None
    """float32 ``(N, D)`` final low-dimensional state, or None."""
    views: np.ndarray | None = None
    """uint8 ``(N, 3, H, W, 3)`` final camera images, or None."""
    pair: np.ndarray | None = None
    """int64 ``(N,)``: id shared by the two examples of a success/failure pair (``-1``: not
    paired); None means no example is paired."""
    crops: np.ndarray | None = None
    """uint8 ``(N, 3, C, C, 3)`` gripper-centred windows of the views
    (:mod:`mtopt.success.gripper_crop`), derived when a detector needs them; never saved."""

    def __post_init__(self) -> None:
        self.task_names = tuple(self.task_names)
        n, t = len(self.labels), len(self.task_names)
        if self.pair is None:
            self.pair = np.full(n, NO_PAIR, dtype=np.int64)
        self.pair = np.asarray(self.pair, dtype=np.int64)
        if self.labels.dtype != np.int8 or self.labels.shape != (n, t):
            raise ValueError(f"labels must be int8 of shape (N, {t}), got {self.labels.shape}")
        if not np.isin(self.labels, (UNKNOWN, FAILURE, SUCCESS)).all():
            raise ValueError("labels must hold only -1 (unknown), 0 (failure), 1 (success)")
        for name in ("primary", "robot", "pair"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        if ((self.primary < 0) | (self.primary >= t)).any():
            raise ValueError(f"primary task indices must be in [0, {t})")
        if self.state is not None and (self.state.ndim != 2 or len(self.state) != n):
            raise ValueError(f"state must have shape ({n}, D), got {self.state.shape}")
        if self.views is not None:
            check_views(self.views, None)
            if len(self.views) != n:
                raise ValueError(f"views must have {n} rows, got {len(self.views)}")
        if self.crops is not None:
            check_views(self.crops, None)
            if len(self.crops) != n:
                raise ValueError(f"crops must have {n} rows, got {len(self.crops)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> SDExamples:
        """The examples at ``rows`` (index or bool mask)."""
        return SDExamples(
            self.task_names,
            self.labels[rows],
            self.primary[rows],
            self.robot[rows],
            None if self.state is None else self.state[rows],
            None if self.views is None else self.views[rows],
            self.pair[rows],
            None if self.crops is None else self.crops[rows],
        )

    def siblings(self) -> np.ndarray:
        """int64 ``(N,)``: row of each example's pair partner, ``-1`` if it has none (a pair id
        held by one example, or by more than two, pairs nothing)."""
        out = np.full(len(self), -1, dtype=np.int64)
        if len(self) == 0:
            return out
        order = np.argsort(self.pair, kind="stable")
        ids = self.pair[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        sizes = np.diff(np.r_[starts, len(ids)])
        ok = (sizes == 2) & (ids[starts] >= 0)
        a, b = order[starts[ok]], order[starts[ok] + 1]
        out[a], out[b] = b, a
        return out

    def save(self, directory: str | Path, name: str | None = None) -> Path:
        """Atomically write these examples as a new shard in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"examples-{name or secrets.token_hex(6)}.npz"
        tmp = directory / f".tmp-{final.name}"
        arrays: dict[str, np.ndarray] = {
            "task_names": np.array(self.task_names, dtype=str),
            "labels": self.labels,
            "primary": self.primary,
            "robot": self.robot,
            "pair": self.pair,
        }
        if self.state is not None:
            arrays["state"] = self.state
        if self.views is not None:
            arrays["views"] = self.views
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final


def check_views(views: np.ndarray, image_size: int | None) -> None:
    """Raise ``ValueError`` unless ``views`` is uint8 ``(N, 3, S, S, 3)`` (``S = image_size``
    when given)."""
    if not isinstance(views, np.ndarray) or views.dtype != np.uint8:
        got = views.dtype if isinstance(views, np.ndarray) else type(views).__name__
        raise ValueError(f"success-detector images must be a uint8 numpy array, got {got}")
    ok = views.ndim == 5 and views.shape[1] == NUM_VIEWS and views.shape[4] == 3
    ok = ok and views.shape[2] == views.shape[3]
    if image_size is not None:
        ok = ok and views.shape[2] == image_size
    if not ok:
        size = image_size if image_size is not None else "S"
        raise ValueError(
            f"success-detector images must have shape (N, {NUM_VIEWS}, {size}, {size}, 3) "
            f"(3 views: over-the-shoulder, side left, side right; RGB), got {views.shape}"
        )


def align_examples(examples: SDExamples, task_names: Sequence[str], source: str) -> SDExamples:
    """``examples`` with label columns in the order of ``task_names``: columns are matched by
    task name, and a task the examples were not made for gets unknown labels (e.g. outcome
    examples of the environment's tasks, used in a task set that added tasks, or examples of
    one added task). ``ValueError`` naming them when the examples label tasks outside
    ``task_names``."""
    task_names = tuple(task_names)
    if examples.task_names == task_names:
        return examples
    stray = [t for t in examples.task_names if t not in task_names]
    if stray:
        raise ValueError(
            f"{source} label task(s) {stray} that are not in the task set {list(task_names)}; "
            "add them first ('mtopt task add') or use examples made for this task set"
        )
    labels = np.full((len(examples), len(task_names)), UNKNOWN, dtype=np.int8)
    columns = [task_names.index(t) for t in examples.task_names]
    labels[:, columns] = examples.labels
    return SDExamples(
        task_names,
        labels,
        np.asarray(columns, dtype=np.int64)[examples.primary],
        examples.robot,
        examples.state,
        examples.views,
        examples.pair,
        examples.crops,
    )


def concat_examples(parts: Sequence[SDExamples]) -> SDExamples:
    """Concatenate example batches with the same task columns (inputs both present or not)."""
    if not parts:
        raise ValueError("no success-detector examples to concatenate")
    names = parts[0].task_names
    for p in parts[1:]:
        if p.task_names != names:
            raise ValueError(f"example task columns differ: {p.task_names} vs {names}")

    def cat(key: str) -> np.ndarray | None:
        values = [getattr(p, key) for p in parts]
        if any(v is None for v in values):
            return None
        return np.concatenate(values)

    pairs, offset = [], 0
    for p in parts:  # pair ids stay unique across the parts
        pairs.append(np.where(p.pair >= 0, p.pair + offset, NO_PAIR))
        offset += int(p.pair.max(initial=-1)) + 1
    return SDExamples(
        names,
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.primary for p in parts]),
        np.concatenate([p.robot for p in parts]),
        cat("state"),
        cat("views"),
        np.concatenate(pairs),
        cat("crops"),
    )


def load_examples(
    directory: str | Path, transform: Callable[[SDExamples], SDExamples] | None = None
) -> SDExamples:
    """All example shards of ``directory``, concatenated in file-name order. ``transform``
    (e.g. cropping and pooling the views to what a detector sees) is applied to each shard as
    it loads, so the full-size views of only one shard are in memory at a time."""
    directory = Path(directory)
    files = sorted(directory.glob(EXAMPLE_GLOB)) if directory.is_dir() else []
    if not files:
        raise ValueError(
            f"{str(directory)!r} holds no success-detector examples ({EXAMPLE_GLOB}); make some "
            "with 'mtopt sd examples --task T --out DIR'"
        )
    parts = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            shard = SDExamples(
                tuple(str(x) for x in z["task_names"]),
                z["labels"],
                z["primary"].astype(np.int64),
                z["robot"].astype(np.int64),
                z.get("state"),
                z.get("views"),
                z.get("pair"),
            )
        parts.append(shard if transform is None else transform(shard))
    return concat_examples(parts)


def is_examples_dir(directory: str | Path) -> bool:
    """True if ``directory`` holds example shards (rather than an episode log)."""
    directory = Path(directory)
    return directory.is_dir() and any(directory.glob(EXAMPLE_GLOB))


def share_labels(labels: np.ndarray, task_names: Sequence[str], task_set: TaskSet) -> np.ndarray:
    """Label sharing from task relations (paper App. 8), as a new int8 matrix.

    For every known success of task A, tasks implied by A become successes and tasks A excludes
    become failures, wherever the label is still unknown (a given label is never overwritten;
    contradictions are counted and logged).
    """
    labels = np.asarray(labels, dtype=np.int8)
    out = labels.copy()
    col = {n: i for i, n in enumerate(task_names)}
    conflicts = 0
    for a, name in enumerate(task_names):
        rows = labels[:, a] == SUCCESS
        if not rows.any():
            continue
        for other, value in task_set.implied_labels(name).items():
            if other not in col:
                continue
            j = col[other]
            target = SUCCESS if value else FAILURE
            given = labels[rows, j]
            conflicts += int(((given != UNKNOWN) & (given != target)).sum())
            sub = out[rows, j]
            sub[sub == UNKNOWN] = target
            out[rows, j] = sub
    if conflicts:
        logger.warning("label sharing: %d given labels contradict the task relations", conflicts)
    return out
