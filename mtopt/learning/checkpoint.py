"""Atomic, verifiable training checkpoints.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values (state
dicts, the step counter, RNG states, a metadata dict), so it loads with
``torch.load(weights_only=True)``; nothing in it is unpickled as code. It is written to a
temporary name, fsync'd and renamed, so a crash never leaves a half-written checkpoint under a
final name. A truncated or corrupted file raises :class:`CheckpointError`, and older
checkpoints in the same directory stay untouched and usable.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from mtopt.added_tasks import slot_differences
from mtopt.errors import MtoptError

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^ckpt-(\d{9})\.pt$")
"""Final checkpoint names: ``ckpt-<step, 9 digits>.pt``."""
FORMAT_VERSION = 1
"""Version of the checkpoint payload layout."""


CHECKPOINT_KEYS = (
    "trainer",
    "network_config",
    "network_shape",
    "env",
    "task_names",
    "trained_tasks",
    "obs_keys",
    "train_episode_counts",
    "config",
)
"""Keys every training checkpoint holds (written by :mod:`mtopt.system.builder`)."""
TMP_PREFIX = ".tmp-ckpt-"
"""Name prefix of a checkpoint being written (renamed to its final name when complete)."""


class CheckpointError(MtoptError, RuntimeError):
    """A checkpoint is missing, truncated, corrupted or of an unknown format."""


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """Path of the checkpoint for ``step`` in ``directory``."""
    return Path(directory) / f"ckpt-{step:09d}.pt"


def checkpoint_run_tag(path: str | Path) -> str:
    """The run a checkpoint belongs to: the name of ``RUN`` in ``RUN/checkpoints/ckpt-N.pt``.

    Learned policies name their episodes after it (``checkpoint:RUN@STEP``), so it tells which
    episodes of a log a checkpoint's policy collected."""
    return Path(path).parent.parent.name


def save_checkpoint(
    directory: str | Path, step: int, payload: dict[str, Any], keep: int = 3
) -> Path:
    """Atomically write ``payload`` as the checkpoint of ``step``; keep the newest ``keep``.

    The payload must hold only tensors, state dicts and plain Python values. A SHA-256 of the
    serialised payload is stored beside it in the same file and checked on load.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "step": step, **payload}, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    final = checkpoint_path(directory, step)
    clean_temporary_checkpoints(directory)
    tmp = directory / f"{TMP_PREFIX}{step:09d}.{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(digest.encode() + b"\n")
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:  # e.g. a full disk: leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` naming the file if it is missing, truncated, fails its
    checksum or has an unknown format version. Loads with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    raw = path.read_bytes()
    head, sep, body = raw.partition(b"\n")
    if not sep or len(head) != 64:
        raise CheckpointError(f"checkpoint {str(path)!r} has no checksum header (not ours?)")
    if hashlib.sha256(body).hexdigest().encode() != head:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupted ({len(raw)} bytes; checksum "
            "mismatch); use an older checkpoint from the same directory"
        )
    try:
        with warnings.catch_warnings():  # torch's notice about a pickle protocol it did not write
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # weights-only loading refused an object, unrun
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        why = f" ({found.group(1).strip()})" if found else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain values{why}; "
            "they were refused without being run: it is not an mtopt checkpoint"
        ) from exc
    except Exception as exc:  # a valid checksum but unreadable payload
        lines = str(exc).strip().splitlines()
        why = lines[0] if lines else type(exc).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be loaded: {why}") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a {type(payload).__name__}, not a checkpoint dict"
        )
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version!r}; this mtopt reads "
            f"version {FORMAT_VERSION}"
        )
    return payload


def require_keys(payload: dict[str, Any], path: str | Path, keys: tuple[str, ...]) -> None:
    """Raise :class:`CheckpointError` naming the keys of ``keys`` that ``payload`` lacks."""
    missing = [k for k in keys if k not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} lacks {missing}: it is not an mtopt training checkpoint "
            "(or it was written by an older version)"
        )


def clean_temporary_checkpoints(directory: str | Path) -> list[Path]:
    """Remove the temporary files of checkpoint writes that did not complete (a crash or a
    kill between writing and renaming); returns what was removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if p.name.startswith((TMP_PREFIX, ".tmp-ckpt"))]
    for p in stale:
        p.unlink(missing_ok=True)
        logger.info("removed %s, the temporary file of an incomplete checkpoint write", p)
    return stale


def newest_valid_checkpoint(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``directory`` that loads and holds :data:`CHECKPOINT_KEYS`,
    with its payload; each newer one that does not is skipped with a warning naming it and
    why. None when there is no valid checkpoint."""
    for path in reversed(list_checkpoints(directory)):
        try:
            payload = load_checkpoint(path, map_location)
            require_keys(payload, path, CHECKPOINT_KEYS)
        except CheckpointError as exc:
            logger.warning("skipping checkpoint %s: %s", path, exc)
            continue
        return path, payload
    return None


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Final checkpoints in ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def check_checkpoint_env(payload: dict[str, Any], spec: Any, path: str | Path) -> None:
    """Refuse a checkpoint trained on another environment or task set than ``spec``'s
    (an :class:`mtopt.spec.EnvSpec`), naming both."""
    stored = payload.get("env")
    if not isinstance(stored, dict):
        raise ValueError(
            f"checkpoint {str(path)!r} does not record its environment (written by an older "
            "mtopt); retrain it"
        )
    mine = spec.describe()
    if stored.get("env") != mine["env"]:
        raise ValueError(
            f"checkpoint {str(path)!r} was trained on env {stored.get('env')!r}, not on "
            f"{mine['env']!r}; pass --env {stored.get('env')}"
        )
    names = list(payload.get("task_names", ()))
    if names != list(spec.task_set.names)[: len(names)]:  # a grown task set keeps the prefix
        differ = slot_differences(names, list(spec.task_set.names)[: len(names)])
        raise ValueError(
            f"checkpoint {str(path)!r} conflicts with the task set of env {mine['env']!r}: "
            f"{'; '.join(differ)} (checkpoint vs this run; a run may only add tasks in free "
            f"slots after the checkpoint's {len(names)}). Checkpoint tasks: {names}; this "
            f"run's: {list(spec.task_set.names)}"
        )
    for key, value in mine.items():  # the episode's shape: capacity, widths, action repeat
        if key not in ("env", "tasks") and key in stored and stored[key] != value:
            raise ValueError(
                f"checkpoint {str(path)!r} was trained on env {mine['env']!r} with {key} "
                f"{stored[key]!r}; this env has {key} {value!r}"
            )
