"""Success-detector networks: one success logit per task slot for a final outcome.

* ``image`` (paper Sec. 4, App. 8): the three final views (over-the-shoulder, side left, side
  right) each go through one convolutional *tower shared across views* (stride-2 convolutions,
  then optional stride-1 ones, with group or batch normalisation and ReLU); the per-view
  features are concatenated in view order and a fully connected head outputs one logit per task
  slot. The tower's feature map is read out either by flattening it (``readout: flatten``) or
  as *keypoints* (``readout: keypoints``): a spatial soft-argmax gives every channel's expected
  image position, with its peak activation (as in deep spatial autoencoders). Keypoints make
  "where is the object relative to the plate's divider" a small function of few numbers; a
  flattened map has to learn it for every position separately. ``coord_channels`` appends the
  pixel coordinates to the input (CoordConv) so early layers can tell where they are.
  With ``gripper_crop`` a second tower sees a window of every stored (full-resolution) view
  centred on the gripper's fingertips (:mod:`mtopt.success.gripper_crop`: the final state
  says where the gripper is, the cameras' calibration where that is in each view), and the
  head also gets the gripper's height and finger opening: whether something is held, and
  what, is decided between the fingers, which the pooled views show in a few pixels.
* ``state``: a low-dimensional variant on the final ``state`` for fast CPU runs. With
  ``state_encoder: objects`` a shared per-object encoder (object block, position relative to
  the gripper and in the context's frame, gripper opening) is max- and sum-pooled over the
  present objects; ``flat`` is a plain MLP on the whole vector (any state layout).

The object encoder and the crop head's gripper features read the state through the
environment's :class:`~mtopt.spec.StateStructure` (the robot block's x, y, z first; each object
block's x, y, z first; the context block's x, y, sin yaw, cos yaw first), which
:func:`build_sd_network` receives and a checkpoint stores; an environment whose spec has no
structure gets the ``flat`` state encoder and no gripper crops.

Outputs have ``task_capacity`` columns, one per one-hot task slot, so a detector keeps its
meaning when tasks are added in free slots.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf

from mtopt.spec import StateStructure
from mtopt.success.dataset import NUM_VIEWS, SDExamples, check_views
from mtopt.success.gripper_crop import gripper_crops


@dataclass(frozen=True)
class SDNetworkConfig:
    """Architecture of a success detector."""

    kind: Literal["image", "state"] = "state"
    """``image`` (3-view CNN) or ``state`` (low-dimensional final state)."""
    task_capacity: int = 0
    """Output columns: one per one-hot task slot (0 = the task set's capacity, resolved when
    training starts and stored so)."""
    image_size: int = 64
    """image: height and width of every view as the network sees it."""
    input_size: int = 0
    """image: height and width of the stored views when larger than ``image_size`` (0 = the
    same); they are average-pooled by the integer factor ``input_size / image_size``."""
    channels: int = 32
    """image: channels of the first conv layer (doubled after every second layer)."""
    conv_layers: int = 4
    """image: stride-2 3x3 conv layers of the shared tower."""
    stride1_layers: int = 0
    """image: stride-1 3x3 conv layers after the stride-2 ones (same width as the last)."""
    norm: Literal["group", "batch"] = "group"
    """image: normalisation after every conv layer (``group`` norm or ``batch`` norm)."""
    readout: Literal["flatten", "keypoints"] = "flatten"
    """image: how the tower's last feature map becomes ``view_features`` (see the module
    docstring)."""
    coord_channels: bool = False
    """image: append the pixel coordinates (x, y in [-1, 1]) to each view as 2 input channels."""
    view_features: int = 128
    """image: features per view out of the tower."""
    gripper_crop: int = 0
    """image: side (pixels of the stored views) of a window of every view centred on the
    gripper's fingertips, seen by a second tower together with the gripper's height and
    opening (:mod:`mtopt.success.gripper_crop`); 0 = no crop tower."""
    crop_channels: int = 32
    """image: channels of the crop tower's first conv layer (doubled after the second)."""
    state_dim: int = 0
    """state: width of the state vector (0 = taken from the data)."""
    state_encoder: Literal["auto", "objects", "flat"] = "auto"
    """state: per-object encoder with pooling (needs the environment's state structure), a
    flat MLP (any layout), or ``auto``: ``objects`` where the environment has a structure, else
    ``flat`` (checkpoints store the resolved one)."""
    width: int = 256
    """Width of the hidden layers of the head (and of the flat / object encoders)."""

    def __post_init__(self) -> None:
        if self.kind not in ("image", "state"):
            raise ValueError(f"success detector kind must be 'image' or 'state', got {self.kind!r}")
        if self.norm not in ("group", "batch"):
            raise ValueError(f"network.norm must be 'group' or 'batch', got {self.norm!r}")
        if self.readout not in ("flatten", "keypoints"):
            raise ValueError(
                f"network.readout must be 'flatten' or 'keypoints', got {self.readout!r}"
            )
        if self.state_encoder not in ("auto", "objects", "flat"):
            raise ValueError(
                f"state_encoder must be 'auto', 'objects' or 'flat', got {self.state_encoder!r}"
            )
        for name, low in (
            ("task_capacity", 0),
            ("image_size", 16),
            ("channels", 1),
            ("conv_layers", 1),
            ("stride1_layers", 0),
            ("view_features", 1),
            ("gripper_crop", 0),
            ("crop_channels", 1),
            ("state_dim", 0),
            ("width", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"network.{name} must be an integer >= {low}, got {v!r}")
        if self.input_size and (
            self.input_size < self.image_size or self.input_size % self.image_size
        ):
            raise ValueError(
                f"network.input_size {self.input_size} must be 0 or a multiple of image_size "
                f"{self.image_size}"
            )
        stored = self.input_size or self.image_size
        if self.gripper_crop and not 8 <= self.gripper_crop <= stored:
            raise ValueError(
                f"network.gripper_crop must be 0 or in [8, {stored}] (the stored view size), "
                f"got {self.gripper_crop}"
            )
        if self.kind == "image" and self.image_size >> self.conv_layers < 1:
            raise ValueError(
                f"image_size {self.image_size} is too small for {self.conv_layers} stride-2 layers"
            )

    @property
    def needs_structure(self) -> bool:
        """True when the network reads the state through a :class:`~mtopt.spec.StateStructure`
        (the object encoder, or the crop head's gripper features)."""
        if self.kind == "state":
            return self.state_encoder == "objects"
        return bool(self.gripper_crop)


MIN_CONTEXT_DIM = 4
"""Context entries the object encoder reads: x, y, sin yaw, cos yaw (the context's frame)."""


POSITION_SCALE = 10.0
"""Positions and lengths (metres) are multiplied by this (decimetres) before the MLPs."""


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def spatial_soft_argmax(features: torch.Tensor) -> torch.Tensor:
    """Keypoints of a feature map ``(N, C, H, W)``: ``(N, 3C)`` = per channel the expected
    ``x`` and ``y`` in [-1, 1] under the softmax over its pixels, then its maximum."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    prob = torch.softmax(flat, dim=-1).reshape(n, c, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=features.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=features.dtype)
    ex = (prob.sum(2) * xs).sum(-1)
    ey = (prob.sum(3) * ys).sum(-1)
    return torch.cat([ex, ey, flat.amax(-1)], dim=1)


class _SoftArgmax(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spatial_soft_argmax(x)


def coordinate_channels(images: torch.Tensor) -> torch.Tensor:
    """``images (N, C, H, W)`` with 2 more channels: pixel x and y in [-1, 1]."""
    n, _, h, w = images.shape
    ys = torch.linspace(-1.0, 1.0, h, device=images.device, dtype=images.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=images.device, dtype=images.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0).expand(n, 2, h, w)
    return torch.cat([images, grid], dim=1)


class ImageSuccessDetector(nn.Module):
    """Multi-view CNN: a tower shared across the 3 views, one logit per task slot."""

    def __init__(self, config: SDNetworkConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in, c = 3 + 2 * config.coord_channels, config.channels
        strides = [2] * config.conv_layers + [1] * config.stride1_layers
        for i, stride in enumerate(strides):
            c_out = c * (2 ** (min(i, config.conv_layers - 1) // 2))
            norm = (
                nn.GroupNorm(min(8, c_out), c_out)
                if config.norm == "group"
                else nn.BatchNorm2d(c_out)
            )
            layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), norm, nn.ReLU()]
            c_in = c_out
        side = config.image_size
        for _ in range(config.conv_layers):
            side = (side + 1) // 2
        if config.readout == "flatten":
            layers += [nn.Flatten(), nn.Linear(c_in * side * side, config.view_features)]
        else:
            layers += [_SoftArgmax(), nn.Linear(3 * c_in, config.view_features)]
        layers.append(nn.ReLU())
        self.tower = nn.Sequential(*layers)
        features = NUM_VIEWS * config.view_features
        self.crop_tower = None
        if config.gripper_crop:
            self.crop_tower = crop_tower(config.crop_channels, config.norm)
            features += NUM_VIEWS * CROP_FEATURES_PER_CHANNEL * config.crop_channels
            features += GRIPPER_FEATURES
        self.head = _mlp([features, config.width, config.width, config.task_capacity])

    def forward(
        self,
        views: torch.Tensor,
        crops: torch.Tensor | None = None,
        gripper: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(N, task_capacity)`` of float views ``(N, 3, 3, H, W)`` in [0, 1]; with
        ``gripper_crop`` also float crops ``(N, 3, 3, C, C)`` in [0, 1] and the gripper features
        ``(N, 2)`` of :func:`final_gripper_features`."""
        n = views.shape[0]
        x = views.reshape(n * NUM_VIEWS, *views.shape[2:])
        if self.config.coord_channels:
            x = coordinate_channels(x)
        h = self.tower(x).reshape(n, -1)
        if self.crop_tower is not None:
            if crops is None or gripper is None:
                raise ValueError(
                    "this success detector has a gripper-crop tower: pass the crops and the "
                    "gripper features (the final state) with the views"
                )
            c = self.crop_tower(crops.reshape(n * NUM_VIEWS, *crops.shape[2:])).reshape(n, -1)
            h = torch.cat([h, c, gripper], dim=1)
        return self.head(h)


CROP_FEATURES_PER_CHANNEL = 8
"""Crop-tower features per view and first-layer channel (2c channels, pooled to 2 x 2)."""
GRIPPER_FEATURES = 2
"""Gripper inputs of the crop head: height and finger opening (:func:`final_gripper_features`)."""


def crop_tower(c: int, norm: str) -> nn.Sequential:
    """A stride-1 then three stride-2 3x3 conv layers, average-pooled to 2 x 2, flattened."""

    def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        n = nn.GroupNorm(min(8, c_out), c_out) if norm == "group" else nn.BatchNorm2d(c_out)
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), n, nn.ReLU()]

    return nn.Sequential(
        *block(3, c, 1),
        *block(c, c, 2),
        *block(c, 2 * c, 2),
        *block(2 * c, 2 * c, 2),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
    )


