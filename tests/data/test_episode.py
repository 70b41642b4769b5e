"""Episode schema: construction, validation errors, helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fakes import TASK_SET, make_fake_episode

from mtopt.data.episode import Episode, new_episode_id


@pytest.fixture
def episode() -> Episode:
    return make_fake_episode(np.random.default_rng(0), num_steps=5, image_size=8)


def test_num_steps_and_success_for(episode: Episode) -> None:
    assert episode.num_steps == 5
    assert episode.observations["state"].shape[0] == 6
    for i, task in enumerate(TASK_SET.names):
        assert episode.success_for(task) == bool(episode.success[i])
    with pytest.raises(KeyError, match="no success label for task 'lift-nothing'"):
        episode.success_for("lift-nothing")


def test_fake_success_respects_task_relations() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        ep = make_fake_episode(rng, task="lift-carrot")
        lifts = [t for t in TASK_SET.names if t.startswith("lift-") and t != "lift-any"]
        assert sum(ep.success_for(t) for t in lifts) == int(ep.success_for("lift-any"))


def test_fake_episodes_are_reproducible() -> None:
    a = make_fake_episode(np.random.default_rng(7), image_size=4)
    b = make_fake_episode(np.random.default_rng(7), image_size=4)
    assert a.episode_id == b.episode_id
    np.testing.assert_array_equal(a.observations["image"], b.observations["image"])


def test_new_episode_id() -> None:
    a = new_episode_id(3, np.random.default_rng(0))
    assert a == new_episode_id(3, np.random.default_rng(0))
    assert a.startswith("003-") and len(a) == 16
    assert new_episode_id(12, 255) == "012-0000000000ff"
    assert new_episode_id(1) != new_episode_id(1)
    with pytest.raises(ValueError, match="robot_id"):
        new_episode_id(-1, 0)
    with pytest.raises(ValueError, match="source"):
        new_episode_id(1, "seed")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actions": np.zeros(5, np.float32)}, r"Episode.actions: must have shape \(T, A\)"),
        ({"actions": np.zeros((5, 0), np.float32)}, r"at least one action dimension"),
        ({"actions": np.zeros((5, 6), np.float64)}, "actions: must have dtype float32"),
        ({"actions": [[0.0] * 6] * 5}, "actions: must be a numpy array"),
        (
            {"success": np.zeros(3, bool)},
            r"success: must have shape \(12,\) bool, got shape \(3,\)",
        ),
        ({"success": np.zeros(12, np.int64)}, "success: must have dtype bool"),
        ({"success_tasks": ("a", "a")}, "success_tasks: task names must be unique"),
        ({"policy": "random"}, "policy: must be 'scripted-<name>'.*got 'random'"),
        ({"policy": "checkpoint:"}, "policy: must be"),
        ({"epsilon": 1.5}, r"epsilon: must be a number in \[0, 1\], got 1.5"),
        ({"robot_id": -2}, "robot_id: must be a non-negative integer, got -2"),
        ({"episode_id": ""}, "episode_id: must be a non-empty string"),
        ({"end_time": 0.0}, "end_time: 0.0 is before start_time"),
        ({"start_time": float("nan")}, "start_time: must be a finite unix time"),
        ({"seed": 2**64}, "seed: must fit in a signed 64-bit integer"),
        ({"final_side_images": np.zeros((3, 8, 8, 3), np.uint8)}, r"\(2, H, W, 3\) uint8"),
        ({"final_side_images": np.zeros((2, 8, 8, 3), np.float32)}, "must have dtype uint8"),
        ({"chained_from": " x"}, "chained_from: must be a non-empty string without padding"),
        ({"extra": {"k": [1]}}, r"extra\['k'\]: must be str, int or float, got list"),
    ],
)
def test_bad_fields_raise_clear_errors(episode: Episode, change: dict, message: str) -> None:
    fields = {f.name: getattr(episode, f.name) for f in dataclasses.fields(Episode)}
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        Episode(**fields)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("state", np.zeros((5, 16), np.float32), r"'state'\]: must have shape \(6, D\)"),
        ("state", np.zeros((6, 16), np.float64), r"'state'\]: must have dtype float32"),
        ("gripper_status", np.zeros((6,), np.float32), r"\(6, 1\) float32, got shape \(6,\)"),
        ("gripper_height", np.zeros((6, 2), np.float32), r"\(6, 1\) float32, got shape \(6, 2\)"),
        ("image", np.zeros((6, 8, 8, 4), np.uint8), r"\(6, H, W, 3\) uint8"),
        ("image", np.zeros((6, 8, 8, 3), np.float32), r"'image'\]: must have dtype uint8"),
        ("depth", np.zeros((5, 8), np.float32), "leading dimension T\\+1 = 6"),
        ("depth", np.zeros((6, 8), np.complex64), "must be a numpy array of one of"),
        ("Bad.Key", np.zeros((6, 1), np.float32), r"key 'Bad.Key' must match"),
    ],
)
def test_bad_observations_raise_clear_errors(
    episode: Episode, key: str, value: np.ndarray, message: str
) -> None:
    obs = dict(episode.observations)
    obs[key] = value
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(episode, observations=obs)


def test_missing_observation_is_named(episode: Episode) -> None:
    obs = {k: v for k, v in episode.observations.items() if k != "state"}
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['state'\]"):
        dataclasses.replace(episode, observations=obs)


def test_extra_observation_and_list_success_tasks_accepted(episode: Episode) -> None:
    obs = dict(episode.observations, depth=np.zeros((6, 4, 4), np.float32))
    ep = dataclasses.replace(episode, observations=obs, success_tasks=list(TASK_SET.names))
    assert ep.success_tasks == TASK_SET.names
    assert ep.observations["depth"].shape == (6, 4, 4)
