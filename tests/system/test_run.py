"""The continuous system on the local backend: end to end, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from run_helpers import TINY, WORKCELL, assert_log_consistent, log_ids, tiny_config

from mtopt.learning.checkpoint import CHECKPOINT_KEYS, latest_checkpoint, load_checkpoint
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.run import run

ROOT = Path(__file__).resolve().parents[2]


def test_local_backend_end_to_end(tmp_path):
    cfg = tiny_config(tmp_path / "run")
    report = run(cfg, WORKCELL)
    assert report["step"] == cfg.steps and report["start_step"] == 0
    # collection was limited by the budget and everything reported as written is in the log
    ids = log_ids(cfg.log_dir)
    assert report["episodes_written"] == len(ids) == report["log_episodes"]
    assert len(ids) <= cfg.bootstrap_episodes + cfg.episodes_per_step * cfg.steps + 2 * 2 * 2
    counts = assert_log_consistent(cfg.log_dir)
    assert set(counts) == {0, 1}
    # the budget is shared fairly: robot 0 used to take it all after the bootstrap (43 to 10)
    assert abs(counts[0] - counts[1]) <= 2 * cfg.attempts_per_call * 2, counts
    assert report["duplicate_episode_ids"] == 0
    # weights were published and used by robots (probes) and updaters, with bounded staleness
    assert 0 <= report["staleness_updater"]["max"] <= cfg.publish_every + cfg.queue_size
    assert report["staleness_robot"]["max"] >= 0
    learned = sum(c["learned"][1] for c in report["collected"].values())
    assert learned > 0, "no episode was collected with the learned policy"
    # the final checkpoint is usable by the evaluation / collection code
    policy = load_q_policy(report["checkpoint"], WORKCELL, PolicyConfig(device="cpu"))
    payload = load_checkpoint(report["checkpoint"])  # the one checkpoint format
    assert set(CHECKPOINT_KEYS) <= set(payload) and payload["env"]["env"] == "workcell"
    assert policy.name.endswith(f"@{cfg.steps}")
    assert (tmp_path / "run" / "tb").is_dir() and (tmp_path / "run" / "run.json").is_file()
    for stage in ("collection", "labelling", "impersonation", "targets", "training"):
        assert report["busy_s"][stage] > 0, stage


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mtopt", "run", "--config", str(TINY), "--out", str(out)]
    cmd += ["--steps", "400", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 240
        while latest_checkpoint(out / "checkpoints") is None:
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_step = load_checkpoint(latest_checkpoint(out / "checkpoints"))["step"]
    assert killed_step < 400
    before = assert_log_consistent(out / "log")
    # start again: resumes from the checkpoint and continues the log
    report = run(tiny_config(out, steps=killed_step + 40), WORKCELL)
    assert report["resumed_from"] is not None
    assert report["start_step"] == killed_step and report["step"] == killed_step + 40
    after = assert_log_consistent(out / "log")
    assert all(after[r] >= n for r, n in before.items())
    assert report["log_episodes"] == sum(after.values())
    assert json.loads((out / "run.json").read_text())["step"] == killed_step + 40


def test_no_resume_refuses_existing_checkpoints(tmp_path):
    cfg = tiny_config(tmp_path / "run", steps=20)
    run(cfg, WORKCELL)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run(tiny_config(tmp_path / "run", steps=40, resume=False), WORKCELL)


def test_paused_robots_flush_so_training_can_start(tmp_path):
    # 1 robot, shards of 5: the budget pauses it with episodes still buffered in its writer;
    # training needs them in the log, so the paused robot must flush (no deadlock).
    cfg = tiny_config(
        tmp_path / "run",
        robots=1,
        steps=10,
        bootstrap_episodes=7,
        episodes_per_step=0.1,
        attempts_per_call=1,
    )
    cfg = replace(cfg, robot=replace(cfg.robot, log=replace(cfg.robot.log, shard_episodes=5)))
    report = run(cfg, WORKCELL)
    assert report["step"] == 10
    assert report["log_episodes"] >= 7
    assert report["episodes_written"] == report["log_episodes"]
