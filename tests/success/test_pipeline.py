"""The pipeline with SD rewards: log -> labelled examples -> SD -> log replay labels with the SD."""

import numpy as np
import pytest
from fakes import TASK_SET, FakeSpec, make_fake_episode

from mtopt.data.impersonation import Impersonation, ImpersonationConfig
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.log_replay import LogReplay
from mtopt.data.replay import ReplayConfig, TaskReplay
from mtopt.envs import make_spec
from mtopt.learning.cem import CEMConfig
from mtopt.learning.checkpoint import load_checkpoint
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.success.detector import SuccessDetector, SuccessDetectorLabeller
from mtopt.success.labelling import read_log_episodes, relabel_episodes
from mtopt.success.networks import SDNetworkConfig
from mtopt.success.training import SDTrainConfig, train_success_detector
from mtopt.system.training import TrainingRun, train
from mtopt.system.training_config import TrainConfig


def _write_log(path, n=160, seed=0):
    """Fake episodes whose final state encodes the ground truth (column k+1 = success of k)."""
    rng = np.random.default_rng(seed)
    for robot in (0, 1):
        with EpisodeLogWriter(path, robot, EpisodeLogConfig(shard_episodes=16, fsync=False)) as w:
            for _ in range(n // 2):
                ep = make_fake_episode(rng, robot_id=robot, num_steps=4)
                ep.observations["state"][-1, 1:13] = np.where(ep.success, 2.0, -2.0)
                w.append(ep)
    return path


def test_relabelling_respects_the_budget_and_asks_own_task_then_skill_then_rest(tmp_path):
    episodes = read_log_episodes(_write_log(tmp_path / "log"), need_views=False)
    col = TASK_SET.names.index("lift-carrot")
    own = sum(ep.task == "lift-carrot" for ep in episodes)
    lifts = sum(ep.task.startswith("lift") for ep in episodes)
    assert own >= 5  # the fake log has enough lift-carrot episodes for the first case
    for budget, want_own, want_lifts in ((5, 5, 5), (lifts + 3, own, lifts)):
        labelled, spent = relabel_episodes(episodes, TASK_SET, budget, np.random.default_rng(0))
        assert all(n <= budget for n in spent.values())
        rows = np.flatnonzero(labelled.labels[:, col] >= 0)
        assert len(rows) == spent["lift-carrot"] == budget
        primary = [TASK_SET.names[p] for p in labelled.primary[rows]]
        assert sum(p == "lift-carrot" for p in primary) == want_own
        assert sum(p.startswith("lift") for p in primary) == want_lifts
    # every episode is labelled (budget > episodes) with its ground truth for the task asked
    labelled, _ = relabel_episodes(episodes, TASK_SET, 1000, np.random.default_rng(0))
    truth = np.array([ep.success_for("lift-carrot") for ep in episodes])
    np.testing.assert_array_equal(labelled.labels[:, col], truth)


@pytest.fixture(scope="module")
def sd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    log = _write_log(root / "log")
    report = train_success_detector(
        SDTrainConfig(
            log=str(log),
            budget=60,
            out=str(root / "sd"),
            steps=300,
            batch_size=32,
            network=SDNetworkConfig(kind="state", state_encoder="flat", width=32),
            progress=False,
            device="cpu",
        ),
        make_spec("workcell"),
    )
    return root, log, report


def test_log_replay_labels_with_the_success_detector(sd_run):
    _root, log, report = sd_run
    detector = SuccessDetector.load(report["checkpoint"], TASK_SET)
    labeller = SuccessDetectorLabeller(detector)
    imp = Impersonation(
        ImpersonationConfig(kind="skill"), TASK_SET, labeller, np.random.default_rng(0)
    )
    replay = TaskReplay(ReplayConfig(), TASK_SET, np.random.default_rng(1))
    lr = LogReplay(log, imp, replay)
    lr.poll()
    assert labeller.labelled == lr.episodes == 160
    assert not labeller._primed  # every poll was labelled in one batch and fully consumed
    # the SD learned the outcome encoded in the final state: its labels match ground truth
    episodes = read_log_episodes(log, need_views=False)
    truth = np.stack([ep.success for ep in episodes])
    pred = detector.label(episodes, TASK_SET.names)
    assert (pred == truth).mean() >= 0.95


def test_training_with_sd_rewards_end_to_end(sd_run, tmp_path):
    _, log, report = sd_run
    cfg = TrainConfig(
        data=str(log),
        out=str(tmp_path / "q"),
        steps=20,
        batch_size=16,
        checkpoint_every=20,
        progress=False,
        success_detector=report["checkpoint"],
        trainer=TrainerConfig(
            network=QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat"), device="cpu"
        ),
        cem=CEMConfig(num_samples=8, num_elites=2),
    )
    assert cfg.rewards == "success_detector"  # the default reward source
    run = TrainingRun(cfg, FakeSpec())
    assert isinstance(run.log_replay.impersonation.labeller, SuccessDetectorLabeller)
    result = train(cfg, FakeSpec())
    payload = load_checkpoint(result["checkpoint"])
    assert payload["config"]["rewards"] == "success_detector"
    assert payload["config"]["success_detector"] == report["checkpoint"]


def test_sd_rewards_without_a_detector_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="needs a success-detector checkpoint"):
        TrainingRun(TrainConfig(data=str(tmp_path), out=str(tmp_path / "q")), make_spec("workcell"))


def test_fine_tuning_continues_from_a_checkpoint(sd_run, tmp_path):
    _, log, report = sd_run
    tuned = train_success_detector(
        SDTrainConfig(
            log=str(log),
            budget=10,
            init=report["checkpoint"],
            out=str(tmp_path / "tuned"),
            steps=5,
            network=SDNetworkConfig(kind="image"),  # ignored: the checkpoint's architecture
            progress=False,
            device="cpu",
        ),
        make_spec("workcell"),
    )
    assert tuned["kind"] == "state"
    before = load_checkpoint(report["checkpoint"])["model"]
    after = load_checkpoint(tuned["checkpoint"])["model"]
    assert set(before) == set(after)
    assert any(not (before[k] == after[k]).all() for k in before)
