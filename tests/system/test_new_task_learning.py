"""A task added by outcome examples must actually be learnt: on the point mass, ``stay-left``
(end the episode left of x = -0.5; no goal marks it, no predicate judges it) is defined by
examples alone, its success detector labels the bootstrap log, and the multi-task learner's
greedy policy for the new slot reaches it far more often than the bootstrap policies did."""

from __future__ import annotations

import numpy as np

from mtopt.added_tasks import add_tasks, read_task_file
from mtopt.data.impersonation import ImpersonationConfig
from mtopt.envs import make_spec
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.policies import PolicyConfig
from mtopt.policies.q_policy import load_q_policy
from mtopt.success.dataset import SDExamples
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig
from mtopt.system.fleet import FleetConfig, collect
from mtopt.system.new_task import NewTaskConfig, add_task
from mtopt.system.training import train
from mtopt.system.training_config import TrainConfig

LEFT = "stay-left"


def left_examples(n: int, rng: np.random.Generator) -> SDExamples:
    """Final point-mass states labelled for ``stay-left`` only: half of them end far left."""
    goals = rng.uniform(-0.9, 0.9, size=(n, 4, 2))
    pos = rng.uniform(-1.0, 1.0, size=(n, 2))
    far = rng.random(n) < 0.5
    pos[far, 0] = rng.uniform(-1.0, -0.55, size=far.sum())
    labels = (pos[:, 0] < -0.5).astype(np.int8)[:, None]
    state = np.concatenate([pos, goals.reshape(n, -1)], axis=1).astype(np.float32)
    return SDExamples((LEFT,), labels, np.zeros(n, np.int64), np.full(n, -1, np.int64), state)


def ends_left(policy, spec, task: str, episodes: int, seed: int) -> float:
    """How often ``policy`` acting for ``task`` ends the episode left of x = -0.5."""
    env = spec.make_env()
    wins = 0
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k, options=spec.reset_options(task, "evaluate"))
        policy.reset(np.random.default_rng(seed + k), task=task)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            done = terminated or truncated
        wins += bool(obs["state"][0] < -0.5)
    return wins / episodes


def test_a_task_defined_by_examples_is_learnt(tmp_path):
    base = make_spec("pointmass")
    log = tmp_path / "log"
    collect(FleetConfig(out=str(log), robots=1, episodes=600, seed=0, progress=False), base)
    left_examples(400, np.random.default_rng(0)).save(tmp_path / "left")
    sd = SDTrainConfig(
        log=str(log),
        budget=200,
        out=str(tmp_path / "sd"),
        steps=600,
        batch_size=64,
        network=SDNetworkConfig(kind="state", width=32),
        progress=False,
        device="cpu",
    )
    report = add_task(
        NewTaskConfig(
            LEFT,
            skill="reach",
            examples=(str(tmp_path / "left"),),
            tasks_file=str(tmp_path / "tasks.json"),
            success_detector=sd,
        ),
        base,
    )
    spec = add_tasks(base, read_task_file(tmp_path / "tasks.json"))
    assert spec.task_set.slot(LEFT) == 4 and not spec.has_ground_truth(LEFT)
    cfg = TrainConfig(
        data=str(log),
        out=str(tmp_path / "run"),
        steps=1500,
        success_detector=report["success_detector"],
        batch_size=128,
        impersonation=ImpersonationConfig(kind="skill"),
        trainer=TrainerConfig(
            network=QNetworkConfig(kind="mlp", mlp_width=64, state_encoder="flat"),
            learning_rate=1e-3,
            polyak=0.99,
            target_lag_steps=100,
            device="cpu",
        ),
        checkpoint_every=1500,
        progress=False,
    )
    policy = load_q_policy(train(cfg, spec)["checkpoint"], spec, PolicyConfig(epsilon=0.0))
    learned = ends_left(policy, spec, LEFT, 100, 10_000)
    bootstrap, _ = spec.scripted_policy(LEFT)
    scripted = ends_left(bootstrap, spec, LEFT, 100, 10_000)
    logged = report["relabel"]["successes"] / report["relabel"]["episodes"]
    assert scripted < 0.3 and logged < 0.3, (scripted, logged)
    print(f"stay-left: learned {learned:.2f}, bootstrap {scripted:.2f}, logged {logged:.2f}")
    # measured: learned 0.54 against the bootstrap's 0.13 (1,500 steps)
    assert learned > max(scripted + 0.25, 2.5 * scripted), (learned, scripted)
