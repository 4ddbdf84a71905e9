"""Video-to-video (SDEdit) with the CogVideoX text-to-video models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

from .common import CogVideoXBasePipeline, GuidanceSchedule, check_video, num_frames_for_latents
from .pipeline_output import CogVideoXPipelineOutput


def strength_timesteps(timesteps: torch.Tensor, strength: float, order: int = 1) -> tuple[torch.Tensor, int]:
    """The last ``int(N * strength)`` of N timesteps (SDEdit) and how many were skipped."""
    num_inference_steps = len(timesteps) // order
    t_start = num_inference_steps - min(int(num_inference_steps * strength), num_inference_steps)
    return timesteps[t_start * order :], t_start


def check_strength(strength: float, num_steps: int) -> None:
    if not 0 < strength <= 1 or int(num_steps * strength) < 1:
        raise ValueError(
            f"strength must be in (0, 1] and leave at least one of the {num_steps} steps to run; got {strength}"
        )


class CogVideoXVideoToVideoPipeline(CogVideoXBasePipeline):
    r"""Video-to-video generation with CogVideoX: the input video's latents are noised to ``strength`` and denoised
    under the prompt.

    The input's frame count decides the output's: 8k+1 up to 49 frames for 1.0, 16k+1 up to 161 for 1.5. On 1.5 the
    odd latent count is padded at the front with a copy of the first latent frame (as the official trainers pad), which
    the reference pipeline rejects.

    Example:
        ```python
        >>> import torch
        >>> from diffusers_cogvideox import CogVideoXVideoToVideoPipeline
        >>> from diffusers_cogvideox.video_io import export_to_video, load_video

        >>> pipe = CogVideoXVideoToVideoPipeline.from_pretrained("THUDM/CogVideoX-5b", torch_dtype=torch.bfloat16)
        >>> pipe.to("cuda")
        >>> video = pipe(load_video("hiker.mp4")[:49], "An astronaut on a mountain peak", strength=0.8).frames[0]
        >>> export_to_video(video, "astronaut.mp4", fps=8)
        ```
    """

    def prepare_video_latents(self, video: torch.Tensor, pad: int, generator, dtype) -> torch.Tensor:
        """Scaled VAE latents ``[B, F_latent + pad, C, h, w]`` of ``[B, C, F, H, W]`` pixels."""
        init_latents = self.vae_scaling_factor_image * self.encode_frames(video, generator, dtype)
        if pad:
            init_latents = torch.cat([init_latents[:, :1].repeat(1, pad, 1, 1, 1), init_latents], dim=1)
        return init_latents

    def num_frames_of_latents(self, latents: torch.Tensor, video) -> int:
        """The frame count of the video that ``latents`` (passed instead of one) stand for."""
        if video is not None:
            raise ValueError("pass either `video` or `latents` (the noised latents to start from), not both")
        if not isinstance(latents, torch.Tensor) or latents.ndim != 5:
            raise ValueError(
                f"`latents` must be a 5D tensor [videos, latent frames, channels, height/8, width/8]; got "
                f"{tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__}"
            )
        patch_size_t = self.transformer.config.patch_size_t
        return num_frames_for_latents(
            latents.shape[1], self.variant_rules, self.vae_scale_factor_temporal, patch_size_t
        )

    def noise_to_strength(self, init_latents, latent_timestep, generator):
        """SDEdit start: the clean latents noised to the first timestep that will run."""
        noise = self.sample_noise(init_latents.shape, generator, init_latents.device, init_latents.dtype)
        return self.scheduler.add_noise(init_latents, noise, latent_timestep) * self.scheduler.init_noise_sigma

    @torch.no_grad()
    def __call__(
        self,
        video=None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        strength: float = 0.8,
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
        r"""Re-generate ``video`` under the prompt.

        Args:
            video: one video (a list of RGB PIL frames, ``[F, H, W, 3]`` array or ``[F, 3, H, W]`` tensor in [0, 1])
                or one per prompt; frames are resized to ``height x width``.
            strength: how far to noise the input, in (0, 1]; 1 ignores it entirely.
            latents: instead of ``video``, the latents to start denoising from, already noised to the first timestep
                that runs: ``[B * num_videos_per_prompt, F_latent, C, H/8, W/8]``, 1.5's front padding frame included
                (the frame count follows from F_latent).
            The other arguments are those of ``CogVideoXPipeline.__call__``.
        """
        _, height, width, max_sequence_length = self.fill_defaults(None, height, width, max_sequence_length)
        tensor_inputs = self.callback_tensor_inputs(callback_on_step_end, callback_on_step_end_tensor_inputs)

        # 1. Check inputs
        batch_size = self.check_common_inputs(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, height, width, num_videos_per_prompt,
            output_type, dynamic_cfg_mode, max_sequence_length, tensor_inputs,
        )  # fmt: skip
        num_frames = check_video(video, batch_size) if latents is None else self.num_frames_of_latents(latents, video)
        self.check_video_shape(num_frames, height, width, what="the input video's frame count")
        check_strength(strength, len(timesteps) if timesteps is not None else num_inference_steps)
        self.start_call(guidance_scale, attention_kwargs)
        device = self._execution_device
        num_videos = batch_size * num_videos_per_prompt

        # 2. Encode the prompt
        cond = self.prepare_text_conditioning(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, guidance_scale > 1.0,
            num_videos_per_prompt, max_sequence_length, device,
        )  # fmt: skip

        # 3. Timesteps: the last `strength` of the schedule
        all_timesteps = self.prepare_timesteps(num_inference_steps, timesteps, device)
        timesteps, t_start = strength_timesteps(all_timesteps, strength, self.scheduler.order)
        guidance = GuidanceSchedule(guidance_scale, use_dynamic_cfg, dynamic_cfg_mode, len(all_timesteps), t_start)

        # 4. Video latents (encoded once per video), noised to the first timestep; or the caller's latents
        _, pad = self.latent_frame_layout(num_frames)
        dtype = cond.prompt_embeds.dtype
        if latents is None:
            video = self.video_processor.preprocess_video(video, height=height, width=width).to(device, dtype=dtype)
            init_latents = self.prepare_video_latents(
                video, pad, self.first_generators(generator, num_videos_per_prompt), dtype
            )
            init_latents = self.per_video(init_latents, batch_size, num_videos_per_prompt)
            latents = self.noise_to_strength(init_latents, timesteps[:1].repeat(num_videos), generator)
        else:  # the caller's latents, as noised as the first timestep wants them
            latents = self.prepare_noise(num_videos, latents.shape[1], height, width, dtype, device, generator, latents)

        # 5. Positional grid
        cond.rotary_emb = self.prepare_rotary_embeddings(height, width, latents.shape[1], device)

        # 6. Denoise
        latents = self.denoise(
            latents, timesteps, cond, guidance, self.prepare_extra_step_kwargs(generator, eta),
            callback_on_step_end, tensor_inputs,
        )  # fmt: skip

        # 7. Decode
        return self.finish(latents, pad, output_type, return_dict)
