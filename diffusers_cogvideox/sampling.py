"""Sampling from a diffusers text-to-video/image pipeline: load one (a folder, a repo id, or the tiny default) and
draw ``n`` samples per prompt with a seed.

``model=None`` (or ``"tiny"``) means the embedded tiny default: the tiny world's CogVideoX, trained on procedural
clips of a shape over a background and shipped with the package (no download; see
:mod:`datasets_scripts.tiny_world`). ``"random"`` builds the same-sized random pipeline instead (its output is noise,
and the cards and reports say so). Used by generate-and-score, the quickstart and the Spaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY = "tiny"
RANDOM = "random"


def is_tiny(model: str | None) -> bool:
    """The embedded default (trained tiny world) or its random twin: both run at the tiny resolution."""
    return model is None or str(model).lower() in (TINY, RANDOM)


def is_random(model: str | None) -> bool:
    return model is not None and str(model).lower() == RANDOM


def load_pipeline(model: str | None = None, *, device: str = "cpu", dtype: Any = None, seed: int = 0):
    """A CogVideoX pipeline from a folder / repo id, or the tiny default; other diffusers pipelines load too."""
    import torch

    if is_random(model):
        from diffusers_cogvideox.tiny import tiny_pipeline

        pipe = tiny_pipeline(seed=seed)
    elif is_tiny(model):
        from diffusers_cogvideox.tiny import tiny_world_pipeline

        pipe = tiny_world_pipeline()
    else:
        import json

        class_name = None
        index = Path(model) / "model_index.json"
        if index.is_file():
            class_name = json.loads(index.read_text())["_class_name"]
        kwargs = {"dtype": dtype} if dtype is not None else {}
        if class_name is None or "CogVideoX" in class_name:
            import diffusers_cogvideox

            # the Hub repos name diffusers' classes; this package exports the same names
            cls = getattr(diffusers_cogvideox, class_name or "CogVideoXPipeline")
            pipe = cls.from_pretrained(model, **kwargs)
        else:
            from diffusers import DiffusionPipeline

            pipe = DiffusionPipeline.from_pretrained(model, **kwargs)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.device(device))


class PipelineSampler:
    """``sampler(prompt, n, seed)`` -> n videos (or images) from a diffusers-style text-to-video/image pipeline."""

    def __init__(
        self,
        pipe: Any,
        *,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        fps: int = 8,
        modality: str = "video",
    ):
        self.pipe = pipe
        self.modality = modality
        self.fps = fps
        self.suffix = ".mp4" if modality == "video" else ".png"
        self.kwargs = {
            k: v
            for k, v in dict(
                num_frames=num_frames,
                height=height,
                width=width,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
            ).items()
            if v is not None
        }
        if modality != "video":
            self.kwargs.pop("num_frames", None)

    def config(self) -> dict[str, Any]:
        return {**self.kwargs, "fps": self.fps}

    def __call__(self, prompt: str, num_samples: int, seed: int) -> list[Any]:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        count_key = "num_videos_per_prompt" if self.modality == "video" else "num_images_per_prompt"
        out = self.pipe(prompt=prompt, generator=generator, output_type="np", **{count_key: num_samples}, **self.kwargs)
        media = out.frames if self.modality == "video" else out.images
        return [media[i] for i in range(len(media))]

    def write(self, sample: Any, path: Path) -> None:
        if self.modality == "video":
            from diffusers_cogvideox.video_io import export_to_video

            export_to_video(sample, path, fps=self.fps)
        else:
            import numpy as np
            from PIL import Image

            array = np.asarray(sample)
            if array.dtype != np.uint8:
                array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
            Image.fromarray(array).save(path, format="PNG")
