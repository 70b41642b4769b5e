"""The continuous system on the Ray backend: end to end, and robot / updater actors killed."""

import contextlib
import os
import signal

import pytest
from run_helpers import WORKCELL, assert_log_consistent, log_ids, tiny_config

ray = pytest.importorskip("ray")

from mtopt.system.backends import init_ray  # noqa: E402
from mtopt.system.run import ContinuousRun, run  # noqa: E402
from mtopt.system.run_config import RayConfig  # noqa: E402


@pytest.fixture(scope="module")
def ray_session():
    """One small private Ray for the module (the runs join it instead of starting their own)."""
    init_ray(RayConfig(num_cpus=2, object_store_mb=100))
    yield
    ray.shutdown()


def test_ray_backend_end_to_end(ray_session, tmp_path):
    cfg = tiny_config(tmp_path / "run", backend="ray", robots=2, updaters=1)
    report = run(cfg, WORKCELL)
    assert report["backend"] == "ray" and report["step"] == cfg.steps
    ids = log_ids(cfg.log_dir)
    assert report["episodes_written"] == len(ids) == report["log_episodes"]
    assert set(assert_log_consistent(cfg.log_dir)) == {0, 1}
    assert report["staleness_updater"]["max"] >= 0
    assert report["failed_calls"] == {"robot": 0, "updater": 0}


def test_killed_robot_and_updater_are_restarted(ray_session, tmp_path):
    cfg = tiny_config(tmp_path / "run", backend="ray", steps=160, robots=2, updaters=1)
    state = {"killed": {}, "restarted": {}}

    def hook(r: ContinuousRun) -> None:
        robot, updater = r.system.robots[0], r.system.updaters[0]
        if not state["killed"] and r.step >= 30 and 0 in r.flight.robot_calls and r.flight.targets:
            for name, actor in (("robot", robot), ("updater", updater)):
                pid = ray.get(actor.pid.remote())
                os.kill(pid, signal.SIGKILL)
                state["killed"][name] = pid
        elif state["killed"] and len(state["restarted"]) < 2 and r.step % 10 == 0:
            for name, actor in (("robot", robot), ("updater", updater)):
                errors = (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError)
                with contextlib.suppress(*errors):
                    state["restarted"][name] = ray.get(actor.pid.remote(), timeout=0.5)

    ran = ContinuousRun(cfg, WORKCELL, hook)
    report = ran.run()
    # the run finished ...
    assert report["step"] == cfg.steps
    assert set(state["killed"]) == {"robot", "updater"}, "the hook never killed the actors"
    for name in ("robot", "updater"):
        assert state["restarted"].get(name) not in (None, state["killed"][name]), name
    assert report["failed_calls"]["robot"] + report["failed_calls"]["updater"] >= 1
    # ... the log holds every episode each robot reported as written, and none twice
    ids = log_ids(cfg.log_dir)
    reported = [e for robot_ids in ran.written.values() for e in robot_ids]
    assert set(reported) <= set(ids)
    assert len(reported) == len(set(reported))
    assert_log_consistent(cfg.log_dir)
