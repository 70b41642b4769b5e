import numpy as np
import pytest
import torch

from mtopt.learning.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _payload(seed: int) -> dict:
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    return {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "torch_rng": gen.get_state(),
        "numpy_rng": rng.bit_generator.state,
        "meta": {"tasks": ["lift-any", "place-any"]},
    }


def test_round_trip_with_weights_only(tmp_path):
    p = _payload(0)
    path = save_checkpoint(tmp_path, 100, p)
    got = load_checkpoint(path)
    assert got["step"] == 100
    for k, v in p["model"].items():
        assert torch.equal(got["model"][k], v)
    assert got["numpy_rng"] == p["numpy_rng"]
    assert torch.equal(got["torch_rng"], p["torch_rng"])
    assert got["meta"]["tasks"] == ["lift-any", "place-any"]
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".tmp")]


def test_keep_newest_and_latest(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, _payload(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "ckpt-000000030.pt",
        "ckpt-000000040.pt",
    ]
    assert latest_checkpoint(tmp_path).name == "ckpt-000000040.pt"
    assert latest_checkpoint(tmp_path / "none") is None


def test_truncated_checkpoint_fails_clearly_and_older_stays_usable(tmp_path):
    save_checkpoint(tmp_path, 1, _payload(1))
    newest = save_checkpoint(tmp_path, 2, _payload(2))
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(newest)
    assert load_checkpoint(list_checkpoints(tmp_path)[0])["step"] == 1
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "foreign.pt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="no checksum header"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_a_failed_write_leaves_no_temporary_file_and_stale_ones_are_removed(tmp_path, monkeypatch):
    import errno
    import os

    from mtopt.learning import checkpoint

    (tmp_path / ".tmp-ckpt-000000007.999").write_bytes(b"half a checkpoint")  # a killed write
    save_checkpoint(tmp_path, 1, _payload(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000001.pt"]

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path, 2, _payload(1))
    monkeypatch.setattr(checkpoint.os, "fsync", os.fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000001.pt"]


def test_a_payload_that_is_not_a_dict_is_named(tmp_path):
    import hashlib
    import io

    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    body = buf.getvalue()
    path = tmp_path / "ckpt-000000001.pt"
    path.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    with pytest.raises(CheckpointError, match="holds a list, not a checkpoint dict"):
        load_checkpoint(path)


class _RunsCode:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused_in_one_line_without_running(tmp_path, capsys):
    """Even under a valid checksum header: weights-only loading refuses the object (the marker
    file is never created) and the CLI prints one line, without torch's multi-line advice."""
    import hashlib
    import pickle

    from mtopt.cli import main

    marker = tmp_path / "ran"
    body = pickle.dumps(_RunsCode(str(marker)))
    path = tmp_path / "ckpt-000000001.pt"
    path.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    with pytest.raises(CheckpointError, match="refused without being run"):
        load_checkpoint(path)
    assert main(["eval", "--checkpoint", str(path), "--episodes-per-task", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds objects other than tensors and plain values" in err[0]
    assert not marker.exists()
