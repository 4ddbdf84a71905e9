"""The project's one media module: read and write videos (imageio + its bundled ffmpeg) and images (PIL).

``export_to_video`` takes what the pipelines return for one video (a list of PIL images, a ``[F, H, W, C]`` array in
[0, 1] or uint8, or a ``[F, C, H, W]`` tensor in [0, 1]) and writes an H.264 mp4. ``load_video`` reads a video (a
file, an array or a list of frames) into RGB PIL frames: the first ``max_frames`` (the video-to-video pipeline, MPO's
latents) or, with ``per_second=True``, the frame nearest each whole second (:func:`sample_frame_indices`, the
official VisionReward-Video sampling). ``load_image`` reads one image. Unreadable media raise :class:`MediaError`
naming the file and the reason.
"""

from __future__ import annotations

import math
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


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class MediaError(ValueError):
    """An image or video that cannot be read (unreadable, empty, no frames); the message says which and why."""


def _check_file(path: str | os.PathLike, kind: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{kind} file not found: {path}")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{kind} file is empty: {path}")
    return path


def to_pil(frame) -> PIL.Image.Image:
    """One frame as an RGB PIL image: a PIL image, or an ``HxWx3`` / ``3xHxW`` / ``HxW`` array or tensor (uint8, or
    floats in [0, 1] or [0, 255])."""
    if isinstance(frame, PIL.Image.Image):
        return frame.convert("RGB")
    arr = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)  # CHW -> HWC
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or arr.size == 0:
        raise MediaError(f"an image must be an HxWx3 (or 3xHxW) array with pixels; got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return PIL.Image.fromarray(arr)


def load_image(image) -> PIL.Image.Image:
    """An RGB PIL image from a path, a PIL image or an array."""
    if isinstance(image, (str, os.PathLike)):
        path = _check_file(image, "image")
        try:
            with PIL.Image.open(path) as im:
                im.load()
                return im.convert("RGB")
        except Exception as err:  # PIL raises several types for corrupt files
            raise MediaError(f"cannot read image {path}: {err}") from err
    img = to_pil(image)
    if img.width == 0 or img.height == 0:
        raise MediaError(f"image is empty: {img.width}x{img.height}")
    return img


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """The frames (``HxWx3`` uint8; the first ``max_frames`` if given) and the fps of a video file."""
    import imageio.v2 as imageio

    path = _check_file(path, "video")
    frames: list[np.ndarray] = []
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            fps = float(reader.get_meta_data().get("fps") or 0.0)
            for frame in reader:
                frames.append(np.asarray(frame))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as err:
        raise MediaError(f"cannot read video {path}: {err}") from err
    if not frames:
        raise MediaError(f"video has no frames: {path}")
    return frames, fps


def sample_frame_indices(num_frames: int, fps: float, max_frames: int = 24) -> list[int]:
    """The official VisionReward-Video sampling: for each whole second 0, 1, ..., round(duration) the frame whose
    timestamp (index / fps) is nearest, at most ``max_frames`` of them (a 6 s clip at 8 fps gives 7 frames).
    Ties go to the earlier frame, as ``min`` over the timestamp list does in the released code."""
    if num_frames <= 0:
        raise MediaError("video has no frames")
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise MediaError(f"video fps must be a positive number; got {fps}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1; got {max_frames}")
    timestamps = np.arange(num_frames) / float(fps)
    indices = []
    for second in range(int(round(float(timestamps[-1]))) + 1):
        indices.append(int(np.argmin(np.abs(timestamps - second))))
        if len(indices) >= max_frames:
            break
    return indices


def read_sampled_frames(
    path: str | os.PathLike, max_frames: int = 24, fps: float | None = None
) -> tuple[list[np.ndarray], dict[str, float]]:
    """The frames :func:`sample_frame_indices` picks from a video file, decoded in one pass with bounded memory.

    Only the two frames around each whole second (and the latest frame, for a clip's last second) are kept, so at
    most ``2 * max_frames + 1`` frames are held whatever the clip's length, and reading stops once every second up
    to ``max_frames`` has its nearest frame. Returns the frames and ``{"fps", "frames_read", "frames_held"}``.
    """
    import imageio.v2 as imageio

    path = _check_file(path, "video")
    kept: dict[int, np.ndarray] = {}
    last, read, held = None, 0, 0
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            fps = fps or float(reader.get_meta_data().get("fps") or 0.0)
            if not fps or fps <= 0 or not math.isfinite(fps):
                raise MediaError(f"video fps must be a positive number; got {fps}")
            wanted = {i for s in range(max_frames) for i in (math.floor(s * fps), math.floor(s * fps) + 1)}
            stop = (max_frames - 1) * fps + 2  # past it, no later frame is nearer to any of the seconds
            for index, frame in enumerate(reader):
                read, last = index + 1, frame
                if index in wanted:
                    kept[index] = np.asarray(frame)
                held = max(held, len(kept) + 1)
                if index >= stop:
                    break
    except MediaError:
        raise
    except Exception as err:
        raise MediaError(f"cannot read video {path}: {err}") from err
    if read == 0:
        raise MediaError(f"video has no frames: {path}")
    kept[read - 1] = np.asarray(last)
    frames = [kept[i] for i in sample_frame_indices(read, fps, max_frames)]
    return frames, {"fps": fps, "frames_read": read, "frames_held": held}


def load_video(
    video, max_frames: int | None = None, *, per_second: bool = False, fps: float | None = None
) -> list[PIL.Image.Image]:
    """A video's frames as RGB PIL images: the first ``max_frames`` (all if None), or with ``per_second`` the frame
    nearest each whole second, up to ``max_frames`` (default 24).

    ``video`` is a file path, a ``(T, H, W, 3)`` array/tensor or a list of frames (images, arrays or image files); in-memory frames sampled
    ``per_second`` need ``fps`` (frames already sampled can be passed with ``fps=1``)."""
    if isinstance(video, (str, os.PathLike)):
        if per_second:  # seconds sampled while decoding: never the whole clip in memory
            frames, _ = read_sampled_frames(video, 24 if max_frames is None else max_frames, fps)
            return [to_pil(f) for f in frames]
        frames, _ = read_video(video, max_frames)
    elif isinstance(video, (np.ndarray, torch.Tensor)):
        if video.ndim != 4:
            raise MediaError(f"a video array must be (frames, height, width, 3); got shape {tuple(video.shape)}")
        frames = list(video)
    else:  # a list of frames: images, arrays, or image files (a clip stored as one file per frame)
        frames = [load_image(f) if isinstance(f, (str, os.PathLike)) else f for f in video]
    if len(frames) == 0:
        raise MediaError("video has no frames")
    if not per_second:
        return [to_pil(f) for f in frames[:max_frames]]
    if fps is None:
        raise MediaError("fps is needed to sample frames from an in-memory video; pass fps=... (1 if pre-sampled)")
    return [to_pil(frames[i]) for i in sample_frame_indices(len(frames), fps, 24 if max_frames is None else max_frames)]


def guess_modality(media) -> str:
    """``"image"`` or ``"video"``: by a path's suffix, an array's rank (4 = video), else video for a list of frames."""
    if isinstance(media, (str, os.PathLike)):
        suffix = os.path.splitext(os.fspath(media))[1].lower()
        if suffix in VIDEO_SUFFIXES:
            return "video"
        if suffix in IMAGE_SUFFIXES:
            return "image"
        raise MediaError(
            f"cannot tell image from video by the suffix {suffix!r} of {media}; known: "
            f"images {IMAGE_SUFFIXES}, videos {VIDEO_SUFFIXES}"
        )
    if isinstance(media, (np.ndarray, torch.Tensor)):
        return "video" if media.ndim == 4 else "image"
    if isinstance(media, PIL.Image.Image):
        return "image"
    return "video"


def count_frames(path: str | os.PathLike) -> int:
    """The number of frames a video file holds (at least one); a :class:`MediaError` names why it is unreadable."""
    import imageio.v2 as imageio

    path = _check_file(path, "video")
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            reader.get_data(0)
            count = reader.count_frames()
    except Exception as exc:  # imageio/ffmpeg raise a variety of types for broken files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise MediaError(f"unreadable video ({type(exc).__name__}: {first})") from exc
    if count < 1:
        raise MediaError("unreadable video (no frames)")
    return count


def video_fps(path: str | os.PathLike) -> float:
    """The frame rate stored in a video file."""
    import imageio.v2 as imageio

    with imageio.get_reader(os.fspath(path), format="FFMPEG") as reader:
        return float(reader.get_meta_data().get("fps", 8.0))
