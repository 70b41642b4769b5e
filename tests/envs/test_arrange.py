"""Arranged final scenes (success-detector outcome examples) and lighting changes."""

import numpy as np
import pytest

from mtopt.envs import scene
from mtopt.envs.workcell import WorkcellConfig, WorkcellEnv
from mtopt.envs.workcell_examples import (
    SDExamplesConfig,
    beside_plate_point,
    make_examples,
    outcome_arrangement,
    section_point,
)
from mtopt.success.dataset import load_examples


@pytest.fixture(scope="module")
def env():
    e = WorkcellEnv()
    yield e
    e.close()


def _successes(env):
    return {n for n, ok in zip(env.task_names, env.success_vector(), strict=True) if ok}


def test_arranged_outcomes_are_judged_by_the_predicates(env):
    env.reset(seed=3)
    env.arrange(held="carrot", held_height=0.18)
    assert _successes(env) == {"lift-any", "lift-carrot"}
    assert env.categories.count("carrot") >= 1
    env.reset(seed=3)
    env.arrange(held="carrot", held_height=0.02)  # held, but not lifted high enough
    assert _successes(env) == set()
    rng = np.random.default_rng(0)
    for section in ("bottom", "top-left", "top-right"):
        env.reset(seed=4)
        env.arrange(on_plate=[("can", *section_point(section, rng), 0.0)])
        assert _successes(env) == {"place-any", f"place-{section}"}


def test_arrangement_keeps_the_rest_of_the_scene(env):
    env.reset(seed=5)
    before = env.slot_positions()
    cats = env.categories
    env.arrange(held="milk")
    after = env.slot_positions()
    moved = [i for i in range(len(cats)) if not np.allclose(before[i], after[i], atol=0.02)]
    assert len(moved) == 1  # only the object put in the hand moved
    present = [i for i, c in enumerate(env.categories) if c is not None]
    assert after[present, 2].min() > 0.0 and after[present, 2].max() < 0.4  # none flung away


def test_outcome_arrangements_show_the_intended_outcome_mostly(env):
    rng = np.random.default_rng(1)
    for task in ("lift-any", "lift-box", "place-any", "place-top-right"):
        col = env.task_names.index(task)
        hits = 0
        for desired in (True, False) * 5:
            kwargs = outcome_arrangement(task, desired, rng)
            env.reset(seed=int(rng.integers(1000)))
            if kwargs.pop("over_plate", False):
                kwargs["gripper_xy"] = tuple(env.scene_facts().plate_xy)
            env.arrange(**kwargs)
            hits += bool(env.success_vector()[col]) == desired
        assert hits >= 8, (task, hits)


def test_boundary_outcomes_sit_at_the_plate_edges_and_mostly_show_the_outcome(env):
    rng = np.random.default_rng(2)
    hx, hy = scene.PLATE_HALF
    for _ in range(50):
        x, y = beside_plate_point(rng)
        assert abs(x) > hx or abs(y) > hy  # outside the footprint ...
        assert abs(x) < hx + 0.041 and abs(y) < hy + 0.041  # ... but right beside it
    for task in ("place-any", "place-top-left"):
        col = env.task_names.index(task)
        hits = 0
        for desired in (True, False) * 5:
            kwargs = outcome_arrangement(task, desired, rng, boundary=1.0)
            if desired:
                ((_, x, y, _),) = kwargs["on_plate"]
                dy = scene.PLATE_DIVIDER_Y
                edges = [hx - abs(x), hy - abs(y), abs(y - dy)] + ([abs(x)] if y > dy else [])
                assert min(edges) < 0.021  # near a rim or a divider ...
            env.reset(seed=int(rng.integers(1000)))
            env.arrange(**kwargs)
            hits += bool(env.success_vector()[col]) == desired
        assert hits >= 7, (task, hits)
    with pytest.raises(ValueError, match="boundary_fraction"):
        SDExamplesConfig(task="place-any", boundary_fraction=1.5)


def test_lighting_changes_images_and_bad_values_are_refused():
    env = WorkcellEnv()
    try:
        env.reset(seed=0)
        bright = env.render_image().astype(float).mean()
        env.set_lighting(diffuse=0.2, ambient=0.0)
        assert env.render_image().astype(float).mean() < bright - 5
        env.set_lighting()
        assert abs(env.render_image().astype(float).mean() - bright) < 1e-6
        with pytest.raises(ValueError, match="diffuse"):
            env.set_lighting(diffuse=3.0)
        with pytest.raises(ValueError, match="z < 0"):
            env.set_lighting(direction=(0, 0, 1))
        with pytest.raises(ValueError, match="unknown object category 'anvil'"):
            env.arrange(held="anvil")
    finally:
        env.close()


def test_the_new_tasks_outcomes_use_the_scenes_one_cloth():
    cell = WorkcellEnv(WorkcellConfig(cloths=1, max_objects=7))
    try:
        cell.reset(seed=0)
        cell.arrange(held="cloth", held_height=0.16)
        assert _successes(cell) == {"lift-any", "lift-cloth"}
        assert cell.categories.count("cloth") == 1  # the scene's cloth, not a second one
        hits = {True: 0, False: 0}
        rng = np.random.default_rng(3)
        for desired in (True, False) * 6:
            cell.reset(seed=int(rng.integers(1000)))
            cell.arrange(**outcome_arrangement("cover-object", desired, rng))
            assert cell.categories.count("cloth") == 1
            hits[desired] += ("cover-object" in _successes(cell)) == desired
        # the caller's predicate check re-draws the rest (a cloth sliding off a round object)
        assert hits[True] >= 3 and hits[False] >= 5, hits
        with pytest.raises(ValueError, match="covering needs another object"):
            cell.reset(seed=1)
            cell.arrange(covering=("cloth", 0.0, 0.0), on_plate=[("can", 0, 0, 0)] * 9)
    finally:
        cell.close()


def test_new_task_examples_label_their_own_column(tmp_path):
    cfg = SDExamplesConfig(
        task="cover-object",
        pairs=3,
        images=False,
        out=str(tmp_path),
        progress=False,
        workcell=WorkcellConfig(cloths=1, max_objects=7),
    )
    summary = make_examples(cfg)
    examples = load_examples(tmp_path)
    assert examples.task_names[-1] == "cover-object" and len(examples.task_names) == 13
    assert summary["successes"] == summary["examples"] // 2
    assert set(examples.labels[:, -1]) == {0, 1} and (examples.labels[:, :-1] == -1).all()
    with pytest.raises(ValueError, match=r"needs the cloth in its scenes.*cloths 1"):
        SDExamplesConfig(task="lift-cloth")
