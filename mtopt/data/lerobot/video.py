"""Camera views of a LeRobot dataset as MP4 video, through PyAV (the ``lerobot`` extra): the
export's encoder, appending episodes to one stream per file, and the import's decoder, reading
them back episode by episode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data.lerobot.layout import VIDEO_FILE_MB, VIDEO_PATH, LeRobotFormatError, _next_file


class _VideoWriter:
    """One camera's MP4 files: episodes appended to one stream, rolled over at 200 MB."""

    def __init__(self, root: Path, key: str, fps: int, codec: str, crf: int) -> None:
        import av  # the lerobot extra; checked before the export starts

        self.av, self.root, self.key, self.fps, self.crf = av, root, key, fps, crf
        self.codec = codec
        self.chunk, self.file, self.frames, self.bytes = 0, 0, 0, 0
        self.container: Any = None
        self.stream: Any = None
        self.info: dict[str, Any] = {}

    def _open(self, height: int, width: int) -> None:
        path = self.root / VIDEO_PATH.format(
            video_key=self.key, chunk_index=self.chunk, file_index=self.file
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"g": "2", "crf": str(self.crf)}
        if self.codec == "libsvtav1":
            options["preset"] = "12"
        self.container = self.av.open(str(path), "w")
        self.stream = self.container.add_stream(self.codec, rate=self.fps, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.frames = self.bytes = 0
        self.info = {
            "video.height": height,
            "video.width": width,
            "video.codec": {"libsvtav1": "av1", "hevc": "hevc"}.get(self.codec, "h264"),
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": self.fps,
            "video.channels": 3,
            "has_audio": False,
        }

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            self.container = None

    def add(self, frames: np.ndarray) -> dict[str, Any]:
        """Encode one episode's ``(N, H, W, 3)`` frames; returns its episode-metadata columns."""
        if self.container is not None and self.bytes >= VIDEO_FILE_MB * 2**20:
            self.close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self.container is None:
            self._open(frames.shape[1], frames.shape[2])
        start = self.frames
        for img in frames:
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in self.stream.encode(frame):
                self.bytes += packet.size
                self.container.mux(packet)
        self.frames += len(frames)
        p = f"videos/{self.key}/"
        return {
            p + "chunk_index": self.chunk,
            p + "file_index": self.file,
            p + "from_timestamp": start / self.fps,
            p + "to_timestamp": self.frames / self.fps,
        }


class _VideoReader:
    """Decodes one camera's frames episode by episode, in file order."""

    def __init__(self, root: Path, template: str, key: str, fps: int) -> None:
        import av

        self.av, self.root, self.template, self.key, self.fps = av, root, template, key, fps
        self.path: Path | None = None
        self.container: Any = None
        self.frames: Iterator[Any] = iter(())
        self.pending: list[tuple[int, np.ndarray]] = []

    def episode(self, chunk: int, file: int, start: float, stop: float) -> np.ndarray:
        """The frames of ``[start, stop)`` seconds of file ``(chunk, file)``."""
        path = self.root / self.template.format(
            video_key=self.key, chunk_index=chunk, file_index=file
        )
        first, end = round(start * self.fps), round(stop * self.fps)
        if path != self.path or (self.pending and self.pending[0][0] > first):
            self.close()
            self.path, self.container = path, self.av.open(str(path))
            self.frames = self.container.decode(video=0)
        out = [img for i, img in self.pending if first <= i < end]
        self.pending = []
        for frame in self.frames:
            i = round(frame.time * self.fps)
            if i >= end:
                self.pending = [(i, frame.to_ndarray(format="rgb24"))]
                break
            if i >= first:
                out.append(frame.to_ndarray(format="rgb24"))
        if len(out) != end - first:
            raise LeRobotFormatError(f"{path}: expected {end - first} frames, decoded {len(out)}")
        return np.stack(out)

    def close(self) -> None:
        self.pending = []  # a frame read ahead belongs to the closed file
        if self.container is not None:
            self.container.close()
            self.container = None
