"""Text-to-video with CogVideoX 1.0 (2b, 5b) and 1.5 (1.5-5B)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

from .common import CogVideoXBasePipeline, GuidanceSchedule
from .pipeline_output import CogVideoXPipelineOutput


class CogVideoXPipeline(CogVideoXBasePipeline):
    r"""Text-to-video generation with CogVideoX.

    Example:
        ```python
        >>> import torch
        >>> from diffusers_cogvideox import CogVideoXPipeline
        >>> from diffusers_cogvideox.video_io import export_to_video

        >>> pipe = CogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b", torch_dtype=torch.float16).to("cuda")
        >>> video = pipe("A panda playing a guitar in a bamboo forest", num_inference_steps=50).frames[0]
        >>> export_to_video(video, "panda.mp4", fps=8)
        ```
    """

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006  (the diffusers signature)
        max_sequence_length: int | None = None,
        dynamic_cfg_mode: str = "step",
    ) -> CogVideoXPipelineOutput | tuple:
        r"""Generate videos from text.

        Args:
            prompt: the prompt(s); or pass ``prompt_embeds``.
            negative_prompt: what to guide away from ("" by default); or pass ``negative_prompt_embeds``.
            height, width: pixels, multiples of 16. Default: 480x720 for 1.0, 768x1360 for 1.5.
            num_frames: 8k+1 up to 49 for 1.0 (default 49), 16k+1 up to 161 for 1.5 (default 81).
            num_inference_steps: denoising steps (ignored when ``timesteps`` are given).
            timesteps: custom descending timesteps.
            guidance_scale: classifier-free guidance weight; 1 turns guidance off.
            use_dynamic_cfg: anneal the guidance scale with the cosine schedule of the official code.
            num_videos_per_prompt: videos generated for each prompt.
            eta: DDIM eta.
            generator: a generator, or one per video, for reproducible sampling.
            latents: starting noise ``[B * num_videos_per_prompt, F_latent (+1 padding frame on 1.5 when odd), C,
                H/8, W/8]``.
            prompt_embeds, negative_prompt_embeds: precomputed T5 embeddings ``[B, max_sequence_length, 4096]``.
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (decode later with ``pipe.decode``).
            return_dict: return a ``CogVideoXPipelineOutput`` rather than a tuple.
            attention_kwargs: passed to the attention processors (e.g. ``{"scale": lora_scale}``).
            callback_on_step_end: ``callback(pipe, step, timestep, tensors) -> dict`` after every step; returned
                tensors (``latents``, ``prompt_embeds``, ``negative_prompt_embeds``) replace the pipeline's. A new
                value the callback leaves in ``pipe._guidance_scale`` is the scale of every later step, over dynamic
                CFG; ``<= 1`` turns guidance off (``diffusers.callbacks.SDCFGCutoffCallback`` works this way).
            callback_on_step_end_tensor_inputs: which tensors the callback gets.
            max_sequence_length: T5 tokens; default the transformer's ``max_text_seq_length`` (226).
            dynamic_cfg_mode: ``"step"`` (by step index, smooth) or ``"timestep"`` (by raw timestep, as diffusers'
                reference pipelines; reproduces their outputs).
        """
        num_frames, height, width, max_sequence_length = self.fill_defaults(
            num_frames, height, width, max_sequence_length
        )
        tensor_inputs = self.callback_tensor_inputs(callback_on_step_end, callback_on_step_end_tensor_inputs)

        # 1. Check inputs
        batch_size = self.check_common_inputs(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, height, width, num_videos_per_prompt,
            output_type, dynamic_cfg_mode, max_sequence_length, tensor_inputs,
        )  # fmt: skip
        self.check_video_shape(num_frames, height, width)
        self.start_call(guidance_scale, attention_kwargs)
        device = self._execution_device
        num_videos = batch_size * num_videos_per_prompt

        # 2. Encode the prompt
        cond = self.prepare_text_conditioning(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, guidance_scale > 1.0,
            num_videos_per_prompt, max_sequence_length, device,
        )  # fmt: skip

        # 3. Timesteps
        timesteps = self.prepare_timesteps(num_inference_steps, timesteps, device)
        guidance = GuidanceSchedule(guidance_scale, use_dynamic_cfg, dynamic_cfg_mode, len(timesteps))

        # 4. Starting noise (1.5 adds a front frame so the latent count is even; it is dropped before decoding)
        latent_frames, pad = self.latent_frame_layout(num_frames)
        dtype = cond.prompt_embeds.dtype
        latents = self.prepare_noise(num_videos, latent_frames + pad, height, width, dtype, device, generator, latents)

        # 5. Positional grid
        cond.rotary_emb = self.prepare_rotary_embeddings(height, width, latents.shape[1], device)

        # 6. Denoise
        latents = self.denoise(
            latents, timesteps, cond, guidance, self.prepare_extra_step_kwargs(generator, eta),
            callback_on_step_end, tensor_inputs,
        )  # fmt: skip

        # 7. Decode
        return self.finish(latents, pad, output_type, return_dict)
