"""Variants over seeds on one dataset (paper Table 1 and Sec. 5.5): the summary's statistics
against hand-computed values, the --quick paths of both experiments end to end, resuming, and
the refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fakes import TASK_SET, make_fake_episode

from mtopt.cli import main
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.envs import make_spec
from mtopt.experiments.hard_task import HardTaskConfig, hardest_task, task_data
from mtopt.experiments.seeded import format_markdown, summarise
from mtopt.experiments.task_count import TaskCountConfig


def _result(seed: int, wins: dict[str, int], n: int = 10) -> dict:
    return {"seed": seed, "tasks": {t: [w, n] for t, w in wins.items()}, "wall_time_s": 1.0}


def test_the_summary_gives_seed_means_intervals_and_the_comparison():
    wins = {"a": [(2, 4), (4, 6), (3, 5)], "b": [(8, 8), (9, 9), (7, 7)]}  # (x, y) per seed
    results = {
        v: [_result(seed, {"x": x, "y": y}) for seed, (x, y) in enumerate(w)]
        for v, w in wins.items()
    }
    s = summarise(results, ["x", "y"])
    a = s["variants"]["a"]
    assert a["tasks"]["x"]["seeds"] == [0.2, 0.4, 0.3]
    # mean 0.3, sd 0.1, t(0.975, 2) = 4.3027: half width 4.3027 * 0.1 / sqrt(3) = 0.2484
    assert a["tasks"]["x"]["mean"] == pytest.approx(0.3)
    assert a["tasks"]["x"]["lo"] == pytest.approx(0.0516, abs=1e-4)
    assert a["tasks"]["x"]["hi"] == pytest.approx(0.5484, abs=1e-4)
    assert a["tasks"]["x"]["pooled"]["rate"] == pytest.approx(9 / 30)
    assert a["mean"]["seeds"] == pytest.approx([0.3, 0.5, 0.4])
    assert (a["mean"]["lo"], a["mean"]["hi"]) == (
        pytest.approx(0.1516, abs=1e-4),
        pytest.approx(0.6484, abs=1e-4),
    )
    c = s["comparisons"]["b"]["mean"]
    assert c["diff"] == pytest.approx(0.8 - 0.4)
    assert (c["baseline_spread"], c["variant_spread"]) == (pytest.approx(0.2), pytest.approx(0.2))
    assert c["beyond_spread"] == 1  # 0.4 better, beyond the larger spread 0.2
    text = format_markdown(s, "t")
    assert (
        "| a | 0.30 [0.05, 0.55] | 0.50 [0.25, 0.75] | 0.40 [0.15, 0.65] | 0.30 / 0.50 / 0.40 |"
        in text
    )
    assert "b against a: +0.400 on the mean, better beyond the seeds' spreads" in text


def test_one_seed_has_no_interval():
    s = summarise({"a": [_result(0, {"x": 3})]}, ["x"])
    assert math.isnan(s["variants"]["a"]["tasks"]["x"]["lo"])
    assert "| a | 0.30 | 0.30 | 0.30 |" in format_markdown(s, "t")


def test_the_hard_task_is_the_lift_whose_own_episodes_succeed_least(tmp_path):
    rng = np.random.default_rng(0)
    with EpisodeLogWriter(tmp_path / "log", 0, EpisodeLogConfig(fsync=False)) as w:
        for task, successes, n in (("lift-carrot", 3, 6), ("lift-box", 1, 6), ("lift-any", 4, 6)):
            for k in range(n):
                ep = make_fake_episode(rng, task=task)
                ep.success[:] = False  # this task succeeds in the first `successes` episodes
                if k < successes:
                    for t in (task, *TASK_SET[task].implies):
                        ep.success[ep.success_tasks.index(t)] = True
                w.append(ep)
    spec = make_spec("workcell")
    assert hardest_task(str(tmp_path / "log"), spec, "lift-any") == "lift-box"
    data = task_data(str(tmp_path / "log"), spec, "lift-box")
    assert data["own"] == {"successes": 1, "failures": 5}
    assert data["routed_successes"] == {}  # no other episode lifted the box
    assert task_data(str(tmp_path / "log"), spec, "lift-any")["routed_successes"] == {
        "lift-carrot": 3,
        "lift-box": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": ()}, r"seeds must be non-empty and distinct"),
        ({"steps": 0}, r"steps must be a positive integer, got 0"),
        ({"task": "place-bottom"}, r"must be another task of 'lift-any''s skill"),
        ({"task": "lift-cloth"}, r"unknown task name\(s\) \['lift-cloth'\]"),
    ],
)
def test_bad_hard_task_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HardTaskConfig(**kwargs)


def test_a_task_count_of_the_whole_set_is_refused():
    with pytest.raises(ValueError, match=r"few_tasks must be fewer than the task set's 12"):
        TaskCountConfig(few_tasks=TASK_SET.names)


def test_both_experiments_run_quick_end_to_end_and_resume(scripted_log, tmp_path, capsys):
    out = tmp_path / "task-count"
    flags = ["--data", str(scripted_log), "--out", str(out), "--no-progress"]
    assert main(["experiment", "task-count", "--quick", *flags]) == 0
    table = json.loads((out / "table.json").read_text())
    assert list(table["variants"]) == ["12-task", "2-task"]
    assert table["tasks"] == ["lift-any", "place-any"]
    assert all(v["seeds"] == [0, 1] for v in table["variants"].values())
    run = json.loads((out / "2-task" / "seed-1" / "result.json").read_text())
    assert run["trained_tasks"] == ["lift-any", "place-any"]
    assert all(n == 2 for _, n in run["tasks"].values())
    assert "| 12-task |" in capsys.readouterr().out
    # a second run reuses every finished job; one with other settings is refused
    mtime = (out / "2-task" / "seed-1" / "result.json").stat().st_mtime
    assert main(["experiment", "task-count", "--quick", *flags]) == 0
    assert (out / "2-task" / "seed-1" / "result.json").stat().st_mtime == mtime
    assert main(["experiment", "task-count", "--quick", *flags, "--steps", "9"]) == 2
    assert "was written with other settings" in capsys.readouterr().err

    out = tmp_path / "hard"
    flags = ["--data", str(scripted_log), "--out", str(out), "--no-progress"]
    assert main(["experiment", "bootstrap", "--quick", *flags]) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["task"].startswith("lift-") and table["task"] != "lift-any"
    assert list(table["variants"]) == ["mt-opt", "single-task"]
    run = json.loads((out / "single-task" / "seed-0" / "result.json").read_text())
    assert run["trained_tasks"] == [table["task"]] and list(run["tasks"]) == [table["task"]]
    assert "Sec. 5.5" in capsys.readouterr().out
