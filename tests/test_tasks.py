import numpy as np
import pytest

from mtopt.envs.workcell_tasks import OBJECT_ACQUISITION, OBJECT_MANIPULATION, workcell_task_set
from mtopt.tasks import TaskSet


def test_default_task_set_has_paper_tasks_in_fixed_slots():
    ts = workcell_task_set()
    assert len(ts) == 12
    assert ts.capacity == 16
    assert ts.names[0] == "lift-any"
    assert ts.slot("lift-carrot") == 7
    assert ts.slot("place-any") == 8
    assert ts.slot("place-top-right") == 11
    assert ts.tasks_of_skill(OBJECT_ACQUISITION) == ts.names[:8]
    assert ts.tasks_of_skill(OBJECT_MANIPULATION) == ts.names[8:]


def test_adding_a_task_takes_next_slot_and_keeps_existing_slots():
    ts = workcell_task_set()
    before = {n: ts.slot(n) for n in ts.names}
    new = ts.add("lift-cloth", OBJECT_ACQUISITION, implies=("lift-any",))
    assert new.slot == 12
    assert {n: ts.slot(n) for n in before} == before
    assert ts.one_hot("lift-cloth").shape == (16,)


def test_capacity_is_enforced():
    ts = TaskSet(capacity=2)
    ts.add("a", "s")
    ts.add("b", "s")
    with pytest.raises(ValueError, match="all 2 one-hot slots"):
        ts.add("c", "s")


def test_relations_lift_carrot_implies_lift_any_and_excludes_other_lifts():
    ts = workcell_task_set()
    labels = ts.implied_labels("lift-carrot")
    assert labels["lift-any"] is True
    for other in (
        "lift-banana",
        "lift-bottle",
        "lift-sausage",
        "lift-milk",
        "lift-box",
        "lift-can",
    ):
        assert labels[other] is False
    assert "place-any" not in labels and "lift-carrot" not in labels
    # excludes is symmetric: lift-banana (added first) also excludes lift-carrot
    assert ts.implied_labels("lift-banana")["lift-carrot"] is False
    place = ts.implied_labels("place-top-left")
    assert place == {"place-any": True, "place-bottom": False, "place-top-right": False}
    assert ts.implied_labels("lift-any") == {}


def test_one_hot_rows():
    ts = workcell_task_set()
    oh = ts.one_hot(["lift-any", "place-bottom"])
    assert oh.shape == (2, 16) and oh.dtype == np.float32
    assert oh[0, 0] == 1 and oh[1, 9] == 1 and oh.sum() == 2


def test_unknown_task_names_list_known_ones():
    ts = workcell_task_set()
    with pytest.raises(ValueError, match=r"unknown task name.*lift-any"):
        ts.validate(["lift-anything"])
    with pytest.raises(KeyError, match="known tasks"):
        ts["nope"]
    with pytest.raises(ValueError, match="already exists"):
        ts.add("lift-any", OBJECT_ACQUISITION)
    with pytest.raises(ValueError, match="unknown task"):
        ts.add("x", OBJECT_ACQUISITION, implies=("missing",))
