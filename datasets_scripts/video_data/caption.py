"""Dense video captions for the SFT dataset: a CogVLM2-Video-architecture captioner, or any image-text-to-text model.

The default backend reproduces ``THUDM/cogvlm2-llama3-caption`` (the CogVLM2-Caption model that captioned CogVideoX's
training data) on this project's native backbone (:mod:`trl_vision_reward.reward.cogvlm2`, no remote code). The
official usage (``tools/caption/video_caption.py`` in THUDM/CogVideo, and the model card's example) is followed:

- frames: the ``"chat"`` strategy of its ``load_video`` - for every whole second 0 .. round(last timestamp) the frame
  whose timestamp is nearest, at most 24 (``diffusers_cogvideox.video_io.load_video(per_second=True)``, the rule
  VisionReward-Video's processor uses too);
- prompt: ``"Please describe this video in detail."`` in the ``chat`` template of the remote
  ``build_conversation_input_ids`` (``bos``, each frame's 66 vision slots followed by its time index as text, then
  ``Question: <prompt> Answer:``), which :class:`~trl_vision_reward.reward.cogvlm2.CogVLM2Processor` builds;
- decoding: greedy (``do_sample=False, top_k=1``; the script's temperature 0.1 has no effect then), at most 2048
  new tokens, special tokens skipped.

:class:`ImageTextToTextCaptioner` runs any ``AutoModelForImageTextToText`` with a chat-template processor (Qwen2-VL
family and others) on the same frames and prompt. Captions that come back empty, or that stop at ``max_new_tokens``
without an end-of-sequence token (cut off), are failures with that reason; ``truncated="keep"`` keeps cut-off ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .jobs import Item, StageSummary, claim_job, open_job, pending_rejects, results, run_stage
from .media import is_image

OFFICIAL_CAPTION_PROMPT = "Please describe this video in detail."
OFFICIAL_MAX_FRAMES = 24
OFFICIAL_MAX_NEW_TOKENS = 2048


class CaptionError(ValueError):
    """A caption that cannot be used (empty, or cut off at the token limit)."""


@dataclass(frozen=True)
class Caption:
    text: str
    num_frames: int
    new_tokens: int
    truncated: bool


def caption_frames(path: str | Path, max_frames: int = OFFICIAL_MAX_FRAMES) -> list:
    """The frames a captioner sees: the official one-frame-per-second sampling (an image is one frame)."""
    from diffusers_cogvideox.video_io import load_image, load_video

    return [load_image(path)] if is_image(path) else load_video(path, max_frames, per_second=True)


class _GenerateCaptioner:
    """Shared decoding: batched greedy ``generate``, then the empty / cut-off checks."""

    model: Any
    processor: Any
    prompt: str
    max_new_tokens: int
    max_frames: int

    def inputs(self, frames: Sequence[list]) -> Mapping[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @torch.no_grad()
    def caption_frames(self, videos: Sequence[list]) -> list[Caption]:
        inputs = self.inputs(videos)
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new = out[:, inputs["input_ids"].shape[1] :]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        captions = []
        for row, frames in zip(new.tolist(), videos):
            ended = next((i for i, t in enumerate(row) if t in eos_ids), None)
            tokens = row if ended is None else row[:ended]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            captions.append(Caption(text, len(frames), len(tokens), truncated=ended is None))
        return captions

    def __call__(self, paths: Sequence[str | Path]) -> list[Caption]:
        return self.caption_frames([caption_frames(p, self.max_frames) for p in paths])


class CogVLM2VideoCaptioner(_GenerateCaptioner):
    """CogVLM2-Caption (``THUDM/cogvlm2-llama3-caption``) and any CogVLM2-Video checkpoint, natively."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        prompt: str = OFFICIAL_CAPTION_PROMPT,
        max_new_tokens: int = OFFICIAL_MAX_NEW_TOKENS,
        max_frames: int = OFFICIAL_MAX_FRAMES,
    ):
        if not getattr(model.config, "is_video", False):
            raise ValueError(f"{type(model).__name__} is not a CogVLM2-Video model; the captioner needs one")
        self.model, self.processor, self.prompt = model, processor, prompt
        self.max_new_tokens, self.max_frames = max_new_tokens, max_frames

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs):
        from trl_vision_reward.reward.cogvlm2 import load_cogvlm2, load_cogvlm2_processor

        model = load_cogvlm2(path, **({"dtype": dtype} if dtype else {})).eval().to(device)
        return cls(model, load_cogvlm2_processor(path), **kwargs)

    @classmethod
    def tiny(cls, seed: int = 0, **kwargs) -> CogVLM2VideoCaptioner:
        """Random tiny CogVLM2-Video built offline: real code path, noise captions."""
        from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor

        model = tiny_cogvlm2_model(video=True, seed=seed)
        kwargs.setdefault("max_new_tokens", 24)
        return cls(model, tiny_cogvlm2_processor(video=True), **kwargs)

    def text(self) -> str:
        from trl_vision_reward.reward.cogvlm2.templates import VIDEO_QUESTION

        return VIDEO_QUESTION.format(question=self.prompt)  # the remote code's "chat" template, no history

    def inputs(self, videos: Sequence[list]) -> Mapping[str, torch.Tensor]:
        import numpy as np

        arrays = [np.stack([np.asarray(f.convert("RGB")) for f in frames]) for frames in videos]
        return self.processor(text=[self.text()] * len(videos), videos=arrays, padding_side="left")


