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
import re
from pathlib import Path
from typing import Any

import torch

from mtopt.errors import MtoptError

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^ckpt-(\d{9})\.pt$")
"""Final checkpoint names: ``ckpt-<step, 9 digits>.pt``."""
FORMAT_VERSION = 1
"""Version of the checkpoint payload layout."""


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
    tmp = directory / f".tmp-{final.name}.{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(digest.encode() + b"\n")
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
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
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as exc:  # a valid checksum but unreadable payload
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be loaded: {exc}") from exc
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version!r}; this mtopt reads "
            f"version {FORMAT_VERSION}"
        )
    return payload


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
    if names != list(spec.task_set.names)[: len(names)]:
        raise ValueError(
            f"checkpoint {str(path)!r} was trained for tasks {names}, which do not match the "
            f"task set of env {mine['env']!r}: {list(spec.task_set.names)}"
        )
