"""The point-mass environment, and the whole pipeline run on it through the command line: a
second environment plugs in through its spec alone (``mtopt.envs.pointmass``)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from mtopt.cli import main
from mtopt.envs import ENV_NAMES, EnvConfig, make_spec
from mtopt.envs.pointmass import PointMassConfig, PointMassEnv, PointMassSpec
from mtopt.learning.checkpoint import load_checkpoint

SMALL_LEARNER = [
    "--rewards",
    "oracle",
    "--trainer.network.mlp-width",
    "32",
    "--trainer.device",
    "cpu",
    "--batch-size",
    "32",
    "--cem.num-samples",
    "16",
    "--cem.num-elites",
    "4",
    "--no-progress",
]


def test_the_env_reports_success_of_every_task_at_the_end():
    env = PointMassEnv(PointMassConfig(goals=3))
    obs, info = env.reset(seed=0, options={"task": "reach-1"})
    assert obs["state"].shape == (8,) and info["task_names"] == ("reach-0", "reach-1", "reach-2")
    goal = obs["state"][4:6]
    for _ in range(8):  # head straight for goal 1 (within the 10-step horizon), then stop
        move = np.clip((goal - obs["state"][:2]) / 0.25, -1, 1)
        obs, *_ = env.step(np.array([*move, 0.0], np.float32))
        if np.linalg.norm(goal - obs["state"][:2]) < 0.05:
            break
    obs, _, terminated, _, info = env.step(np.array([0, 0, 1], np.float32))
    assert terminated and info["success"].tolist() == [False, True, False]
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step(np.zeros(3, np.float32))


def test_bad_actions_and_options_are_named():
    env = PointMassEnv()
    env.reset(seed=1)
    with pytest.raises(ValueError, match=r"3 finite real numbers"):
        env.step(np.array([np.nan, 0, 0], np.float32))
    with pytest.raises(ValueError, match=r"3 finite real numbers"):
        env.step(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['scene'\]"):
        env.reset(options={"scene": "evaluation"})
    with pytest.raises(ValueError, match="unknown task 'lift-any'"):
        env.reset(options={"task": "lift-any"})
    with pytest.raises(ValueError, match="goals must be an integer in"):
        PointMassConfig(goals=0)
    with pytest.raises(ValueError, match="no cameras"):
        make_spec("pointmass").make_env(image=True)
    with pytest.raises(ValueError, match="unknown env 'mujoco-soup'; known envs: workcell"):
        EnvConfig(name="mujoco-soup")


def test_the_spec_is_complete_and_picklable():
    spec = make_spec("pointmass")
    assert isinstance(spec, PointMassSpec) and "pointmass" in ENV_NAMES
    assert spec.task_set.names == ("reach-0", "reach-1", "reach-2", "reach-3")
    assert spec.task_set.capacity == 8  # reserved slots for new tasks
    assert (spec.action.dim, spec.action.discrete_dims, spec.action.terminate_dim) == (3, (2,), 2)
    assert spec.observation.keys == ("state",) and spec.structure is None
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.describe() == {
        "env": "pointmass",
        "tasks": list(spec.task_set.names),
        "task_capacity": 8,
        "action_dim": 3,
        "state_dim": 10,
    }


def test_the_scripted_policy_succeeds_part_of_the_time():
    spec = make_spec("pointmass")
    env = spec.make_env()
    wins = 0
    for k in range(200):
        task = spec.task_set.names[k % 4]
        policy, name = spec.scripted_policy(task)
        obs, _ = env.reset(seed=k, options=spec.reset_options(task, "collect"))
        policy.reset(np.random.default_rng(k), task=task)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            done = terminated or truncated
        wins += bool(info["success"][spec.task_set.slot(task)])
    assert name == "scripted-reach"
    assert 0.15 < wins / 200 < 0.85  # a bootstrap to improve on, not an expert


def test_collect_train_eval_and_run_through_the_cli(tmp_path, capsys):
    log, run = tmp_path / "log", tmp_path / "train"
    assert main(["collect", "--env", "pointmass", "--out", str(log), "--episodes", "80",
                 "--robots", "1", "--no-progress"]) == 0  # fmt: skip
    steps = ["--steps", "40", "--checkpoint-every", "40"]
    train = ["train", "--env", "pointmass", "--data", str(log), "--out", str(run), *steps]
    assert main([*train, *SMALL_LEARNER]) == 0
    ckpt = sorted((run / "checkpoints").glob("*.pt"))[-1]
    out = tmp_path / "eval.json"
    evaluate = ["eval", "--env", "pointmass", "--checkpoint", str(ckpt)]
    assert main([*evaluate, "--episodes-per-task", "3", "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert sorted(result["tasks"]) == ["reach-0", "reach-1", "reach-2", "reach-3"]
    assert all(t["episodes"] == 3 for t in result["tasks"].values())
    capsys.readouterr()
    # a checkpoint of one environment is refused in another, naming both
    assert main(["eval", "--checkpoint", str(ckpt), "--episodes-per-task", "1"]) == 2
    err = capsys.readouterr().err
    assert "trained on env 'pointmass', not on 'workcell'" in err
    # and one of the same environment with another episode shape, naming the difference
    wider = ["--env.pointmass.capacity", "12", "--episodes-per-task", "1"]
    assert main([*evaluate, *wider]) == 2
    assert "with task_capacity 8; this env has task_capacity 12" in capsys.readouterr().err
    # the object encoder needs a structure the point mass does not have
    objects = ["--trainer.network.state-encoder", "objects", "--rewards", "oracle"]
    assert main([*train[:-2], "--out", str(tmp_path / "t2"), *objects]) == 2
    assert "env 'pointmass' has none: use state_encoder 'flat'" in capsys.readouterr().err
    # the default encoder resolved to the flat one for an environment without structure
    stored = load_checkpoint(ckpt)["network_config"]
    assert stored["state_encoder"] == "flat"
    # and the continuous system runs on it too
    run_dir = tmp_path / "run"
    tiny = ["run", "--env", "pointmass", "--config", "configs/run/tiny.yaml", "--out", str(run_dir)]
    assert main([*tiny, "--steps", "30", "--bootstrap-episodes", "16", "--no-progress"]) == 0
    report = json.loads((run_dir / "run.json").read_text())
    assert report["env"] == "pointmass" and report["step"] == 30
    assert report["duplicate_episode_ids"] == 0
