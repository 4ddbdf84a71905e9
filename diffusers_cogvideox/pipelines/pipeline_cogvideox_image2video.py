"""Image-to-video with CogVideoX-5b-I2V (1.0) and CogVideoX1.5-5B-I2V."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import PipelineImageInput

from .common import CogVideoXBasePipeline, GuidanceSchedule, check_image
from .pipeline_output import CogVideoXPipelineOutput

OFS = 2.0  # the frame-rate/offset conditioning CogVideoX 1.5 I2V was trained with


class CogVideoXImageToVideoPipeline(CogVideoXBasePipeline):
    r"""Image-to-video generation with CogVideoX: the image's latent fills the first latent frame of a second,
    channel-concatenated input (zeros elsewhere), so the video starts from the image.

    Works at every frame count the variant supports (1.0: 9..49, 1.5: 17..161).

    Example:
        ```python
        >>> import torch
        >>> from diffusers.utils import load_image
        >>> from diffusers_cogvideox import CogVideoXImageToVideoPipeline
        >>> from diffusers_cogvideox.video_io import export_to_video

        >>> pipe = CogVideoXImageToVideoPipeline.from_pretrained("THUDM/CogVideoX-5b-I2V", torch_dtype=torch.bfloat16)
        >>> pipe.to("cuda")
        >>> image = load_image("astronaut.jpg")
        >>> video = pipe(image, "An astronaut hatching from an egg on the moon", use_dynamic_cfg=True).frames[0]
        >>> export_to_video(video, "astronaut.mp4", fps=8)
        ```
    """

    _transformer_channel_multiple = 2

    def prepare_image_latents(self, image: torch.Tensor, latent_frames: int, generator, dtype) -> torch.Tensor:
        """``[B, latent_frames, C, h, w]``: the image's VAE latent, then zeros."""
        image_latents = self.encode_frames(image.unsqueeze(2), generator, dtype)
        if self.vae.config.invert_scale_latents:
            # CogVideoX 1.5 I2V was trained on image latents divided (not multiplied) by the scaling factor
            image_latents = 1 / self.vae_scaling_factor_image * image_latents
        else:
            image_latents = self.vae_scaling_factor_image * image_latents
        padding = image_latents.new_zeros(image_latents.shape[0], latent_frames - 1, *image_latents.shape[2:])
        return torch.cat([image_latents, padding], dim=1)

    @torch.no_grad()
    def __call__(
        self,
        image: PipelineImageInput,
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
        r"""Generate videos that start from ``image``.

        Args:
            image: one RGB image (PIL, ``[H, W, 3]`` array or ``[3, H, W]`` tensor in [0, 1]) or one per prompt;
                resized to ``height x width``.
            The other arguments are those of ``CogVideoXPipeline.__call__``.
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
        check_image(image, batch_size)
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

        # 4. Image latents (encoded once per image), then the starting noise
        latent_frames, pad = self.latent_frame_layout(num_frames)
        dtype = cond.prompt_embeds.dtype
        image = self.video_processor.preprocess(image, height=height, width=width).to(device, dtype=dtype)
        image_latents = self.prepare_image_latents(
            image, latent_frames + pad, self.first_generators(generator, num_videos_per_prompt), dtype
        )
        cond.image_latents = self.per_video(image_latents, batch_size, num_videos_per_prompt)
        latents = self.prepare_noise(num_videos, latent_frames + pad, height, width, dtype, device, generator, latents)
        if self.transformer.config.ofs_embed_dim is not None:
            cond.ofs = latents.new_full((1,), fill_value=OFS)

        # 5. Positional grid
        cond.rotary_emb = self.prepare_rotary_embeddings(height, width, latents.shape[1], device)

        # 6. Denoise
        latents = self.denoise(
            latents, timesteps, cond, guidance, self.prepare_extra_step_kwargs(generator, eta),
            callback_on_step_end, tensor_inputs,
        )  # fmt: skip

        # 7. Decode
        return self.finish(latents, pad, output_type, return_dict)
