"""A trained success detector: loading, batched prediction, and the log-replay labeller.

:class:`SuccessDetector` wraps a network loaded from a checkpoint written by ``mtopt sd train``
and predicts, per example, the probability of success for every task of its task set.
:class:`SuccessDetectorLabeller` implements the
:class:`~mtopt.data.impersonation.SuccessLabeller` protocol, so log replay and impersonation
label episodes with it (``rewards: success_detector``) without reading ground truth.

A checkpoint records the task names of its output slots; loading it for a different task set
raises :class:`SDTaskSetMismatchError` naming the difference. It also records the
environment's :class:`~mtopt.spec.StateStructure` (``state_structure``), from which the
object-centric state encoder and the gripper crops' gripper features are rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtopt.config import from_dict
from mtopt.device import resolve_device
from mtopt.learning.checkpoint import latest_checkpoint, load_checkpoint
from mtopt.spec import StateStructure
from mtopt.success.dataset import SDExamples
from mtopt.success.gripper_crop import gripper_crops
from mtopt.success.labelling import episode_inputs
from mtopt.success.networks import (
    SDNetworkConfig,
    build_sd_network,
    crops_to_tensor,
    final_gripper_features,
    state_to_tensor,
    views_to_tensor,
)
from mtopt.tasks import TaskSet

PAYLOAD_KIND = "success_detector"
"""Value of the ``kind`` entry of a success-detector checkpoint."""


class SDTaskSetMismatchError(ValueError):
    """A success-detector checkpoint was trained for a different task set."""


def check_task_names(
    found: Sequence[str], expected: Sequence[str], source: str, grow: bool = False
) -> None:
    """Raise :class:`SDTaskSetMismatchError` naming the difference unless the slots match
    (with ``grow``: unless ``found`` is ``expected``'s first tasks, a task set that added tasks
    in its free slots since)."""
    found, expected = list(found), list(expected)
    if found == expected or (grow and found == expected[: len(found)]):
        return
    missing = [t for t in expected if t not in found]
    extra = [t for t in found if t not in expected]
    parts = []
    if missing:
        parts.append(f"tasks missing from the checkpoint: {missing}")
    if extra:
        parts.append(f"tasks not in this task set: {extra}")
    if not parts:
        moved = [
            f"{t} (slot {found.index(t)} vs {expected.index(t)})"
            for t in expected
            if found.index(t) != expected.index(t)
        ]
        parts.append(f"task slots differ: {moved}")
    raise SDTaskSetMismatchError(
        f"success detector {source} was trained for a different task set: {'; '.join(parts)} "
        f"(checkpoint tasks {found}; expected {expected})"
    )


def resolve_sd_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest checkpoint of a run directory / checkpoints directory."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path) or latest_checkpoint(path / "checkpoints")
        if found is None:
            raise ValueError(f"no success-detector checkpoint in directory {str(path)!r}")
        return found
    if not path.is_file():
        raise ValueError(f"success-detector checkpoint {str(path)!r} does not exist")
    return path


class SuccessDetector:
    """A success detector ready for inference (see the module docstring)."""

    def __init__(
        self,
        network: torch.nn.Module,
        config: SDNetworkConfig,
        task_names: Sequence[str],
        threshold: float | Sequence[float] = 0.5,
        device: str | torch.device = "cpu",
        name: str = "sd",
        camera_projections: np.ndarray | None = None,
        structure: StateStructure | None = None,
    ) -> None:
        if config.kind == "image" and config.gripper_crop and camera_projections is None:
            raise ValueError(
                f"success detector {name!r} has a gripper-crop tower but no camera projections"
            )
        if config.kind == "image" and config.gripper_crop and structure is None:
            raise ValueError(
                f"success detector {name!r} has a gripper-crop tower but no state structure "
                "(where the gripper is in the final state)"
            )
        self.camera_projections = camera_projections
        self.structure = structure
        """The environment's state structure (object encoder, gripper features), if any."""
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.config = config
        self.task_names = tuple(task_names)
        if np.size(threshold) not in (1, len(self.task_names)):
            raise ValueError(
                f"success detector {name!r}: give one threshold or one per task "
                f"({len(self.task_names)}), got {np.size(threshold)}"
            )
        self.thresholds = np.broadcast_to(
            np.asarray(threshold, dtype=np.float64), (len(self.task_names),)
        ).copy()
        """Decision threshold of every task (success iff probability >= it)."""
        self.name = name
        self._col = {t: i for i, t in enumerate(self.task_names)}

    @classmethod
    def load(
        cls, path: str | Path, task_set: TaskSet | None = None, device: str = "cpu"
    ) -> SuccessDetector:
        """Load from a checkpoint (or run directory); refuse one made for another task set."""
        path = resolve_sd_checkpoint(path)
        dev = resolve_device(device)
        payload = load_checkpoint(path, dev)
        if payload.get("kind") != PAYLOAD_KIND:
            raise ValueError(
                f"{str(path)!r} is not a success-detector checkpoint (kind "
                f"{payload.get('kind')!r}); train one with 'mtopt sd train'"
            )
        names = list(payload["task_names"])
        if task_set is not None:
            check_task_names(names, task_set.names, repr(str(path)))
        config = from_dict(SDNetworkConfig, payload["network_config"])
        fields = payload.get("state_structure")
        if config.needs_structure and fields is None:
            raise ValueError(
                f"success detector {str(path)!r} reads the state through a state structure but "
                "its checkpoint records none (written before checkpoints stored it); retrain it "
                "with 'mtopt sd train'"
            )
        structure = None if fields is None else StateStructure(**fields)
        net = build_sd_network(config, structure)
        net.load_state_dict(payload["model"])
        proj = payload.get("camera_projections")
        return cls(
            net,
            config,
            names,
            payload.get("thresholds", float(payload.get("threshold", 0.5))),
            dev,
            str(path),
            None if proj is None else np.asarray(proj, dtype=np.float64),
            structure,
        )

    @property
    def needs_views(self) -> bool:
        """True for the image detector (episodes must carry the final images)."""
        return self.config.kind == "image"

    @property
    def needs_state(self) -> bool:
        """True when the final states are an input (state detector, or gripper crops)."""
        return self.config.kind == "state" or bool(self.config.gripper_crop)

    def _tensors(self, inputs: np.ndarray, state: np.ndarray | None) -> tuple[torch.Tensor, ...]:
        cfg = self.config
        if cfg.kind == "state":
            return (state_to_tensor(inputs, cfg.state_dim, self.device),)
        views = views_to_tensor(inputs, cfg.image_size, self.device, cfg.input_size)
        if not cfg.gripper_crop:
            return (views,)
        crops = gripper_crops(inputs, state, self.camera_projections, cfg.gripper_crop)
        return (
            views,
            crops_to_tensor(crops, cfg.gripper_crop, self.device),
            final_gripper_features(state, self.structure, self.device),
        )

    @torch.no_grad()
    def predict_proba(
        self, inputs: np.ndarray, batch_size: int = 512, state: np.ndarray | None = None
    ) -> np.ndarray:
        """Success probabilities ``(N, n_tasks)`` of views ``(N, 3, S, S, 3)`` uint8 (image)
        or states ``(N, D)`` (state). A gripper-crop image detector also needs the final
        ``state`` of every example (where the gripper is)."""
        if self.config.kind == "image" and self.config.gripper_crop and state is None:
            raise ValueError(
                f"success detector {self.name!r} crops the views around the gripper: pass the "
                "final states with the views"
            )
        out = []
        for i in range(0, len(inputs), batch_size):
            part = None if state is None else state[i : i + batch_size]
            logits = self.network(*self._tensors(inputs[i : i + batch_size], part))
            out.append(torch.sigmoid(logits[:, : len(self.task_names)]).cpu().numpy())
        if not out:
            return np.zeros((0, len(self.task_names)), dtype=np.float32)
        return np.concatenate(out)

    def predict_examples(self, examples: SDExamples, batch_size: int = 512) -> np.ndarray:
        """Bool predictions ``(N, n_tasks)`` for examples with the same task columns."""
        check_task_names(self.task_names, examples.task_names, repr(self.name))
        inputs = examples.views if self.config.kind == "image" else examples.state
        if inputs is None:
            what = "views (images)" if self.config.kind == "image" else "states"
            raise ValueError(f"the examples have no {what} for a {self.config.kind} detector")
        if self.needs_state and examples.state is None:
            raise ValueError(f"the examples have no final states for detector {self.name!r}")
        return self.predict_proba(inputs, batch_size, examples.state) >= self.thresholds

    def label(self, episodes: Sequence[Any], tasks: Sequence[str]) -> np.ndarray:
        """Bool successes ``(len(episodes), len(tasks))`` of a batch of episodes."""
        unknown = [t for t in tasks if t not in self._col]
        if unknown:
            raise ValueError(f"success detector has no output for task(s) {unknown}")
        if not episodes:
            return np.zeros((0, len(tasks)), dtype=bool)
        pairs = [episode_inputs(ep, self.needs_views) for ep in episodes]
        states = np.stack([s for s, _ in pairs])
        inputs = np.stack([v for _, v in pairs]) if self.needs_views else states
        probs = self.predict_proba(inputs, state=states)
        cols = [self._col[t] for t in tasks]
        return probs[:, cols] >= self.thresholds[cols]


