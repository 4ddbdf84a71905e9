"""The tiny world's scenes: one shape moving over a plain background, rendered procedurally (no download).

A scene is five attributes, each with three levels (0 = worst, 2 = best on its checklist dimension), plus the content
a prompt names (shape, colour, background). The generator's training distribution couples two attributes on purpose
(the *confounder*): fast motion mostly comes with flicker, a still object mostly with a steady image. That is the
trade-off plain DPO on total-score pairs learns to make and MPO's dominance pairs refuse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NUM_FRAMES = 9
HEIGHT = WIDTH = 32
FPS = 8

SHAPES = ("circle", "square")
COLOURS = {  # object colours: saturated, far from every background
    "red": (0.92, 0.16, 0.12),
    "green": (0.14, 0.86, 0.22),
    "blue": (0.16, 0.32, 0.96),
    "yellow": (0.96, 0.86, 0.12),
}
BACKGROUNDS = {  # background colours of about equal luminance (0.5), so lighting is one number
    "grey": (0.50, 0.50, 0.50),
    "teal": (0.30, 0.56, 0.56),
    "purple": (0.58, 0.40, 0.64),
    "olive": (0.56, 0.54, 0.30),
}

# attribute -> its three levels' physical values, worst first; the dimension each one decides
LEVELS: dict[str, tuple[float, float, float]] = {
    "lighting": (0.36, 0.62, 0.96),  # illumination multiplier (dark, dim, bright)
    "speed": (0.0, 0.6, 1.6),  # object speed in pixels per frame (static, slow, fast)
    "flicker": (0.25, 0.1, 0.0),  # amplitude of the exposure's swing over the clip (unstable, slight, steady)
    "pulsing": (0.3, 0.12, 0.0),  # relative radius oscillation (flawed, wobbly, maintained)
    "size": (3.5, 5.5, 8.0),  # object radius in pixels (tiny, medium, prominent)
}
DIMENSION_OF = {
    "lighting": "Quality",
    "speed": "Dynamic",
    "flicker": "Stability",
    "pulsing": "Preservation",
    "size": "Composition",
}
ATTRIBUTES = tuple(LEVELS)
CONFOUNDED = ("speed", "flicker")
CONFOUNDING = 0.7
"""P(flicker level == 2 - speed level) in the generator's training data (1/3 would be independent)."""


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    background: str
    levels: tuple[int, ...]  # one per ATTRIBUTES entry, 0..2
    x: float  # start centre
    y: float
    angle: float  # direction of motion (radians)
    phase: float  # phase of the exposure's swing (radians)
    pulse_phase: float  # phase of the size oscillation (radians)

    @property
    def prompt(self) -> str:
        return prompt_for(self.shape, self.colour, self.background)

    def level(self, attribute: str) -> int:
        return self.levels[ATTRIBUTES.index(attribute)]

    def to_dict(self) -> dict:
        return {**asdict(self), "levels": list(self.levels), "prompt": self.prompt}


def prompt_for(shape: str, colour: str, background: str) -> str:
    return f"a {colour} {shape} on a {background} background"


def all_prompts() -> list[str]:
    return [prompt_for(s, c, b) for s in SHAPES for c in COLOURS for b in BACKGROUNDS]


def sample_levels(rng: np.random.Generator, confounded: bool = True) -> tuple[int, ...]:
    """Independent uniform levels, except flicker follows speed with probability :data:`CONFOUNDING`."""
    levels = [int(rng.integers(3)) for _ in ATTRIBUTES]
    if confounded:
        speed = levels[ATTRIBUTES.index("speed")]
        if rng.random() < CONFOUNDING:
            flicker = 2 - speed
        else:
            flicker = int(rng.choice([lv for lv in range(3) if lv != 2 - speed]))
        levels[ATTRIBUTES.index("flicker")] = flicker
    return tuple(levels)


