"""The imbalanced dataset command and the data-sharing experiment's --quick path, end to end."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import TASK_SET

from mtopt.cli import main
from mtopt.config import load_config
from mtopt.data.impersonation import ImpersonationConfig
from mtopt.data.stats import dataset_stats
from mtopt.envs.workcell_tasks import workcell_task_set
from mtopt.evaluation.summary import SUMMARY_KEYS
from mtopt.experiments.data_sharing import (
    STRATEGY_NAMES,
    DataSharingConfig,
    step_shares,
    strategy_runs,
    trainable_tasks,
)
from mtopt.experiments.imbalanced_dataset import ImbalancedDatasetConfig, build_imbalanced_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TASKS = workcell_task_set().names


def single_task_logs(out):
    base = out / "strategies" / "qtopt-single" / "data"
    return {p.name: p for p in base.iterdir()}


TINY = ["--scale", "0.01", "--policy-train.steps", "20", "--policy-train.batch-size", "32"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("imbalanced") / "data"
    assert main(["data", "imbalanced", "--out", str(out), "--no-progress", *TINY]) == 0
    return out


def test_imbalanced_dataset_command(tiny_dataset):
    stats = json.loads((tiny_dataset / "stats.json").read_text())
    counts = {t: e["episodes"] for t, e in stats["tasks"].items()}
    assert max(counts, key=counts.get) == "lift-any"
    assert counts["lift-any"] > 5 * counts["lift-box"]
    specific_places = [t for t in TASKS if t.startswith("place-") and t != "place-any"]
    assert counts["lift-any"] > 5 * max(counts[t] for t in specific_places)
    assert counts["place-any"] > max(counts[t] for t in specific_places)
    policies = {p for e in stats["tasks"].values() for p in e["by_policy"]}
    assert {"scripted-pick", "scripted-place"} <= policies
    assert any(p.startswith("checkpoint:") and "eps=0.2" in p for p in policies)
    phases = json.loads((tiny_dataset / "phases.json").read_text())
    assert {"scripted", "policy", "eps-greedy"} <= set(phases)
    assert phases["scripted"]["episodes"] + phases["eps-greedy"]["episodes"] == stats["episodes"]
    comp = json.loads((tiny_dataset / "composition.json").read_text())
    # f_skill routes every lift episode to lift-box; f_orig only its own
    lifts = sum(counts[t] for t in TASKS if t.startswith("lift-"))
    assert comp["impersonation"]["skill-1-1"]["lift-box"]["episodes"] == lifts
    assert comp["impersonation"]["orig"]["lift-box"]["episodes"] == counts["lift-box"]
    assert (tiny_dataset / "composition.png").stat().st_size > 1000
    # running the command again skips the finished phases (no new episodes)
    cfg = load_config(ImbalancedDatasetConfig, tiny_dataset / "config.yaml")
    again = build_imbalanced_dataset(cfg)
    assert again["stats"]["episodes"] == stats["episodes"]
    with pytest.raises(ValueError, match="different config"):
        build_imbalanced_dataset(replace(cfg, seed=5))


def test_quick_experiment_table_and_resume(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["experiment", "data-sharing", "--quick", "--data", str(tiny_dataset / "log")]
    args += ["--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "| Mean (low data) |" in capsys.readouterr().out
    table = json.loads((out / "table.json").read_text())
    assert list(table["strategies"]) == list(STRATEGY_NAMES)
    quick = DataSharingConfig.quick()
    for name, s in table["strategies"].items():
        assert list(s["tasks"]) == list(TASKS)
        for r in s["tasks"].values():
            assert isinstance(r["success_rate"], float) and 0.0 <= r["success_rate"] <= 1.0
            assert isinstance(r["episodes"], int)
        assert set(s["summary"]) == set(SUMMARY_KEYS)
        # same compute for every strategy: gradient steps and batch size
        assert s["training"]["steps"] == quick.steps, name
        assert s["training"]["batch_size"] == quick.train.batch_size
        assert s["training"]["samples_per_s"] > 0 and s["training"]["wall_time_s"] > 0
    single = table["strategies"]["qtopt-single"]
    assert single["training"]["policies"] == sum(1 for t in TASKS if table["train_episodes"][t])
    # its per-task logs hold exactly the episodes collected for each task
    for task, log in single_task_logs(out).items():
        assert dataset_stats(log)["episodes"] == table["train_episodes"][task]
    trained = [r for r in single["tasks"].values() if not r.get("untrained")]
    assert all(r["episodes"] == quick.eval_episodes_per_task for r in trained)
    md = (out / "table.md").read_text()
    assert md.count("\n| ") >= 12 + 7
    assert (out / "table.png").stat().st_size > 1000

    # crash-safety: a lost result is recomputed from the finished training, nothing else reruns
    def mtimes(pattern):
        return {p: p.stat().st_mtime_ns for p in out.glob(pattern)}

    results, trainings = (
        mtimes("strategies/*/result.json"),
        mtimes("strategies/*/*/train_result.json"),
    )
    lost = out / "strategies" / "all-uniform" / "result.json"
    lost.unlink()
    (out / "table.json").unlink()
    assert main(args) == 0
    assert mtimes("strategies/*/*/train_result.json") == trainings
    assert {p: t for p, t in mtimes("strategies/*/result.json").items() if p != lost} == {
        p: t for p, t in results.items() if p != lost
    }
    again = json.loads((out / "table.json").read_text())
    assert (
        again["strategies"]["all-uniform"]["tasks"] == table["strategies"]["all-uniform"]["tasks"]
    )
    # a different config or dataset is refused instead of mixed into the same table
    assert main([*args, "--steps", "60"]) == 2
    assert "different config" in capsys.readouterr().err
    other = args.copy()
    other[other.index("--data") + 1] = str(single_task_logs(out)["lift-any"])
    assert main(other) == 2
    assert "holds results for the dataset" in capsys.readouterr().err


def test_several_seeds_run_whole_experiments_and_rank_the_strategies(tiny_dataset, tmp_path):
    out = tmp_path / "seeds"
    args = ["experiment", "data-sharing", "--quick", "--data", str(tiny_dataset / "log")]
    args += ["--out", str(out), "--strategies", "orig-uniform", "skill-1-1-rebalanced"]
    assert main([*args, "--seeds", "0", "1", "--no-progress"]) == 0
    combined = json.loads((out / "seeds.json").read_text())
    assert combined["seeds"] == [0, 1]
    assert sorted(combined["ranking"]) == ["orig-uniform", "skill-1-1-rebalanced"]
    for seed in (0, 1):  # each seed is a whole experiment of its own
        table = json.loads((out / f"seed-{seed}" / "table.json").read_text())
        means = combined["strategies"]["orig-uniform"]["per_seed_mean"]
        assert table["strategies"]["orig-uniform"]["summary"]["mean"] == means[seed]
    assert "| 1 |" in (out / "seeds.md").read_text()
    assert (out / "seeds.png").stat().st_size > 10_000


def test_step_shares_and_trainable_tasks():
    assert step_shares(50, 12) == [5, 5] + [4] * 10
    assert sum(step_shares(12_000, 12)) == 12_000
    counts = {t: 0 for t in TASKS} | {"lift-any": 10, "place-bottom": 2}
    orig = ImpersonationConfig(kind="orig")
    assert trainable_tasks(orig, counts, TASK_SET) == ("lift-any", "place-bottom")
    assert len(trainable_tasks(ImpersonationConfig(kind="skill"), counts, TASK_SET)) == 12
    only_lift = {t: 0 for t in TASKS} | {"lift-box": 1}
    assert trainable_tasks(ImpersonationConfig(kind="skill"), only_lift, TASK_SET) == TASKS[:8]
    assert trainable_tasks(ImpersonationConfig(kind="all"), only_lift, TASK_SET) == TASKS


def test_strategy_runs_share_the_learner_and_split_single_task_budget(tmp_path):
    cfg = DataSharingConfig(data="d", out=str(tmp_path), steps=1200)
    counts = {t: 5 for t in TASKS}
    single = strategy_runs(cfg, "qtopt-single", counts, TASK_SET)
    assert list(single) == list(TASKS)
    assert sum(c.steps for c in single.values()) == 1200
    for task, c in single.items():
        assert c.tasks == (task,) and c.impersonation.kind == "orig"
        assert c.replay.sampler == "uniform"
    (skill,) = strategy_runs(cfg, "skill-1-0.15-rebalanced", counts, TASK_SET).values()
    assert skill.impersonation.p_failure == 0.15 and skill.replay.sampler == "rebalanced"
    assert skill.steps == 1200 and skill.tasks == () and skill.data == "d"
    assert skill.trainer == cfg.train.trainer and skill.cem == cfg.train.cem


def test_learner_flows_in_from_train_or_demo_configs():
    shipped = {
        CONFIGS / "train" / "state.yaml": ("auto", ()),  # objects in the workcell
        CONFIGS / "demo" / "learning.yaml": ("objects-action", ("gripper_motion",)),
    }
    for path, (encoder, extra) in shipped.items():
        cfg = DataSharingConfig(learner_config=str(path))
        (run,) = strategy_runs(cfg, "all-uniform", {t: 1 for t in TASKS}, TASK_SET).values()
        assert run.trainer.network.state_encoder == encoder
        assert tuple(run.trainer.network.extra_inputs) == extra
        assert run.impersonation.kind == "all" and run.steps == cfg.steps
    with pytest.raises(ValueError, match="not a file"):
        DataSharingConfig(learner_config="nope.yaml")
    with pytest.raises(ValueError, match="subset of"):
        DataSharingConfig(strategies=("skill-2",))


def test_shipped_experiment_configs_match_code():
    assert load_config(DataSharingConfig, CONFIGS / "experiment" / "default.yaml") == (
        DataSharingConfig()
    )
    assert load_config(DataSharingConfig, CONFIGS / "experiment" / "quick.yaml") == (
        DataSharingConfig.quick()
    )
    path = CONFIGS / "data-imbalanced" / "default.yaml"
    assert load_config(ImbalancedDatasetConfig, path) == ImbalancedDatasetConfig()


def test_fields_the_build_sets_itself_are_refused_not_ignored():
    from mtopt.config import ConfigError
    from mtopt.system.training_config import TrainConfig

    with pytest.raises(ConfigError, match=r"policy_train.data is set by the dataset build"):
        ImbalancedDatasetConfig(policy_train=TrainConfig(data="mine"))
