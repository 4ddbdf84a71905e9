"""What the text-, image- and video-to-video CogVideoX pipelines share, written once.

The three pipelines differ only in how they build the starting latents (pure noise; noise plus an image latent
concatenated on channels; a noised video latent). Everything else lives here as small named steps that their
``__call__`` methods read top to bottom: checking inputs, encoding the prompt, preparing timesteps and noise, the
positional grid, the guided denoising loop (with dynamic CFG), decoding, loading and step caching.

Variant rules (``VariantRules``) are derived from the transformer config: CogVideoX 1.5 is the config with
``patch_size_t`` set.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import CogVideoXDPMScheduler, DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.loaders import CogVideoXLoraLoaderMixin
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from ..models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from ..models.transformer_cogvideox import CogVideoXTransformer3DModel
from .pipeline_output import CogVideoXPipelineOutput

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt", "latent")
DYNAMIC_CFG_MODES = ("step", "timestep")


# ----------------------------------------------------------------------------------------------------------------------
# Variants: frame counts, default sizes
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantRules:
    """What a CogVideoX generation supports: frame counts ``frame_step * k + 1`` up to ``max_frames``, and defaults."""

    version: str
    frame_step: int
    max_frames: int
    default_num_frames: int
    default_size: tuple[int, int]  # (height, width) the model was trained at

    @property
    def frame_counts(self) -> list[int]:
        return list(range(self.frame_step + 1, self.max_frames + 1, self.frame_step))


COGVIDEOX_1_0 = VariantRules("1.0", frame_step=8, max_frames=49, default_num_frames=49, default_size=(480, 720))
COGVIDEOX_1_5 = VariantRules("1.5", frame_step=16, max_frames=161, default_num_frames=81, default_size=(768, 1360))


def variant_rules(transformer_config) -> VariantRules:
    """CogVideoX 1.5 patches time (``patch_size_t=2``); 1.0 does not."""
    return COGVIDEOX_1_5 if transformer_config.patch_size_t is not None else COGVIDEOX_1_0


def default_video_shape(transformer_config, vae_scale_factor_spatial: int = 8) -> tuple[int, int, int]:
    """``(num_frames, height, width)`` a user gets when passing none: 49x480x720 for 1.0, 81x768x1360 for 1.5.

    The size is the variant's trained size when it fits the config's positional grid (``sample_height/width``) and the
    grid's full size otherwise (tiny test configs); the reference pipeline defaults 1.5 to the grid's 2400x2400.
    """
    rules = variant_rules(transformer_config)
    grid_h = transformer_config.sample_height * vae_scale_factor_spatial
    grid_w = transformer_config.sample_width * vae_scale_factor_spatial
    height, width = rules.default_size
    if height > grid_h or width > grid_w or rules is COGVIDEOX_1_0:
        height, width = grid_h, grid_w
    num_frames = transformer_config.sample_frames
    if num_frames not in rules.frame_counts:
        num_frames = rules.default_num_frames
    return num_frames, height, width


def check_num_frames(num_frames: int, rules: VariantRules, what: str = "num_frames") -> None:
    if not isinstance(num_frames, (int, np.integer)) or int(num_frames) not in rules.frame_counts:
        counts = rules.frame_counts
        raise ValueError(
            f"{what} must be {rules.frame_step}*k+1 ({counts[0]}, {counts[1]}, ..., {counts[-1]}) "
            f"for CogVideoX {rules.version}; got {num_frames}"
        )


def check_video_shape(
    num_frames: int, height: int, width: int, transformer_config, vae_scale_factor_spatial: int, what="num_frames"
) -> None:
    """Frame count and size the variant supports (learned positions: exactly the trained shape)."""
    check_num_frames(num_frames, variant_rules(transformer_config), what)
    p = transformer_config.patch_size
    multiple = vae_scale_factor_spatial * p
    if not all(isinstance(n, (int, np.integer)) and n > 0 for n in (height, width)):
        raise ValueError(f"height and width must be positive integers; got {height}x{width}")
    if height % multiple or width % multiple:
        raise ValueError(
            f"height and width must be multiples of {multiple} (VAE downsampling {vae_scale_factor_spatial} x patch "
            f"size {p}); got {height}x{width}"
        )
    grid_h = transformer_config.sample_height * vae_scale_factor_spatial
    grid_w = transformer_config.sample_width * vae_scale_factor_spatial
    trained_shape = (transformer_config.sample_frames, grid_h, grid_w)
    if transformer_config.use_learned_positional_embeddings and (num_frames, height, width) != trained_shape:
        raise ValueError(
            f"this transformer's learned positional embeddings (CogVideoX-5b-I2V) cover exactly {trained_shape[0]} "
            f"frames at {grid_h}x{grid_w}; got {num_frames} frames at {height}x{width}"
        )
    if transformer_config.patch_size_t is not None and (height > grid_h or width > grid_w):
        raise ValueError(
            f"CogVideoX 1.5's positional grid covers at most {grid_h}x{grid_w} pixels; got {height}x{width}"
        )


def latent_frame_layout(num_frames: int, temporal_compression: int, patch_size_t: int | None) -> tuple[int, int]:
    """``(latent_frames, pad)``: latents the VAE makes of ``num_frames`` pixel frames, and the front padding frames
    CogVideoX 1.5 adds so that the latent count divides ``patch_size_t`` (dropped again before decoding)."""
    latent_frames = (num_frames - 1) // temporal_compression + 1
    pad = (-latent_frames) % patch_size_t if patch_size_t else 0
    return latent_frames, pad


def num_frames_for_latents(latent_count: int, rules: VariantRules, temporal_compression: int, patch_size_t) -> int:
    """The video frame count whose latents (1.5's padding frame included) number ``latent_count``: the inverse of
    ``latent_frame_layout`` over the variant's frame counts."""
    counts = {sum(latent_frame_layout(n, temporal_compression, patch_size_t)): n for n in rules.frame_counts}
    if latent_count not in counts:
        padding = ", the front padding frame included" if patch_size_t else ""
        raise ValueError(
            f"`latents` must have {', '.join(map(str, sorted(counts)))} latent frames for CogVideoX {rules.version} "
            f"({rules.frame_step}*k+1 video frames{padding}); got {latent_count}"
        )
    return counts[latent_count]


# ----------------------------------------------------------------------------------------------------------------------
# Guidance
# ----------------------------------------------------------------------------------------------------------------------


def dynamic_cfg_scale(guidance_scale: float, progress: float, exponent: float = 5.0) -> float:
    """SAT ``DynamicCFG``: w(p) = 1 + w * (1 - cos(pi * p^exponent)) / 2, from 1 + w at p = 1 down towards 1."""
    return 1 + guidance_scale * (1 - math.cos(math.pi * progress**exponent)) / 2


@dataclass(frozen=True)
class GuidanceSchedule:
    """Classifier-free guidance for one call.

    ``dynamic_cfg_mode="step"`` feeds the cosine schedule the fraction of steps left, p = (N - i) / N with i the step's
    index in the full N-step schedule (``step_offset`` = steps a video-to-video call skips): the smooth decay
    ``DynamicCFG`` describes. ``"timestep"`` feeds it p = (n - t) / n with t the raw scheduler timestep (0..999) and n
    the steps run, as diffusers' reference pipelines and the SAT sampler do (``num_steps - timestep``); the scale then
    oscillates between 1 and 1 + w. Keep it to reproduce reference outputs.
    """

    guidance_scale: float
    use_dynamic_cfg: bool = False
    dynamic_cfg_mode: str = "step"
    num_inference_steps: int = 50
    step_offset: int = 0

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self.guidance_scale > 1.0

    def scale_at(self, step_index: int, timestep: torch.Tensor, steps_run: int) -> float:
        if not self.use_dynamic_cfg:
            return self.guidance_scale
        if self.dynamic_cfg_mode == "timestep":
            progress = (steps_run - timestep.item()) / steps_run
        else:
            n = self.num_inference_steps
            progress = (n - (step_index + self.step_offset)) / n
        return dynamic_cfg_scale(self.guidance_scale, progress)


def guided_prediction(noise_pred: torch.Tensor, scale: float) -> torch.Tensor:
    """CFG on a ``[uncond; cond]`` batch: u + s (c - u)."""
    uncond, cond = noise_pred.chunk(2)
    return uncond + scale * (cond - uncond)


def text_embeddings_for_step(
    prompt_embeds: torch.Tensor, negative_prompt_embeds: torch.Tensor | None, do_cfg: bool, num_videos: int
) -> torch.Tensor:
    """The transformer's text input for one step: ``[negative; positive]`` when guiding, the positive rows otherwise.

    ``prompt_embeds`` may hold either layout: the pipeline keeps ``[negative; positive]`` while guiding, and a callback
    that ends guidance may keep only the positive rows (as diffusers' CFG cut-off callbacks do) or leave both.
    """
    rows = prompt_embeds.shape[0]
    if rows == 2 * num_videos:
        return prompt_embeds if do_cfg else prompt_embeds[num_videos:]
    if rows == num_videos and not do_cfg:
        return prompt_embeds
    if rows == num_videos and negative_prompt_embeds is not None and negative_prompt_embeds.shape[0] == num_videos:
        return torch.cat([negative_prompt_embeds, prompt_embeds])
    raise ValueError(
        f"`prompt_embeds` must have {num_videos} rows (one per video) or {2 * num_videos} ([negative; positive]) for "
        f"{num_videos} videos{' with guidance' if do_cfg else ''}; got {rows} (returned by callback_on_step_end?)"
    )


def scale_set_by_callback(value, guided: bool) -> float:
    """The guidance scale a ``callback_on_step_end`` left in ``pipe._guidance_scale``, checked.

    It rules every later step, dynamic CFG or not; ``<= 1`` turns guidance off (one conditional transformer pass per
    step). Guidance can only come back on in a call that started with it, since only then were negatives encoded.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"a callback set `pipe._guidance_scale` to {value!r}; it must be a number")
    if value > 1 and not guided:
        raise ValueError(
            f"a callback set `pipe._guidance_scale` to {value}, but this call started with guidance_scale <= 1, so no "
            "negative prompt embeddings exist; start the call with guidance_scale > 1 to switch guidance on and off"
        )
    return float(value)


@dataclass
class Conditioning:
    """Everything the transformer sees besides the noisy latents, already duplicated for CFG where needed."""

    prompt_embeds: torch.Tensor  # [neg; pos] when guiding
    negative_prompt_embeds: torch.Tensor | None = None
    image_latents: torch.Tensor | None = None  # I2V: concatenated to the latents on channels
    ofs: torch.Tensor | None = None  # CogVideoX 1.5 I2V
    rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Positional grid
# ----------------------------------------------------------------------------------------------------------------------


def rotary_embeddings(transformer_config, height, width, latent_frames, vae_scale_factor_spatial, device):
    """3D RoPE ``(cos, sin)`` for a ``latent_frames x height x width`` video, or ``None`` for sin-cos models."""
    if not transformer_config.use_rotary_positional_embeddings:
        return None
    from ..models.embeddings import rotary_embeddings_for_video

    return rotary_embeddings_for_video(
        transformer_config,
        height,
        width,
        latent_frames,
        vae_scale_factor_spatial=vae_scale_factor_spatial,
        device=device,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Image and video inputs
# ----------------------------------------------------------------------------------------------------------------------


def check_image(image, batch_size: int) -> None:
    """One conditioning image, or one per prompt: PIL (RGB), ``[H, W, 3]`` arrays or ``[3, H, W]`` tensors."""
    if image is None:
        raise ValueError("image-to-video needs an `image`")
    batched = isinstance(image, (list, tuple)) or (isinstance(image, (torch.Tensor, np.ndarray)) and image.ndim == 4)
    images = list(image) if batched else [image]
    if len(images) not in (1, batch_size):
        raise ValueError(f"pass one image or one per prompt ({batch_size}); got {len(images)} images")
    for img in images:
        _check_frame(img, "image")


def _check_frame(img, what: str) -> tuple[int, int]:
    if isinstance(img, PIL.Image.Image):
        if img.mode != "RGB":
            raise ValueError(f"{what} must be an RGB image; got mode {img.mode!r} (use .convert('RGB'))")
        w, h = img.size
    elif isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"{what} arrays must be [H, W, 3] (RGB); got shape {img.shape}")
        h, w = img.shape[:2]
    elif isinstance(img, torch.Tensor):
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"{what} tensors must be [3, H, W] (RGB); got shape {tuple(img.shape)}")
        h, w = img.shape[1:]
    else:
        raise ValueError(f"{what} must be a PIL image, a numpy array or a torch tensor; got {type(img).__name__}")
    if h == 0 or w == 0:
        raise ValueError(f"{what} is empty ({w}x{h})")
    return int(h), int(w)


def video_batch(video) -> list:
    """A batch of videos as a list of per-video frame sequences."""
    if isinstance(video, (torch.Tensor, np.ndarray)):
        if video.ndim == 5:
            return list(video)
        if video.ndim == 4:
            return [video]
        raise ValueError(f"a video must be 4D ([F, ...]) or a 5D batch; got shape {tuple(video.shape)}")
    if isinstance(video, (list, tuple)) and len(video) > 0:
        first = video[0]
        if isinstance(first, (list, tuple)) or (isinstance(first, (torch.Tensor, np.ndarray)) and first.ndim == 4):
            return list(video)
        return [list(video)]
    raise ValueError(
        f"`video` must be a list of frames, a 4D array/tensor or a batch of those; got {type(video).__name__}"
    )


def check_video(video, batch_size: int) -> int:
    """Check one video (or one per prompt) and return its frame count."""
    if video is None:
        raise ValueError("video-to-video needs a `video` (or the `latents` to start from)")
    videos = video_batch(video)
    if len(videos) not in (1, batch_size):
        raise ValueError(f"pass one video or one per prompt ({batch_size}); got {len(videos)} videos")
    frame_counts = set()
    for vid in videos:
        frames = list(vid)  # PIL frames, [H, W, 3] arrays or [3, H, W] tensors
        sizes = {_check_frame(frame, "video frames") for frame in frames}
        if len(sizes) > 1:
            raise ValueError(f"all frames of a video must have the same size; got {sorted(sizes)}")
        frame_counts.add(len(frames))
    if len(frame_counts) > 1:
        raise ValueError(f"all videos must have the same number of frames; got {sorted(frame_counts)}")
    return frame_counts.pop()


def retrieve_latents(encoder_output, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of the VAE posterior (the reference pipelines' ``retrieve_latents(..., sample_mode="sample")``)."""
    if hasattr(encoder_output, "latent_dist"):
        return encoder_output.latent_dist.sample(generator)
    return encoder_output.latents


# ----------------------------------------------------------------------------------------------------------------------
# The shared pipeline
# ----------------------------------------------------------------------------------------------------------------------


class CogVideoXBasePipeline(DiffusionPipeline, CogVideoXLoraLoaderMixin):
    """Components, loading and the steps shared by the CogVideoX pipelines.

    Args:
        tokenizer: T5 tokenizer.
        text_encoder: T5 v1.1 XXL encoder (``T5EncoderModel``).
        vae: ``AutoencoderKLCogVideoX``.
        transformer: ``CogVideoXTransformer3DModel``.
        scheduler: ``CogVideoXDDIMScheduler`` or ``CogVideoXDPMScheduler``.
    """

    _optional_components: list[str] = []
    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]
    # in_channels of the transformer relative to the VAE's latent channels: 2 for image-to-video
    _transformer_channel_multiple = 1

    def __init__(self, tokenizer, text_encoder, vae, transformer, scheduler):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
        )
        self.vae_scale_factor_spatial = 2 ** (len(self.vae.config.block_out_channels) - 1) if vae is not None else 8
        self.vae_scale_factor_temporal = self.vae.config.temporal_compression_ratio if vae is not None else 4
        self.vae_scaling_factor_image = self.vae.config.scaling_factor if vae is not None else 0.7
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    # ---- loading ---------------------------------------------------------------------------------------------------

    @classmethod
    def load_config(cls, pretrained_model_name_or_path: str | os.PathLike | dict, **kwargs):
        """diffusers' ``load_config``, reading the official ``model_index.json`` entries of diffusers' transformer and
        VAE classes as this package's classes of the same name.

        This is the one hook ``DiffusionPipeline.from_pretrained`` offers for choosing component classes, so loading
        stays diffusers' own: every argument check (``variant``, ``quantization_config``, ``device_map``, ...) happens
        first with diffusers' exception types, ``torch_dtype`` may be a ``{component: dtype, "default": dtype}``
        mapping, and components passed as keyword arguments are used as they are.
        """
        loaded = super().load_config(pretrained_model_name_or_path, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        for name, our_class in ("transformer", CogVideoXTransformer3DModel), ("vae", AutoencoderKLCogVideoX):
            if list(config.get(name) or ()) == ["diffusers", our_class.__name__]:
                config[name] = [our_class.__module__, our_class.__name__]
        return loaded

    # ---- properties the reference pipelines expose -------------------------------------------------------------------

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def attention_kwargs(self):
        return self._attention_kwargs

    @property
    def current_timestep(self):
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def variant_rules(self) -> VariantRules:
        return variant_rules(self.transformer.config)

    def check_video_shape(self, num_frames: int, height: int, width: int, what: str = "num_frames") -> None:
        check_video_shape(num_frames, height, width, self.transformer.config, self.vae_scale_factor_spatial, what)

    def default_video_shape(self) -> tuple[int, int, int]:
        """``(num_frames, height, width)`` used when a call leaves them out."""
        return default_video_shape(self.transformer.config, self.vae_scale_factor_spatial)

    def fill_defaults(self, num_frames, height, width, max_sequence_length) -> tuple[int, int, int, int]:
        """The call's ``num_frames, height, width, max_sequence_length`` with the variant's defaults for ``None``."""
        defaults = self.default_video_shape()
        num_frames, height, width = (d if v is None else v for v, d in zip((num_frames, height, width), defaults))
        return num_frames, height, width, max_sequence_length or self.transformer.config.max_text_seq_length

    def fuse_qkv_projections(self) -> None:
        self.transformer.fuse_qkv_projections()

    def unfuse_qkv_projections(self) -> None:
        self.transformer.unfuse_qkv_projections()

    # ---- step caching --------------------------------------------------------------------------------------------------

    def enable_step_cache(self, config=None, **kwargs) -> None:
        """Turn on TeaCache-style step caching on the transformer (see ``diffusers_cogvideox.caching``)."""
        from ..caching import TeaCacheConfig, apply_teacache

        apply_teacache(self.transformer, config if config is not None else TeaCacheConfig(**kwargs))

    def disable_step_cache(self) -> None:
        from ..caching import remove_teacache

        remove_teacache(self.transformer)

    @property
    def step_cache_stats(self):
        """Per-call lists of which steps ran the transformer blocks (``None`` when caching is off)."""
        from ..caching import teacache_stats

        return teacache_stats(self.transformer)

    # ---- 1. inputs ---------------------------------------------------------------------------------------------------

    def check_common_inputs(
        self,
        prompt,
        negative_prompt,
        prompt_embeds,
        negative_prompt_embeds,
        height,
        width,
        num_videos_per_prompt,
        output_type,
        dynamic_cfg_mode,
        max_sequence_length,
        callback_on_step_end_tensor_inputs,
    ) -> int:
        """Checks every pipeline makes; returns the number of prompts."""
        config = self.transformer.config
        expected = self._transformer_channel_multiple * self.vae.config.latent_channels
        if config.in_channels != expected:
            kind = "an image-to-video" if self._transformer_channel_multiple == 2 else "a text-to-video"
            raise ValueError(
                f"{type(self).__name__} needs {kind} transformer (in_channels = {expected}); "
                f"this one has in_channels={config.in_channels}"
            )
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass either `prompt` or `prompt_embeds`, not both")
        if prompt is None and prompt_embeds is None:
            raise ValueError("pass a `prompt` or `prompt_embeds`")
        if prompt is not None and not (
            isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt))
        ):
            raise ValueError(f"`prompt` must be a string or a non-empty list of strings; got {type(prompt).__name__}")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass either `negative_prompt` or `negative_prompt_embeds`, not both")
        if prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("`negative_prompt_embeds` go with `prompt_embeds`; pass `negative_prompt` with `prompt`")
        if prompt_embeds is not None:
            if prompt_embeds.ndim != 3 or prompt_embeds.shape[-1] != config.text_embed_dim:
                raise ValueError(
                    f"`prompt_embeds` must be [batch, tokens, {config.text_embed_dim}]; got {tuple(prompt_embeds.shape)}"
                )
            if negative_prompt_embeds is not None and negative_prompt_embeds.shape != prompt_embeds.shape:
                raise ValueError(
                    f"`negative_prompt_embeds` {tuple(negative_prompt_embeds.shape)} must have the shape of "
                    f"`prompt_embeds` {tuple(prompt_embeds.shape)}"
                )
        batch_size = 1 if isinstance(prompt, str) else len(prompt) if prompt is not None else prompt_embeds.shape[0]
        if isinstance(negative_prompt, list) and len(negative_prompt) != batch_size:
            raise ValueError(f"got {len(negative_prompt)} negative prompts for {batch_size} prompts")
        if negative_prompt is not None and not isinstance(negative_prompt, (str, list)):
            raise ValueError(f"`negative_prompt` must be a string or a list of strings; got {type(negative_prompt)}")
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
            raise ValueError(f"num_videos_per_prompt must be a positive integer; got {num_videos_per_prompt}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}")
        if dynamic_cfg_mode not in DYNAMIC_CFG_MODES:
            raise ValueError(f"dynamic_cfg_mode must be one of {DYNAMIC_CFG_MODES}; got {dynamic_cfg_mode!r}")
        absolute_positions = not config.use_rotary_positional_embeddings or config.use_learned_positional_embeddings
        if absolute_positions and max_sequence_length != config.max_text_seq_length:
            raise ValueError(
                f"this transformer adds absolute positional embeddings after {config.max_text_seq_length} text tokens, "
                f"so max_sequence_length must be {config.max_text_seq_length}; got {max_sequence_length}"
            )
        if prompt_embeds is not None and absolute_positions and prompt_embeds.shape[1] != config.max_text_seq_length:
            raise ValueError(
                f"`prompt_embeds` must have {config.max_text_seq_length} tokens for this transformer; "
                f"got {prompt_embeds.shape[1]}"
            )
        unknown = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs may only name {self._callback_tensor_inputs}; got {unknown}"
            )
        return batch_size

    # ---- 2. prompt ---------------------------------------------------------------------------------------------------

    def _t5_prompt_embeds(self, prompts: list[str], max_sequence_length: int, device, dtype) -> torch.Tensor:
        """T5 hidden states of ``prompts`` padded to ``max_sequence_length`` (no attention mask, as CogVideoX trains)."""
        text_inputs = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        self._warn_truncated(prompts, max_sequence_length)
        prompt_embeds = self.text_encoder(text_inputs.input_ids.to(device))[0]
        return prompt_embeds.to(dtype=dtype, device=device)

    def _warn_truncated(self, prompts: list[str], max_sequence_length: int) -> None:
        for i, prompt in enumerate(prompts):
            ids = self.tokenizer(prompt, add_special_tokens=True).input_ids
            dropped = len(ids) - max_sequence_length
            if dropped > 0:
                removed = self.tokenizer.decode(ids[max_sequence_length - 1 : -1], skip_special_tokens=True)
                logger.warning(
                    f"prompt {i} is {len(ids)} tokens long but max_sequence_length is {max_sequence_length}: "
                    f"{dropped} tokens were dropped ({removed!r})"
                )

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int = 226,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """T5 embeddings of the prompts (and negative prompts when guiding), each repeated ``num_videos_per_prompt``
        times in a row: ``[p0, p0, p1, p1]`` for two prompts and two videos each. Precomputed embeddings are repeated
        the same way."""
        device = device or self._execution_device
        dtype = dtype or self.text_encoder.dtype
        if prompt_embeds is None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            prompt_embeds = self._t5_prompt_embeds(prompts, max_sequence_length, device, dtype)
        batch_size = prompt_embeds.shape[0]
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative_prompt = negative_prompt or ""
            negatives = [negative_prompt] * batch_size if isinstance(negative_prompt, str) else list(negative_prompt)
            if len(negatives) != batch_size:
                raise ValueError(f"got {len(negatives)} negative prompts for {batch_size} prompts")
            negative_prompt_embeds = self._t5_prompt_embeds(negatives, prompt_embeds.shape[1], device, dtype)

        def per_video(embeds):
            embeds = embeds.to(device=device, dtype=dtype)
            return embeds.repeat_interleave(num_videos_per_prompt, dim=0) if num_videos_per_prompt > 1 else embeds

        prompt_embeds = per_video(prompt_embeds)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = per_video(negative_prompt_embeds)
        return prompt_embeds, negative_prompt_embeds

    def prepare_text_conditioning(
        self,
        prompt,
        negative_prompt,
        prompt_embeds,
        negative_prompt_embeds,
        do_classifier_free_guidance: bool,
        num_videos_per_prompt: int,
        max_sequence_length: int,
        device,
    ) -> Conditioning:
        """Prompt embeddings in the transformer's dtype, ``[negative; positive]`` when guiding."""
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt,
            negative_prompt,
            do_classifier_free_guidance,
            num_videos_per_prompt=num_videos_per_prompt,
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds,
            max_sequence_length=max_sequence_length,
            device=device,
            dtype=self.transformer.dtype,
        )
        embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_classifier_free_guidance else prompt_embeds
        return Conditioning(prompt_embeds=embeds, negative_prompt_embeds=negative_prompt_embeds)

    # ---- 3. timesteps ------------------------------------------------------------------------------------------------

    def prepare_timesteps(self, num_inference_steps: int, timesteps: list[int] | None, device) -> torch.Tensor:
        timesteps, _ = retrieve_timesteps(self.scheduler, num_inference_steps, device, timesteps)
        return timesteps

    # ---- 4. latents --------------------------------------------------------------------------------------------------

    def latent_frame_layout(self, num_frames: int) -> tuple[int, int]:
        return latent_frame_layout(num_frames, self.vae_scale_factor_temporal, self.transformer.config.patch_size_t)

    def prepare_noise(self, batch_size, latent_frames, height, width, dtype, device, generator, latents=None):
        """Starting noise ``[B, F_latent, C, H/8, W/8]`` (or the caller's ``latents``), scaled by the scheduler."""
        shape = (
            batch_size,
            latent_frames,
            self.vae.config.latent_channels,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        if latents is None:
            latents = self.sample_noise(shape, generator, device, dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"`latents` must have shape {shape}; got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    @staticmethod
    def sample_noise(shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor:
        """Standard normal noise; with a list of generators, video i is drawn from ``generator[i]``."""
        if isinstance(generator, list) and len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for {shape[0]} videos; pass one per video")
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    def encode_frames(self, frames: torch.Tensor, generator, dtype) -> torch.Tensor:
        """VAE posterior samples of ``[B, C, F, H, W]`` pixels, as ``[B, F_latent, C, h, w]`` (one sample per item,
        with ``generator[i]`` for item i when a list is given)."""
        generators = generator if isinstance(generator, list) else [generator] * frames.shape[0]
        latents = [retrieve_latents(self.vae.encode(item.unsqueeze(0)), gen) for item, gen in zip(frames, generators)]
        return torch.cat(latents, dim=0).to(dtype).permute(0, 2, 1, 3, 4)

    @staticmethod
    def per_video(x: torch.Tensor, batch_size: int, num_videos_per_prompt: int) -> torch.Tensor:
        """Repeat inputs given once (or once per prompt) so that there is one per generated video."""
        if x.shape[0] == 1 and batch_size > 1:
            x = x.expand(batch_size, *x.shape[1:])
        return x.repeat_interleave(num_videos_per_prompt, dim=0) if num_videos_per_prompt > 1 else x

    @staticmethod
    def first_generators(generator, num_videos_per_prompt: int):
        """For inputs encoded once per prompt: the generator of each prompt's first video."""
        if isinstance(generator, list):
            return generator[::num_videos_per_prompt]
        return generator

    # ---- 5. positional grid --------------------------------------------------------------------------------------------

    def prepare_rotary_embeddings(self, height: int, width: int, latent_frames: int, device):
        return rotary_embeddings(
            self.transformer.config, height, width, latent_frames, self.vae_scale_factor_spatial, device
        )

    # ---- 6. denoising --------------------------------------------------------------------------------------------------

    def prepare_extra_step_kwargs(self, generator, eta: float) -> dict[str, Any]:
        parameters = set(inspect.signature(self.scheduler.step).parameters)
        kwargs = {}
        if "eta" in parameters:
            kwargs["eta"] = eta
        if "generator" in parameters:
            kwargs["generator"] = generator
        return kwargs

    def start_call(self, guidance_scale: float, attention_kwargs) -> None:
        self._guidance_scale = guidance_scale
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False

    def predict_velocity(self, latents, t, cond: Conditioning, do_cfg: bool, step_index: int, num_steps: int):
        """One transformer call on ``[uncond; cond]`` (when guiding), as float32."""
        text = text_embeddings_for_step(cond.prompt_embeds, cond.negative_prompt_embeds, do_cfg, latents.shape[0])
        model_input = torch.cat([latents] * 2) if do_cfg else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        if cond.image_latents is not None:
            image_input = torch.cat([cond.image_latents] * 2) if do_cfg else cond.image_latents
            model_input = torch.cat([model_input, image_input], dim=2)
        timestep = t.expand(model_input.shape[0])
        with self._cache_context(step_index, num_steps):
            noise_pred = self.transformer(
                hidden_states=model_input,
                encoder_hidden_states=text,
                timestep=timestep,
                ofs=cond.ofs,
                image_rotary_emb=cond.rotary_emb,
                attention_kwargs=self._attention_kwargs,
                return_dict=False,
            )[0]
        return noise_pred.float()

    def _cache_context(self, step_index: int, num_steps: int):
        cache_context = getattr(self.transformer, "cache_context", None)
        if cache_context is None:
            return nullcontext()
        try:
            return cache_context("cond_uncond", step_index=step_index, num_inference_steps=num_steps)
        except TypeError:  # diffusers before CacheContext carried the loop position
            return cache_context("cond_uncond")

    def denoise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        cond: Conditioning,
        guidance: GuidanceSchedule,
        extra_step_kwargs: dict[str, Any],
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> torch.Tensor:
        """The sampling loop: predict, guide, step the scheduler, call back. Returns the denoised latents.

        The guidance scale of each step is ``guidance``'s, until a callback changes ``pipe._guidance_scale``: from the
        next step on the callback's value is used as it is (dynamic CFG no longer updates it), and ``<= 1`` skips the
        unconditional pass (``scale_set_by_callback``).
        """
        self._num_timesteps = len(timesteps)
        dtype = latents.dtype
        guided = guidance.do_classifier_free_guidance
        is_dpm = isinstance(self.scheduler, CogVideoXDPMScheduler)
        old_pred_original_sample = None  # DPM-Solver++(2M) carries the previous x0 prediction
        callback_scale = None
        self._reset_step_cache()
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                scale = guidance.scale_at(i, t, len(timesteps)) if callback_scale is None else callback_scale
                do_cfg = guided if callback_scale is None else scale > 1
                self._guidance_scale = scale
                noise_pred = self.predict_velocity(latents, t, cond, do_cfg, i, len(timesteps))
                if do_cfg:
                    noise_pred = guided_prediction(noise_pred, scale)
                if is_dpm:
                    t_back = timesteps[i - 1] if i > 0 else None
                    latents, old_pred_original_sample = self.scheduler.step(
                        noise_pred, old_pred_original_sample, t, t_back, latents, **extra_step_kwargs, return_dict=False
                    )
                else:
                    latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]
                latents = latents.to(dtype)
                if callback_on_step_end is not None:
                    latents, cond = self._run_callback(
                        callback_on_step_end, callback_on_step_end_tensor_inputs, i, t, latents, cond
                    )
                    if self._guidance_scale != scale:
                        callback_scale = scale_set_by_callback(self._guidance_scale, guided)
                progress_bar.update()
        self._current_timestep = None
        return latents

    def _run_callback(self, callback, tensor_inputs, i, t, latents, cond: Conditioning):
        available = {
            "latents": latents,
            "prompt_embeds": cond.prompt_embeds,
            "negative_prompt_embeds": cond.negative_prompt_embeds,
        }
        outputs = callback(self, i, t, {k: available[k] for k in tensor_inputs or []}) or {}
        cond.prompt_embeds = outputs.pop("prompt_embeds", cond.prompt_embeds)
        cond.negative_prompt_embeds = outputs.pop("negative_prompt_embeds", cond.negative_prompt_embeds)
        return outputs.pop("latents", latents), cond

    def _reset_step_cache(self) -> None:
        from ..caching import reset_teacache

        reset_teacache(self.transformer)

    @staticmethod
    def callback_tensor_inputs(callback_on_step_end, tensor_inputs):
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            return callback_on_step_end.tensor_inputs
        return tensor_inputs

    # ---- 7. decoding ---------------------------------------------------------------------------------------------------

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 3, F, H, W]`` in [-1, 1] of latents ``[B, F_latent, C, h, w]``."""
        latents = 1 / self.vae_scaling_factor_image * latents.permute(0, 2, 1, 3, 4)
        return self.vae.decode(latents).sample

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, output_type: str = "pil"):
        """Videos in ``output_type`` (pil, np, pt) of latents returned by ``output_type="latent"``."""
        if output_type == "latent":
            return latents
        video = self.decode_latents(latents)
        return self.video_processor.postprocess_video(video=video, output_type=output_type)

    def finish(self, latents: torch.Tensor, pad: int, output_type: str, return_dict: bool):
        """Drop 1.5's padding latents, decode, offload, wrap the output."""
        video = self.decode(latents[:, pad:], output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return CogVideoXPipelineOutput(frames=video)