def sample_scene(rng: np.random.Generator, confounded: bool = True, prompt: str | None = None) -> Scene:
    """A random scene (content from ``prompt`` when given); ``confounded=False`` draws every level independently."""
    if prompt is None:
        shape, colour, background = (
            SHAPES[rng.integers(2)],
            list(COLOURS)[rng.integers(4)],
            list(BACKGROUNDS)[rng.integers(4)],
        )
    else:
        shape, colour, background = parse_prompt(prompt)
    levels = sample_levels(rng, confounded)
    radius = _max_radius(levels)
    lo, hi = radius + 1.0, WIDTH - radius - 1.0
    return Scene(
        shape,
        colour,
        background,
        levels,
        x=float(rng.uniform(lo, hi)),
        y=float(rng.uniform(lo, hi)),
        angle=float(rng.uniform(0, 2 * np.pi)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        pulse_phase=float(rng.uniform(0, 2 * np.pi)),
    )


def parse_prompt(prompt: str) -> tuple[str, str, str]:
    words = prompt.lower().replace(",", " ").split()
    try:
        colour = next(w for w in words if w in COLOURS)
        shape = next(w for w in words if w in SHAPES)
        background = next(w for w in words if w in BACKGROUNDS)
    except StopIteration:
        raise ValueError(
            f"a tiny-world prompt names a colour {list(COLOURS)}, a shape {list(SHAPES)} and a background "
            f"{list(BACKGROUNDS)}, e.g. {prompt_for('circle', 'red', 'grey')!r}; got {prompt!r}"
        ) from None
    return shape, colour, background


def _value(levels: tuple[int, ...], attribute: str) -> float:
    return LEVELS[attribute][levels[ATTRIBUTES.index(attribute)]]


def _max_radius(levels: tuple[int, ...]) -> float:
    return _value(levels, "size") * (1 + _value(levels, "pulsing"))


def _bounce(start: float, travel: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions of a point moving ``travel`` from ``start`` inside [lo, hi], reflecting at the walls."""
    span = hi - lo
    if span <= 0:
        return np.full_like(travel, (lo + hi) / 2)
    u = np.mod(start - lo + travel, 2 * span)
    return lo + np.where(u > span, 2 * span - u, u)


def render(scene: Scene, num_frames: int = NUM_FRAMES, size: int = HEIGHT) -> np.ndarray:
    """The scene's frames, float32 (T, H, W, 3) in [0, 1]."""
    t = np.arange(num_frames, dtype=np.float64)
    speed, radius0 = _value(scene.levels, "speed"), _value(scene.levels, "size")
    lo, hi = _max_radius(scene.levels) + 1.0, size - _max_radius(scene.levels) - 1.0
    xs = _bounce(scene.x, speed * t * np.cos(scene.angle), lo, hi)
    ys = _bounce(scene.y, speed * t * np.sin(scene.angle), lo, hi)
    radii = radius0 * (1 + _value(scene.levels, "pulsing") * np.sin(2 * np.pi * t / 8 + scene.pulse_phase))
    # the exposure swings once over the clip (a slow flicker: a frame-to-frame one would not survive the VAE's 4x
    # temporal compression at this size)
    gain = _value(scene.levels, "lighting") * (
        1 + _value(scene.levels, "flicker") * np.sin(2 * np.pi * t / 8 + scene.phase)
    )

    grid = np.arange(size, dtype=np.float64) + 0.5
    gx, gy = np.meshgrid(grid, grid)  # (H, W)
    dx, dy = gx[None] - xs[:, None, None], gy[None] - ys[:, None, None]
    if scene.shape == "circle":
        dist = np.sqrt(dx**2 + dy**2)
    else:
        dist = np.maximum(np.abs(dx), np.abs(dy)) * (2 / np.sqrt(np.pi))  # same area as the circle of that radius
    coverage = np.clip(radii[:, None, None] - dist + 0.5, 0.0, 1.0)[..., None]  # anti-aliased edge

    background = np.asarray(BACKGROUNDS[scene.background])
    colour = np.asarray(COLOURS[scene.colour])
    frames = background + coverage * (colour - background)
    frames = frames * gain[:, None, None, None]
    return np.clip(frames, 0.0, 1.0).astype(np.float32)
