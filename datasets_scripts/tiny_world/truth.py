"""The tiny world's ground truth: each attribute measured from the pixels by a fixed rule, then cut into levels.

The rules read any clip (rendered, decoded from a VAE, or generated), never the scene that made it, so a generator's
samples are judged exactly like the training clips. Each rule, on frames ``x`` (T, H, W, 3) in [0, 1]:

- background colour per frame: the per-channel median (the object covers well under half of every frame);
- object map ``d``: the L1 colour distance of each pixel from that background (linear in the object's coverage, so
  a soft edge spreads it but keeps its sum); contrast ``c``: the largest ``d`` in the frame;
- ``lighting``: mean background luminance (Rec. 601) over the clip;
- ``speed``: mean frame-to-frame displacement of the centroid of ``d`` (pixels per frame);
- ``flicker``: (max - min) / mean of the background luminance over the clip;
- ``pulsing``: (max - min) / mean over frames of the object's area ``sum(d) / c``;
- ``size``: mean object area as a share of the frame.

Each measure is cut into levels by :data:`THRESHOLDS` (midway between what the levels render to); the levels give the
checklist answers (two questions per dimension, see :mod:`.checklist`) and the world's preference :func:`utility`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .world import ATTRIBUTES, DIMENSION_OF

LUMA = np.array([0.299, 0.587, 0.114])

# measure -> (cut between levels 0|1, cut between 1|2); "higher" says whether a larger measure is better
THRESHOLDS: dict[str, tuple[float, float]] = {
    "lighting": (0.24, 0.39),
    "speed": (0.3, 0.95),
    "flicker": (0.33, 0.09),
    "pulsing": (0.72, 0.22),
    "size": (0.073, 0.16),
}
HIGHER_IS_BETTER = {"lighting": True, "speed": True, "flicker": False, "pulsing": False, "size": True}

UTILITY_WEIGHTS = {"Dynamic": 2.0, "Stability": 1.0, "Quality": 1.0, "Preservation": 1.0, "Composition": 1.0}
"""The world's hidden preference (what its "human raters" want): a weighted sum of the dimension levels. Motion counts
double, so a fast, flickering clip beats a still, steady one on the total - the trade the confounder invites."""


def measure(frames: np.ndarray) -> dict[str, float]:
    """The five raw measures of a clip (see the module docstring)."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3); got shape {x.shape}")
    if x.max() > 1.5:  # uint8-range input
        x = x / 255.0
    background = np.median(x.reshape(len(x), -1, 3), axis=1)  # (T, 3)
    d = np.abs(x - background[:, None, None, :]).sum(-1)  # (T, H, W)
    contrast = d.reshape(len(x), -1).max(1) + 1e-6
    luma = background @ LUMA
    area = d.reshape(len(x), -1).sum(1) / contrast
    h, w = d.shape[1:]
    total = d.reshape(len(x), -1).sum(1) + 1e-6
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    cy = (d.sum(2) * ys).sum(1) / total
    cx = (d.sum(1) * xs).sum(1) / total
    return {
        "lighting": float(luma.mean()),
        "speed": float(np.hypot(np.diff(cx), np.diff(cy)).mean()) if len(x) > 1 else 0.0,
        "flicker": float((luma.max() - luma.min()) / (luma.mean() + 1e-6)),
        "pulsing": float((area.max() - area.min()) / (area.mean() + 1e-6)),
        "size": float(area.mean() / (h * w)),
    }


def level_of(attribute: str, value: float) -> int:
    low, high = THRESHOLDS[attribute]
    if HIGHER_IS_BETTER[attribute]:
        return 0 if value < low else 1 if value < high else 2
    return 0 if value > low else 1 if value > high else 2


def levels(frames: np.ndarray) -> dict[str, int]:
    """Each attribute's level (0 worst .. 2 best) as the rules read the clip."""
    return {a: level_of(a, v) for a, v in measure(frames).items()}


def dimension_levels(frames_or_levels: np.ndarray | Mapping[str, int]) -> dict[str, int]:
    """The levels keyed by checklist dimension (Quality, Dynamic, Stability, Preservation, Composition)."""
    lv = frames_or_levels if isinstance(frames_or_levels, Mapping) else levels(frames_or_levels)
    return {DIMENSION_OF[a]: int(lv[a]) for a in ATTRIBUTES}


def utility(dimension_scores: Mapping[str, float]) -> float:
    """The world's preference score of a clip: :data:`UTILITY_WEIGHTS` times its dimension levels."""
    return float(sum(UTILITY_WEIGHTS[d] * float(dimension_scores[d]) for d in UTILITY_WEIGHTS))


def level_table(frame_sets: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 5) levels of N clips, columns in :data:`ATTRIBUTES` order."""
    return np.array([[levels(f)[a] for a in ATTRIBUTES] for f in frame_sets])
