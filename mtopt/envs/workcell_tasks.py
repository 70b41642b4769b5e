"""The workcell's task set: the paper's 12 evaluation tasks (Fig. 5) and their skills."""

from __future__ import annotations

from mtopt.tasks import DEFAULT_CAPACITY, TaskSet

OBJECT_ACQUISITION = "object-acquisition"
"""The skill of singulating and lifting an object (the lift tasks)."""
OBJECT_MANIPULATION = "object-manipulation"
"""The skill of placing a held object somewhere (the place tasks)."""

OBJECT_CATEGORIES: tuple[str, ...] = ("banana", "bottle", "sausage", "milk", "box", "can", "carrot")
"""The seven graspable object categories of the workcell (paper Sec. 5.1)."""
PLATE_SECTIONS: tuple[str, ...] = ("bottom", "top-left", "top-right")
"""The three sections of the divided plate."""
LIFT_CLOTH = "lift-cloth"
"""New task (paper Sec. 5.6): lift the cloth, a flat object absent from the 12 tasks' scenes."""
COVER_OBJECT = "cover-object"
"""New task (paper Sec. 5.6): leave the cloth resting over another object in the object bin."""
CATEGORY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "banana": ("banana", "fruit", "yellow", "long", "curved"),
    "bottle": ("bottle", "drink", "green", "cylinder", "upright"),
    "sausage": ("sausage", "food", "brown", "long", "small"),
    "milk": ("milk", "drink", "carton", "white", "tall"),
    "box": ("box", "blue", "flat", "cuboid"),
    "can": ("can", "drink", "red", "cylinder", "squat"),
    "carrot": ("carrot", "vegetable", "orange", "long"),
}
"""Hand-written words describing each category as the workcell simulates it (name, kind,
colour, shape): the semantic lifts' task metadata."""
TASK_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "lift-any": ("lift", "grasp", "any", "object"),
    **{f"lift-{c}": ("lift", "grasp", *words) for c, words in CATEGORY_ATTRIBUTES.items()},
    "place-any": ("place", "release", "plate", "any", "section"),
    "place-bottom": ("place", "release", "plate", "bottom", "section"),
    "place-top-left": ("place", "release", "plate", "top", "left", "section"),
    "place-top-right": ("place", "release", "plate", "top", "right", "section"),
    LIFT_CLOTH: ("lift", "grasp", "cloth", "flat", "thin", "purple"),
    COVER_OBJECT: ("cover", "place", "release", "cloth", "over", "object", "bin"),
}
"""Hand-written attributes (:attr:`mtopt.tasks.Task.attributes`) of the 12 tasks and the new
tasks of :data:`NEW_TASKS` (which a run adds with ``mtopt task add``): verb, object, the
object's properties or the target section."""
NEW_TASKS: dict[str, str] = {LIFT_CLOTH: OBJECT_ACQUISITION, COVER_OBJECT: OBJECT_MANIPULATION}
"""Tasks the workcell judges beyond its task set, with their skills. They are not among the 12
tasks; a run adds them in reserved slots with ``mtopt task add`` (docs/new-tasks.md), and the
workcell reports their ground truth (for oracle rewards and the evaluation)."""


def lift_task(category: str) -> str:
    """Name of the semantic lift task for an object category."""
    return f"lift-{category}"


def place_task(section: str) -> str:
    """Name of the place task for a plate section."""
    return f"place-{section}"


def workcell_task_set(capacity: int = DEFAULT_CAPACITY) -> TaskSet:
    """The paper's 12 evaluation tasks (Fig. 5), with ``capacity`` one-hot slots.

    Slots: 0 ``lift-any``, 1–7 the semantic lifts in :data:`OBJECT_CATEGORIES` order,
    8 ``place-any``, 9–11 the section places in :data:`PLATE_SECTIONS` order.
    """
    ts = TaskSet(capacity)
    attrs = TASK_ATTRIBUTES
    ts.add("lift-any", OBJECT_ACQUISITION, attributes=attrs["lift-any"])
    lifts: list[str] = []
    for cat in OBJECT_CATEGORIES:
        # one object is lifted per episode, so semantic lifts exclude each other
        name = lift_task(cat)
        lifts.append(ts.add(name, OBJECT_ACQUISITION, ("lift-any",), lifts, attrs[name]).name)
    ts.add("place-any", OBJECT_MANIPULATION, attributes=attrs["place-any"])
    places: list[str] = []
    for sec in PLATE_SECTIONS:
        name = place_task(sec)
        places.append(ts.add(name, OBJECT_MANIPULATION, ("place-any",), places, attrs[name]).name)
    return ts
