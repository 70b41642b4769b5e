"""Offline training smoke tests on a fake episode log: runs, checkpoints, resumes exactly."""

import numpy as np
import pytest
import torch
from fakes import TASK_SET, FakeSpec, make_fake_episode

from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.data.replay import ReplayConfig
from mtopt.learning.cem import CEMConfig
from mtopt.learning.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from mtopt.learning.networks import QNetworkConfig
from mtopt.learning.trainer import TrainerConfig
from mtopt.system.training import train
from mtopt.system.training_config import TrainConfig

SPEC = FakeSpec()


def _write_log(path, n=40, tasks=None, seed=0):
    rng = np.random.default_rng(seed)
    with EpisodeLogWriter(path, 0, EpisodeLogConfig(shard_episodes=8, fsync=False)) as w:
        for i in range(n):
            task = tasks[i % len(tasks)] if tasks else None
            w.append(make_fake_episode(rng, task=task, num_steps=5))
    return path


def _config(data, out, conservative_weight=0.0, **kw):
    small = TrainerConfig(
        network=QNetworkConfig(kind="mlp", mlp_width=32, state_encoder="flat"),
        target_lag_steps=10,
        polyak=0.9,
        device="cpu",
        conservative_weight=conservative_weight,
        conservative_samples=4,
    )
    base = dict(
        data=str(data),
        out=str(out),
        steps=40,
        batch_size=32,
        checkpoint_every=20,
        log_every=10,
        progress=False,
        trainer=small,
        cem=CEMConfig(num_samples=16, num_elites=4),
        rewards="oracle",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize(
    ("conservative_weight", "extra"),
    [(0.0, {}), (0.5, {}), (0.5, {"replay": ReplayConfig(n_step=1)})],
)
def test_resume_gives_identical_results(tmp_path, conservative_weight, extra):
    log = _write_log(tmp_path / "log")
    cw = conservative_weight
    full = train(_config(log, tmp_path / "a", cw, steps=40, **extra), SPEC)
    train(_config(log, tmp_path / "b", cw, steps=20, **extra), SPEC)
    resumed = train(_config(log, tmp_path / "b", cw, steps=40, resume=True, **extra), SPEC)
    assert full["step"] == resumed["step"] == 40
    a = load_checkpoint(full["checkpoint"])["trainer"]
    b = load_checkpoint(resumed["checkpoint"])["trainer"]
    for key in ("online", "target_1", "target_2"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    assert full["loss"] == resumed["loss"]
    assert (tmp_path / "a" / "tb").is_dir() and (tmp_path / "a" / "config.yaml").is_file()


def test_resume_skips_a_damaged_newest_checkpoint_and_continues_from_the_older(tmp_path, caplog):
    log = _write_log(tmp_path / "log")
    train(_config(log, tmp_path / "r", steps=40), SPEC)
    ckpts = list_checkpoints(tmp_path / "r" / "checkpoints")
    assert [p.name for p in ckpts] == ["ckpt-000000020.pt", "ckpt-000000040.pt"]
    ckpts[-1].write_bytes(ckpts[-1].read_bytes()[:1000])  # a truncated newest checkpoint
    with caplog.at_level("WARNING"):
        resumed = train(_config(log, tmp_path / "r", steps=60, resume=True), SPEC)
    assert "skipping checkpoint" in caplog.text and "ckpt-000000040.pt" in caplog.text
    assert "truncated or corrupted" in caplog.text
    assert resumed["step"] == 60  # continued from step 20
    # --resume-from names the checkpoint to continue from
    first = list_checkpoints(tmp_path / "r" / "checkpoints")[0]
    again = train(_config(log, tmp_path / "r2", steps=30, resume_from=str(first)), SPEC)
    assert again["step"] == 30
    # nothing valid left: one clear line
    for p in list_checkpoints(tmp_path / "r" / "checkpoints"):
        p.write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"no valid checkpoint.*--resume-from PATH"):
        train(_config(log, tmp_path / "r", steps=80, resume=True), SPEC)


def test_a_checkpoint_with_a_wrong_payload_names_what_is_missing(tmp_path):
    from mtopt.learning.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path, 1, {"trainer": {}, "task_names": ["lift-any"]})
    log = _write_log(tmp_path / "log", n=8)
    with pytest.raises(CheckpointError, match=r"lacks \['network_config', 'network_shape'"):
        train(_config(log, tmp_path / "o", steps=2, resume_from=str(path)), SPEC)


