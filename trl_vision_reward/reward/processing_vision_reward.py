"""``VisionRewardProcessor``: media loading, the official frame sampling, and question prompts over a shared prefix.

Every checklist question is asked about the same media, so the model input is split in two:
``prefix`` (the media block, identical for every question) and ``suffix`` (one question, then the answer cue). The
scorer encodes the prefix once and answers all suffixes over its KV cache; the naive and the official per-question
paths feed ``prefix + suffix`` token ids, so all three see exactly the same tokens.

How a backbone wants the media block and the question phrased is a :class:`PromptTemplate` (registered by name, stored
in ``processor_config.json``); the Qwen2-VL family ships here, other backbones register their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, ProcessorMixin

from diffusers_cogvideox.video_io import (  # noqa: F401  (the media readers, named here for the processor's users)
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    guess_modality,
    load_image,
    read_video,
    sample_frame_indices,
)
from diffusers_cogvideox.video_io import load_video as _load_video

MediaInput = str | Path | Image.Image | np.ndarray | torch.Tensor | Sequence[Image.Image]


# ---------------------------------------------------------------------- prompt templates
@dataclass(frozen=True)
class PromptTemplate:
    """How one backbone is asked a yes/no question about media.

    ``prefix`` wraps the media block (``{media}``); each image or video frame becomes ``image_block`` with
    ``{image_tokens}`` replaced by ``image_token`` repeated once per visual token (Qwen2-VL: grid t*h*w / merge**2;
    otherwise ``image_seq_length``) and ``{frame_index}`` by the frame's 0-based position among the sampled frames
    (= its second, with the official sampling); frames are joined by ``frame_separator``. ``question`` wraps one question
    (``{question}``) and ends with the answer cue. ``yes``/``no`` are the answer strings whose first tokens are read.
    """

    name: str
    prefix: str = "{media}"
    image_block: str = "{image_tokens}"
    image_token: str = "<image>"
    image_seq_length: int | None = None
    frame_separator: str = ""
    question: str = "Question: {question} Short answer:"
    yes: str = "yes"
    no: str = "no"
    mm_token_type_ids: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptTemplate:
        return cls(**data)


PROMPT_TEMPLATES: dict[str, PromptTemplate] = {}


def register_prompt_template(template: PromptTemplate, exist_ok: bool = False) -> PromptTemplate:
    """Make a template available by name (e.g. ``"cogvlm2"`` from the CogVLM2 backbone module)."""
    if template.name in PROMPT_TEMPLATES and not exist_ok and PROMPT_TEMPLATES[template.name] != template:
        raise ValueError(f"prompt template {template.name!r} is already registered")
    PROMPT_TEMPLATES[template.name] = template
    return template


register_prompt_template(
    PromptTemplate(
        name="qwen2_vl",
        prefix="<|im_start|>user\n{media}",
        image_block="<|vision_start|>{image_tokens}<|vision_end|>",
        image_token="<|image_pad|>",
        question="{question} Answer yes or no.<|im_end|>\n<|im_start|>assistant\n",
        yes="yes",
        no="no",
        mm_token_type_ids=True,
    )
)


def get_prompt_template(template: str | dict | PromptTemplate | None) -> PromptTemplate:
    if template is None:
        return PROMPT_TEMPLATES["qwen2_vl"]
    if isinstance(template, PromptTemplate):
        return template
    if isinstance(template, dict):
        return PromptTemplate.from_dict(template)
    if template not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; registered: {sorted(PROMPT_TEMPLATES)}")
    return PROMPT_TEMPLATES[template]


# ---------------------------------------------------------------------- frame sampling and media loading
# ---------------------------------------------------------------------- the processor
FRAME_SAMPLING = {
    "per_second": "the frame nearest each whole second, up to max_frames (the official CogVLM2-Video sampling)",
    "first": "the first max_frames frames (clips of a second or so keep every frame)",
    "uniform": "max_frames frames evenly spaced over the clip, the first and the last included",
}


class VisionRewardProcessor(ProcessorMixin):
    """Image processor + tokenizer of the backbone, a :class:`PromptTemplate`, and the frame-sampling settings.

    Videos are shown to the backbone as their sampled frames, each an image block (the official method feeds 24 or
    fewer frames too); this works for any image-capable backbone and needs no video decoder in the processor.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        prompt_template: str | dict | PromptTemplate | None = None,
        max_frames: int = 24,
        chat_template: str | None = None,
        frame_sampling: str = "per_second",
        **kwargs: Any,
    ):
        template = get_prompt_template(prompt_template)
        self.prompt_template = template.to_dict()
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1; got {max_frames}")
        if frame_sampling not in FRAME_SAMPLING:
            raise ValueError(f"frame_sampling must be one of {list(FRAME_SAMPLING)}; got {frame_sampling!r}")
        self.max_frames = int(max_frames)
        self.frame_sampling = frame_sampling
        super().__init__(image_processor, tokenizer, chat_template=chat_template, **kwargs)

    @property
    def template(self) -> PromptTemplate:
        return PromptTemplate.from_dict(self.prompt_template)

    # ---- answers
    def answer_token_ids(self) -> tuple[int, int]:
        """Ids of the first tokens of the template's yes and no answers (what greedy decoding would emit first)."""
        t = self.template
        yes = self.tokenizer.encode(t.yes, add_special_tokens=False)
        no = self.tokenizer.encode(t.no, add_special_tokens=False)
        if not yes or not no or yes[0] == no[0]:
            raise ValueError(f"the tokenizer must give {t.yes!r} and {t.no!r} distinct first tokens; got {yes}, {no}")
        return yes[0], no[0]

    # ---- media
    def load_media(self, media: MediaInput, modality: str | None = None, fps: float | None = None) -> list[Image.Image]:
        """The images the backbone sees: one for an image, the sampled frames for a video."""
        modality = modality or guess_modality(media)
        if modality == "image":
            return [load_image(media)]
        if modality == "video":
            sampling = getattr(self, "frame_sampling", "per_second")
            if sampling == "uniform":  # short clips: decode them whole, keep evenly spaced frames
                frames = _load_video(media)
                keep = np.linspace(0, len(frames) - 1, min(self.max_frames, len(frames))).round().astype(int)
                return [frames[i] for i in keep]
            return _load_video(media, self.max_frames, per_second=sampling == "per_second", fps=fps)
        raise ValueError(f"modality must be 'image' or 'video'; got {modality!r}")

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def prefix_inputs(self, images: list[Image.Image], return_tensors: str = "pt") -> BatchFeature:
        """Model inputs for the shared prefix (batch of 1): token ids with expanded visual tokens + pixel inputs."""
        t = self.template
        if not images:
            raise MediaError("no images or frames to score")
        visual = dict(self.image_processor(images=images, return_tensors="pt"))
        blocks = []
        for i in range(len(images)):
            block = t.image_block.replace("{image_tokens}", t.image_token * self._num_image_tokens(visual, i))
            blocks.append(block.replace("{frame_index}", str(i)))
        text = t.prefix.replace("{media}", t.frame_separator.join(blocks))
        ids = self._tokens(text)
        data: dict[str, Any] = {
            "input_ids": torch.tensor([ids]),
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
        }
        if t.mm_token_type_ids:
            image_id = self.tokenizer.convert_tokens_to_ids(t.image_token)
            data["mm_token_type_ids"] = (data["input_ids"] == image_id).long()
        data.update(visual)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _num_image_tokens(self, visual: dict, i: int) -> int:
        t = self.template
        if "image_grid_thw" in visual:
            merge = int(getattr(self.image_processor, "merge_size", 1))
            return int(visual["image_grid_thw"][i].prod()) // (merge * merge)
        if t.image_seq_length is None:
            raise ValueError(f"prompt template {t.name!r} needs image_seq_length for this image processor")
        return int(t.image_seq_length)

    def question_token_ids(self, questions: Sequence[str]) -> list[list[int]]:
        """Token ids of each question suffix (already formatted, i.e. ``[[prompt]]`` filled in)."""
        t = self.template
        out = []
        for q in questions:
            ids = self._tokens(t.question.replace("{question}", q))
            if not ids:
                raise ValueError(f"question {q!r} tokenizes to nothing")
            out.append(ids)
        return out

    def __call__(
        self,
        images: MediaInput | None = None,
        videos: MediaInput | None = None,
        text: str | Sequence[str] | None = None,
        fps: float | None = None,
        return_tensors: str = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Full inputs (prefix + one question per row, right-padded) for one image or one video and its questions,
        e.g. for supervised fine-tuning. Scoring uses :meth:`prefix_inputs` and :meth:`question_token_ids`."""
        if (images is None) == (videos is None):
            raise ValueError("pass exactly one of images=... or videos=...")
        frames = self.load_media(images, "image") if images is not None else self.load_media(videos, "video", fps)
        prefix = self.prefix_inputs(frames)
        questions = [text] if isinstance(text, str) else list(text or [])
        if not questions:
            return prefix
        suffixes = self.question_token_ids(questions)
        p = prefix["input_ids"][0].tolist()
        rows = [p + s for s in suffixes]
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        data = {k: v for k, v in prefix.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        data.update(input_ids=ids, attention_mask=mask)
        if "mm_token_type_ids" in prefix:
            tt = torch.zeros_like(ids)
            tt[:, : prefix["mm_token_type_ids"].shape[1]] = prefix["mm_token_type_ids"]
            data["mm_token_type_ids"] = tt
        if len(rows) > 1:  # one copy of the pixels per row
            for key in ("pixel_values", "image_grid_thw"):
                if key in data:
                    data[key] = torch.cat([data[key]] * len(rows))
        return BatchFeature(data=data, tensor_type=return_tensors)

    @classmethod
    def from_backbone_processor(cls, backbone_processor, prompt_template=None, max_frames: int = 24, **kwargs):
        """Take the image processor and tokenizer of a backbone's processor (e.g. a ``Qwen2VLProcessor``)."""
        return cls(
            backbone_processor.image_processor, backbone_processor.tokenizer, prompt_template, max_frames, **kwargs
        )


__all__ = [
    "MediaError",
    "PromptTemplate",
    "VisionRewardProcessor",
    "get_prompt_template",
    "load_image",
    "register_prompt_template",
    "sample_frame_indices",
]
