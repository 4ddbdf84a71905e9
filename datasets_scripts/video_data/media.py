"""Reading clips for the video data stages: probing, streaming decode, analysis-size frames, input listing.

Frames are decoded with imageio's ffmpeg reader, the backend of :mod:`diffusers_cogvideox.video_io` and of the
VisionReward processor, so every stage sees the frames the captioner and the trainer see. Long raw videos are streamed
(never held in memory whole).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import IMAGE_SUFFIXES, VIDEO_SUFFIXES

# A file whose decoded frame count differs from fps x duration by more than this is treated as variable frame rate.
VFR_TOLERANCE = 0.02


class ClipError(ValueError):
    """A clip that a stage cannot use; the message names what is wrong and what is accepted."""


@dataclass(frozen=True)
class VideoInfo:
    """What a stage needs to know about a video before decoding it."""

    fps: float
    num_frames: int
    width: int
    height: int
    rotation: int = 0

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def probe(path: str | Path) -> VideoInfo:
    """Frame rate, decoded frame count and size of a video; raises :class:`ClipError` for unreadable, empty,
    zero-length, variable-frame-rate or rotated files (the reason says which and how to fix it)."""
    import imageio.v2 as imageio
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise ClipError(f"missing video file {path.name!r}")
    if path.stat().st_size == 0:
        raise ClipError(f"empty video file {path.name!r} (0 bytes)")
    try:
        with imageio.get_reader(str(path), format="FFMPEG") as reader:
            meta = reader.get_meta_data()
        num_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except Exception as exc:  # imageio/ffmpeg raise many types for broken files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ClipError(f"unreadable video {path.name!r} ({type(exc).__name__}: {first})") from exc
    fps = float(meta.get("fps") or 0.0)
    width, height = (int(v) for v in meta.get("size") or (0, 0))
    rotation = int(meta.get("rotate") or 0) % 360
    if num_frames < 1 or width < 1 or height < 1:
        raise ClipError(f"video {path.name!r} has no frames (decoded {num_frames}, size {width}x{height})")
    if not math.isfinite(fps) or fps <= 0:
        raise ClipError(f"video {path.name!r} has no frame rate in its header; re-encode it with ffmpeg -r <fps>")
    duration = float(meta.get("duration") or 0.0)
    if duration > 0 and abs(num_frames - fps * duration) > max(1.5, VFR_TOLERANCE * num_frames):
        raise ClipError(
            f"video {path.name!r} looks variable-frame-rate ({num_frames} frames decoded in {duration:.3f} s at a "
            f"nominal {fps:g} fps); frame-accurate cuts need a constant rate: re-encode with ffmpeg -vf fps={fps:g}"
        )
    if rotation:
        raise ClipError(
            f"video {path.name!r} carries a {rotation} degree rotation flag; bake it in first "
            "(ffmpeg -i in.mp4 -c:a copy out.mp4 applies it) so that frames and sizes agree"
        )
    return VideoInfo(fps=fps, num_frames=int(num_frames), width=width, height=height, rotation=rotation)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of a video, one ``[H, W, 3]`` uint8 array at a time."""
    import imageio.v2 as imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        for frame in reader:
            yield np.asarray(frame)


def read_frames(path: str | Path, indices: set[int] | None = None) -> dict[int, np.ndarray]:
    """The frames at ``indices`` (all when ``None``), decoded in one streaming pass."""
    wanted = None if indices is None else set(indices)
    out: dict[int, np.ndarray] = {}
    last = max(wanted) if wanted else None
    for i, frame in enumerate(iter_frames(path)):
        if wanted is None or i in wanted:
            out[i] = frame
        if last is not None and i >= last:
            break
    return out


def analysis_frame(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` resized (area interpolation) to ``width`` pixels wide, aspect kept: the scale all scores use."""
    import cv2

    h, w = frame.shape[:2]
    if w == width:
        return frame
    height = max(1, round(h * width / w))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_media(root: str | Path, images: bool = False) -> list[Path]:
    """Video files (and images when ``images``) under ``root``, recursively, in sorted order."""
    root = Path(root)
    suffixes = VIDEO_SUFFIXES + (IMAGE_SUFFIXES if images else ())
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    )


def link_or_copy(src: str | Path, dst: str | Path) -> Path:
    """Place ``src`` at ``dst`` (a hard link when the file system allows, else a copy), atomically."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return dst
