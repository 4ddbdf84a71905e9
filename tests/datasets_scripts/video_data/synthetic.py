"""Synthetic clips for the video data tests, made on the fly: moving, static, hard cuts, slideshow, blurry, text-heavy.

Every clip is a window onto a smooth random texture (Gaussian-filtered noise, contrast-stretched), so optical flow,
sharpness and the cut metric see something like natural footage; what differs is how the window moves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from diffusers_cogvideox.video_io import export_to_video

W, H = 128, 96


def texture(seed: int, width: int = W + 160, height: int = H + 160, sigma: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))
    smooth = np.asarray(noise.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-6)
    tint = rng.uniform(0.3, 1.0, size=3)
    image = Image.fromarray((smooth * tint * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)  # objects with sharp edges, as in real footage
    for _ in range(12):
        x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 30))
        w, h = (int(v) for v in rng.integers(10, 40, size=2))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    return np.asarray(image)


def moving(seed: int, frames: int = 17, speed: tuple[int, int] = (3, 1)) -> list[np.ndarray]:
    tex = texture(seed)
    y0, x0 = (0 if speed[1] >= 0 else 150), (0 if speed[0] >= 0 else 150)
    return [tex[y0 + t * speed[1] :][:H, x0 + t * speed[0] :][:, :W] for t in range(frames)]


def static(seed: int, frames: int = 17) -> list[np.ndarray]:
    tex = texture(seed)[:H, :W].astype(np.int16)
    rng = np.random.default_rng(seed + 1)
    return [np.clip(tex + rng.integers(-2, 3, tex.shape), 0, 255).astype(np.uint8) for _ in range(frames)]


def hard_cut(seed: int, frames: int = 17) -> list[np.ndarray]:
    half = frames // 2
    return moving(seed, half) + moving(seed + 100, frames - half, speed=(-2, 2))[::-1]


def slideshow(seed: int, frames: int = 18, stills: int = 3) -> list[np.ndarray]:
    each = frames // stills
    out = []
    for s in range(stills):
        out += static(seed + 10 * s, each)
    return out + out[-1:] * (frames - len(out))


def blurry(seed: int, frames: int = 17) -> list[np.ndarray]:
    return [np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(4))) for f in moving(seed, frames)]


def text_page(seed: int, width: int = W, height: int = H + 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (width, height), (250, 250, 245))
    draw = ImageDraw.Draw(page)
    words = ["lecture", "slide", "NOTES", "chapter", "2024", "summary", "example", "the", "of", "data"]
    for y in range(4, height - 10, 12):
        line = " ".join(rng.choice(words, size=6))
        draw.text((4, y), line, fill=(10, 10, 10))
    return np.asarray(page)


def text_heavy(seed: int, frames: int = 17) -> list[np.ndarray]:
    page = text_page(seed)
    return [page[2 * t : 2 * t + H] for t in range(frames)]  # a slowly scrolling page of text


def write(frames: list[np.ndarray], path: Path, fps: float = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    export_to_video(frames, path, fps=fps)
    return path


KINDS = {
    "moving": moving,
    "static": static,
    "cut": hard_cut,
    "slideshow": slideshow,
    "blurry": blurry,
    "text": text_heavy,
}


def clip_set(folder: Path, seeds: tuple[int, ...] = (0, 1)) -> dict[str, list[Path]]:
    """Two clips of every kind under ``folder``: ``{kind: [paths]}``."""
    return {kind: [write(make(s), folder / f"{kind}-{s}.mp4") for s in seeds] for kind, make in KINDS.items()}
