"""The fleet end to end: robot processes write episodes that the tailer reads back whole."""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mtopt.data.log import EpisodeLogConfig, EpisodeLogReader, EpisodeLogTailer
from mtopt.data.stats import dataset_stats
from mtopt.envs import make_spec
from mtopt.system.fleet import (
    FleetConfig,
    Robot,
    collect,
    collect_in_process,
    episode_counts,
)

WORKCELL = make_spec("workcell")


def test_episode_counts_split_evenly():
    assert episode_counts(10, 3) == [4, 3, 3]
    assert sum(episode_counts(7, 7)) == 7


def test_two_robots_collect_and_tailer_reads_everything(tmp_path):
    out = tmp_path / "log"
    tailer = EpisodeLogTailer(out)  # started before the log exists
    cfg = FleetConfig(
        out=str(out),
        robots=2,
        episodes=24,
        seed=3,
        progress=False,
        log=EpisodeLogConfig(shard_episodes=4, fsync=False),
    )
    summary = collect(cfg, WORKCELL)
    assert summary["episodes"] == 24 and summary["robots"] == 2
    episodes = tailer.poll()
    assert len(episodes) == 24
    assert {e.robot_id for e in episodes} == {0, 1}
    assert len({e.episode_id for e in episodes}) == 24
    for e in episodes:
        assert e.policy in ("scripted-pick", "scripted-place")
        assert e.observations["state"].shape[0] == e.num_steps + 1
        assert e.success.shape == (14,)  # the 12 tasks and the two new ones
    # place episodes chained after lifts point at an episode of the same robot
    by_id = {e.episode_id: e for e in episodes}
    chained = [e for e in episodes if e.chained_from]
    assert chained, "expected chained place episodes"
    for e in chained:
        parent = by_id[e.chained_from]
        assert parent.task.startswith("lift") and e.task.startswith("place")
        assert parent.robot_id == e.robot_id
        np.testing.assert_allclose(
            e.observations["state"][0], parent.observations["state"][-1], atol=1e-3
        )
    stats = dataset_stats(out)
    assert stats["episodes"] == 24 and stats["corrupt_shards"] == 0
    assert sum(t["episodes"] for t in stats["tasks"].values()) == 24


def test_same_seed_same_episodes(tmp_path):
    cfg = FleetConfig(robots=1, episodes=6, seed=11, progress=False)
    a = list(Robot(0, cfg, cfg.obs, cfg.seed, "a", WORKCELL).episodes(6))
    b = list(Robot(0, cfg, cfg.obs, cfg.seed, "a", WORKCELL).episodes(6))
    for x, y in zip(a, b, strict=True):
        assert x.task == y.task and x.seed == y.seed
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.success, y.success)


def test_collect_in_process_writes_each_robots_episodes(tmp_path):
    cfg = FleetConfig(out=str(tmp_path / "log"), robots=2, episodes=5, seed=11, progress=False)
    assert collect_in_process(cfg, WORKCELL) == {"episodes": 5, "robots": 2}
    meta = EpisodeLogReader(cfg.out).metadata()
    assert sorted(meta.column("robot_id").to_pylist()) == [0, 0, 0, 1, 1]
    # the same episodes as the robot the fleet would start
    expected = [ep.seed for ep in Robot(0, cfg, cfg.obs, cfg.seed, "x", WORKCELL).episodes(3)]
    seeds, robots = (meta.column(c).to_pylist() for c in ("seed", "robot_id"))
    got = [s for s, r in zip(seeds, robots, strict=True) if r == 0]
    assert sorted(got) == sorted(expected)


def test_bad_inputs_are_named(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="is an existing file"):
        collect(FleetConfig(out=str(f), episodes=1, progress=False), WORKCELL)
    with pytest.raises(ValueError, match="robots must be an integer"):
        FleetConfig(robots=0)
    with pytest.raises(ValueError, match="unknown task name"):
        collect(FleetConfig(out=str(tmp_path / "o"), tasks=("lift-everything",)), WORKCELL)
    with pytest.raises(ValueError, match="is not a file"):
        FleetConfig(checkpoint=str(tmp_path / "missing.pt"))


def _replayed_expert(episode) -> np.ndarray:
    """The noise-free expert's actions at the episode's recorded observations."""
    expert, _ = WORKCELL.expert_policy(episode.task)
    expert.reset(np.random.default_rng(episode.seed), task=episode.task)
    obs = episode.observations
    return np.stack(
        [expert.act({k: v[t] for k, v in obs.items()}) for t in range(len(obs["state"]) - 1)]
    )


def test_expert_bootstrap_without_noise_records_the_experts_actions():
    cfg = FleetConfig(robots=1, episodes=4, seed=5, bootstrap="expert")
    episodes = list(Robot(0, cfg, cfg.obs, cfg.seed, "a", WORKCELL).episodes(4))
    assert {e.task.split("-")[0] for e in episodes} == {"lift", "place"}  # lifts and chains
    for e in episodes:
        lift = e.task.startswith("lift")
        assert e.policy == ("expert-aimed-pick" if lift else "expert-aimed-place")
        assert e.epsilon == 0.0
        np.testing.assert_array_equal(e.actions, _replayed_expert(e))


