"""Inputs of CogVLM2 and CogVLM2-Video: pixels, placeholder blocks, token types.

The layouts are those built by ``build_conversation_input_ids`` in the official ``modeling_cogvlm.py``:

- image (``THUDM/cogvlm2-llama3-chat-19B``; VisionReward-Image in SAT builds the same sequence from ``<EOI>``)::

      [bos] [boi, 48*48 patches, eoi] text...          token types: 0, 1 x 2306, 0 ...

- video (``THUDM/cogvlm2-video-llama3-chat``, ``THUDM/VisionReward-Video``), each frame followed by its time index
  written as text (``tokenizer.encode(str(time_idx))``)::

      [bos] [frame 0: 66 slots] "0" [frame 1: 66 slots] "1" ... text...

Pixels: images are resized to ``image_size`` x ``image_size`` with PIL bicubic, scaled to [0, 1] and normalised with the
CLIP mean/std (``transforms.Resize(..., BICUBIC)``, ``ToTensor``, ``Normalize`` upstream). Video frames are scaled to
[0, 1], normalised, resized so that the short side is ``image_size`` (bilinear, ``ShortSideScale``) and centre-cropped
(``CenterCropVideo``), as in the official video code. Frames are sampled by the caller
(``trl_vision_reward.reward.processing_vision_reward.sample_frame_indices`` is the official one-frame-per-second rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import BatchFeature, ProcessorMixin
from transformers.image_processing_utils import BaseImageProcessor

from .configuration_cogvlm2 import COGVLM2_PAD_TOKEN_ID, LANGUAGE_TOKEN_TYPE, VISION_TOKEN_TYPE

# CLIP normalisation, as in the official transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, ...)).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# PIL modes that convert to RGB without losing meaning (alpha and palettes are dropped as PIL's convert("RGB") does,
# which is what the official code calls). 16/32-bit integer and float modes would be clipped: refused.
_CONVERTIBLE_MODES = {"RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "1", "CMYK", "YCbCr", "La"}


class CogVLM2ImageProcessor(BaseImageProcessor):
    r"""Pixels for CogVLM2: square bicubic resize for images, short-side scale + centre crop for video frames.

    Args:
        image_size: side the vision tower expects (1344 for CogVLM2, 224 for CogVLM2-Video).
        patch_size: patch side of the vision tower (14); with ``image_size`` it fixes the placeholders per image.
        image_mean, image_std: per-channel normalisation (CLIP's).
        do_convert_rgb: convert other 8-bit PIL modes (RGBA, L, P, ...) to RGB as the official code does; when False
            such images are refused.
        is_video: treat the ``images`` of a call as the frames of one video (CogVLM2-Video checkpoints): frames get
            the video transform instead of the square resize. ``videos=`` always gets the video transform.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        image_size: int = 1344,
        patch_size: int = 14,
        image_mean: Sequence[float] = CLIP_MEAN,
        image_std: Sequence[float] = CLIP_STD,
        do_convert_rgb: bool = True,
        is_video: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.patch_size = patch_size
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.do_convert_rgb = do_convert_rgb
        self.is_video = is_video

    @property
    def tokens_per_image(self) -> int:
        """Placeholder positions per image or frame: pooled patches plus boi and eoi."""
        pooled = self.image_size // self.patch_size // 2
        return pooled * pooled + 2

    def _normalize(self, pixels: torch.Tensor, channel_dim: int) -> torch.Tensor:
        shape = [1] * pixels.ndim
        shape[channel_dim] = 3
        mean = torch.tensor(self.image_mean, dtype=pixels.dtype).view(shape)
        std = torch.tensor(self.image_std, dtype=pixels.dtype).view(shape)
        return (pixels - mean) / std

    def _to_rgb_image(self, image) -> Image.Image:
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
                raise ValueError(
                    "an image given as an array must be uint8 of shape (height, width, 3); got "
                    f"dtype {image.dtype}, shape {image.shape}"
                )
            image = Image.fromarray(image)
        if not isinstance(image, Image.Image):
            raise TypeError(f"images must be PIL images or uint8 (height, width, 3) arrays; got {type(image).__name__}")
        if image.width == 0 or image.height == 0:
            raise ValueError(f"image has no pixels (size {image.size})")
        if image.mode != "RGB":
            if not self.do_convert_rgb:
                raise ValueError(f"expected an RGB image, got mode {image.mode!r}; pass do_convert_rgb=True to convert")
            if image.mode not in _CONVERTIBLE_MODES:
                raise ValueError(
                    f"image mode {image.mode!r} cannot be converted to 8-bit RGB without clipping; convert it "
                    "yourself (e.g. scale 16-bit data to 0..255) and pass an RGB image"
                )
            image = image.convert("RGB")
        return image

    def preprocess_image(self, image) -> torch.Tensor:
        """One image -> (3, image_size, image_size) float32."""
        image = self._to_rgb_image(image).resize((self.image_size, self.image_size), Image.BICUBIC)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return self._normalize(pixels, channel_dim=0)

    def preprocess_frames(self, frames) -> torch.Tensor:
        """Frames of one video -> (num_frames, 3, image_size, image_size) float32.

        ``frames`` is a uint8 array or tensor (num_frames, height, width, 3) or a list of RGB PIL images / arrays.
        """
        if isinstance(frames, (list, tuple)):
            frames = np.stack([np.asarray(self._to_rgb_image(frame)) for frame in frames])
        frames = torch.as_tensor(np.asarray(frames))
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                "video frames must be uint8 of shape (num_frames, height, width, 3); got "
                f"dtype {frames.dtype}, shape {tuple(frames.shape)}"
            )
        if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
            raise ValueError(f"video has no pixels (shape {tuple(frames.shape)})")
        clip = frames.permute(3, 0, 1, 2).to(torch.float32) / 255.0  # (3, T, H, W)
        clip = self._normalize(clip, channel_dim=0)
        height, width = clip.shape[-2:]
        size = self.image_size
        if width < height:  # ShortSideScale: floor of the scaled long side
            new_height, new_width = int(math.floor(height / width * size)), size
        else:
            new_height, new_width = size, int(math.floor(width / height * size))
        clip = F.interpolate(clip, size=(new_height, new_width), mode="bilinear", align_corners=False)
        top = int(round((new_height - size) / 2.0))
        left = int(round((new_width - size) / 2.0))
        clip = clip[..., top : top + size, left : left + size]
        return clip.permute(1, 0, 2, 3).contiguous()

    def __call__(self, images=None, videos=None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """Images and/or videos -> ``pixel_values`` (all images, then all frames, stacked).

        With ``is_video`` the images are taken as the frames of one video, in order.
        """
        if images is not None and not isinstance(images, (list, tuple)):
            images = [images]
        if self.is_video and images:
            videos, images = [list(images), *(videos or [])], None
        pixel_values = [self.preprocess_image(image) for image in images or []]
        for frames in videos or []:
            pixel_values.extend(self.preprocess_frames(frames))
        data = {"pixel_values": torch.stack(pixel_values)} if pixel_values else {}
        return BatchFeature(data=data, tensor_type=return_tensors)


class CogVLM2Processor(ProcessorMixin):
    r"""Tokenizer + pixels + placeholder layout for CogVLM2 (image) and CogVLM2-Video.

    Each text gets at most one image (``images``) or one video (``videos``), as upstream ("not support multi images
    by now"). The text is used as it is: format it with a template first (``trl_vision_reward.reward.cogvlm2.templates``).

    Args:
        image_processor: a ``CogVLM2ImageProcessor`` (its ``image_size`` must be the checkpoint's).
        tokenizer: the Llama-3 tokenizer of the checkpoint.
        max_num_frames: most frames one video may have (24 upstream).
        padding_side: side of the padding when texts differ in length; "left" suits generation and prefix scoring.
    """

    def __init__(
        self, image_processor=None, tokenizer=None, max_num_frames: int = 24, padding_side: str = "left", **kwargs
    ):
        self.max_num_frames = max_num_frames
        self.padding_side = padding_side
        super().__init__(image_processor, tokenizer, **kwargs)

    @property
    def tokens_per_image(self) -> int:
        return self.image_processor.tokens_per_image

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return COGVLM2_PAD_TOKEN_ID if pad is None else pad

    def _vision_ids(self, kind: str | None, num_frames: int, time_indices: Sequence[int] | None):
        """Token ids and types of the vision part that follows ``bos``."""
        block = [self.pad_token_id] * self.tokens_per_image
        if kind is None:
            return [], []
        if kind == "image":
            return block, [VISION_TOKEN_TYPE] * len(block)
        if time_indices is None:
            time_indices = range(num_frames)
        if len(time_indices) != num_frames:
            raise ValueError(f"got {len(time_indices)} time indices for {num_frames} frames")
        ids, types = [], []
        for index in time_indices:
            time_ids = self.tokenizer.encode(str(index), add_special_tokens=False)
            ids += block + time_ids
            types += [VISION_TOKEN_TYPE] * len(block) + [LANGUAGE_TOKEN_TYPE] * len(time_ids)
        return ids, types

    def __call__(
        self,
        text: str | list[str] | None = None,
        images=None,
        videos=None,
        video_time_indices: list[Sequence[int] | None] | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Build ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``pixel_values``.

        Args:
            text: one prompt or a list; ``None`` means the empty prompt for every image/video.
            images: ``None``, one image, or one image (or ``None``) per text.
            videos: ``None``, or one video (frames: uint8 (T, H, W, 3) or a list of images) or ``None`` per text.
            video_time_indices: per video, the time index written after each frame (default ``0..T-1``, which are the
                seconds under the official one-frame-per-second sampling).
            padding_side: override of the processor's padding side.
        """
        if images is not None and videos is not None:
            raise ValueError("pass images or videos, not both: CogVLM2 takes one image or one video per prompt")
        media = images if images is not None else videos
        kind = "image" if images is not None else ("video" if videos is not None else None)
        if media is not None and not isinstance(media, (list, tuple)):
            media = [media]
        if text is None:
            text = [""] * (len(media) if media is not None else 1)
        texts = [text] if isinstance(text, str) else list(text)
        if media is None:
            media = [None] * len(texts)
        if len(media) != len(texts):
            raise ValueError(
                f"got {len(texts)} text(s) and {len(media)} {kind}(s): CogVLM2 takes one {kind} (or None) per text"
            )
        time_indices = video_time_indices if video_time_indices is not None else [None] * len(texts)

        pixel_values, sequences = [], []
        for prompt, item, times in zip(texts, media, time_indices):
            if isinstance(item, (list, tuple)) and kind == "image":
                raise ValueError("CogVLM2 takes one image per prompt; got a list of images for one text")
            num_frames = 0
            if item is not None and kind == "image":
                pixel_values.append(self.image_processor.preprocess_image(item).unsqueeze(0))
            elif item is not None:
                frames = self.image_processor.preprocess_frames(item)
                num_frames = frames.shape[0]
                if num_frames > self.max_num_frames:
                    raise ValueError(
                        f"CogVLM2-Video takes at most {self.max_num_frames} frames per video; got {num_frames}. "
                        "Sample them first (the official rule, one frame per second: "
                        "trl_vision_reward.reward.processing_vision_reward.sample_frame_indices)."
                    )
                pixel_values.append(frames)
            vision_ids, vision_types = self._vision_ids(kind if item is not None else None, num_frames, times)
            text_ids = self.tokenizer.encode(prompt, add_special_tokens=False)
            ids = [self.tokenizer.bos_token_id] + vision_ids + text_ids
            types = [LANGUAGE_TOKEN_TYPE] + vision_types + [LANGUAGE_TOKEN_TYPE] * len(text_ids)
            sequences.append((ids, types))

        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right'; got {side!r}")
        length = max(len(ids) for ids, _ in sequences)
        input_ids, token_type_ids, attention_mask = [], [], []
        for ids, types in sequences:
            pad = length - len(ids)
            fill_ids, fill_types, fill_mask = [self.pad_token_id] * pad, [LANGUAGE_TOKEN_TYPE] * pad, [0] * pad
            if side == "left":
                input_ids.append(fill_ids + ids)
                token_type_ids.append(fill_types + types)
                attention_mask.append(fill_mask + [1] * len(ids))
            else:
                input_ids.append(ids + fill_ids)
                token_type_ids.append(types + fill_types)
                attention_mask.append([1] * len(ids) + fill_mask)

        data = {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "attention_mask": torch.tensor(attention_mask, dtype=torch.long),
            "token_type_ids": torch.tensor(token_type_ids, dtype=torch.long),
        }
        if pixel_values:
            data["pixel_values"] = torch.cat(pixel_values)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "token_type_ids", "pixel_values"]


__all__ = ["CogVLM2ImageProcessor", "CogVLM2Processor"]