class SuccessDetectorLabeller:
    """The :class:`~mtopt.data.impersonation.SuccessLabeller` of ``rewards: success_detector``.

    Called per episode it runs one forward pass; :meth:`prime` labels a batch of episodes in
    one pass per ``batch_size`` and keeps the results until each episode is asked for (log
    replay primes every poll's new episodes, so labelling keeps up with the fleet).
    """

    def __init__(self, detector: SuccessDetector, batch_size: int = 256) -> None:
        self.detector = detector
        self.batch_size = batch_size
        self.labelled = 0
        """Episodes labelled so far."""
        self._primed: dict[str, np.ndarray] = {}

    def prime(self, episodes: Sequence[Any]) -> None:
        """Label ``episodes`` for every task now, in batches."""
        names = self.detector.task_names
        for i in range(0, len(episodes), self.batch_size):
            chunk = episodes[i : i + self.batch_size]
            for ep, row in zip(chunk, self.detector.label(chunk, names), strict=True):
                self._primed[ep.episode_id] = row

    def __call__(self, episode: Any, tasks: Sequence[str]) -> np.ndarray:
        self.labelled += 1
        row = self._primed.pop(episode.episode_id, None)
        if row is None:
            return self.detector.label([episode], tasks)[0]
        cols = [self.detector.task_names.index(t) for t in tasks]
        return row[cols]
