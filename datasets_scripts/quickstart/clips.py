"""What the report shows of each clip: its frames as one enlarged strip, and (tiny world) its procedural truth.

A 32 x 32 mp4 is a stamp on a page and a browser may refuse to scale or play it, so each clip also gets a PNG of all
its frames side by side, each frame enlarged with nearest-neighbour pixels. The truth is read from the frames as
decoded from the written file (what the scorer read and what a viewer sees), exactly as the tiny world labels its
training clips.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

STRIP_SUFFIX = ".strip.png"
STRIP_FRAME_SIZE = 96  # pixels per frame in the strip


def decoded_frames(video: str | Path) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video file."""
    from diffusers_cogvideox.video_io import read_video

    frames, _ = read_video(video)
    return np.stack(frames)


def truth_of(video: str | Path) -> dict[str, int]:
    """The tiny world's procedural level (0 worst .. 2 best) of each checklist dimension of a clip."""
    from ..tiny_world import truth

    return truth.dimension_levels(decoded_frames(video))


def write_strip(video: Path, frame_size: int = STRIP_FRAME_SIZE) -> Path:
    """``<video stem>.strip.png`` beside the video: every frame, enlarged to about ``frame_size`` pixels, left to
    right with a 2-pixel white gap. Written once (atomically); an existing strip is kept."""
    from PIL import Image

    from diffusers_cogvideox.outputs import atomic_write_bytes

    target = video.with_name(video.stem + STRIP_SUFFIX)
    if target.exists():
        return target
    frames = decoded_frames(video)
    t, h, w, _ = frames.shape
    scale = max(1, frame_size // max(h, w))
    gap = 2
    strip = np.full((h * scale, t * (w * scale + gap) - gap, 3), 255, dtype=np.uint8)
    for i, frame in enumerate(frames):
        big = frame.repeat(scale, axis=0).repeat(scale, axis=1)
        x = i * (w * scale + gap)
        strip[:, x : x + w * scale] = big
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    atomic_write_bytes(target, buffer.getvalue())
    return target
