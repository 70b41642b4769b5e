"""Turning episodes from the log into success-detector examples.

* :func:`episode_inputs` extracts the final ``state`` and the three final views of an episode.
* :func:`relabel_episodes` plays the human labeller of paper Sec. 4 / App. 8: within a labelling
  *budget* per task it answers "did this episode succeed at task T?" from the episode's ground
  truth, for episodes collected for T first, then for other episodes of T's skill (e.g. lift-any
  data relabelled for lift-carrot), then for episodes of other skills (whose final states, e.g.
  an open gripper above the plate, are negatives the detector must also know). Label sharing
  then extends the answers.
* :func:`ground_truth_examples` labels every task of every episode from ground truth; it is for
  *scoring* success detectors (evaluation), never for training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data.log import EpisodeLogReader, in_robot_order
from mtopt.success.dataset import NUM_VIEWS, UNKNOWN, SDExamples
from mtopt.tasks import TaskSet

logger = logging.getLogger(__name__)


def episode_inputs(episode: Any, need_views: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Final ``state`` (float32 ``(D,)``) and, if ``need_views``, the final views uint8
    ``(3, H, W, 3)``: the over-the-shoulder image plus the two side images."""
    obs = episode.observations
    state = np.asarray(obs["state"][-1], dtype=np.float32)
    if not need_views:
        return state, None
    side = episode.final_side_images
    image = obs.get("image")
    final = episode.final_image
    if final is None and image is not None:
        final = image[-1]
    if final is None or side is None:
        missing = [n for n, v in (("image", final), ("final_side_images", side)) if v is None]
        raise ValueError(
            f"episode {episode.episode_id} has no {' or '.join(missing)}; the image success "
            "detector needs the final over-the-shoulder image and both side images (collect "
            "with --final-views, or with --obs image --side-images)"
        )
    if side.shape[1:] != final.shape:
        raise ValueError(
            f"episode {episode.episode_id}: side images {side.shape[1:]} and over-the-shoulder "
            f"image {final.shape} must have the same size"
        )
    views = np.concatenate([final[None], side], axis=0)
    assert views.shape[0] == NUM_VIEWS
    return state, views


def _stack(
    episodes: Sequence[Any], labels: np.ndarray, task_set: TaskSet, need_views: bool
) -> SDExamples:
    names = task_set.names
    states, views = [], []
    for ep in episodes:
        s, v = episode_inputs(ep, need_views)
        states.append(s)
        views.append(v)
    return SDExamples(
        names,
        labels.astype(np.int8),
        np.array([names.index(ep.task) for ep in episodes], dtype=np.int64),
        np.array([ep.robot_id for ep in episodes], dtype=np.int64),
        np.stack(states) if states else np.zeros((0, 0), np.float32),
        np.stack(views) if need_views and views else None,
    )


def relabel_episodes(
    episodes: Sequence[Any],
    task_set: TaskSet,
    budget: int,
    rng: np.random.Generator,
    need_views: bool = False,
    tasks: Sequence[str] | None = None,
) -> tuple[SDExamples, dict[str, int]]:
    """Label episodes within ``budget`` label queries per task (see the module docstring).

    Returns the labelled episodes (raw answers; apply label sharing when training) and the
    number of queries spent per task.
    """
    if not isinstance(budget, int) or budget < 0:
        raise ValueError(f"labelling budget must be a non-negative integer, got {budget!r}")
    names = task_set.names
    tasks = task_set.validate(tasks) if tasks else names
    in_set = [i for i, ep in enumerate(episodes) if ep.task in task_set]
    labels = np.full((len(episodes), len(names)), UNKNOWN, dtype=np.int8)
    spent: dict[str, int] = {}
    for task in tasks:
        # only episodes whose environment judged the task can answer a query about it (a task
        # added by outcome examples has no ground truth in any episode)
        known = [i for i in in_set if task in episodes[i].success_tasks]
        skill = task_set[task].skill
        own = [i for i in known if episodes[i].task == task]
        same_skill = [
            i
            for i in known
            if episodes[i].task != task and task_set[episodes[i].task].skill == skill
        ]
        other_skill = [i for i in known if task_set[episodes[i].task].skill != skill]
        order = [
            *rng.permutation(own),
            *rng.permutation(same_skill),
            *rng.permutation(other_skill),
        ]
        chosen = [int(i) for i in order[:budget]]
        col = names.index(task)
        for i in chosen:
            labels[i, col] = int(episodes[i].success_for(task))
        spent[task] = len(chosen)
    rows = np.flatnonzero((labels != UNKNOWN).any(axis=1))
    chosen_eps = [episodes[i] for i in rows]
    logger.info(
        "relabelled %d of %d episodes; queries per task: %s", len(rows), len(episodes), spent
    )
    return _stack(chosen_eps, labels[rows], task_set, need_views), spent


def ground_truth_examples(
    episodes: Sequence[Any], task_set: TaskSet, need_views: bool = False
) -> SDExamples:
    """Every task of every episode labelled from ground truth (for evaluation only); unknown
    where the episode's environment did not judge the task (a task added by examples)."""
    names = task_set.names
    eps = [ep for ep in episodes if ep.task in task_set]
    labels = np.array(
        [[_judged(ep, t) for t in names] for ep in eps],
        dtype=np.int8,
    ).reshape(len(eps), len(names))
    return _stack(eps, labels, task_set, need_views)


def _judged(episode: Any, task: str) -> int:
    """The episode's ground truth for ``task``, or unknown when it has none."""
    return int(episode.success_for(task)) if task in episode.success_tasks else UNKNOWN


def read_log_episodes(
    directory: str | Path,
    need_views: bool,
    robots: Iterable[int] | None = None,
    exclude_robots: Iterable[int] | None = None,
) -> list[Any]:
    """Episodes of an episode log, optionally only of ``robots`` / without ``exclude_robots``.

    Observations other than the final step are dropped to save memory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"episode log {str(directory)!r} is not a directory")
    keep = set(robots) if robots is not None else None
    drop = set(exclude_robots or ())
    out = []
    for ep in EpisodeLogReader(directory).episodes(load_images=need_views):
        if (keep is not None and ep.robot_id not in keep) or ep.robot_id in drop:
            continue
        out.append(_FinalOutcome(ep))
    return in_robot_order(out)


class _FinalOutcome:
    """The parts of an episode a success detector and its labeller need (final step only)."""

    __slots__ = (
        "episode_id",
        "final_image",
        "final_side_images",
        "observations",
        "policy",
        "robot_id",
        "success",
        "success_tasks",
        "task",
    )

    def __init__(self, ep: Any) -> None:
        self.episode_id = ep.episode_id
        self.robot_id = ep.robot_id
        self.task = ep.task
        self.policy = ep.policy
        self.observations = {k: v[-1:] for k, v in ep.observations.items()}
        self.final_side_images = ep.final_side_images
        self.final_image = ep.final_image
        self.success = ep.success
        self.success_tasks = ep.success_tasks

    def success_for(self, task: str) -> bool:
        return bool(self.success[self.success_tasks.index(task)])