def test_expert_noise_is_seeded_and_logged_as_epsilon(tmp_path):
    cfg = FleetConfig(robots=1, episodes=6, seed=2, bootstrap="expert", expert_noise=0.3)
    a = list(Robot(0, cfg, cfg.obs, cfg.seed, "a", WORKCELL).episodes(6))
    b = list(Robot(0, cfg, cfg.obs, cfg.seed, "a", WORKCELL).episodes(6))
    for x, y in zip(a, b, strict=True):
        assert x.seed == y.seed and x.epsilon == 0.3
        np.testing.assert_array_equal(x.actions, y.actions)
    assert any(not np.array_equal(e.actions, _replayed_expert(e)) for e in a)
    # through the log: the policy names and ε are stored
    out = tmp_path / "log"
    collect_in_process(replace(cfg, out=str(out), episodes=3), WORKCELL)
    meta = EpisodeLogReader(out).metadata()
    assert set(meta.column("policy").to_pylist()) <= {"expert-aimed-pick", "expert-aimed-place"}
    assert set(meta.column("epsilon").to_pylist()) == {0.3}


def test_bad_bootstrap_values_are_named(tmp_path):
    with pytest.raises(
        ValueError, match=r"bootstrap must be one of \('scripted', 'expert'\), got 'b"
    ):
        FleetConfig(bootstrap="best")  # type: ignore[arg-type]
    for noise in (1.5, -0.1, True):
        with pytest.raises(ValueError, match=re.escape(f"number in [0, 1], got {noise}")):
            FleetConfig(bootstrap="expert", expert_noise=noise)
    with pytest.raises(ValueError, match=r"expert_noise \(0.2\) and .* need bootstrap 'expert'"):
        FleetConfig(expert_noise=0.2)
    ckpt = tmp_path / "c.pt"
    ckpt.write_text("x")
    with pytest.raises(ValueError, match=r"either checkpoint .* or bootstrap 'expert', not both"):
        FleetConfig(bootstrap="expert", checkpoint=str(ckpt))
    out = tmp_path / "log"
    with pytest.raises(ValueError, match="environment 'pointmass' has no expert policy"):
        collect(FleetConfig(out=str(out), bootstrap="expert"), make_spec("pointmass"))
    assert not out.exists()  # refused before anything is written


