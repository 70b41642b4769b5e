"""Evaluation videos: attempts of a policy recorded from the workcell's camera as MP4.

:func:`record_attempts` runs attempts ``0 .. K-1`` of every task again, one at a time, on the
evaluation protocol's scenes (the same seeds, :func:`mtopt.evaluation.protocol.episode_seed`,
and the same attempt indices) and writes each as ``DIR/TASK-attemptK-OUTCOME.mp4`` (H.264,
yuv420p, through the ffmpeg binary that ``imageio-ffmpeg`` ships) plus ``DIR/index.json``.
Frames come from a camera rendered at the video's own size, apart from the observations (the
learner's 64-pixel image is too small to watch); every frame shows the task, the attempt and
the step, and the final frame, held for :data:`HOLD_S` seconds, the outcome as the
environment's ground truth judged it (for people: the learner never sees it).

The recording runs its own attempts (``mtopt eval --video`` runs them after the evaluation),
so the evaluation's numbers never depend on it. An attempt is run as the protocol runs one
attempt at a time (:func:`~mtopt.evaluation.protocol.run_task_attempt`): for the scripted and
expert policies, and for a Q-policy evaluated with ``--lockstep 1``, a recorded attempt is the
evaluated attempt itself; with lockstep (the Q-policy's default) CEM draws its samples for a
group of attempts together, so a recorded attempt may end otherwise than the evaluated one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.evaluation.protocol import episode_seed, run_task_attempt
from mtopt.jsonio import write_json
from mtopt.progress import progress_bar
from mtopt.spec import EnvSpec, EpisodePolicy

logger = logging.getLogger(__name__)

FPS = 5
"""Frames (policy steps) per second: half the workcell's real time (0.1 s per step)."""
HOLD_S = 2.0
"""Seconds the final frame, with the outcome, stays on screen."""
CAMERA = "shoulder"
"""The camera recorded: over the shoulder, both bins in view."""


def check_video_size(size: int) -> None:
    """``ValueError`` unless ``size`` is a multiple of 16 from 32 to 1024 (H.264's blocks)."""
    if isinstance(size, bool) or not isinstance(size, int) or size % 16 or not 32 <= size <= 1024:
        raise ValueError(f"video size must be a multiple of 16 from 32 to 1024, got {size!r}")


def check_recording(
    spec: EnvSpec, size: int, camera: str = CAMERA, out: str | Path | None = None
) -> None:
    """Fail early, before any long run: the output directory ``out`` is a file
    (``NotADirectoryError``), the environment has no camera (``ValueError``), or no OpenGL
    context can be made (:class:`mtopt.envs.rendering.RenderBackendError`, saying how to
    enable OSMesa). Renders one frame of a fresh environment."""
    check_video_size(size)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"video directory {str(out)!r} is a file; give a directory")
    if spec.observation.image_size is None:
        raise ValueError(f"environment {spec.name!r} has no camera to record videos from")
    env = spec.make_env()
    try:
        env.reset(seed=0, options=spec.reset_options(spec.task_set.names[0], "evaluate", 0))
        _render(env, camera, size)
    finally:
        env.close()


def _render(env: Any, camera: str, size: int) -> np.ndarray:
    render = getattr(env, "render_camera", None)
    if render is None:
        raise ValueError(f"{type(env).__name__} has no camera to record videos from")
    return render(camera, size)


