"""CogVideoX transformer: expert-AdaLN blocks with full joint attention over [text; video] tokens.

One class serves the five official checkpoints, selected by config:

| variant    | positions                     | in channels | patches                   | extra          |
|------------|-------------------------------|-------------|---------------------------|----------------|
| 2b         | fixed 3D sin-cos, added       | 16          | Conv2d 2x2 per frame      |                |
| 5b         | 3D RoPE (linspace/crop grid)  | 16          | Conv2d 2x2 per frame      |                |
| 5b-I2V     | 3D RoPE + learned table       | 32          | Conv2d 2x2 per frame      |                |
| 1.5-5B     | 3D RoPE (slice grid)          | 16          | Linear on 2x2x2 patches   |                |
| 1.5-5B-I2V | 3D RoPE (slice grid)          | 32          | Linear on 2x2x2 patches   | ``ofs`` embed  |

Parameter names, buffer names, config keys and the forward signature are those of the diffusers-format checkpoints
on the Hub, so ``from_pretrained`` loads them unchanged and code written for diffusers' class runs on this one.
Attention goes through diffusers' attention dispatcher (``set_attention_backend``, context parallelism via
``_cp_plan``); caching hooks (``enable_cache``), PEFT adapters, fused QKV and gradient checkpointing work as for any
diffusers transformer.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput
from diffusers.models.attention import AttentionMixin, AttentionModuleMixin, FeedForward
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNorm
from diffusers.utils import apply_lora_scale, logging
from diffusers.utils.torch_utils import maybe_allow_in_graph
from torch import nn

from .embeddings import VideoTextPatchEmbed, apply_rope, linspace_grid, resize_crop_region, rope_3d, slice_grid

logger = logging.get_logger(__name__)

RotaryEmbedding = tuple[torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------------------------------------------------
# Expert adaptive LayerNorm
# --------------------------------------------------------------------------------------------------------------------


class ExpertAdaLayerNorm(nn.Module):
    """One LayerNorm shared by text and video tokens, modulated separately per stream ("expert" AdaLN).

    ``linear(silu(temb))`` gives six vectors: shift, scale, gate for the video tokens, then shift, scale, gate for the
    text tokens. Each stream is normalised as ``LN(x)·(1 + scale) + shift``; the gates scale the residual branch.
    """

    def __init__(self, conditioning_dim: int, embedding_dim: int, elementwise_affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(conditioning_dim, 6 * embedding_dim, bias=True)
        self.norm = nn.LayerNorm(embedding_dim, eps=eps, elementwise_affine=elementwise_affine)

    def forward(
        self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, temb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (modulated video, modulated text, video gate, text gate); gates are [B, 1, D]."""
        modulation = self.linear(self.silu(temb))[:, None, :]
        shift, scale, gate, text_shift, text_scale, text_gate = modulation.chunk(6, dim=-1)
        video = torch.addcmul(shift, self.norm(hidden_states), 1 + scale)
        text = torch.addcmul(text_shift, self.norm(encoder_hidden_states), 1 + text_scale)
        return video, text, gate, text_gate


# --------------------------------------------------------------------------------------------------------------------
# Joint attention over [text; video]
# --------------------------------------------------------------------------------------------------------------------


