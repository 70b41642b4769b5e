"""Tasks added to an environment's task set: slots, the task file, the grown spec."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from mtopt.added_tasks import (
    AddedTask,
    GrownSpec,
    add_tasks,
    grow_task_set,
    read_task_file,
    slot_differences,
    write_task_file,
)
from mtopt.envs import EnvConfig, make_spec
from mtopt.envs.workcell_tasks import OBJECT_ACQUISITION, OBJECT_MANIPULATION, workcell_task_set

COVER = AddedTask("cover-object", OBJECT_MANIPULATION, implies=("place-any",))
LIFT_CLOTH = AddedTask("lift-cloth", OBJECT_ACQUISITION, implies=("lift-any",))


def test_added_tasks_take_the_next_free_slots_and_move_nothing():
    base = workcell_task_set()
    grown = grow_task_set(base, [COVER, LIFT_CLOTH])
    assert grown.capacity == base.capacity == 16
    assert grown.names[:12] == base.names
    assert all(grown[t.name] == t for t in base)  # slots, skills and relations kept
    assert (grown.slot("cover-object"), grown.slot("lift-cloth")) == (12, 13)
    assert grown["lift-cloth"].implies == ("lift-any",)
    assert grown.implied_labels("cover-object") == {"place-any": True}
    assert grown.one_hot("lift-cloth")[13] == 1.0


@pytest.mark.parametrize(
    ("added", "message"),
    [
        ([AddedTask("lift-any", OBJECT_ACQUISITION)], r"task 'lift-any' already exists \(slot 0\)"),
        ([AddedTask("wipe", "wiping")], r"skill 'wiping' is not one of the environment's skills"),
        (
            [AddedTask("wipe", OBJECT_MANIPULATION, ("polish",))],
            r"relates to unknown task 'polish'",
        ),
        (
            [AddedTask(f"new-{i}", OBJECT_ACQUISITION) for i in range(5)],
            r"cannot add task 'new-4': all 16 one-hot slots are taken \(12 environment tasks, "
            r"4 added\)",
        ),
    ],
)
def test_bad_additions_are_refused_naming_the_value(added, message):
    with pytest.raises(ValueError, match=message):
        grow_task_set(workcell_task_set(), added)


def test_the_task_file_round_trips_and_refuses_what_it_cannot_read(tmp_path):
    path = write_task_file(tmp_path / "run" / "tasks.json", "workcell", [COVER, LIFT_CLOTH])
    assert read_task_file(path) == (COVER, LIFT_CLOTH)
    assert json.loads(path.read_text())["env"] == "workcell"
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, nothing left behind
    with pytest.raises(ValueError, match=r"does not exist; 'mtopt task add"):
        read_task_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"is not valid JSON"):
        read_task_file(tmp_path / "bad.json")
    (tmp_path / "v9.json").write_text('{"format": 9, "tasks": []}')
    with pytest.raises(ValueError, match=r"has format 9 \(this mtopt reads format 1\)"):
        read_task_file(tmp_path / "v9.json")
    (tmp_path / "entry.json").write_text('{"format": 1, "tasks": [{"name": "x"}]}')
    with pytest.raises(ValueError, match=r"bad task entry"):
        read_task_file(tmp_path / "entry.json")


def test_the_env_config_grows_the_spec_from_the_task_file(tmp_path):
    path = write_task_file(tmp_path / "tasks.json", "workcell", [COVER])
    spec = EnvConfig(tasks=str(path)).spec()
    assert isinstance(spec, GrownSpec) and spec.task_set.names[-1] == "cover-object"
    assert spec.describe()["tasks"][-1] == "cover-object"
    assert pickle.loads(pickle.dumps(spec)).task_set.names == spec.task_set.names
    with pytest.raises(ValueError, match=r"adds tasks to env 'workcell', not to 'pointmass'"):
        EnvConfig(name="pointmass", tasks=str(path)).spec()


def test_an_added_task_runs_as_its_skills_first_task():
    base = make_spec("workcell")
    spec = add_tasks(base, [COVER, LIFT_CLOTH])
    assert add_tasks(base, []) is base
    assert spec.carrier("cover-object") == "place-any"
    assert spec.carrier("lift-cloth") == "lift-any"
    assert spec.carrier("lift-carrot") == "lift-carrot"
    # the workcell judges both new tasks, so their episodes are scored for them
    assert spec.reset_options("cover-object", "collect") == {
        "task": "cover-object",
        "grasped": True,
    }
    assert spec.reset_options("lift-cloth", "evaluate") == {
        "task": "lift-cloth",
        "scene": "evaluation",
    }
    assert spec.reset_options("lift-carrot", "collect") == base.reset_options(
        "lift-carrot", "collect"
    )
    assert spec.chain_skill("lift-cloth") == OBJECT_MANIPULATION
    assert spec.chain_options("cover-object") == {"chain": True, "task": "cover-object"}
    assert spec.has_ground_truth("lift-carrot") and spec.has_ground_truth("lift-cloth")
    # a task the environment has no predicate for runs and is scored as its carrier
    blind = add_tasks(base, [AddedTask("wipe-table", OBJECT_MANIPULATION)])
    assert not blind.has_ground_truth("wipe-table")
    assert blind.reset_options("wipe-table", "collect") == {"task": "place-any", "grasped": True}
    assert blind.chain_options("wipe-table") == {"chain": True, "task": "place-any"}
    policy, name = spec.scripted_policy("lift-cloth")
    assert name == "scripted-pick"
    policy.reset(np.random.default_rng(0), task="lift-cloth")  # the picker runs as lift-any


def test_slot_differences_name_each_disagreeing_slot():
    assert slot_differences(["a", "b", "x"], ["a", "b", "y", "z"]) == [
        "slot 2: 'x' vs 'y'",
        "slot 3: '(none)' vs 'z'",
    ]
    assert slot_differences(["a"], ["a"]) == []
