"""Positional grids and embeddings of CogVideoX, as small pure functions (plus the patch embedding module).

Positions in CogVideoX come in three kinds, chosen by the transformer config:

* 2b: a fixed 3D sin-cos table added to the token sequence (``sincos_3d`` / ``joint_sincos_3d``);
* 5b, 5b-I2V, 1.5: 3D rotary embeddings applied inside attention (``rope_3d``, ``apply_rope``), whose grid is
  ``linspace``-over-a-crop for CogVideoX 1.0 and a plain ``arange`` slice for CogVideoX 1.5
  (``rotary_embeddings_for_video`` builds exactly what the official pipelines build);
* 5b-I2V additionally: a learned table (a persistent buffer holding the trained values).

Every function here reproduces diffusers' reference numerics bit for bit (same dtypes, same operation order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

ROPE_THETA = 10000.0


# --------------------------------------------------------------------------------------------------------------------
# 3D rotary position embedding (RoPE)
# --------------------------------------------------------------------------------------------------------------------


def rope_1d(dim: int, positions: torch.Tensor, theta: float = ROPE_THETA) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of ``positions * ω_i`` with ``ω_i = θ^(-2i/dim)``, each repeated twice (for (even, odd) pairs): [S, dim]."""
    # ω_i = 1 / θ^(2i/dim)
    omega = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim))
    angles = torch.outer(positions, omega)  # [S, dim/2]
    cos = angles.cos().repeat_interleave(2, dim=1, output_size=dim).float()
    sin = angles.sin().repeat_interleave(2, dim=1, output_size=dim).float()
    return cos, sin


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """How the head dimension is split between time, height and width: (D/4, 3D/8, 3D/8), e.g. 64 -> (16, 24, 24)."""
    if head_dim % 16 != 0:
        raise ValueError(
            f"3D rotary embeddings need attention_head_dim to be a multiple of 16 (e.g. 16, 32, 64) so that it splits "
            f"into time/height/width parts of even size (D/4, 3D/8, 3D/8); got attention_head_dim={head_dim}"
        )
    return head_dim // 4, head_dim // 8 * 3, head_dim // 8 * 3