class JointAttnProcessor:
    """Full attention over the concatenated [text; video] tokens through diffusers' attention dispatcher.

    Per-head LayerNorm on queries and keys, then RoPE on the video part of both; the result is split back into the
    two streams. The dispatcher picks the backend (``set_attention_backend``) and runs context parallelism.
    """

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self,
        attn: JointAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: RotaryEmbedding | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        text_length = encoder_hidden_states.shape[1]
        tokens = torch.cat([encoder_hidden_states, hidden_states], dim=1)

        if attn.fused_projections:
            query, key, value = attn.to_qkv(tokens).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(tokens), attn.to_k(tokens), attn.to_v(tokens)

        # The dispatcher takes [B, S, heads, head_dim], the memory layout GPU attention kernels want; the per-head
        # norms and RoPE run on that contiguous layout. The CPU kernel is faster with [B, heads, S, head_dim]-contiguous
        # queries and keys, so on CPU they are re-laid out heads-major inside the copy that joins text and video, and
        # the dispatcher gets transposed views (it transposes them back for SDPA).
        heads_major = _heads_major_attention(tokens.device)
        query, key, value = (x.unflatten(-1, (-1, attn.head_dim)) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:  # RoPE on the video tokens only
            cos, sin = (table[:, None, :] for table in image_rotary_emb)  # [S_video, 1, head_dim]
            query, key = (
                _join_tokens(x[:, :text_length], apply_rope(x[:, text_length:], cos, sin), heads_major)
                for x in (query, key)
            )
        elif heads_major:
            query, key = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (query, key))

        out = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        out = attn.to_out[1](attn.to_out[0](out.flatten(2, 3).type_as(tokens)))
        encoder_hidden_states, hidden_states = out.split([text_length, out.shape[1] - text_length], dim=1)
        return hidden_states, encoder_hidden_states


def _heads_major_attention(device: torch.device) -> bool:
    """Whether queries and keys go to the attention kernel stored [B, heads, S, head_dim] (faster for the CPU kernel)."""
    return device.type == "cpu"


def _join_tokens(text: torch.Tensor, video: torch.Tensor, heads_major: bool) -> torch.Tensor:
    """[B, L, heads, d] and [B, S, heads, d] -> [B, L + S, heads, d], stored heads-major if asked (one copy either way)."""
    if not heads_major:
        return torch.cat([text, video], dim=1)
    return torch.cat([text.transpose(1, 2), video.transpose(1, 2)], dim=2).transpose(1, 2)