class _Recording:
    """An environment that keeps the camera frame after its reset and after every step."""

    def __init__(self, env: Any, camera: str, size: int) -> None:
        self.env, self.camera, self.size = env, camera, size
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        self.frames = [_render(self.env, self.camera, self.size)]
        return out

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        self.frames.append(_render(self.env, self.camera, self.size))
        return out


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:  # the DejaVu font matplotlib ships: the same text on every machine
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def annotate(frame: np.ndarray, lines: Sequence[str], outcome: bool | None = None) -> np.ndarray:
    """``frame`` with ``lines`` on a dark band at the top and, if ``outcome`` is given, a green
    SUCCESS or red FAILURE band at the bottom (a copy; uint8 RGB)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    h, w = frame.shape[:2]
    pad = max(2, h // 64)
    size = max(6, h // 18)  # the largest font (at most h/18) at which every line fits
    while size > 6 and max(draw.textlength(t, font=_font(size)) for t in lines) > w - 2 * pad:
        size -= 1
    font, line_h = _font(size), int(size * 1.25)
    draw.rectangle((0, 0, w, 2 * pad + line_h * len(lines)), fill=(0, 0, 0, 150))
    for i, text in enumerate(lines):
        draw.text((pad, pad + i * line_h), text, fill=(255, 255, 255), font=font)
    if outcome is not None:
        big = _font(max(8, h // 9))
        colour = (20, 150, 40, 210) if outcome else (200, 30, 30, 210)
        band = int(big.size * 1.6)
        draw.rectangle((0, h - band, w, h), fill=colour)
        draw.text(
            (w / 2, h - band / 2),
            "SUCCESS" if outcome else "FAILURE",
            font=big,
            fill=(255, 255, 255),
            anchor="mm",
        )
    return np.asarray(image)


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: float = FPS) -> None:
    """Write RGB ``frames`` (equal ``(H, W, 3)`` uint8, H and W multiples of 16) as an H.264
    MP4 in yuv420p (what browsers play), atomically."""
    import imageio_ffmpeg

    path = Path(path)
    h, w = frames[0].shape[:2]
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    out_params = ["-movflags", "+faststart"]
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=7,
        macro_block_size=16,
        ffmpeg_log_level="error",
        output_params=out_params,
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise


def record_attempts(
    policy_for_task: Callable[[str], EpisodePolicy],
    spec: EnvSpec,
    out: str | Path,
    tasks: Sequence[str],
    attempts: int = 2,
    seed: int = 10_000,
    size: int = 256,
    policy_name: str = "",
    progress: bool = True,
    fps: float = FPS,
    camera: str = CAMERA,
) -> dict[str, Any]:
    """Record attempts ``0 .. attempts-1`` of every task on the protocol's scenes of base seed
    ``seed`` (module docstring) into directory ``out``; returns the index it writes to
    ``out/index.json``: the files with their task, attempt, seed, outcome and steps, and the
    recording's wall time. Files an earlier index in ``out`` listed are replaced."""
    check_video_size(size)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ValueError(f"video attempts must be a positive integer, got {attempts!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_old_videos(out)
    start = time.perf_counter()
    env = _Recording(spec.make_env(), camera, size)
    videos: list[dict[str, Any]] = []
    bar = progress_bar(len(tasks) * attempts, "video", "attempt", progress)
    try:
        for task in tasks:
            policy, slot = policy_for_task(task), spec.task_set.slot(task)
            for k in range(attempts):
                t0, s = time.perf_counter(), episode_seed(seed, slot, k)
                result = run_task_attempt(env, policy, task, s, spec, k)
                steps = len(env.frames) - 1
                frames = [
                    annotate(f, [task, f"attempt {k}  step {i}/{spec.horizon}"])
                    for i, f in enumerate(env.frames[:-1])
                ]
                last = [task, f"attempt {k}  step {steps}/{spec.horizon}"]
                if result.unstable:
                    last.append("physics blew up")
                hold = max(1, round(HOLD_S * fps))
                frames += [annotate(env.frames[-1], last, result.success)] * hold
                outcome = "success" if result.success else "failure"
                name = f"{task}-attempt{k}-{outcome}.mp4".replace(os.sep, "_")
                write_mp4(out / name, frames, fps)
                videos.append(
                    {
                        "file": name,
                        "task": task,
                        "attempt": k,
                        "seed": s,
                        "success": result.success,
                        "physics_unstable": result.unstable,
                        "steps": steps,
                        "frames": len(frames),
                        "wall_time_s": round(time.perf_counter() - t0, 3),
                    }
                )
                bar.update(1)
    finally:
        bar.close()
        env.env.close()
    wall = time.perf_counter() - start
    index = {
        "policy": policy_name,
        "env": spec.name,
        "seed": seed,
        "attempts_per_task": attempts,
        "camera": camera,
        "size": size,
        "fps": fps,
        "videos": videos,
        "wall_time_s": round(wall, 3),
    }
    write_json(index, out / "index.json")
    wins = sum(v["success"] for v in videos)
    logger.info("recorded %d videos (%d successes) in %s in %.1f s", len(videos), wins, out, wall)
    return index


def _remove_old_videos(out: Path) -> None:
    """Delete the videos a previous recording's ``index.json`` in ``out`` lists (only those)."""
    import json

    try:
        old = json.loads((out / "index.json").read_text())
        names = [v["file"] for v in old["videos"]]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name in names:
        if isinstance(name, str) and Path(name).name == name:
            (out / name).unlink(missing_ok=True)
