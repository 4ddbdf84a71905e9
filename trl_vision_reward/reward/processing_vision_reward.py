"""``VisionRewardProcessor``: media loading, the official frame sampling, and question prompts over a shared prefix.

Every checklist question is asked about the same media, so the model input is split in two:
``prefix`` (the media block, identical for every question) and ``suffix`` (one question, then the answer cue). The
scorer encodes the prefix once and answers all suffixes over its KV cache; the naive and the official per-question
paths feed ``prefix + suffix`` token ids, so all three see exactly the same tokens.

How a backbone wants the media block and the question phrased is a :class:`PromptTemplate` (registered by name, stored
in ``processor_config.json``); the Qwen2-VL family ships here, other backbones register their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, ProcessorMixin

MediaInput = str | Path | Image.Image | np.ndarray | torch.Tensor | Sequence[Image.Image]
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class MediaError(ValueError):
    """An image or video that cannot be scored (unreadable, empty, no frames); the message says which and why."""


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


def _to_pil(frame: np.ndarray | torch.Tensor | Image.Image) -> Image.Image:
    if isinstance(frame, Image.Image):
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
    return Image.fromarray(arr)


def load_image(image: MediaInput) -> Image.Image:
    """An RGB PIL image from a path, PIL image or array; raises :class:`MediaError` naming the problem."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise MediaError(f"image file not found: {path}")
        if path.stat().st_size == 0:
            raise MediaError(f"image file is empty: {path}")
        try:
            with Image.open(path) as im:
                im.load()
                return im.convert("RGB")
        except Exception as err:  # PIL raises several types for corrupt files
            raise MediaError(f"cannot read image {path}: {err}") from err
    img = _to_pil(image)
    if img.width == 0 or img.height == 0:
        raise MediaError(f"image is empty: {img.width}x{img.height}")
    return img


def read_video(path: str | Path) -> tuple[list[np.ndarray], float]:
    """All frames (HxWx3 uint8) and the fps of a video file, decoded with imageio's ffmpeg reader."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"video file is empty: {path}")
    try:
        reader = imageio.get_reader(str(path), "ffmpeg")
        fps = float(reader.get_meta_data().get("fps") or 0.0)
        frames = [np.asarray(f) for f in reader]
        reader.close()
    except Exception as err:
        raise MediaError(f"cannot read video {path}: {err}") from err
    if not frames:
        raise MediaError(f"video has no frames: {path}")
    return frames, fps


def load_video(video: MediaInput, fps: float | None = None, max_frames: int = 24) -> list[Image.Image]:
    """The frames the official method shows the model: nearest frame to each whole second, up to ``max_frames``.

    ``video`` is a file path, a (T, H, W, 3) array/tensor, or a list of frames; arrays and lists need ``fps``
    (frames already sampled can be passed with ``fps=1``)."""
    if isinstance(video, (str, Path)):
        frames, file_fps = read_video(video)
        fps = fps or file_fps
    elif isinstance(video, (np.ndarray, torch.Tensor)):
        if video.ndim != 4:
            raise MediaError(f"a video array must be (frames, height, width, 3); got shape {tuple(video.shape)}")
        frames = list(video)
    else:
        frames = list(video)
    if len(frames) == 0:
        raise MediaError("video has no frames")
    if fps is None:
        raise MediaError("fps is needed to sample frames from an in-memory video; pass fps=... (1 if pre-sampled)")
    return [_to_pil(frames[i]) for i in sample_frame_indices(len(frames), fps, max_frames)]


def guess_modality(media: MediaInput) -> str:
    if isinstance(media, (str, Path)):
        suffix = Path(media).suffix.lower()
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
    if isinstance(media, Image.Image):
        return "image"
    return "video"


# ---------------------------------------------------------------------- the processor
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
        **kwargs: Any,
    ):
        template = get_prompt_template(prompt_template)
        self.prompt_template = template.to_dict()
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1; got {max_frames}")
        self.max_frames = int(max_frames)
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
            return load_video(media, fps=fps, max_frames=self.max_frames)
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
    "load_video",
    "register_prompt_template",
    "sample_frame_indices",
]
