"""Reliability of the command line: bad inputs, corrupt shards and SIGKILLs (issue 30).

Usage: python benchmarks/bench_reliability.py [--seed 0]
       python benchmarks/bench_reliability.py --smoke     # a few cases of each part

Everything runs the real CLI (``python -m mtopt ...``) in subprocesses in a temporary
directory, with this checkout's code on PYTHONPATH:

1. **Probes**: bad inputs a user can cause. A probe is *clean* when the command exits non-zero,
   prints no ``Traceback``, and its error message is short (at most 3 lines of stderr besides
   INFO log records) and names the bad value. Three probes expect something else: ``--help``
   into a closed pipe must be quiet (no traceback), and a truncated newest checkpoint under
   ``--resume`` or a directory named like a shard must be skipped with a message naming it while
   the command succeeds.
2. **Corrupt shards**: 5 kinds of damage to one shard of a 20-episode log (4 per shard) x every
   command that reads shards. *Detected*: the command reports the corrupt shard (skipped and
   counted, or refused naming it) and does not count its episodes. Plain ``data stats`` and
   ``data plot`` decode only the scalar columns (and say so); ``--verify`` decodes everything.
3. **Kills**: SIGKILLs of ``mtopt collect`` and of a local ``mtopt run`` (configs/run/tiny.yaml)
   at different moments, each followed by a check of the log: no episode id twice, every episode
   that was in the log before the kill still there, every robot's episode counter contiguous
   (a robot loses only episodes it had not committed yet), no corrupt shard; the next
   collection / resumed run appends to the same log.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ROOT / "configs" / "run" / "tiny.yaml"
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|DEBUG) ")
"""An INFO / DEBUG log record on stderr: progress, not part of an error message."""
MAX_MESSAGE_LINES = 3
SHARD_EPISODES = 4
LOG_EPISODES = 20
CORRUPT_SHARD_INDEX = 1
"""The shard (in creation order) that the corrupt-shard cases damage."""


def cli_env() -> dict[str, str]:
    """The environment of every subprocess: this checkout first on PYTHONPATH, CPU rendering."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("MUJOCO_GL", "osmesa")
    env.setdefault("PYOPENGL_PLATFORM", "osmesa")
    return env


def mtopt_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mtopt", *args]