class ImageTextToTextCaptioner(_GenerateCaptioner):
    """Any ``AutoModelForImageTextToText`` + chat-template processor; frames go in as a video when the processor has
    a video processor, else as a sequence of images."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        prompt: str = OFFICIAL_CAPTION_PROMPT,
        max_new_tokens: int = 512,
        max_frames: int = OFFICIAL_MAX_FRAMES,
    ):
        self.model, self.processor, self.prompt = model, processor, prompt
        self.max_new_tokens, self.max_frames = max_new_tokens, max_frames

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(path, **({"dtype": dtype} if dtype else {}))
        processor = AutoProcessor.from_pretrained(path)
        if getattr(processor, "tokenizer", None) is not None:
            processor.tokenizer.padding_side = "left"
        return cls(model.eval().to(device), processor, **kwargs)

    def inputs(self, videos: Sequence[list]) -> Mapping[str, torch.Tensor]:
        as_video = getattr(self.processor, "video_processor", None) is not None
        texts = []
        for frames in videos:
            media = [{"type": "video"}] if as_video else [{"type": "image"}] * len(frames)
            messages = [{"role": "user", "content": [*media, {"type": "text", "text": self.prompt}]}]
            texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        media_kwargs = {"videos": list(videos)} if as_video else {"images": [f for frames in videos for f in frames]}
        return self.processor(text=texts, padding=True, return_tensors="pt", **media_kwargs)


def load_captioner(model: str | None, backend: str = "cogvlm2", device: str = "cpu", **kwargs) -> _GenerateCaptioner:
    """``backend="cogvlm2"`` (default; ``model=None``/"tiny" = the tiny random CogVLM2-Video) or
    ``"image-text-to-text"`` (any ``AutoModelForImageTextToText`` folder / repo id)."""
    if backend == "cogvlm2":
        if model is None or model == "tiny":
            return CogVLM2VideoCaptioner.tiny(**kwargs)
        return CogVLM2VideoCaptioner.from_pretrained(model, device=device, **kwargs)
    if backend == "image-text-to-text":
        if model is None or model == "tiny":
            raise ValueError(
                "the image-text-to-text backend needs --model (a folder or repo id); the tiny default is cogvlm2"
            )
        return ImageTextToTextCaptioner.from_pretrained(model, device=device, **kwargs)
    raise ValueError(f"backend must be 'cogvlm2' or 'image-text-to-text'; got {backend!r}")


@dataclass(frozen=True)
class CaptionConfig:
    model: str = "tiny"
    backend: str = "cogvlm2"
    prompt: str = OFFICIAL_CAPTION_PROMPT
    max_new_tokens: int | None = None
    truncated: str = "reject"  # or "keep"
    validation_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.truncated not in ("reject", "keep"):
            raise ValueError(f"truncated must be 'reject' or 'keep'; got {self.truncated!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1); got {self.validation_fraction}")


def run_caption(
    clips: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    captioner: _GenerateCaptioner,
    config: CaptionConfig = CaptionConfig(),
    *,
    batch_size: int = 1,
    state: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    force: bool = False,
) -> StageSummary:
    """Caption every clip not captioned yet (this process's share); then :func:`collect_captions`."""
    from accelerate import PartialState

    from .filter import filter_items

    state = state or PartialState()
    items = filter_items(clips)
    inputs = [c.get("path") for c in clips]
    claim_job(out_dir, "caption", asdict(config), state, inputs=inputs, overwrite=overwrite, force=force)

    def record(item: Item, caption: Caption) -> list[dict[str, Any]]:
        if not caption.text:
            raise CaptionError(f"the captioner returned an empty caption ({caption.new_tokens} tokens)")
        if caption.truncated and config.truncated == "reject":
            raise CaptionError(
                f"the caption was cut off at max_new_tokens={captioner.max_new_tokens} (no end-of-sequence token); "
                "raise --max-new-tokens or pass --truncated keep"
            )
        base = {k: v for k, v in item.payload.items() if k != "path"}
        return [{**base, "source_path": item.payload["path"], "caption": caption.text, "truncated": caption.truncated}]

    def work(item: Item) -> list[dict[str, Any]]:
        return record(item, captioner([item.payload["path"]])[0])

    def work_batch(batch: list[Item]) -> list[Any]:
        captions = captioner([it.payload["path"] for it in batch])
        outcomes: list[Any] = []
        for item, caption in zip(batch, captions):
            try:
                outcomes.append(record(item, caption))
            except CaptionError as exc:
                outcomes.append(exc)
        return outcomes

    return run_stage(
        items,
        work,
        out_dir,
        desc="caption",
        state=state,
        progress=progress,
        batch_size=batch_size,
        work_batch=work_batch,
    )


def collect_captions(out_dir: str | Path, config: CaptionConfig = CaptionConfig()) -> Path:
    """Write the SFT dataset: ``clips/`` (media), ``data/<split>-00000-of-00001.parquet`` (Clip rows with captions),
    ``rejects.jsonl`` and ``README.md``."""
    from diffusers_cogvideox.records import Clip, clips_to_dataset

    from ..files import write_jsonl
    from ..visionrewarddb import split_of, write_parquet
    from .cards import render_stage_card
    from .media import link_or_copy, probe

    out_dir = Path(out_dir)
    with open_job(out_dir, "caption") as folder:  # an --overwrite's earlier output is deleted on success
        rows = results(out_dir)
        rejects = pending_rejects(out_dir)
        if not rows:
            raise ValueError(f"no captioned clips in {out_dir.name!r}: every clip failed (see rejects)")
        fractions = (1.0 - config.validation_fraction, config.validation_fraction, 0.0)
        by_split: dict[str, list[Clip]] = {}
        for row in rows:
            rel = Path("clips") / f"{row['clip_id']}{Path(row['media']).suffix or '.mp4'}"
            link_or_copy(row["source_path"], folder.path(rel))
            fields = {k: v for k, v in row.items() if k in Clip.__dataclass_fields__}
            if not fields.get("num_frames") and not is_image(out_dir / rel):  # a bare folder of videos: probe it
                info = probe(out_dir / rel)
                fields.update(fps=info.fps, num_frames=info.num_frames, width=info.width, height=info.height)
                fields["duration"] = info.duration
            split = split_of(row["clip_id"], fractions) if config.validation_fraction else "train"
            clip = Clip(**{**fields, "media": rel.as_posix(), "caption": row["caption"], "split": split})
            by_split.setdefault(split, []).append(clip)
        for split, clips in by_split.items():
            write_parquet(clips_to_dataset(clips), folder.path(f"data/{split}-00000-of-00001.parquet"))
        write_jsonl(folder.path("rejects.jsonl"), rejects)
        all_clips = [c for clips in by_split.values() for c in clips]
        words = [len(c.caption.split()) for c in all_clips]
        card = render_stage_card(
            pretty_name="CogVideoX SFT clips (captioned)",
            summary=(
                f"{len(all_clips)} captioned clips: the training data of the CogVideoX SFT trainer "
                "(`diffusers_cogvideox.records.Clip` rows; media under `clips/`). Captions by `vr-datasets caption` "
                f"({config.backend} backend, prompt {config.prompt!r})."
            ),
            num_rows=len(all_clips),
            features=clips_to_dataset(all_clips).features,
            settings=asdict(config),
            statistics={
                "clips": len(all_clips),
                **{f"{s} clips": len(c) for s, c in by_split.items()},
                "mean caption words": sum(words) / len(words),
                "cut-off captions kept": sum(bool(r.get("truncated")) for r in rows),
                "rejects": len(rejects),
            },
            rejects=rejects,
            splits=sorted(by_split),
            random_data=config.model in ("tiny", None),
            attribution="Captions follow the usage of THUDM/cogvlm2-llama3-caption (THUDM/CogVideo tools/caption).",
        )
        folder.write_text("README.md", str(card))
        return out_dir