def test_sigkilled_collector_leaves_only_whole_shards(tmp_path):
    out = tmp_path / "log"
    cmd = [
        sys.executable,
        "-m",
        "mtopt",
        "collect",
        "--out",
        str(out),
        "--robots",
        "2",
        "--episodes",
        "100000",
        "--log.shard-episodes",
        "3",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if out.is_dir() and len(EpisodeLogReader(out).shard_paths()) >= 6:
                break
            time.sleep(0.05)
        else:
            pytest.fail("collector wrote no shards in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the collector and its robot processes
        proc.wait()
    reader = EpisodeLogReader(out)
    episodes = list(reader.episodes())
    assert reader.corrupt_shards == 0
    shards = reader.shard_paths()
    assert len(shards) >= 6
    assert len(episodes) == 3 * len(shards)  # whole shards only
    assert len({e.episode_id for e in episodes}) == len(episodes)


def test_task_weights_shape_the_task_mix():
    cfg = FleetConfig(
        robots=1,
        episodes=8,
        seed=2,
        tasks=("lift-any", "lift-box", "place-bottom", "place-top-left"),
        task_weights=(3.0, 0.0, 1.0, 0.0),
        chain_place=True,
        progress=False,
    )
    robot = Robot(0, cfg, cfg.obs, cfg.seed, "w", WORKCELL)
    np.testing.assert_allclose(robot.task_probs, [0.75, 0.0, 0.25, 0.0])
    chained, probs = robot.chain["object-manipulation"]  # chained places by weight
    assert chained == ["place-bottom", "place-top-left"]
    np.testing.assert_allclose(probs, [1.0, 0.0])
    draws = [str(robot.rng.choice(robot.tasks, p=robot.task_probs)) for _ in range(4000)]
    assert draws.count("lift-box") == 0 and draws.count("place-top-left") == 0
    assert abs(draws.count("lift-any") / 4000 - 0.75) < 0.03
    episodes = list(Robot(0, cfg, cfg.obs, cfg.seed, "w", WORKCELL).episodes(8))
    assert {e.task for e in episodes} <= {"lift-any", "place-bottom"}
    with pytest.raises(ValueError, match="one weight per task"):
        Robot(0, FleetConfig(task_weights=(1.0, 2.0)), "state", 0, "w", WORKCELL)
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        FleetConfig(tasks=("lift-any", "lift-box"), task_weights=(0.0, 0.0))


def test_robots_stop_when_the_collector_is_killed(tmp_path):
    """Killing only the collector (not its process group) must not leave robots writing on."""
    out = tmp_path / "log"
    cmd = [sys.executable, "-m", "mtopt", "collect", "--out", str(out), "--robots", "2"]
    cmd += ["--episodes", "100000", "--log.shard-episodes", "3", "--no-progress"]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while not (out.is_dir() and len(EpisodeLogReader(out).shard_paths()) >= 2):
            if time.time() > deadline:
                pytest.fail("collector wrote no shards in time")
            time.sleep(0.05)
        proc.kill()  # SIGKILL the collector alone; the robots are orphaned
        proc.wait()
        deadline = time.time() + 60  # each robot checks for its collector after every episode
        while _group_alive(proc.pid) and time.time() < deadline:
            time.sleep(0.5)
        stopped = len(EpisodeLogReader(out).shard_paths())
        time.sleep(2.0)
        assert len(EpisodeLogReader(out).shard_paths()) == stopped, "robots kept writing"
    finally:
        alive_after = _group_alive(proc.pid)
        if alive_after:
            os.killpg(proc.pid, signal.SIGKILL)
    reader = EpisodeLogReader(out)
    episodes = list(reader.episodes())
    assert reader.corrupt_shards == 0
    assert len({e.episode_id for e in episodes}) == len(episodes)
    assert not alive_after, "robot processes are still running"


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, which a container's init may
    never reap, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: any member, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_an_unstable_episode_is_discarded_not_logged():
    cfg = FleetConfig(robots=1, episodes=3, seed=5, progress=False)
    robot = Robot(0, cfg, cfg.obs, cfg.seed, "u", WORKCELL)
    step, calls = robot.env.step, {"n": 0}

    def faulty_step(action):
        calls["n"] += 1
        if calls["n"] == 2:  # the second step of the first episode blows up
            robot.env.data.qvel[0] = np.nan
        return step(action)

    robot.env.step = faulty_step
    episodes = list(robot.episodes(3))
    assert len(episodes) == 3 and robot.discarded == 1
    assert all(len(ep.actions) >= 1 for ep in episodes)
    assert len({ep.episode_id for ep in episodes}) == 3


def test_final_views_record_the_three_views_without_step_images(tmp_path):
    from mtopt.success.labelling import episode_inputs, read_log_episodes

    cfg = FleetConfig(
        out=str(tmp_path), robots=1, episodes=3, seed=2, final_views=True, progress=False
    )
    robot = Robot(0, cfg, cfg.obs, cfg.seed, "v", WORKCELL)
    episodes = list(robot.episodes(3))
    for ep in episodes:
        assert "image" not in ep.observations
        assert ep.final_image.shape == (64, 64, 3) and ep.final_image.dtype == np.uint8
        assert ep.final_side_images.shape == (2, 64, 64, 3)
    # the recorded final image is what the shoulder camera sees after the last step
    np.testing.assert_array_equal(episodes[-1].final_image, robot.env.render_image())
    robot.close()
    collect(cfg, WORKCELL)  # the same through the log: the image SD's inputs come back from disk
    (first, *_) = read_log_episodes(tmp_path, need_views=True)
    state, views = episode_inputs(first, need_views=True)
    assert views.shape == (3, 64, 64, 3) and state.ndim == 1
    assert views[0].std() > 0  # a rendered scene, not a blank buffer


def test_the_fleet_policy_config_reaches_the_robots_q_policy(tmp_path, monkeypatch):
    from mtopt.learning.cem import CEMConfig
    from mtopt.policies import PolicyConfig, q_policy
    from mtopt.system.fleet import fleet_robots

    seen = {}

    class FakePolicy:
        clones = 0

        def clone(self):
            FakePolicy.clones += 1
            return f"policy-{FakePolicy.clones}"

    def fake_load(checkpoint, spec, policy=None):
        seen.update(
            checkpoint=checkpoint, env=spec.name, policy=policy, loads=1 + seen.get("loads", 0)
        )
        return FakePolicy()

    monkeypatch.setattr(q_policy, "load_q_policy", fake_load)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"")
    finer = PolicyConfig(
        epsilon=0.3, cem=CEMConfig(iterations=3, num_samples=128, num_elites=12), device="cpu"
    )
    cfg = FleetConfig(checkpoint=str(ckpt), policy=finer)
    robots = fleet_robots([0, 1], cfg, WORKCELL, "a")
    # the checkpoint is loaded once per process; each robot acts through its own clone
    assert [r.q_policy for r in robots] == ["policy-1", "policy-2"]
    assert seen == {"checkpoint": str(ckpt), "env": "workcell", "policy": finer, "loads": 1}
    default = FleetConfig().policy  # collection: the paper's ε 0.2, QT-Opt's 2 x 64 / 6
    assert default.epsilon == 0.2 and default.cem == CEMConfig() and default.device == "cpu"