def final_gripper_features(
    state: object, structure: StateStructure, device: torch.device
) -> torch.Tensor:
    """float ``(N, 2)``: the gripper's height (robot entry 2) and finger opening (robot entry
    ``structure.opening_index``) from final states ``(N, D)``, in decimetres."""
    t = torch.as_tensor(state, dtype=torch.float32, device=device)
    if t.ndim != 2 or t.shape[1] < structure.robot_dim:
        raise ValueError(
            f"gripper features need final states of shape (N, D >= {structure.robot_dim}), got "
            f"{tuple(t.shape)}"
        )
    return t[:, [2, structure.opening_index]] * POSITION_SCALE


class StateSuccessDetector(nn.Module):
    """MLP on the final state (object-centric or flat), one logit per task slot."""

    def __init__(self, config: SDNetworkConfig, structure: StateStructure | None = None) -> None:
        super().__init__()
        if config.state_dim < 1:
            raise ValueError("state success detector needs network.state_dim >= 1")
        self.config = config
        w = config.width
        if config.state_encoder == "flat":
            self.net = _mlp([config.state_dim, w, w, w, config.task_capacity])
            return
        if structure is None:
            raise ValueError(
                "state_encoder 'objects' needs the environment's state structure (robot block, "
                "object slots, context); without one use network.state_encoder 'flat'"
            )
        if structure.context_dim < MIN_CONTEXT_DIM:
            raise ValueError(
                f"state_encoder 'objects' reads the context block as x, y, sin yaw, cos yaw, "
                f"got context_dim {structure.context_dim}; use network.state_encoder 'flat'"
            )
        try:
            self.n_slots = structure.slots(config.state_dim)
        except ValueError as err:
            raise ValueError(f"state_encoder 'objects': {err}; use state_encoder 'flat'") from err
        self.structure = structure
        o = structure.object_dim
        self.encoder = _mlp([o - 2 + 7, w // 2, w // 2, w // 2])
        self.net = _mlp([w + structure.robot_dim, w, w, config.task_capacity])

    def _object_features(self, state: torch.Tensor) -> torch.Tensor:
        st = self.structure
        n, r, o = state.shape[0], st.robot_dim, st.object_dim
        grip = state[:, :r]
        obj = state[:, r : r + o * self.n_slots].reshape(n, self.n_slots, o)
        context = state[:, state.shape[1] - st.context_dim :]
        present = obj[..., st.presence_index : st.presence_index + 1]  # (n, slots, 1)
        pos = obj[..., 0:3]
        rel = pos - grip[:, None, 0:3]
        d = pos[..., :2] - context[:, None, 0:2]
        s, c = context[:, None, 2], context[:, None, 3]
        local = torch.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], -1)
        opening = grip[:, None, st.opening_index : st.opening_index + 1].expand(n, self.n_slots, 1)
        # an object's height, not where it lies in the bin: absolute x, y would fingerprint scenes
        obj = torch.cat([obj[..., 2:3] * POSITION_SCALE, obj[..., 3:]], -1)
        x = torch.cat([obj, rel, local, opening, grip[:, None, 2:3].expand_as(opening)], -1)
        x[..., o - 2 :] = x[..., o - 2 :] * POSITION_SCALE
        h = torch.relu(self.encoder(x))
        pooled_max = (h * present - (1 - present) * 1e4).amax(1).clamp_min(0.0)
        pooled_sum = (h * present).sum(1)
        # every robot entry is a length but the sin / cos yaw pair
        scale = torch.full((r,), POSITION_SCALE, dtype=state.dtype, device=state.device)
        scale[st.robot_yaw_index : st.robot_yaw_index + 2] = 1.0
        return torch.cat([pooled_max, pooled_sum, grip * scale], -1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, task_capacity)`` of final states ``(N, state_dim)``."""
        if self.config.state_encoder == "flat":
            return self.net(state)
        return self.net(self._object_features(state))


def build_sd_network(config: SDNetworkConfig, structure: StateStructure | None = None) -> nn.Module:
    """The success-detector network of ``config.kind``; the object-centric state encoder reads
    the state through ``structure`` (``ValueError`` without one)."""
    if config.task_capacity == 0:
        raise ValueError(
            "network.task_capacity 0 stands for the task set's capacity: resolve it (training "
            "does) before building the network"
        )
    if config.kind == "image":
        return ImageSuccessDetector(config)
    return StateSuccessDetector(config, structure)


def views_to_tensor(
    views: object, image_size: int, device: torch.device, input_size: int = 0
) -> torch.Tensor:
    """uint8 views ``(N, 3, S, S, 3)`` (``S = input_size or image_size``, checked) as float
    ``(N, 3, 3, image_size, image_size)`` in [0, 1], average-pooled when ``S > image_size``."""
    size = input_size or image_size
    check_views(views, size)  # type: ignore[arg-type]
    t = torch.as_tensor(views, device=device).permute(0, 1, 4, 2, 3).float().div_(255.0)
    if size != image_size:
        n = t.shape[0]
        t = nnf.avg_pool2d(t.reshape(n * NUM_VIEWS, 3, size, size), size // image_size)
        t = t.reshape(n, NUM_VIEWS, 3, image_size, image_size)
    return t


def pool_views(views: np.ndarray, image_size: int, input_size: int) -> np.ndarray:
    """uint8 views ``(N, 3, input_size, input_size, 3)`` (checked) average-pooled to
    ``image_size`` (rounded to uint8), in chunks so that no float copy of all views is made."""
    check_views(views, input_size)
    f = input_size // image_size
    out = np.empty((len(views), NUM_VIEWS, image_size, image_size, 3), dtype=np.uint8)
    for i in range(0, len(views), POOL_CHUNK):
        chunk = views[i : i + POOL_CHUNK].astype(np.float32)
        chunk = chunk.reshape(len(chunk), NUM_VIEWS, image_size, f, image_size, f, 3)
        out[i : i + POOL_CHUNK] = np.rint(chunk.mean(axis=(3, 5)))
    return out


POOL_CHUNK = 1024
"""Examples pooled at a time by :func:`pool_views`."""


def crops_to_tensor(crops: object, crop: int, device: torch.device) -> torch.Tensor:
    """uint8 crops ``(N, 3, crop, crop, 3)`` (checked) as float ``(N, 3, 3, crop, crop)``."""
    check_views(crops, crop)  # type: ignore[arg-type]
    return torch.as_tensor(crops, device=device).permute(0, 1, 4, 2, 3).float().div_(255.0)


def image_inputs(
    examples: SDExamples, config: SDNetworkConfig, projections: np.ndarray | None
) -> SDExamples:
    """``examples`` as the image detector of ``config`` stores them for training: the gripper
    crops cut from the full-size views (with ``gripper_crop``; needs the final states and the
    cameras' ``projections``), then the views pooled to ``image_size``."""
    if examples.views is None:
        return examples
    crops = examples.crops
    if config.gripper_crop:
        if examples.state is None or projections is None:
            raise ValueError(
                "a gripper-crop success detector needs the examples' final states and the "
                "camera projections"
            )
        crops = gripper_crops(examples.views, examples.state, projections, config.gripper_crop)
    views = examples.views
    if config.input_size and config.input_size != config.image_size:
        views = pool_views(views, config.image_size, config.input_size)
    return replace(examples, views=views, crops=crops)


def state_to_tensor(state: object, state_dim: int, device: torch.device) -> torch.Tensor:
    """float32 states ``(N, state_dim)`` as a tensor (checked)."""
    t = torch.as_tensor(state, dtype=torch.float32, device=device)
    if t.ndim != 2 or t.shape[1] != state_dim:
        raise ValueError(
            f"success-detector states must have shape (N, {state_dim}), got {tuple(t.shape)}"
        )
    return t
