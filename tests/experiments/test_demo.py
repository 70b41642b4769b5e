"""End-to-end smoke test of the demo: fleet, train, ε-greedy round, fine-tune, eval."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mtopt.config import load_config
from mtopt.experiments.demo import DemoConfig, demo_defaults, metaworld_demo_config, run_demo
from mtopt.learning.cem import CEMConfig
from mtopt.learning.checkpoint import load_checkpoint
from mtopt.policies import PolicyConfig


def test_tiny_demo_runs_end_to_end(tmp_path):
    base = DemoConfig()
    cfg = replace(
        base,
        out=str(tmp_path / "demo"),
        bootstrap_episodes=60,
        bootstrap_steps=20,
        rounds=1,
        round_episodes=20,
        round_steps=10,
        eval_episodes_per_task=2,
        progress=False,
        train=replace(
            base.train,
            batch_size=32,
            checkpoint_every=10,
            cem=CEMConfig(num_samples=16, num_elites=4),
        ),
        success_detector=replace(base.success_detector, steps=50, batch_size=32),
    )
    summary = run_demo(cfg)
    assert summary["episodes"] == 80
    # the default reward source: a success detector trained on labelled bootstrap episodes
    assert summary["rewards"] == "success_detector"
    sd_ckpt = summary["success_detector"]["checkpoint"]
    assert load_checkpoint(summary["checkpoint"])["config"]["success_detector"] == sd_ckpt
    eval_json = json.loads((tmp_path / "demo" / "eval.json").read_text())
    for name in ("mt-opt", "scripted"):
        tasks = eval_json["results"][name]["tasks"]
        assert len(tasks) == 12
        assert all(t["episodes"] == 2 for t in tasks.values())
        assert set(eval_json["results"][name]["summary"]) >= {"min", "mean", "mean_low_data"}
    assert (tmp_path / "demo" / "eval.png").stat().st_size > 1000
    # one video of the final policy: the evaluation's first scene of its first task
    video = json.loads((tmp_path / "demo" / "video" / "index.json").read_text())["videos"]
    assert [(v["task"], v["attempt"]) for v in video] == [("lift-any", 0)]
    assert summary["video"] == str(tmp_path / "demo" / "video" / video[0]["file"])
    assert Path(summary["video"]).stat().st_size > 1000 and summary["video"] in summary["report"]
    # the results page, its path printed last
    page = tmp_path / "demo" / "report.html"
    assert summary["report"].endswith(str(page)) and summary["html_report"] == str(page)
    assert 'id="success"' in page.read_text() and "data:video/mp4;base64," in page.read_text()
    # the fine-tuned checkpoint saw the ε-greedy round's episodes in its training data
    payload = load_checkpoint(summary["checkpoint"])
    assert sum(payload["train_episode_counts"].values()) == 80
    stats = json.loads((tmp_path / "demo" / "stats.json").read_text())
    policies = {p for t in stats["tasks"].values() for p in t["by_policy"]}
    assert any(p.startswith("checkpoint:") and "eps=0.2" in p for p in policies)


def test_shipped_demo_configs_match_the_defaults():
    configs = Path(__file__).resolve().parents[2] / "configs" / "demo"
    assert load_config(DemoConfig, configs / "default.yaml") == DemoConfig()
    mt10 = load_config(DemoConfig, configs / "metaworld-mt10.yaml")
    assert mt10 == metaworld_demo_config("metaworld-mt10")
    mt50 = load_config(DemoConfig, configs / "metaworld-mt50.yaml")
    assert mt50 == metaworld_demo_config("metaworld-mt50")
    assert (mt50.robots, mt50.robots_per_process, mt50.env.name) == (4, 2, "metaworld-mt50")
    assert demo_defaults("metaworld-mt10") == mt10 and demo_defaults("workcell") == DemoConfig()


def test_tiny_meta_world_mt10_demo_runs_end_to_end(tmp_path):
    """The CI smoke run of Meta-World: a few scripted episodes, a success detector, a few
    training steps, an ε-greedy round and the evaluation, on MT10 with its demo defaults."""
    base = metaworld_demo_config("metaworld-mt10")
    cfg = replace(
        base,
        out=str(tmp_path / "mt10"),
        robots=2,
        robots_per_process=2,
        bootstrap_episodes=40,  # every task drawn at least once with seed 0
        bootstrap_steps=4,
        rounds=1,
        round_episodes=4,
        round_steps=2,
        eval_episodes_per_task=1,
        progress=False,
        train=replace(base.train, batch_size=16, cem=CEMConfig(num_samples=8, num_elites=2)),
        policy=PolicyConfig(epsilon=0.2, cem=CEMConfig(iterations=1, num_samples=8, num_elites=2)),
        success_detector=replace(base.success_detector, steps=20, batch_size=16),
    )
    summary = run_demo(cfg)
    assert summary["episodes"] == 44 and summary["rewards"] == "success_detector"
    for name in ("mt-opt", "scripted"):
        tasks = summary["results"][name]["tasks"]
        assert list(tasks) == list(base.env.spec().task_set.names)
        assert all(t["episodes"] == 1 for t in tasks.values())
    assert "reach-v3" in summary["report"] and "environment steps" in summary["report"]
    stats = json.loads((tmp_path / "mt10" / "stats.json").read_text())
    assert stats["policy_steps"] < stats["env_steps"] <= 10 * stats["policy_steps"]
    assert (tmp_path / "mt10" / "eval.png").stat().st_size > 1000
    assert summary["video"] is None  # Meta-World has no camera to record


class _StopError(Exception):
    """Raised by a fake stage to end a stubbed demo once the value under test was seen."""


def _run_one_stubbed_round(tmp_path, **fields) -> None:
    """Run the demo with one round of oracle rewards and ``fields`` set, until a fake stage
    raises :class:`_StopError`."""
    base = DemoConfig()
    cfg = replace(
        base,
        out=str(tmp_path / "d"),
        rounds=1,
        train=replace(base.train, rewards="oracle"),
        **fields,
    )
    with pytest.raises(_StopError):
        run_demo(cfg)


def _stub_demo_stages(monkeypatch, fake_collect, fake_load, ckpt) -> None:
    """Replace the demo's collection, training, statistics and policy loading with fakes;
    training reports ``ckpt`` as its checkpoint."""
    from mtopt.experiments import demo

    monkeypatch.setattr(demo, "collect", fake_collect)
    monkeypatch.setattr(
        demo,
        "train",
        lambda cfg, spec: {
            "step": cfg.steps,
            "samples_per_s": 1.0,
            "loss": 0.0,
            "checkpoint": str(ckpt),
        },
    )
    monkeypatch.setattr(demo, "dataset_stats", lambda log, names=None: {"tasks": {}})
    monkeypatch.setattr(demo, "write_stats_json", lambda stats, path: None)
    monkeypatch.setattr(demo, "load_q_policy", fake_load)


def test_the_policy_config_reaches_collection_and_evaluation(tmp_path, monkeypatch):
    """``policy`` is how the rounds collect; the evaluation runs it greedily with its search."""
    finer = PolicyConfig(epsilon=0.3, cem=CEMConfig(iterations=3, num_samples=128, num_elites=12))
    seen = {}

    def fake_collect(cfg, spec):
        seen.setdefault("fleet", []).append((cfg.checkpoint, cfg.policy, spec.name))
        return {"episodes": cfg.episodes, "episodes_per_s": 1.0}

    ckpt = tmp_path / "ck.pt"
    ckpt.write_bytes(b"")

    def fake_load(checkpoint, spec, policy=None):
        seen["eval"] = (checkpoint, policy)
        raise _StopError

    _stub_demo_stages(monkeypatch, fake_collect, fake_load, ckpt)
    _run_one_stubbed_round(tmp_path, policy=finer)
    assert seen["fleet"] == [(None, finer, "workcell"), (str(ckpt), finer, "workcell")]
    assert seen["eval"] == (str(ckpt), replace(finer, epsilon=0.0))


def test_the_env_reaches_collection_and_evaluation(tmp_path, monkeypatch):
    """``env`` (e.g. the workcell's contact settings) is the fleet's and the evaluation's."""
    from mtopt.envs import EnvConfig
    from mtopt.envs.workcell_config import WorkcellConfig
    from mtopt.experiments import demo

    softer = WorkcellConfig(impratio=3.0)
    seen = {}
    ckpt = tmp_path / "ck.pt"
    ckpt.write_bytes(b"")

    def fake_collect(cfg, spec):
        seen.setdefault("fleet", []).append(spec.config)
        return {"episodes": cfg.episodes, "episodes_per_s": 1.0}

    def fake_evaluate(policy_for_task, protocol, spec, counts):
        seen["eval"] = spec.config
        raise _StopError

    _stub_demo_stages(monkeypatch, fake_collect, lambda checkpoint, spec, policy: object(), ckpt)
    monkeypatch.setattr(demo, "evaluate", fake_evaluate)
    _run_one_stubbed_round(tmp_path, env=EnvConfig(workcell=softer))
    assert seen["fleet"] == [softer, softer]
    assert seen["eval"] == softer


def test_fields_the_demo_sets_itself_are_refused_not_ignored():
    from mtopt.config import ConfigError
    from mtopt.success.training import SDTrainConfig

    with pytest.raises(ConfigError, match=r"success_detector.out is set by the demo itself"):
        DemoConfig(success_detector=SDTrainConfig(out="elsewhere"))


def test_a_learner_the_environment_cannot_feed_is_refused_before_any_collection(tmp_path):
    from mtopt.envs import EnvConfig

    # the default learner reads the workcell's gripper motion, which the point mass lacks
    cfg = DemoConfig(out=str(tmp_path / "d"), env=EnvConfig(name="pointmass"), progress=False)
    with pytest.raises(ValueError, match=r"extra_inputs \['gripper_motion'\] are not recorded"):
        run_demo(cfg)
    assert not (tmp_path / "d" / "log").exists()


def test_the_mt50_demo_keeps_few_robots_per_process():
    """Every robot keeps one Meta-World environment per task: MT50's fifty must fit in memory."""
    mt10, mt50 = metaworld_demo_config("metaworld-mt10"), metaworld_demo_config("metaworld-mt50")
    assert (mt10.robots, mt10.robots_per_process) == (16, 8)
    assert (mt50.robots, mt50.robots_per_process) == (4, 2) and mt50.env.name == "metaworld-mt50"
    assert mt50.train == mt10.train and mt50.out == "runs/demo-mt50"
