"""Hard-cut detection: the content score between consecutive frames and the cut rule.

The score is PySceneDetect's ``ContentDetector`` metric (mean absolute difference of the hue, saturation and value
channels between consecutive frames, 0-255 scale, equal weights), and the default threshold is that detector's default
(27). The library itself is not a dependency: 0.6 pins ``click<8.3`` (below what ``huggingface-hub`` requires) and
0.7 requires the GUI ``opencv-python`` build, which conflicts with ``opencv-python-headless``. Frames are scored at a
small analysis width, which is enough for a whole-frame statistic and keeps long videos cheap.

Cut rule: a cut lies before frame ``i`` when ``score(i-1, i) >= threshold``, the score is at least ``ratio`` times the
median score of the ``window`` frame pairs on either side (the idea of PySceneDetect's ``AdaptiveDetector``: fast
camera motion keeps every score high, a cut stands out from its neighbours), and at least ``min_scene_frames`` frames
have passed since the previous cut. Gradual transitions (fades, dissolves) are not hard cuts and are not detected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

CONTENT_THRESHOLD = 27.0
MIN_SCENE_FRAMES = 4
ADAPTIVE_RATIO = 2.0
ADAPTIVE_WINDOW = 4
SCENE_ANALYSIS_WIDTH = 96


def hsv(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV_FULL).astype(np.int16)


def content_score(previous_hsv: np.ndarray, current_hsv: np.ndarray) -> float:
    """Mean over H, S and V of the mean absolute per-pixel difference (0-255)."""
    return float(np.abs(current_hsv - previous_hsv).reshape(-1, 3).mean(axis=0).mean())


def content_scores(frames: Iterable[np.ndarray], width: int = SCENE_ANALYSIS_WIDTH) -> list[float]:
    """``scores[i]`` = content score between frame ``i`` and ``i + 1`` (streaming over ``frames``)."""
    from .media import analysis_frame

    scores, previous = [], None
    for frame in frames:
        current = hsv(analysis_frame(frame, width))
        if previous is not None:
            scores.append(content_score(previous, current))
        previous = current
    return scores


def detect_cuts(
    scores: Sequence[float],
    threshold: float = CONTENT_THRESHOLD,
    min_scene_frames: int = MIN_SCENE_FRAMES,
    ratio: float = ADAPTIVE_RATIO,
    window: int = ADAPTIVE_WINDOW,
) -> list[int]:
    """Frame indices that start a new scene (``scores`` as from :func:`content_scores`)."""
    cuts, last = [], 0
    for i, score in enumerate(scores, start=1):
        if score < threshold or i - last < min_scene_frames:
            continue
        j = i - 1  # index of this pair in scores
        neighbours = [*scores[max(0, j - window) : j], *scores[j + 1 : j + 1 + window]]
        if neighbours and score < ratio * float(np.median(neighbours)):
            continue
        cuts.append(i)
        last = i
    return cuts


def scenes_from_cuts(cuts: Sequence[int], num_frames: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges between cuts."""
    bounds = [0, *cuts, num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
