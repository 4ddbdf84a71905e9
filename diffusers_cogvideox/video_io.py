"""Read and write videos as lists of frames (imageio + its bundled ffmpeg).

``export_to_video`` takes what the pipelines return for one video (a list of PIL images, a ``[F, H, W, C]`` array in
[0, 1] or uint8, or a ``[F, C, H, W]`` tensor in [0, 1]) and writes an H.264 mp4. ``load_video`` reads a file into RGB
PIL frames, ready for the video-to-video pipeline.
"""

from __future__ import annotations

import os

import numpy as np
import PIL.Image
import torch


def frames_to_uint8(frames) -> list[np.ndarray]:
    """Frames as ``[H, W, 3]`` uint8 arrays; floats are read as [0, 1], tensors as ``[F, C, H, W]``."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4:
            raise ValueError(f"a video tensor must be [F, C, H, W]; got shape {tuple(frames.shape)}")
        frames = frames.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"a video array must be [F, H, W, C]; got shape {frames.shape}")
        frames = list(frames)
    if len(frames) == 0:
        raise ValueError("cannot write a video with no frames")
    out = []
    for frame in frames:
        if isinstance(frame, PIL.Image.Image):
            frame = np.asarray(frame.convert("RGB"))
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame = (np.clip(frame, 0.0, 1.0) * 255).round().astype(np.uint8)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        out.append(frame)
    return out


def export_to_video(frames, path: str | os.PathLike, fps: int = 8, quality: float = 8.0) -> str:
    """Write ``frames`` (one video) to ``path`` as mp4 and return the path.

    Sizes that are not multiples of 16 are written as they are (no ffmpeg rescaling), so a 16x16 test clip stays 16x16.
    """
    import imageio.v2 as imageio

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=quality, macro_block_size=1, format="FFMPEG") as w:
        for frame in frames_to_uint8(frames):
            w.append_data(frame)
    return path


def load_video(path: str | os.PathLike, max_frames: int | None = None) -> list[PIL.Image.Image]:
    """Read a video file into a list of RGB PIL images (the first ``max_frames`` if given)."""
    import imageio.v2 as imageio

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no video file at {path!r}")
    frames: list[PIL.Image.Image] = []
    with imageio.get_reader(path, format="FFMPEG") as reader:
        for frame in reader:
            frames.append(PIL.Image.fromarray(frame).convert("RGB"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames


def video_fps(path: str | os.PathLike) -> float:
    """The frame rate stored in a video file."""
    import imageio.v2 as imageio

    with imageio.get_reader(os.fspath(path), format="FFMPEG") as reader:
        return float(reader.get_meta_data().get("fps", 8.0))
