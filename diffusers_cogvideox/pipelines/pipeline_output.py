from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class CogVideoXPipelineOutput(BaseOutput):
    """What the CogVideoX pipelines return.

    Args:
        frames: one video per generated sample: ``list[list[PIL.Image.Image]]`` for ``output_type="pil"``, a
            ``[B, F, H, W, 3]`` array in [0, 1] for ``"np"``, a ``[B, F, 3, H, W]`` tensor in [0, 1] for ``"pt"``, or the
            denoised ``[B, F_latent, C, H/8, W/8]`` latents (what the VAE decodes) for ``"latent"``.
    """

    frames: torch.Tensor | np.ndarray | list[list[PIL.Image.Image]]