def run_cli(args: list[str], cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """``mtopt ARGS`` in ``cwd``, its output captured."""
    return subprocess.run(
        mtopt_cmd(*args),
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check_ok(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"set-up step {what} failed ({done.returncode}):\n{done.stderr}")


def message_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not INFO / DEBUG log records, blank lines dropped."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not LOG_RECORD.match(ln)]


# ---------------------------------------------------------------------------------------------
# Fixtures: a valid log and checkpoints, made once with the CLI, and damaged files
# ---------------------------------------------------------------------------------------------


@dataclass
class Fixtures:
    """Files the probes and the corrupt-shard cases use, under ``tmp``."""

    tmp: Path
    env: str
    seed: int
    log: Path = field(init=False)
    train_run: Path = field(init=False)
    checkpoint: Path = field(init=False)
    partial_checkpoint: Path | None = None
    sd_run: Path | None = None

    def __post_init__(self) -> None:
        self.log = self.tmp / "log"
        self.train_run = self.tmp / "train"
        self.checkpoint = self.train_run / "checkpoints" / "ckpt-000000002.pt"

    def make(self, full: bool) -> None:
        """Collect the log; ``full`` also trains 2 steps (a checkpoint per step), a checkpoint
        on 2 tasks only and a success detector."""
        env = ["--env", self.env]
        collect = ["collect", *env, "--out", "log", "--robots", "1", "--no-progress"]
        collect += ["--episodes", str(LOG_EPISODES), "--seed", str(self.seed)]
        collect += ["--log.shard-episodes", str(SHARD_EPISODES), "--log.no-fsync"]
        check_ok(run_cli(collect, self.tmp), "collect")
        if not full:
            return
        train = ["train", *env, "--data", "log", "--rewards", "oracle", "--batch-size", "8"]
        train += ["--no-progress", "--checkpoint-every", "1", "--seed", str(self.seed)]
        check_ok(run_cli([*train, "--out", "train", "--steps", "2"], self.tmp), "train")
        tasks = ["--tasks", "lift-any", "lift-banana"]
        check_ok(run_cli([*train, "--out", "partial", "--steps", "1", *tasks], self.tmp), "train")
        self.partial_checkpoint = self.tmp / "partial" / "checkpoints" / "ckpt-000000001.pt"
        sd = ["sd", "train", *env, "--log", "log", "--budget", "1000", "--steps", "2"]
        sd += ["--network.kind", "state", "--out", "sd", "--no-progress"]
        check_ok(run_cli(sd, self.tmp), "sd train")
        self.sd_run = self.tmp / "sd"

    def shards(self, log: Path | None = None) -> list[Path]:
        """Shards of ``log`` (default: the fixture log) in creation order."""
        return sorted(p for p in (log or self.log).iterdir() if p.name.endswith(".parquet"))

    def copy_log(self, name: str) -> Path:
        dst = self.tmp / name
        shutil.copytree(self.log, dst)
        return dst


def rehash_name(path: Path, data: bytes) -> Path:
    """The shard name of ``path`` with the checksum of ``data``."""
    import dataclasses
    import hashlib

    from mtopt.data.shards import ShardName

    name = ShardName.parse(path.name)
    fresh = dataclasses.replace(name, sha256_prefix=hashlib.sha256(data).hexdigest()[:16])
    return path.parent / fresh.filename


def flip_middle(data: bytes) -> bytes:
    """``data`` with 64 bytes in its middle (column data pages) inverted."""
    out = bytearray(data)
    mid = len(out) // 2
    out[mid : mid + 64] = bytes(b ^ 0xFF for b in out[mid : mid + 64])
    return bytes(out)


def damage_truncated(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.name


def damage_flipped(path: Path) -> str:
    path.write_bytes(flip_middle(path.read_bytes()))
    return path.name


def damage_flipped_rehashed(path: Path) -> str:
    data = flip_middle(path.read_bytes())
    fresh = rehash_name(path, data)
    path.unlink()
    fresh.write_bytes(data)
    return fresh.name


def damage_zero_bytes(path: Path) -> str:
    path.write_bytes(b"")
    return path.name


def damage_directory(path: Path) -> str:
    """Replace the shard by a directory of the same name (its episodes are gone)."""
    path.unlink()
    path.mkdir()
    (path / "stray.txt").write_text("not a shard\n")
    return path.name


DAMAGE: dict[str, Callable[[Path], str]] = {
    "truncated": damage_truncated,
    "flipped bytes (checksum mismatch)": damage_flipped,
    "flipped bytes, re-hashed name": damage_flipped_rehashed,
    "zero bytes": damage_zero_bytes,
    "directory named like a shard": damage_directory,
}
"""The 5 kinds of damage: each takes a shard and returns the name now holding the damage."""


def with_checksum_header(body: bytes) -> bytes:
    """``body`` under a valid checkpoint checksum header (as ``save_checkpoint`` writes it), so
    that only the payload itself can be refused."""
    import hashlib

    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


class _Evil:
    """Unpickling this creates the file ``marker``: a checkpoint that would run code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------------------------------------
# 1. Probes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A bad input: ``args`` of ``mtopt``; the message must contain every string of ``names``.

    ``expect``: ``error`` (non-zero exit, short message), ``skip`` (exit 0, the damage named in
    the output) or ``quiet`` (a shell pipeline that must print no traceback).
    """

    name: str
    args: tuple[str, ...]
    names: tuple[str, ...]
    expect: str = "error"
    shell: str | None = None
    check: Callable[[Path], bool] | None = None
    """Extra condition on the temp directory after the command (e.g. no code was run)."""


def make_probes(fx: Fixtures, full: bool) -> list[Probe]:
    """The probe set; writes the bad files it needs into ``fx.tmp``."""
    t = fx.tmp
    (t / "empty").mkdir(exist_ok=True)
    (t / "a-file").write_text("a regular file\n")
    (t / "bad.yaml").write_text("steps: [1, 2\nbatch_size: 8\n")
    (t / "list.yaml").write_text("- steps\n- 10\n")
    (t / "unknown-key.yaml").write_text("steps: 10\nstepz: 20\n")
    ckpt = str(fx.checkpoint)
    env = ("--env", fx.env)
    train = ("train", *env, "--data", "log", "--rewards", "oracle", "--no-progress")
    eval_ = ("eval", *env, "--episodes-per-task", "1", "--no-progress")
    probes = [
        Probe("unknown command", ("frobnicate",), ("frobnicate",)),
        Probe("data stats: missing log dir", ("data", "stats", "no-such-log"), ("no-such-log",)),
        Probe("train --steps 0", (*train, "--out", "p-steps0", "--steps", "0"), ("steps", "0")),
    ]
    if not full:
        return probes
    import torch

    from mtopt.learning.checkpoint import save_checkpoint

    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    (t / "list-payload.pt").write_bytes(with_checksum_header(buf.getvalue()))
    partial = save_checkpoint(t / "wrong-payload", 3, {"trainer": {}, "task_names": ["lift-any"]})
    shutil.copy(partial, t / "missing-keys.pt")
    (t / "truncated.pt").write_bytes(fx.checkpoint.read_bytes()[:1000])
    evil = pickle.dumps(_Evil(str(t / "PWNED")))
    (t / "evil.pt").write_bytes(evil)
    (t / "evil-headed.pt").write_bytes(with_checksum_header(evil))
    # a log with a directory named like a shard (besides its valid shards)
    shard_dir_log = fx.copy_log("log-with-dir")
    (shard_dir_log / rehash_name(fx.shards(shard_dir_log)[0], b"dir").name).mkdir()
    # a run whose newest checkpoint is truncated: --resume must continue from the older one
    resume = t / "resume-run"
    shutil.copytree(fx.train_run, resume)
    newest = resume / "checkpoints" / "ckpt-000000002.pt"
    newest.write_bytes(newest.read_bytes()[:2000])
    collect = ("collect", *env, "--no-progress", "--log.no-fsync")
    sd_train = ("sd", "train", *env, "--network.kind", "state", "--steps", "1", "--no-progress")
    assert fx.partial_checkpoint is not None and fx.sd_run is not None
    probes += [
        Probe("eval: missing checkpoint", (*eval_, "--checkpoint", "missing.pt"), ("missing.pt",)),
        Probe("train --out is a file", (*train, "--out", "a-file"), ("a-file",)),
        Probe(
            "run --out is a file",
            ("run", "--config", str(TINY_RUN), "--out", "a-file", "--no-progress"),
            ("a-file",),
        ),
        Probe(
            "collect --out is a file", (*collect, "--out", "a-file", "--episodes", "1"), ("a-file",)
        ),
        Probe("malformed YAML config", ("train", "--config", "bad.yaml"), ("bad.yaml", "line")),
        Probe(
            "--help into a closed pipe",
            (),
            (),
            expect="quiet",
            shell=" ".join(mtopt_cmd("collect", "--help")) + " | head -n 1",
        ),
        Probe(
            "data stats: directory named like a shard",
            ("data", "stats", "log-with-dir"),
            ("1 corrupt shard(s) skipped",),
            expect="skip",
        ),
        Probe(
            "train --resume: truncated newest checkpoint",
            (*train, "--out", "resume-run", "--steps", "3", "--resume", "--batch-size", "8"),
            ("ckpt-000000002.pt", "ckpt-000000001.pt"),
            expect="skip",
        ),
        Probe(
            "eval: wrong payload (a list)",
            (*eval_, "--checkpoint", "list-payload.pt"),
            ("list-payload.pt",),
        ),
        Probe(
            "eval: wrong payload (missing keys)",
            (*eval_, "--checkpoint", "missing-keys.pt"),
            ("missing-keys.pt", "network_config"),
        ),
        Probe(
            "eval: a pickle that would run code, under a valid checksum header",
            (*eval_, "--checkpoint", "evil-headed.pt"),
            ("evil-headed.pt",),
            check=lambda tmp: not (tmp / "PWNED").exists(),
        ),
        Probe(
            "eval: truncated checkpoint",
            (*eval_, "--checkpoint", "truncated.pt"),
            ("truncated.pt",),
        ),
        Probe(
            "eval: a pickle checkpoint that would run code",
            (*eval_, "--checkpoint", "evil.pt"),
            ("evil.pt",),
            check=lambda tmp: not (tmp / "PWNED").exists(),
        ),
        Probe(
            "eval: checkpoint of the other env",
            (
                "eval",
                "--env",
                "pointmass" if fx.env == "workcell" else "workcell",
                "--checkpoint",
                ckpt,
                "--episodes-per-task",
                "1",
                "--no-progress",
            ),
            ("pointmass", "workcell"),
        ),
        Probe(
            "eval: task the checkpoint was not trained on",
            (*eval_, "--checkpoint", str(fx.partial_checkpoint), "--tasks", "place-any"),
            ("place-any",),
        ),
        Probe(
            "eval --tasks unknown-task",
            (*eval_, "--checkpoint", ckpt, "--tasks", "unknown-task"),
            ("unknown-task",),
        ),
        Probe(
            "eval --episodes-per-task 0",
            ("eval", *env, "--checkpoint", ckpt, "--episodes-per-task", "0"),
            ("episodes", "0"),
        ),
        Probe("unknown flag", (*train, "--bogus-flag", "1"), ("--bogus-flag",)),
        Probe("train --obs foo", (*train, "--obs", "foo"), ("foo", "--obs")),
        Probe("train --rewards foo", (*train, "--rewards", "foo"), ("foo", "--rewards")),
        Probe("collect --env nosuchenv", ("collect", "--env", "nosuchenv"), ("nosuchenv",)),
        Probe(
            "train --replay.sampler foo",
            (*train, "--replay.sampler", "foo"),
            ("foo", "--replay.sampler"),
        ),
        Probe("run --backend foo", ("run", "--backend", "foo"), ("foo", "--backend")),
        Probe(
            "train --batch-size -1",
            (*train, "--out", "p-bs", "--batch-size", "-1"),
            ("batch_size", "-1"),
        ),
        Probe("collect --robots 0", (*collect, "--out", "p-r0", "--robots", "0"), ("robots", "0")),
        Probe(
            "collect --episodes -5",
            (*collect, "--out", "p-e5", "--episodes", "-5"),
            ("episodes", "-5"),
        ),
        Probe("train --steps abc (non-numeric)", (*train, "--steps", "abc"), ("abc", "--steps")),
        Probe(
            "collect --robots two (non-numeric)", (*collect, "--robots", "two"), ("two", "--robots")
        ),
        Probe(
            "collect --policy.epsilon 1.5",
            (*collect, "--out", "p-eps", "--policy.epsilon", "1.5"),
            ("epsilon", "1.5"),
        ),
        Probe(
            "collect --tasks lift-anything",
            (*collect, "--out", "p-t", "--tasks", "lift-anything"),
            ("lift-anything",),
        ),
        Probe(
            "collect --checkpoint missing",
            (*collect, "--out", "p-ck", "--checkpoint", "missing.pt"),
            ("missing.pt",),
        ),
        Probe(
            "train --data missing dir",
            ("train", *env, "--data", "no-such-log", "--out", "p-d1", "--rewards", "oracle"),
            ("no-such-log",),
        ),
        Probe(
            "train --data empty dir",
            ("train", *env, "--data", "empty", "--out", "p-d2", "--rewards", "oracle"),
            ("empty",),
        ),
        Probe("--config missing file", ("train", "--config", "missing.yaml"), ("missing.yaml",)),
        Probe("config with an unknown key", ("train", "--config", "unknown-key.yaml"), ("stepz",)),
        Probe("config that is a list", ("train", "--config", "list.yaml"), ("list.yaml",)),
        Probe(
            "train: success detector missing",
            (
                "train",
                *env,
                "--data",
                "log",
                "--out",
                "p-sd",
                "--rewards",
                "success_detector",
                "--success-detector",
                "no-such-sd",
            ),
            ("no-such-sd",),
        ),
        Probe(
            "train: rewards success_detector without a detector",
            ("train", *env, "--data", "log", "--out", "p-sd0", "--rewards", "success_detector"),
            ("success_detector",),
        ),
        Probe(
            "train --resume-from a directory",
            (*train, "--out", "p-rf", "--resume-from", "empty"),
            ("empty",),
        ),
        Probe(
            "train --init missing checkpoint",
            (*train, "--out", "p-init", "--init", "missing.pt"),
            ("missing.pt",),
        ),
        Probe(
            "sd train: missing log",
            (*sd_train, "--log", "no-such-log", "--out", "p-sdt"),
            ("no-such-log",),
        ),
        Probe(
            "sd train --init missing",
            (*sd_train, "--log", "log", "--out", "p-sdi", "--init", "missing.pt"),
            ("missing.pt",),
        ),
        Probe(
            "sd eval: missing checkpoint",
            ("sd", "eval", *env, "--checkpoint", "missing.pt", "--data", "log"),
            ("missing.pt",),
        ),
        Probe(
            "sd calibrate: missing log",
            (
                "sd",
                "calibrate",
                *env,
                "--checkpoint",
                str(fx.sd_run),
                "--log",
                "no-such-log",
                "--out",
                "p-cal",
            ),
            ("no-such-log",),
        ),
        Probe("data stats: a file, not a dir", ("data", "stats", "a-file"), ("a-file",)),
        Probe(
            "data stats --json into a directory",
            ("data", "stats", "log", "--json", "empty"),
            ("empty",),
        ),
        Probe(
            "data plot: missing log dir",
            ("data", "plot", *env, "no-such-log", "--out", "p.png"),
            ("no-such-log",),
        ),
        Probe(
            "image size out of range",
            (*collect, "--out", "p-img", "--obs", "image", "--env.workcell.image-size", "5"),
            ("image_size", "5"),
        ),
    ]
    return probes


@dataclass
class ProbeResult:
    name: str
    command: str
    exit_code: int
    first_line: str
    message_lines: int
    clean: bool
    why: str


def run_probe(probe: Probe, tmp: Path) -> ProbeResult:
    if probe.shell is not None:
        done = subprocess.run(
            probe.shell,
            shell=True,
            cwd=tmp,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        command = probe.shell.replace(sys.executable, "python")
    else:
        done = run_cli(list(probe.args), tmp)
        command = "mtopt " + " ".join(probe.args)
    out = done.stdout + done.stderr
    lines = message_lines(done.stderr)
    first = (lines or done.stdout.splitlines() or [""])[0].strip()
    problems = []
    if "Traceback" in out:
        problems.append("traceback")
    if probe.expect == "error":
        message = "\n".join(lines)
        if done.returncode == 0:
            problems.append("exit code 0")
        if len(lines) > MAX_MESSAGE_LINES:
            problems.append(f"{len(lines)} message lines")
        missing = [s for s in probe.names if s not in message]
        if missing:
            problems.append(f"does not name {missing}")
    elif probe.expect == "skip":
        if done.returncode != 0:
            problems.append(f"exit code {done.returncode}")
        missing = [s for s in probe.names if s not in out]
        if missing:
            problems.append(f"does not name {missing}")
        named = [ln for ln in lines if all(s in out for s in probe.names)]
        first = (named or [first])[0].strip()
    if probe.check is not None and not probe.check(tmp):
        problems.append("extra check failed")
    return ProbeResult(
        name=probe.name,
        command=command,
        exit_code=done.returncode,
        first_line=first[:160],
        message_lines=len(lines),
        clean=not problems,
        why="; ".join(problems),
    )


# ---------------------------------------------------------------------------------------------
# 2. Corrupt shards
# ---------------------------------------------------------------------------------------------

EPISODES_PATTERN = {
    "data stats": r"(\d+) episodes in \d+ shards",
    "data stats --verify": r"(\d+) episodes in \d+ shards",
    "data plot": r"^(\d+) episodes[.;]",
    "data plot --verify": r"^(\d+) episodes[.;]",
    "train": r"log replay: (\d+) episodes",
    "sd train": r"relabelled \d+ of (\d+) episodes",
    "sd eval": r"^overall\s+(\d+)",
    "sd calibrate": r"calibrated on (\d+) episodes",
}
"""How each shard-reading command reports the episodes it read."""
DETECTION = re.compile(r"skipping (corrupt episode log shard|.* which is not a readable shard)")


def shard_readers(fx: Fixtures, log: str, full: bool) -> dict[str, list[str]]:
    """Every command that reads shards, as arguments on the damaged log ``log``."""
    env = ["--env", fx.env]
    readers = {
        "data stats": ["data", "stats", log],
        "data stats --verify": ["data", "stats", log, "--verify"],
    }
    if not full:
        return readers
    assert fx.sd_run is not None
    readers |= {
        "data plot": ["data", "plot", *env, log, "--out", f"{log}.png"],
        "data plot --verify": ["data", "plot", *env, log, "--out", f"{log}.png", "--verify"],
        "train": [
            "train",
            *env,
            "--data",
            log,
            "--out",
            f"{log}-train",
            "--steps",
            "1",
            "--rewards",
            "oracle",
            "--batch-size",
            "8",
            "--no-progress",
        ],
        "sd train": [
            "sd",
            "train",
            *env,
            "--log",
            log,
            "--budget",
            "1000",
            "--steps",
            "1",
            "--network.kind",
            "state",
            "--out",
            f"{log}-sd",
            "--no-progress",
        ],
        "sd eval": ["sd", "eval", *env, "--checkpoint", str(fx.sd_run), "--data", log],
        "sd calibrate": [
            "sd",
            "calibrate",
            *env,
            "--checkpoint",
            str(fx.sd_run),
            "--log",
            log,
            "--budget",
            "1000",
            "--out",
            f"{log}-cal",
        ],
    }
    return readers


def corrupt_shard_matrix(fx: Fixtures, full: bool) -> dict[str, dict[str, dict]]:
    """``{command: {kind: {"detected", "episodes", "exit_code", "why"}}}``."""
    expected = LOG_EPISODES - SHARD_EPISODES
    matrix: dict[str, dict[str, dict]] = defaultdict(dict)
    kinds = DAMAGE if full else dict(list(DAMAGE.items())[:2])
    for i, (kind, damage) in enumerate(kinds.items()):
        name = f"damaged-{i}"
        log = fx.copy_log(name)
        damaged = damage(fx.shards(log)[CORRUPT_SHARD_INDEX])
        for command, args in shard_readers(fx, name, full).items():
            done = run_cli(args, fx.tmp)
            out = done.stdout + done.stderr
            found = re.findall(EPISODES_PATTERN[command], out, flags=re.MULTILINE)
            episodes = int(found[-1]) if found else None
            refused = done.returncode != 0 and damaged in "\n".join(message_lines(done.stderr))
            reported = bool(DETECTION.search(out)) and damaged in out
            problems = []
            if "Traceback" in out:
                problems.append("traceback")
            if not (reported or refused):
                problems.append("corrupt shard not reported")
            if done.returncode == 0 and episodes != expected:
                problems.append(f"counted {episodes} episodes, expected {expected}")
            if done.returncode != 0 and not refused:
                problems.append(f"exit code {done.returncode} without naming the shard")
            matrix[command][kind] = {
                "detected": not problems,
                "episodes": episodes,
                "exit_code": done.returncode,
                "why": "; ".join(problems),
                "verified_note": "scalar columns read" in out,
            }
    return dict(matrix)


# ---------------------------------------------------------------------------------------------
# 3. Kills
# ---------------------------------------------------------------------------------------------


def log_ids(log: Path) -> list[str]:
    """Every episode id in ``log`` (duplicates kept); none if it does not exist yet."""
    from mtopt.data.log import EpisodeLogReader

    if not log.is_dir():
        return []
    return EpisodeLogReader(log).metadata().column("episode_id").to_pylist()


def log_check(log: Path, before: set[str]) -> tuple[list[str], dict]:
    """Problems of ``log`` after a kill, given the ids seen in it before, and its numbers."""
    from mtopt.data.log import EpisodeLogReader

    if not log.exists():  # killed before the log was created
        lost = f"{len(before)} episode(s) lost" if before else ""
        return [lost] if lost else [], {"episodes": 0, "leftover_temp_files": 0}
    reader = EpisodeLogReader(log)
    ids = reader.metadata().column("episode_id").to_pylist()
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicated episode id(s)")
    lost = before - set(ids)
    if lost:
        problems.append(f"{len(lost)} episode(s) lost")
    if reader.corrupt_shards:
        problems.append(f"{reader.corrupt_shards} corrupt shard(s)")
    counters: dict[tuple[str, str], list[int]] = defaultdict(list)
    for eid in ids:
        m = re.fullmatch(r"(.+)-r(\d{3})-(\d+)", eid)
        if m is None:
            problems.append(f"unexpected episode id {eid!r}")
            continue
        counters[(m.group(1), m.group(2))].append(int(m.group(3)))
    for (tag, robot), counts in counters.items():
        if sorted(counts) != list(range(1, len(counts) + 1)):
            problems.append(f"robot {robot} of {tag} has a gap in its episode counter")
    temps = [p.name for p in log.iterdir() if p.name.startswith(".tmp-")]
    return problems, {"episodes": len(ids), "leftover_temp_files": len(temps)}


def shard_count(log: Path) -> int:
    """Final shards in ``log`` (a shard being written has a ``.tmp-`` name)."""
    if not log.is_dir():
        return 0
    return sum(1 for p in log.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))


def newest_step(run: Path) -> int:
    ckpts = sorted((run / "checkpoints").glob("ckpt-*.pt")) if run.is_dir() else []
    return int(ckpts[-1].stem.split("-")[1]) if ckpts else -1


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while not cond():
        if proc.poll() is not None:
            raise RuntimeError(f"the process ended (exit {proc.returncode}) before the moment")
        if time.time() > deadline:
            raise RuntimeError(f"the moment did not come within {timeout:.0f} s")
        time.sleep(0.01)


def kill_once(
    cmd: list[str],
    cwd: Path,
    log: Path,
    moment: Callable[[subprocess.Popen], None],
    group: bool = True,
) -> dict:
    """Start ``cmd``, wait for ``moment``, snapshot the log's ids and SIGKILL the process (and,
    with ``group``, its robot processes); then check the log."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=cli_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.time()
    try:
        moment(proc)
        before = set(log_ids(log))
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        killed_after = time.time() - started
        if not group:  # orphaned robots must notice and stop; the log must stop growing
            previous, deadline = -1, time.time() + 60
            while (count := shard_count(log)) != previous and time.time() < deadline:
                previous = count
                time.sleep(2.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    problems, numbers = log_check(log, before)
    return {
        "killed_after_s": round(killed_after, 2),
        "episodes_before": len(before),
        **numbers,
        "ok": not problems,
        "why": "; ".join(problems),
    }


def collect_kills(tmp: Path, env: str, seed: int, full: bool) -> list[dict]:
    """SIGKILLs of ``mtopt collect`` (2 robots, shards of 3) appending to one log."""
    from mtopt.data.log import EpisodeLogReader  # noqa: F401  (imported before the first kill)

    log = tmp / "kill-collect"
    results = []

    def after_shards(n: int) -> Callable[[subprocess.Popen], None]:
        def moment(proc: subprocess.Popen) -> None:
            start = shard_count(log)
            wait_for(lambda: shard_count(log) >= start + n, proc, 180)

        return moment

    def during_start_up(proc: subprocess.Popen) -> None:
        time.sleep(1.5)

    def mid_write(proc: subprocess.Popen) -> None:  # a shard being written
        start = shard_count(log)
        wait_for(lambda: shard_count(log) >= start + 1, proc, 180)
        wait_for(lambda: any(p.name.startswith(".tmp-") for p in log.iterdir()), proc, 180)

    moments: list[tuple[str, Callable[[subprocess.Popen], None], bool]] = [
        ("collect: after its 1st shard", after_shards(1), True),
    ]
    if full:
        moments = [
            ("collect: during start-up (1.5 s)", during_start_up, True),
            ("collect: after its 1st shard", after_shards(1), True),
            ("collect: after 4 shards", after_shards(4), True),
            ("collect: while a shard is being written", mid_write, True),
            ("collect: after 10 shards", after_shards(10), True),
            ("collect: the collector alone, robots orphaned", after_shards(2), False),
        ]
    for i, (label, moment, group) in enumerate(moments):
        cmd = mtopt_cmd(
            "collect",
            "--env",
            env,
            "--out",
            str(log),
            "--robots",
            "2",
            "--episodes",
            "100000",
            "--log.shard-episodes",
            "3",
            "--no-progress",
            "--seed",
            str(seed + i),
        )
        results.append({"kill": label, **kill_once(cmd, tmp, log, moment, group)})
    return results


def run_kills(tmp: Path, seed: int) -> list[dict]:
    """SIGKILLs of a local ``mtopt run`` (configs/run/tiny.yaml), each resumed by the next."""
    out = tmp / "kill-run"
    log = out / "log"
    cmd = mtopt_cmd(
        "run",
        "--config",
        str(TINY_RUN),
        "--out",
        str(out),
        "--steps",
        "100000",
        "--no-progress",
        "--seed",
        str(seed),
    )
    results = []

    def after_seconds(s: float) -> Callable[[subprocess.Popen], None]:
        return lambda proc: time.sleep(s)

    def after_shards(n: int) -> Callable[[subprocess.Popen], None]:
        def moment(proc: subprocess.Popen) -> None:
            start = shard_count(log)
            wait_for(lambda: shard_count(log) >= start + n, proc, 240)

        return moment

    def after_checkpoints(n: int, extra_s: float = 0.0) -> Callable[[subprocess.Popen], None]:
        def moment(proc: subprocess.Popen) -> None:
            start = newest_step(out)
            wait_for(lambda: newest_step(out) >= start + 20 * n, proc, 240)
            time.sleep(extra_s)

        return moment

    moments = [
        ("run: during start-up (3 s)", after_seconds(3.0)),
        ("run: after its 1st shard (bootstrap)", after_shards(1)),
        ("run: after its 1st checkpoint", after_checkpoints(1)),
        ("run: after 3 checkpoints", after_checkpoints(3)),
        ("run: 1.5 s after a checkpoint (mid-training)", after_checkpoints(1, 1.5)),
    ]
    for label, moment in moments:
        results.append({"kill": label, **kill_once(cmd, tmp, log, moment)})
    # the next run resumes and finishes: nothing lost or duplicated by the resume
    resumed_from = newest_step(out)
    before = set(log_ids(log))
    done = subprocess.run(
        mtopt_cmd(
            "run",
            "--config",
            str(TINY_RUN),
            "--out",
            str(out),
            "--no-progress",
            "--steps",
            str(max(resumed_from, 0) + 20),
            "--seed",
            str(seed),
        ),
        cwd=tmp,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    problems, numbers = log_check(log, before)
    if done.returncode != 0:
        problems.append(f"the resumed run failed ({done.returncode})")
    results.append(
        {
            "kill": "(final resume to completion, no kill)",
            "resumed_from_step": resumed_from,
            "episodes_before": len(before),
            **numbers,
            "ok": not problems,
            "why": "; ".join(problems),
            "counted": False,
        }
    )
    return results


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its report and return it (``probes``, ``shards``, ``kills``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", default="workcell", choices=("workcell", "pointmass"))
    parser.add_argument("--smoke", action="store_true", help="a few cases of each part")
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temp)")
    args = parser.parse_args(argv)
    full = not args.smoke
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(
        f"command: python benchmarks/bench_reliability.py --seed {args.seed} --env {args.env}"
        + (" --smoke" if args.smoke else "")
    )
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="mtopt-rel-") as scratch:
        tmp = Path(args.keep) if args.keep else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        fx = Fixtures(tmp, args.env, args.seed)
        fx.make(full)
        times = {"set-up": time.time() - t0}

        t = time.time()
        probes = [run_probe(p, tmp) for p in make_probes(fx, full)]
        times["probes"] = time.time() - t
        clean = sum(p.clean for p in probes)
        print(f"\n## 1. Probes: bad inputs ({MAX_MESSAGE_LINES} message lines at most)\n")
        for p in probes:
            mark = "clean" if p.clean else f"NOT CLEAN ({p.why})"
            print(f"- {p.name}: exit {p.exit_code}, {mark}")
            print(f"    $ {p.command}")
            print(f"    > {p.first_line}")
        print(f"\n{clean} of {len(probes)} clean")

        t = time.time()
        matrix = corrupt_shard_matrix(fx, full)
        times["corrupt shards"] = time.time() - t
        kinds = list(next(iter(matrix.values())))
        print(
            "\n## 2. Corrupt shards: detected (episodes counted; expected "
            f"{LOG_EPISODES - SHARD_EPISODES} of {LOG_EPISODES})\n"
        )
        width = max(len(c) for c in matrix) + 2
        print(" " * width + " | ".join(f"{k[:22]:<22}" for k in kinds) + " | detected")
        detected = {}
        for command, row in matrix.items():
            detected[command] = sum(c["detected"] for c in row.values())
            cells = [
                f"{('yes' if c['detected'] else 'NO'):<3} ({c['episodes']} ep, exit "
                f"{c['exit_code']})"
                for c in row.values()
            ]
            print(
                f"{command:<{width}}"
                + " | ".join(f"{c:<22}" for c in cells)
                + f" | {detected[command]} of {len(row)}"
            )
        for command, row in matrix.items():
            for kind, c in row.items():
                if not c["detected"]:
                    note = (
                        " (it says it read only the scalar columns)" if c["verified_note"] else ""
                    )
                    print(f"  missed: {command} / {kind}: {c['why']}{note}")

        t = time.time()
        kills = collect_kills(tmp, args.env, args.seed, full)
        if full:
            kills += run_kills(tmp, args.seed)
        times["kills"] = time.time() - t
        counted = [k for k in kills if k.get("counted", True)]
        ok = sum(k["ok"] for k in counted)
        print("\n## 3. Kills (SIGKILL; then the log is checked)\n")
        for k in kills:
            mark = "nothing lost or duplicated" if k["ok"] else f"FAILED: {k['why']}"
            extra = (
                f"killed after {k['killed_after_s']} s, "
                if "killed_after_s" in k
                else f"resumed from step {k['resumed_from_step']}, "
            )
            print(
                f"- {k['kill']}: {extra}{k['episodes_before']} episodes in the log before, "
                f"{k['episodes']} after, {k['leftover_temp_files']} temp file(s) -> {mark}"
            )
        print(f"\n{ok} of {len(counted)} kills with nothing lost or duplicated")
        print("Ray run: not measured here (tests/system/test_run_ray.py kills Ray actors)")
    times["total"] = time.time() - t0
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    return {
        "probes": [vars(p) for p in probes],
        "probes_clean": clean,
        "probes_tried": len(probes),
        "shards": matrix,
        "shards_detected": detected,
        "kills": kills,
        "kills_ok": ok,
        "kills_tried": len(counted),
        "wall_time_s": times,
    }


if __name__ == "__main__":
    main()
