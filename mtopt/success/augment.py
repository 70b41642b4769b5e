"""Image augmentation of success-detector training views (paper App. 8, Fig. 13).

Pure functions on float image batches ``(N, 3, H, W)`` in ``[0, 1]``; every random draw comes
from the given ``torch.Generator``. :func:`augment_views` applies, per view independently:
a random crop (zoom into a random window, resized back), a small rotation, a brightness change
and, with some probability, a random shadow (a darkened band between two parallel lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as nnf


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation of the image success detector's views."""

    enabled: bool = True
    """Augment training views (evaluation never augments)."""
    crop: float = 0.1
    """Largest fraction of the side cropped away (the window is resized back)."""
    rotation_deg: float = 5.0
    """Largest rotation in degrees (either direction)."""
    brightness: float = 0.25
    """Brightness is multiplied by a factor in [1 - brightness, 1 + brightness]."""
    shadow_prob: float = 0.5
    """Probability that a view gets a random shadow."""
    shadow_strength: tuple[float, float] = (0.4, 0.8)
    """Range of the factor the shadowed pixels are multiplied by."""

    def __post_init__(self) -> None:
        checks = {
            "crop": (self.crop, 0.0, 0.5),
            "rotation_deg": (self.rotation_deg, 0.0, 45.0),
            "brightness": (self.brightness, 0.0, 0.9),
            "shadow_prob": (self.shadow_prob, 0.0, 1.0),
        }
        for name, (v, lo, hi) in checks.items():
            if not lo <= v <= hi:
                raise ValueError(f"augment.{name} must be in [{lo}, {hi}], got {v!r}")
        lo, hi = self.shadow_strength
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(
                f"augment.shadow_strength must be 0 <= low <= high <= 1, got {(lo, hi)}"
            )


def _uniform(
    n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def crop_rotate(
    images: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, angle: torch.Tensor
) -> torch.Tensor:
    """Resample ``images`` through a window of relative size ``scale (N,)`` centred at
    ``shift (N, 2)`` (in [-1, 1] image coordinates), rotated by ``angle (N,)`` radians."""
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = nnf.affine_grid(theta, list(images.shape), align_corners=False)
    return nnf.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def shadow_mask(
    height: int, width: int, angle: torch.Tensor, offset: torch.Tensor, band: torch.Tensor
) -> torch.Tensor:
    """Bool ``(N, 1, H, W)``: pixels between the lines ``x cos a + y sin a = offset`` and
    ``... = offset + band`` (coordinates in [-1, 1])."""
    dev = angle.device
    ys = torch.linspace(-1.0, 1.0, height, device=dev).view(1, height, 1)
    xs = torch.linspace(-1.0, 1.0, width, device=dev).view(1, 1, width)
    d = xs * torch.cos(angle).view(-1, 1, 1) + ys * torch.sin(angle).view(-1, 1, 1)
    d = d - offset.view(-1, 1, 1)
    return ((d >= 0) & (d <= band.view(-1, 1, 1))).unsqueeze(1)


def augment_views(
    images: torch.Tensor, config: AugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """Augment float images ``(N, 3, H, W)`` in [0, 1] (see the module docstring)."""
    if not config.enabled:
        return images
    n, _, h, w = images.shape
    dev = images.device
    scale = _uniform(n, 1.0 - config.crop, 1.0, gen, dev)
    room = (1.0 - scale).unsqueeze(1)
    shift = (torch.rand(n, 2, generator=gen, device=dev) * 2 - 1) * room
    max_angle = math.radians(config.rotation_deg)
    angle = _uniform(n, -max_angle, max_angle, gen, dev)
    out = crop_rotate(images, scale, shift, angle)
    b = config.brightness
    out = out * _uniform(n, 1.0 - b, 1.0 + b, gen, dev).view(n, 1, 1, 1)
    if config.shadow_prob > 0:
        has = torch.rand(n, generator=gen, device=dev) < config.shadow_prob
        mask = shadow_mask(
            h,
            w,
            _uniform(n, -math.pi, math.pi, gen, dev),
            _uniform(n, -1.2, 0.8, gen, dev),
            _uniform(n, 0.3, 1.2, gen, dev),
        )
        lo, hi = config.shadow_strength
        factor = _uniform(n, lo, hi, gen, dev).view(n, 1, 1, 1)
        shade = torch.where(mask & has.view(n, 1, 1, 1), factor, torch.ones_like(factor))
        out = out * shade
    return out.clamp(0.0, 1.0)