def test_empty_log_and_missing_task_data_stop_with_a_message(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no episodes"):
        train(_config(tmp_path / "empty", tmp_path / "o"), SPEC)
    log = _write_log(tmp_path / "lifts", n=10, tasks=["lift-any"])
    with pytest.raises(ValueError, match=r"routed to task\(s\) \['place-any'\]"):
        train(_config(log, tmp_path / "o", tasks=("lift-any", "place-any")), SPEC)
    with pytest.raises(ValueError, match="unknown task name"):
        train(_config(log, tmp_path / "o", tasks=("lift-everything",)), SPEC)


def test_a_log_of_another_env_is_refused_naming_both(tmp_path):
    from mtopt.envs import make_spec

    log = _write_log(tmp_path / "log", n=8)
    with pytest.raises(ValueError, match=r"state \(16,\).*env 'workcell' has state \(160,\)"):
        train(_config(log, tmp_path / "o", steps=2), make_spec("workcell"))


def test_checkpoint_records_training_data(tmp_path):
    log = _write_log(tmp_path / "log", n=24, tasks=["lift-any", "lift-can", "place-any"])
    res = train(_config(log, tmp_path / "o", steps=20), SPEC)
    payload = load_checkpoint(res["checkpoint"])
    assert payload["train_episode_counts"]["lift-any"] == 8
    assert payload["task_names"] == list(TASK_SET.names)
    assert payload["network_config"]["kind"] == "mlp"


def test_image_observations_train_the_conv_network(tmp_path):
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(tmp_path / "log", 0, EpisodeLogConfig(fsync=False)) as w:
        for _ in range(6):
            w.append(make_fake_episode(rng, task="lift-any", num_steps=3, image_size=32))
    net = QNetworkConfig(kind="conv", conv_channels=8, fc_width=16)
    cfg = _config(
        tmp_path / "log",
        tmp_path / "o",
        obs="image",
        steps=4,
        batch_size=8,
        tasks=("lift-any",),
        checkpoint_every=4,
        trainer=TrainerConfig(network=net, device="cpu"),
    )
    res = train(cfg, FakeSpec(image_size=32))
    payload = load_checkpoint(res["checkpoint"])
    assert payload["network_config"]["kind"] == "conv"
    assert payload["network_shape"]["image_size"] == 32
    assert payload["obs_keys"] == ["image", "gripper_status", "gripper_height"]


def test_fine_tuning_a_checkpoint_of_another_network_names_the_difference(tmp_path):
    log = _write_log(tmp_path / "log")
    first = train(_config(log, tmp_path / "a", steps=20), SPEC)
    other = TrainerConfig(
        network=QNetworkConfig(kind="mlp", mlp_width=16, state_encoder="flat"),
        target_lag_steps=10,
        polyak=0.9,
        device="cpu",
    )
    with pytest.raises(ValueError, match=r"mlp_width: 32, 16"):
        train(_config(log, tmp_path / "b", steps=20, trainer=other, init=first["checkpoint"]), SPEC)


@pytest.mark.parametrize("encoder", ["objects", "objects-action"])
def test_motion_input_trains_on_a_fleet_log_and_the_policy_acts_with_it(tmp_path, encoder):
    from mtopt.envs import make_spec
    from mtopt.policies.q_policy import load_q_policy
    from mtopt.system.fleet import FleetConfig, collect

    workcell = make_spec("workcell")
    fleet = FleetConfig(out=str(tmp_path / "log"), robots=1, episodes=12, seed=1, progress=False)
    collect(fleet, workcell)
    net = QNetworkConfig(
        kind="mlp",
        mlp_width=32,
        slot_action_width=8,
        state_encoder=encoder,
        extra_inputs=("gripper_motion",),
    )
    cfg = _config(
        tmp_path / "log",
        tmp_path / "o",
        steps=4,
        batch_size=8,
        checkpoint_every=4,
        trainer=TrainerConfig(network=net, device="cpu"),
    )
    payload = load_checkpoint(train(cfg, workcell)["checkpoint"])
    assert payload["obs_keys"][-1] == "gripper_motion"
    policy = load_q_policy(list_checkpoints(tmp_path / "o" / "checkpoints")[-1], workcell)
    assert policy.obs_keys[-1] == "gripper_motion"
    env = workcell.make_env()
    obs, _ = env.reset(seed=0, options={"task": "lift-any"})
    policy.reset(np.random.default_rng(0), task="lift-any")
    assert env.action_space.contains(policy.act(obs))
    # a log from before the observation existed is refused by name
    old = _write_log(tmp_path / "old")
    with pytest.raises(ValueError, match="episode has no observation 'gripper_motion'"):
        train(
            _config(old, tmp_path / "o2", trainer=TrainerConfig(network=net, device="cpu")),
            workcell,
        )


def test_training_reads_extra_data_directories_after_data(tmp_path):
    offline = _write_log(tmp_path / "offline", n=16, tasks=["lift-any"])
    fresh = _write_log(tmp_path / "fresh", n=8, tasks=["place-any"], seed=1)
    cfg = _config(offline, tmp_path / "o", steps=4, extra_data=(str(fresh),))
    payload = load_checkpoint(train(cfg, SPEC)["checkpoint"])
    assert payload["train_episode_counts"]["lift-any"] == 16
    assert payload["train_episode_counts"]["place-any"] == 8
    assert payload["config"]["extra_data"] == [str(fresh)]
    with pytest.raises(ValueError, match=r"training data '.*missing' is not an episode-log"):
        train(_config(offline, tmp_path / "m", extra_data=(str(tmp_path / "missing"),)), SPEC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"log '.*empty' \+ '.*empty2' holds no episodes"):
        (tmp_path / "empty2").mkdir()
        train(
            _config(tmp_path / "empty", tmp_path / "e", extra_data=(str(tmp_path / "empty2"),)),
            SPEC,
        )
