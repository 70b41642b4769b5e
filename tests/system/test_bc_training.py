"""Behaviour cloning from an episode log: it must learn a tiny task from the log's successes,
its checkpoints load with the project's conventions, and bad input is named."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from fakes import FakeSpec, ReachTask, make_fake_episode

from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.learning.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mtopt.learning.networks import QNetworkConfig
from mtopt.policies.bc_policy import load_bc_policy
from mtopt.policies.q_policy import load_q_policy
from mtopt.system.bc_training import BCConfig, train_bc

SPEC = FakeSpec(state_dim=2)
SHARDS = EpisodeLogConfig(fsync=False)


class ReachExpert:
    """Heads for the goal and terminates close to it; acts at random in half the episodes (so
    the log mixes successes and failures)."""

    def reset(self, rng: np.random.Generator, task: str | None = None) -> None:
        self.rng, self.random = rng, rng.random() < 0.5

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.random:
            return ReachTask.random_action(self.rng)
        x, g = obs["state"]
        a = np.zeros(6, np.float32)
        a[0] = np.clip((g - x) / 0.3, -1, 1)
        a[5] = float(abs(g - x) < 0.1)
        return a


def _config(tmp_path, **overrides) -> BCConfig:
    base = BCConfig(
        data=str(tmp_path / "log"),
        out=str(tmp_path / "bc"),
        steps=400,
        tasks=("lift-any",),
        labels="oracle",
        network=QNetworkConfig(kind="mlp", mlp_width=64, state_encoder="flat"),
        head_width=64,
        checkpoint_every=200,
        device="cpu",
        progress=False,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def reach_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("reach")
    task, rng = ReachTask(), np.random.default_rng(0)
    with EpisodeLogWriter(path / "log", 0, SHARDS) as writer:
        for _ in range(400):
            writer.append(task.rollout(rng, ReachExpert()))
    return path


def _success_rate(policy, episodes: int = 300) -> float:
    task, rng = ReachTask(), np.random.default_rng(1)
    return float(
        np.mean([task.rollout(rng, policy).success_for("lift-any") for _ in range(episodes)])
    )


def test_cloning_the_successes_beats_random_actions(reach_log, tmp_path):
    summary = train_bc(_config(reach_log, out=str(tmp_path / "bc")), SPEC)
    demos = summary["demonstrations"]
    assert demos["collected_episodes"] == {"lift-any": 400}
    assert 0 < demos["train_episodes"]["lift-any"] + demos["held_out_episodes"]["lift-any"] < 400
    assert demos["held_out_episodes"]["lift-any"] > 0
    assert summary["held_out"]["discrete_accuracy"] > 0.8
    policy = load_bc_policy(summary["checkpoint"], SPEC)
    assert policy.name == "bc:bc@400"
    cloned, random = _success_rate(policy), _success_rate(None)
    assert random < 0.2
    assert cloned > random + 0.2, f"cloned {cloned:.3f} vs random {random:.3f}"
    # the checkpoint: the project's format, loaded with weights_only=True; the newest 2 kept
    payload = load_checkpoint(summary["checkpoint"])
    assert payload["trained_tasks"] == ["lift-any"] and payload["env"]["env"] == "fake"
    assert sorted(p.name for p in (tmp_path / "bc" / "checkpoints").iterdir()) == [
        "ckpt-000000200.pt",
        "ckpt-000000400.pt",
    ]
    assert (tmp_path / "bc" / "summary.json").is_file()


def test_same_seed_same_run_and_lockstep_acting(reach_log, tmp_path):
    a = train_bc(_config(reach_log, out=str(tmp_path / "a"), steps=20), SPEC)
    b = train_bc(_config(reach_log, out=str(tmp_path / "b"), steps=20), SPEC)
    assert a["last_batch"] == b["last_batch"] and a["held_out"] == b["held_out"]
    policy = load_bc_policy(a["checkpoint"], SPEC)
    obs = [ReachTask().reset(np.random.default_rng(i)) for i in range(4)]
    policy.reset(np.random.default_rng(0), task="lift-any")
    one_by_one = np.stack([policy.act(o) for o in obs])
    batched = policy.act_batch(obs, "lift-any", policy.generator_for(0))
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    assert set(np.unique(batched[:, 4:])) <= {0.0, 1.0}


def test_bad_input_is_named(reach_log, tmp_path):
    with pytest.raises(ValueError, match=r"holdout must be in \[0, 1\), got 1.0"):
        BCConfig(holdout=1.0)
    with pytest.raises(ValueError, match="labels must be 'success_detector' or 'oracle'"):
        BCConfig(labels="truth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"network\.kind must be 'mlp', got 'conv'"):
        BCConfig(network=QNetworkConfig(kind="conv"))
    with pytest.raises(ValueError, match="not an episode-log directory"):
        train_bc(_config(tmp_path, out=str(tmp_path / "x")), SPEC)
    with pytest.raises(ValueError, match="needs a success-detector checkpoint"):
        train_bc(_config(reach_log, out=str(tmp_path / "y"), labels="success_detector"), SPEC)
    # a log of failures only: nothing to clone
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(tmp_path / "failures", 0, SHARDS) as writer:
        for _ in range(5):
            ep = make_fake_episode(rng, task="lift-any", state_dim=2)
            ep.success[:] = False
            writer.append(ep)
    with pytest.raises(ValueError, match=r"no episode of .* is labelled a success"):
        train_bc(_config(tmp_path, data=str(tmp_path / "failures"), out=str(tmp_path / "z")), SPEC)
    # an existing run is not overwritten, and a Q-learner's checkpoint is not a BC one
    done = train_bc(_config(reach_log, out=str(tmp_path / "run"), steps=2), SPEC)
    with pytest.raises(ValueError, match="already holds a run's checkpoints"):
        train_bc(_config(reach_log, out=str(tmp_path / "run"), steps=2), SPEC)
    with pytest.raises(CheckpointError, match=r"lacks \['trainer'\]"):
        load_q_policy(done["checkpoint"], SPEC)
    other = save_checkpoint(tmp_path / "other", 1, {"trainer": {}})
    with pytest.raises(CheckpointError, match=r"lacks \['bc', 'bc_head', "):
        load_bc_policy(other, SPEC)


def test_mtopt_eval_runs_a_bc_checkpoint(tmp_path, capsys):
    from mtopt.cli import main

    pointmass = ["--env", "pointmass"]
    log, out = str(tmp_path / "log"), str(tmp_path / "bc")
    assert main(["collect", "--out", log, "--robots", "1", "--episodes", "40", *pointmass]) == 0
    flags = ["--data", log, "--out", out, "--steps", "5", "--labels", "oracle", "--no-progress"]
    assert main(["bc", "train", *flags, *pointmass]) == 0
    ckpt = str(tmp_path / "bc" / "checkpoints" / "ckpt-000000005.pt")
    assert main(["eval", "--checkpoint", ckpt, "--episodes-per-task", "2", *pointmass]) == 0
    table = capsys.readouterr().out
    assert "reach-0" in table and "Median" in table