class JointAttention(nn.Module, AttentionModuleMixin):
    """Self-attention over [text; video] with per-head LayerNorm on q and k (``to_q/k/v``, ``to_out.0``, ``norm_q/k``)."""

    _default_processor_cls = JointAttnProcessor
    _available_processors = [JointAttnProcessor]

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        bias: bool = True,
        out_bias: bool = True,
        qk_norm: bool = True,
        eps: float = 1e-6,
        processor: JointAttnProcessor | None = None,
    ):
        super().__init__()
        self.heads, self.head_dim, self.inner_dim = heads, dim_head, heads * dim_head
        self.use_bias = bias
        self.is_cross_attention = False
        self.norm_q = nn.LayerNorm(dim_head, eps=eps) if qk_norm else None
        self.norm_k = nn.LayerNorm(dim_head, eps=eps) if qk_norm else None
        self.to_q = nn.Linear(dim, self.inner_dim, bias=bias)
        self.to_k = nn.Linear(dim, self.inner_dim, bias=bias)
        self.to_v = nn.Linear(dim, self.inner_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(self.inner_dim, dim, bias=out_bias), nn.Dropout(0.0)])
        self.set_processor(processor if processor is not None else self._default_processor_cls())

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: RotaryEmbedding | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the attended (video, text) streams. ``attention_mask`` goes to the attention backend unchanged (a
        boolean or additive mask broadcastable to [B, heads, S, S] over the joint [text; video] sequence)."""
        if kwargs:  # extra attention_kwargs: pass on those the processor takes, warn about the rest
            accepted = set(inspect.signature(self.processor.__call__).parameters)
            unused = [name for name in kwargs if name not in accepted]
            if unused:
                logger.warning(f"attention_kwargs {unused} are not used by {type(self.processor).__name__}; ignored.")
            kwargs = {name: value for name, value in kwargs.items() if name in accepted}
        return self.processor(self, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Transformer block
# --------------------------------------------------------------------------------------------------------------------


@maybe_allow_in_graph
class ExpertTransformerBlock(nn.Module):
    """Expert-AdaLN block: joint attention, then a feed-forward over [text; video], each with per-stream gates."""

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        time_embed_dim: int,
        dropout: float = 0.0,
        activation_fn: str = "gelu-approximate",
        attention_bias: bool = False,
        qk_norm: bool = True,
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        final_dropout: bool = True,
        ff_inner_dim: int | None = None,
        ff_bias: bool = True,
        attention_out_bias: bool = True,
    ):
        super().__init__()
        self.norm1 = ExpertAdaLayerNorm(time_embed_dim, dim, norm_elementwise_affine, norm_eps)
        self.attn1 = JointAttention(
            dim, num_attention_heads, attention_head_dim, attention_bias, attention_out_bias, qk_norm
        )
        self.norm2 = ExpertAdaLayerNorm(time_embed_dim, dim, norm_elementwise_affine, norm_eps)
        self.ff = FeedForward(
            dim,
            dropout=dropout,
            activation_fn=activation_fn,
            final_dropout=final_dropout,
            inner_dim=ff_inner_dim,
            bias=ff_bias,
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        image_rotary_emb: RotaryEmbedding | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        text_length = encoder_hidden_states.shape[1]

        video, text, gate, text_gate = self.norm1(hidden_states, encoder_hidden_states, temb)
        attn_video, attn_text = self.attn1(video, text, image_rotary_emb=image_rotary_emb, **(attention_kwargs or {}))
        hidden_states = torch.addcmul(hidden_states, gate, attn_video)
        encoder_hidden_states = torch.addcmul(encoder_hidden_states, text_gate, attn_text)

        video, text, gate, text_gate = self.norm2(hidden_states, encoder_hidden_states, temb)
        ff_out = self.ff(torch.cat([text, video], dim=1))
        hidden_states = torch.addcmul(hidden_states, gate, ff_out[:, text_length:])
        encoder_hidden_states = torch.addcmul(encoder_hidden_states, text_gate, ff_out[:, :text_length])
        return hidden_states, encoder_hidden_states


# --------------------------------------------------------------------------------------------------------------------
# Rotary positions for the model's own grid (a module so that context parallelism can shard its output)
# --------------------------------------------------------------------------------------------------------------------


class VideoRotaryEmbedding(nn.Module):
    """The (cos, sin) 3D RoPE tables for a latent grid, or the precomputed tables passed to the model, checked.

    When the caller passes none (the official pipelines always do), the tables the official pipeline would build for
    this grid are made here; the reference model silently runs without positions in that case.
    """

    def __init__(self, head_dim: int, patch_size: int, patch_size_t: int | None, base_grid: tuple[int, int]):
        super().__init__()
        self.head_dim, self.patch_size, self.patch_size_t, self.base_grid = (
            head_dim,
            patch_size,
            patch_size_t,
            base_grid,
        )

    def forward(
        self, token_grid: tuple[int, int, int], precomputed: RotaryEmbedding | None, device: torch.device
    ) -> RotaryEmbedding:
        num_tokens = token_grid[0] * token_grid[1] * token_grid[2]
        if precomputed is not None:
            cos, sin = precomputed
            expected = (num_tokens, self.head_dim)
            if tuple(cos.shape) != expected or tuple(sin.shape) != expected:
                raise ValueError(
                    f"image_rotary_emb must be (cos, sin), each of shape {list(expected)} (video tokens x "
                    f"attention_head_dim) for a {token_grid[0]}x{token_grid[1]}x{token_grid[2]} token grid; got shapes "
                    f"{list(cos.shape)} and {list(sin.shape)}"
                )
            return cos, sin
        t, h, w = token_grid
        if self.patch_size_t is None:  # CogVideoX 1.0: positions spread over the crop of the training grid
            grids = linspace_grid(resize_crop_region((h, w), *self.base_grid), (h, w), t, device=device)
        else:  # CogVideoX 1.5: integer positions
            grids = slice_grid((h, w), t, self.base_grid, device=device)
        return rope_3d(self.head_dim, *grids)


# --------------------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------------------


class CogVideoXTransformer3DModel(ModelMixin, AttentionMixin, ConfigMixin, PeftAdapterMixin, CacheMixin):
    """The CogVideoX denoiser: latents [B, F, C, H, W] plus text embeddings -> prediction [B, F, out_channels, H, W].

    Config keys and defaults are those of diffusers' ``CogVideoXTransformer3DModel`` (defaults describe CogVideoX-2b).
    ``sample_frames`` counts VIDEO frames (49 -> 13 latent frames); ``sample_height``/``sample_width`` are latent
    sizes. Context parallelism (``enable_parallelism``) shards video and text tokens evenly, so the text length
    (``max_text_seq_length``, 226 in the official models) must divide by the number of devices unless the
    ``ulysses_anything``/``ring_anything`` options are used.
    """

    _skip_layerwise_casting_patterns = ["patch_embed", "norm"]
    _supports_gradient_checkpointing = True
    _no_split_modules = ["ExpertTransformerBlock", "VideoTextPatchEmbed"]
    _repeated_blocks = ["ExpertTransformerBlock"]
    _cp_plan = {
        "transformer_blocks.0": {
            "hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False),
            "encoder_hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False),
        },
        "rope": {
            0: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
            1: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
        },
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        use_learned_positional_embeddings: bool = False,
        patch_bias: bool = True,
    ):
        super().__init__()
        if use_learned_positional_embeddings and not use_rotary_positional_embeddings:
            raise ValueError(
                "use_learned_positional_embeddings=True needs use_rotary_positional_embeddings=True: the only "
                "checkpoint with learned positions (CogVideoX-5b-I2V) also uses RoPE"
            )
        if ofs_embed_dim and ofs_embed_dim != time_embed_dim:
            raise ValueError(
                f"ofs_embed_dim is added to the timestep embedding, so it must equal time_embed_dim={time_embed_dim}; "
                f"got ofs_embed_dim={ofs_embed_dim}"
            )
        inner_dim = num_attention_heads * attention_head_dim
        out_channels = out_channels or in_channels
        self.latent_frames = (sample_frames - 1) // temporal_compression_ratio + 1

        # 1. Patch embedding (+ additive positions for 2b / 5b-I2V) and 3D RoPE tables
        positions = "learned" if use_learned_positional_embeddings else None
        positions = "sincos" if not use_rotary_positional_embeddings else positions
        self.patch_embed = VideoTextPatchEmbed(
            patch_size=patch_size,
            patch_size_t=patch_size_t,
            in_channels=in_channels,
            embed_dim=inner_dim,
            text_embed_dim=text_embed_dim,
            bias=patch_bias,
            positions=positions,
            latent_grid=(self.latent_frames, sample_height, sample_width),
            text_length=max_text_seq_length,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
        )
        self.rope = VideoRotaryEmbedding(
            attention_head_dim, patch_size, patch_size_t, (sample_height // patch_size, sample_width // patch_size)
        )
        self.embedding_dropout = nn.Dropout(dropout)

        # 2. Timestep embedding (+ the "ofs" embedding of CogVideoX1.5-5B-I2V)
        self.time_proj = Timesteps(inner_dim, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(inner_dim, time_embed_dim, timestep_activation_fn)
        self.ofs_proj = None
        self.ofs_embedding = None
        if ofs_embed_dim:
            self.ofs_proj = Timesteps(ofs_embed_dim, flip_sin_to_cos, freq_shift)
            self.ofs_embedding = TimestepEmbedding(ofs_embed_dim, ofs_embed_dim, timestep_activation_fn)

        # 3. Expert-AdaLN transformer blocks
        self.transformer_blocks = nn.ModuleList(
            [
                ExpertTransformerBlock(
                    dim=inner_dim,
                    num_attention_heads=num_attention_heads,
                    attention_head_dim=attention_head_dim,
                    time_embed_dim=time_embed_dim,
                    dropout=dropout,
                    activation_fn=activation_fn,
                    attention_bias=attention_bias,
                    norm_elementwise_affine=norm_elementwise_affine,
                    norm_eps=norm_eps,
                )
                for _ in range(num_layers)
            ]
        )
        self.norm_final = nn.LayerNorm(inner_dim, norm_eps, norm_elementwise_affine)

        # 4. Output: AdaLN (shift, then scale) and projection back to patches
        self.norm_out = AdaLayerNorm(
            embedding_dim=time_embed_dim,
            output_dim=2 * inner_dim,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            chunk_dim=1,
        )
        patch_volume = patch_size * patch_size * (patch_size_t or 1)
        self.proj_out = nn.Linear(inner_dim, patch_volume * out_channels)

        self.gradient_checkpointing = False

    # ----------------------------------------------------------------------------------------------------------------

    def enable_cache(self, config) -> None:
        """diffusers' ``CacheMixin.enable_cache``, after telling the block-level cache hooks how our blocks return."""
        _register_block_for_cache_hooks()
        super().enable_cache(config)

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep_cond: torch.Tensor | None,
        ofs: Any,
        image_rotary_emb: RotaryEmbedding | None,
    ) -> None:
        config = self.config
        if hidden_states.ndim != 5:
            raise ValueError(
                f"hidden_states must be latents [batch, frames, channels, height, width]; got shape "
                f"{list(hidden_states.shape)}"
            )
        _, num_frames, channels, height, width = hidden_states.shape
        if channels != config.in_channels:
            what = " (noise latents + image latents)" if config.in_channels != config.out_channels else ""
            raise ValueError(
                f"hidden_states has {channels} channels; this model takes in_channels={config.in_channels}{what}"
            )
        p, p_t = config.patch_size, config.patch_size_t
        if height % p or width % p:
            raise ValueError(
                f"latent height and width must be multiples of patch_size={p}; got {height}x{width} "
                f"(video height and width must be multiples of {8 * p} pixels)"
            )
        if p_t is not None and num_frames % p_t:
            raise ValueError(
                f"the number of latent frames must be a multiple of patch_size_t={p_t} for CogVideoX 1.5 "
                f"({', '.join(str(p_t * k) for k in range(1, 5))}, ...; the pipelines pad an odd count with one "
                f"frame); got {num_frames}"
            )
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[-1] != config.text_embed_dim:
            raise ValueError(
                f"encoder_hidden_states must be [batch, tokens, text_embed_dim={config.text_embed_dim}]; got shape "
                f"{list(encoder_hidden_states.shape)}"
            )
        text_length = encoder_hidden_states.shape[1]
        positions = self.patch_embed.positions
        if positions is not None and text_length != config.max_text_seq_length:
            raise ValueError(
                f"this model adds {positions} positional embeddings over exactly max_text_seq_length="
                f"{config.max_text_seq_length} text tokens; got {text_length} text tokens (pad or truncate the "
                f"prompt embeddings to {config.max_text_seq_length})"
            )
        if positions == "learned" and (num_frames, height, width) != self.patch_embed.latent_grid:
            trained_frames, trained_height, trained_width = self.patch_embed.latent_grid
            raise ValueError(
                f"this model's learned positional embeddings (CogVideoX-5b-I2V) cover exactly {trained_frames} latent "
                f"frames ({config.sample_frames} video frames) of {trained_height}x{trained_width} latents "
                f"({8 * trained_height}x{8 * trained_width} pixels); got {num_frames} latent frames of "
                f"{height}x{width} latents"
            )
        if image_rotary_emb is not None and not config.use_rotary_positional_embeddings:
            raise ValueError(
                "image_rotary_emb was given, but this model uses 3D sin-cos positions "
                "(use_rotary_positional_embeddings=False); pass image_rotary_emb=None"
            )
        if timestep_cond is not None:
            raise ValueError("this model has no timestep-condition projection; timestep_cond must be None")
        if self.ofs_embedding is not None and ofs is None:
            raise ValueError(
                "this model has an ofs embedding (CogVideoX1.5-5B-I2V, ofs_embed_dim="
                f"{config.ofs_embed_dim}); pass ofs (the official pipeline passes 2.0)"
            )
        if self.ofs_embedding is None and ofs is not None:
            raise ValueError("ofs was given, but this model has no ofs embedding (ofs_embed_dim=None); pass ofs=None")

    @staticmethod
    def _as_batch(values: int | float | torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
        values = torch.as_tensor(values, device=device)
        return values.expand(batch_size) if values.ndim == 0 else values

    def _unpatchify(self, tokens: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
        """[B, tokens, patch features (C, [t,] h, w)] -> [B, F, C, H, W]."""
        p, p_t = self.config.patch_size, self.config.patch_size_t
        b = tokens.shape[0]
        if p_t is None:
            x = tokens.reshape(b, num_frames, height // p, width // p, -1, p, p)
            return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, num_frames, -1, height, width)
        x = tokens.reshape(b, num_frames // p_t, height // p, width // p, -1, p_t, p, p)
        return x.permute(0, 1, 5, 4, 2, 6, 3, 7).reshape(b, num_frames, -1, height, width)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: int | float | torch.LongTensor,
        timestep_cond: torch.Tensor | None = None,
        ofs: int | float | torch.LongTensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> tuple[torch.Tensor] | Transformer2DModelOutput:
        """Predict from noisy latents ``hidden_states`` [B, F, C, H, W] and text ``encoder_hidden_states`` [B, L, E].

        Args:
            timestep: the diffusion timestep(s), a number or a [B] tensor.
            timestep_cond: accepted for signature compatibility; must be None (no such projection in CogVideoX).
            ofs: CogVideoX1.5-5B-I2V only (required there): the "ofs" value, 2.0 in the official pipeline.
            image_rotary_emb: precomputed 3D RoPE (cos, sin), each [video tokens, attention_head_dim], e.g. from
                ``rotary_embeddings_for_video``; made here from the latent grid when None (RoPE models only).
            attention_kwargs: passed to the attention processors; ``scale`` sets the LoRA scale.

        Returns:
            ``Transformer2DModelOutput(sample=[B, F, out_channels, H, W])``, or ``(sample,)`` if not ``return_dict``.
        """
        self._check_inputs(hidden_states, encoder_hidden_states, timestep_cond, ofs, image_rotary_emb)
        batch_size, num_frames, _, height, width = hidden_states.shape
        dtype, device = hidden_states.dtype, hidden_states.device

        # 1. Conditioning vector: timestep (+ ofs) embedding; the sinusoids are float32, the MLPs run in the model dtype
        timestep = self._as_batch(timestep, batch_size, device)
        emb = self.time_embedding(self.time_proj(timestep).to(dtype))
        if self.ofs_embedding is not None:
            emb = emb + self.ofs_embedding(self.ofs_proj(self._as_batch(ofs, batch_size, device)).to(dtype))

        # 2. Tokens: [text; video] embeddings, split into the two streams
        text_length = encoder_hidden_states.shape[1]
        tokens = self.embedding_dropout(self.patch_embed(encoder_hidden_states, hidden_states))
        encoder_hidden_states, hidden_states = tokens[:, :text_length], tokens[:, text_length:]
        rotary = None
        if self.config.use_rotary_positional_embeddings:
            token_grid = self.patch_embed.token_grid(num_frames, height, width)
            rotary = self.rope(token_grid, image_rotary_emb, device)

        # 3. Expert-AdaLN blocks
        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states, encoder_hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, encoder_hidden_states, emb, rotary, attention_kwargs
                )
            else:
                hidden_states, encoder_hidden_states = block(
                    hidden_states=hidden_states,
                    encoder_hidden_states=encoder_hidden_states,
                    temb=emb,
                    image_rotary_emb=rotary,
                    attention_kwargs=attention_kwargs,
                )

        # 4. Output head on the video tokens, then patches back to latents
        hidden_states = self.norm_final(hidden_states)
        hidden_states = self.norm_out(hidden_states, temb=emb)
        hidden_states = self.proj_out(hidden_states)
        output = self._unpatchify(hidden_states, num_frames, height, width)

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def _register_block_for_cache_hooks() -> None:
    """Tell diffusers' block-level cache hooks (FirstBlockCache, MagCache, ...) that blocks return (video, text)."""
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

    if ExpertTransformerBlock not in TransformerBlockRegistry._registry:
        TransformerBlockRegistry.register(
            model_class=ExpertTransformerBlock,
            metadata=TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1),
        )


__all__ = ["CogVideoXTransformer3DModel", "ExpertAdaLayerNorm", "ExpertTransformerBlock", "JointAttention"]
