"""``mtopt experiment new-tasks`` (paper Sec. 5.6): the --quick path end to end, resuming, the
parity rule and the refusals."""

from __future__ import annotations

import json

import pytest

from mtopt.cli import main
from mtopt.envs import EnvConfig
from mtopt.experiments.new_tasks import NewTasksConfig, _at_parity


def test_new_tasks_run_quick_end_to_end_and_resume(scripted_log, tmp_path, capsys):
    out = tmp_path / "new"
    flags = ["--data", str(scripted_log), "--out", str(out), "--no-progress"]
    assert main(["experiment", "new-tasks", "--quick", *flags]) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["tasks"] == ["lift-cloth", "cover-object"] and table["seeds"] == [0, 1]
    assert [r["new_episodes"] for r in table["rounds"]] == [8, 16]
    assert table["two_task"]["new_episodes"] == 16
    first = json.loads((out / "seed-0" / "round-1" / "round.json").read_text())
    assert first["collected_with"] == ["lift-any", "place-any"]  # the broad tasks' policies
    assert set(first["carrier_yield"]) == {"lift-cloth", "cover-object"}
    assert all(n == 2 for _, n in first["tasks"].values())
    assert (out / "seed-1" / "round-2" / "log").is_dir()
    assert not list(out.glob("seed-*/round-*/log.partial"))
    added = json.loads((out / "tasks.json").read_text())
    assert [t["name"] for t in added["tasks"]] == ["lift-cloth", "cover-object"]
    assert "| 2-task, new data only | 16 |" in capsys.readouterr().out
    # a second run reuses every finished round; other settings are refused
    mtime = (out / "seed-1" / "round-2" / "round.json").stat().st_mtime
    assert main(["experiment", "new-tasks", "--quick", *flags]) == 0
    assert (out / "seed-1" / "round-2" / "round.json").stat().st_mtime == mtime
    assert main(["experiment", "new-tasks", "--quick", *flags, "--steps-per-round", "9"]) == 2
    assert "was written with other settings" in capsys.readouterr().err
    # one more round extends the run: earlier rounds are kept, the comparison is redone
    before = json.loads((out / "seed-0" / "two-task-2-rounds" / "result.json").read_text())
    assert (
        main(["experiment", "new-tasks", "--quick", *flags, "--seeds", "0", "--rounds", "3"]) == 0
    )
    assert (out / "seed-1" / "round-2" / "round.json").stat().st_mtime == mtime
    assert (out / "seed-0" / "round-3" / "round.json").is_file()
    after = json.loads((out / "seed-0" / "two-task-3-rounds" / "result.json").read_text())
    assert (before["new_episodes"], after["new_episodes"]) == (16, 24)


def test_a_new_task_is_collected_by_its_own_policy_once_at_parity():
    last = {"tasks": {"lift-cloth": [3, 10]}}
    assert _at_parity(last, {"lift-cloth": 0.3}, "lift-cloth")
    assert not _at_parity(last, {"lift-cloth": 0.31}, "lift-cloth")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": EnvConfig()}, r"need the workcell with a cloth.*cloths=0"),
        ({"env": EnvConfig(name="pointmass")}, r"got env 'pointmass'"),
        ({"rounds": 0}, r"rounds must be a positive integer, got 0"),
        ({"seeds": (1, 1)}, r"seeds must be non-empty and distinct"),
    ],
)
def test_bad_new_task_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NewTasksConfig(**kwargs)
