"""Tiny synthetic clip folders: smooth moving colour patterns a tiny model can learn, written as mp4 and png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CAPTIONS = ["a red square moving right", "a blue circle", "waves of green", "a panda playing a guitar"]


def _frames(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    phase, colour = rng.uniform(0, 6.28), rng.uniform(0.2, 0.8, size=3)
    out = []
    for f in range(frames):
        wave = 0.5 + 0.5 * np.sin(6 * xx + 4 * yy + phase + 0.4 * f)
        out.append((wave[..., None] * colour[None, None] * 255).astype(np.uint8))
    return np.stack(out)


def write_clip_folder(
    root: Path, specs: list[tuple[int, int, int]], images: int = 0, scores: list[float] | None = None
) -> Path:
    """One mp4 per ``(frames, height, width)`` spec plus ``images`` png files, and ``metadata.jsonl``."""
    import PIL.Image

    from diffusers_cogvideox.video_io import export_to_video

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (frames, height, width) in enumerate(specs):
        name = f"clip{i:02d}.mp4"
        export_to_video(_frames(i, frames, height, width), root / name, fps=8, quality=10)
        row = {"file_name": name, "caption": CAPTIONS[i % len(CAPTIONS)]}
        if scores is not None:
            row["aesthetic"] = scores[i]
        rows.append(row)
    for j in range(images):
        name = f"image{j:02d}.png"
        PIL.Image.fromarray(_frames(100 + j, 1, 32, 32)[0]).save(root / name)
        rows.append({"file_name": name, "caption": CAPTIONS[j % len(CAPTIONS)]})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def clip_folder(tmp_path):
    """Eight clips in two shapes (9x32x32 and 9x32x48) plus two images."""
    specs = [(9, 32, 32), (9, 32, 48)] * 4
    return write_clip_folder(tmp_path / "clips", specs, images=2)