def rope_3d(
    head_dim: int,
    grid_t: torch.Tensor,
    grid_h: torch.Tensor,
    grid_w: torch.Tensor,
    theta: float = ROPE_THETA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D RoPE over a (t, h, w) grid of positions; tokens run frame-major, then h, then w.

    The head dimension is split [t | h | w] = [D/4 | 3D/8 | 3D/8]; returns ``(cos, sin)``, each ``[T*H*W, D]`` float32.
    """
    dim_t, dim_h, dim_w = rope_axis_dims(head_dim)
    per_axis = [rope_1d(dim_t, grid_t, theta), rope_1d(dim_h, grid_h, theta), rope_1d(dim_w, grid_w, theta)]
    t, h, w = len(grid_t), len(grid_h), len(grid_w)

    def combine(f_t: torch.Tensor, f_h: torch.Tensor, f_w: torch.Tensor) -> torch.Tensor:
        f_t = f_t[:, None, None, :].expand(-1, h, w, -1)
        f_h = f_h[None, :, None, :].expand(t, -1, w, -1)
        f_w = f_w[None, None, :, :].expand(t, h, -1, -1)
        return torch.cat([f_t, f_h, f_w], dim=-1).view(t * h * w, -1)

    cos = combine(*(axis[0] for axis in per_axis))
    sin = combine(*(axis[1] for axis in per_axis))
    return cos, sin


def resize_crop_region(grid_size: tuple[int, int], base_height: int, base_width: int):
    """CogVideoX 1.0: the region of the training grid (base_height x base_width) that a grid of another aspect covers.

    The grid is resized to fit the base grid along its limiting side and centred; returns ``((top, left), (bottom,
    right))``. For the training resolution itself this is ``((0, 0), (base_height, base_width))``.
    """
    h, w = grid_size
    if h / w > base_height / base_width:
        resize_height, resize_width = base_height, int(round(base_height / h * w))
    else:
        resize_width, resize_height = base_width, int(round(base_width / w * h))
    top = int(round((base_height - resize_height) / 2.0))
    left = int(round((base_width - resize_width) / 2.0))
    return (top, left), (top + resize_height, left + resize_width)


def linspace_grid(
    crop: tuple[tuple[int, int], tuple[int, int]], grid_size: tuple[int, int], num_frames: int, device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CogVideoX 1.0 positions: ``grid_size`` points spread over the crop region (integers at the training size)."""
    (top, left), (bottom, right) = crop
    gh, gw = grid_size
    grid_h = torch.linspace(top, bottom * (gh - 1) / gh, gh, device=device, dtype=torch.float32)
    grid_w = torch.linspace(left, right * (gw - 1) / gw, gw, device=device, dtype=torch.float32)
    grid_t = torch.linspace(
        0, num_frames * (num_frames - 1) / num_frames, num_frames, device=device, dtype=torch.float32
    )
    return grid_t, grid_h, grid_w


def slice_grid(
    grid_size: tuple[int, int], num_frames: int, max_size: tuple[int, int], device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CogVideoX 1.5 positions: integer positions 0..n-1 on each axis, at most ``max_size`` (h, w) spatially."""
    (gh, gw), (max_h, max_w) = grid_size, max_size
    if gh > max_h or gw > max_w:
        raise ValueError(
            f"the patch grid {gh}x{gw} (height x width) exceeds the largest grid the rotary table covers, "
            f"{max_h}x{max_w} (sample_height/patch_size x sample_width/patch_size)"
        )
    arange = lambda n: torch.arange(n, device=device, dtype=torch.float32)  # noqa: E731
    return arange(num_frames), arange(gh), arange(gw)


# The transformer's constructor defaults, for configs given as partial dicts.
_TRANSFORMER_DEFAULTS = dict(patch_size=2, patch_size_t=None, sample_height=60, sample_width=90, attention_head_dim=64)


def _config_value(config: Any, key: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(key, _TRANSFORMER_DEFAULTS[key])
    return getattr(config, key, _TRANSFORMER_DEFAULTS[key])


def rotary_embeddings_for_video(
    transformer_config: Any,
    height: int,
    width: int,
    num_frames: int,
    vae_scale_factor_spatial: int = 8,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(cos, sin)`` rotary tables for a video, as the official pipelines build them.

    Equal to diffusers' ``CogVideoXPipeline._prepare_rotary_positional_embeddings(height, width, num_frames, device)``.

    Args:
        transformer_config: the transformer's config (a ``FrozenDict``, a dict, or any object with the attributes
            ``patch_size``, ``patch_size_t``, ``sample_height``, ``sample_width``, ``attention_head_dim``).
        height, width: the video size in pixels.
        num_frames: the number of LATENT frames (after padding to a multiple of ``patch_size_t`` for 1.5).
        vae_scale_factor_spatial: pixels per latent along height and width.

    Returns:
        ``(cos, sin)``, each ``[T * (height/(8p)) * (width/(8p)), attention_head_dim]`` float32, where ``T`` is
        ``num_frames`` for 1.0 and ``ceil(num_frames / patch_size_t)`` for 1.5.
    """
    p = _config_value(transformer_config, "patch_size")
    p_t = _config_value(transformer_config, "patch_size_t")
    head_dim = _config_value(transformer_config, "attention_head_dim")
    pixels_per_token = vae_scale_factor_spatial * p
    if height % pixels_per_token or width % pixels_per_token:
        raise ValueError(
            f"height and width must be multiples of {pixels_per_token} (vae_scale_factor_spatial={vae_scale_factor_spatial}"
            f" x patch_size={p}); got height={height}, width={width}"
        )
    grid_size = (height // pixels_per_token, width // pixels_per_token)
    base_height = _config_value(transformer_config, "sample_height") // p
    base_width = _config_value(transformer_config, "sample_width") // p

    if p_t is None:  # CogVideoX 1.0
        crop = resize_crop_region(grid_size, base_height, base_width)
        grids = linspace_grid(crop, grid_size, num_frames, device=device)
    else:  # CogVideoX 1.5
        grids = slice_grid(grid_size, (num_frames + p_t - 1) // p_t, (base_height, base_width), device=device)
    return rope_3d(head_dim, *grids)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (even, odd) channel pairs of ``x`` [..., D] by the angles in ``cos``/``sin`` (broadcastable to x).

    x' = x·cos + rot(x)·sin with rot(x) = (-x_odd, x_even) pairwise; computed in float32, returned in x.dtype.
    For x [B, heads, S, D] pass the [S, D] tables; for x [B, S, heads, D] pass them as [S, 1, D].
    """
    x_even, x_odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    x_rotated = torch.stack([-x_odd, x_even], dim=-1).flatten(-2)
    cos, sin = cos.to(x.device), sin.to(x.device)
    return (x.float() * cos + x_rotated.float() * sin).to(x.dtype)


# --------------------------------------------------------------------------------------------------------------------
# 3D sin-cos positions (CogVideoX-2b) and the learned table (CogVideoX-5b-I2V)
# --------------------------------------------------------------------------------------------------------------------


def _float64_unless(device: torch.device) -> torch.dtype:
    # MPS has no float64; the reference computes the table in float32 there.
    return torch.float32 if device.type == "mps" else torch.float64


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[sin(pos·ω), cos(pos·ω)] with ω_i = 10000^(-i/(dim/2)): [M, dim], in float64 (float32 on MPS)."""
    if dim % 2:
        raise ValueError(f"sin-cos embeddings need an even dimension; got {dim}")
    omega = torch.arange(dim // 2, device=positions.device, dtype=_float64_unless(positions.device))
    omega /= dim / 2.0
    omega = 1.0 / 10000**omega
    angles = torch.outer(positions.reshape(-1).to(omega.dtype), omega)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_3d(
    embed_dim: int,
    height: int,
    width: int,
    num_frames: int,
    spatial_scale: float = 1.875,
    temporal_scale: float = 1.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """3D sin-cos positions [num_frames, height*width, embed_dim] (token order h-major, then w).

    Channels are [temporal (D/4) | spatial (3D/4)], and the spatial part is [w-coordinate | h-coordinate] (MAE order).
    Positions are divided by the interpolation scales (1.875 spatially for CogVideoX-2b).
    """
    if embed_dim % 16:
        raise ValueError(
            f"3D sin-cos positions need the hidden size (num_attention_heads * attention_head_dim) to be a multiple "
            f"of 16 so that the time/width/height parts have even sizes; got {embed_dim}"
        )
    spatial_dim, temporal_dim = 3 * embed_dim // 4, embed_dim // 4
    h_pos = torch.arange(height, device=device, dtype=torch.float32) / spatial_scale
    w_pos = torch.arange(width, device=device, dtype=torch.float32) / spatial_scale
    w_grid, h_grid = w_pos[None, :].expand(height, width), h_pos[:, None].expand(height, width)
    spatial = torch.cat([sincos_1d(spatial_dim // 2, w_grid), sincos_1d(spatial_dim // 2, h_grid)], dim=1)
    t_pos = torch.arange(num_frames, device=device, dtype=torch.float32) / temporal_scale
    temporal = sincos_1d(temporal_dim, t_pos)
    return torch.cat(
        [temporal[:, None, :].expand(-1, height * width, -1), spatial[None].expand(num_frames, -1, -1)], dim=-1
    )


def joint_sincos_3d(
    embed_dim: int,
    height: int,
    width: int,
    num_frames: int,
    text_length: int,
    spatial_scale: float = 1.875,
    temporal_scale: float = 1.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The table added to the joint [text; video] sequence: zeros for the text slots, ``sincos_3d`` for the video."""
    video = sincos_3d(embed_dim, height, width, num_frames, spatial_scale, temporal_scale, device).flatten(0, 1)
    return torch.cat([video.new_zeros(text_length, embed_dim), video])[None]


# --------------------------------------------------------------------------------------------------------------------
# Patch embedding: text tokens and video patches into one sequence
# --------------------------------------------------------------------------------------------------------------------


class VideoTextPatchEmbed(nn.Module):
    """Embeds text tokens and video patches into one [text; video] token sequence.

    * CogVideoX 1.0: a Conv2d (kernel = stride = ``patch_size``) on every latent frame; tokens run frame-major, then h,
      then w.
    * CogVideoX 1.5: a Linear on ``patch_size_t x patch_size x patch_size`` patches, features ordered (C, t, h, w).

    With ``positions="sincos"`` (2b) a fixed 3D sin-cos table is added (non-persistent buffer ``pos_embedding``, made
    afresh for other grid sizes); with ``positions="learned"`` (5b-I2V) the trained table is added (persistent
    buffer); with ``positions=None`` (RoPE models) nothing is added here.
    """

    def __init__(
        self,
        patch_size: int,
        patch_size_t: int | None,
        in_channels: int,
        embed_dim: int,
        text_embed_dim: int,
        bias: bool,
        positions: str | None,
        latent_grid: tuple[int, int, int],
        text_length: int,
        spatial_interpolation_scale: float,
        temporal_interpolation_scale: float,
    ) -> None:
        super().__init__()
        self.patch_size, self.patch_size_t = patch_size, patch_size_t
        self.embed_dim, self.positions, self.text_length = embed_dim, positions, text_length
        self.latent_grid = latent_grid  # (frames, height, width) of latents the positions were made for
        self.scales = (spatial_interpolation_scale, temporal_interpolation_scale)
        if patch_size_t is None:
            self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)
        else:  # the 1.5 Linear always has a bias; ``patch_bias`` only ever applied to the 1.0 convolution
            self.proj = nn.Linear(in_channels * patch_size * patch_size * patch_size_t, embed_dim)
        self.text_proj = nn.Linear(text_embed_dim, embed_dim)
        if positions is not None:
            table = self.sincos_table(*latent_grid).float()
            self.register_buffer("pos_embedding", table, persistent=positions == "learned")

    def token_grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The (t, h, w) token grid of latents with this many frames/rows/columns."""
        t = num_frames if self.patch_size_t is None else num_frames // self.patch_size_t
        return t, height // self.patch_size, width // self.patch_size

    def sincos_table(self, num_frames: int, height: int, width: int, device=None) -> torch.Tensor:
        t, h, w = self.token_grid(num_frames, height, width)
        return joint_sincos_3d(self.embed_dim, h, w, t, self.text_length, *self.scales, device=device)

    def patchify(self, video: torch.Tensor) -> torch.Tensor:
        """[B, F, C, H, W] latents -> [B, tokens, D]."""
        b, f, c, h, w = video.shape
        p, p_t = self.patch_size, self.patch_size_t
        if p_t is None:
            tokens = self.proj(video.reshape(b * f, c, h, w))  # [B*F, D, H/p, W/p]
            return tokens.flatten(2).transpose(1, 2).reshape(b, -1, self.embed_dim)
        patches = video.reshape(b, f // p_t, p_t, c, h // p, p, w // p, p)
        patches = patches.permute(0, 1, 4, 6, 3, 2, 5, 7).flatten(4, 7).flatten(1, 3)  # features (C, t, h, w)
        return self.proj(patches)

    def forward(self, text_embeds: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """``text_embeds`` [B, L, text_embed_dim] and latents ``image_embeds`` [B, F, C, H, W] -> [B, L + tokens, D]."""
        embeds = torch.cat([self.text_proj(text_embeds), self.patchify(image_embeds)], dim=1)
        if self.positions is None:
            return embeds
        num_frames, height, width = image_embeds.shape[1], image_embeds.shape[3], image_embeds.shape[4]
        if (num_frames, height, width) == self.latent_grid:
            table = self.pos_embedding
        else:  # only sin-cos reaches here: the transformer rejects other grids for a learned table
            table = self.sincos_table(num_frames, height, width, device=embeds.device)
        return embeds + table.to(dtype=embeds.dtype)
