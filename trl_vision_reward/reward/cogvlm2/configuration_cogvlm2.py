"""Configuration of the native CogVLM2 and CogVLM2-Video backbones.

The field names are the keys of the official Hub ``config.json`` files, so those files load into these classes as
they are. Where each name and default comes from:

- Language model (keys at the top level): ``configuration_cogvlm.py`` of ``THUDM/cogvlm2-llama3-chat-19B`` (class
  ``CogVLMConfig``: vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
  num_attention_heads=32, num_multi_query_heads=8, hidden_act="silu", max_position_embeddings=8192,
  rms_norm_eps=1e-05, template_version="chat", bos_token_id=128000, eos_token_id=128001, tie_word_embeddings=False).
  The video checkpoints (``THUDM/cogvlm2-video-llama3-chat``, ``THUDM/VisionReward-Video``, and the public
  ``THUDM/cogvlm2-llama3-caption`` config.json) carry the same keys with max_position_embeddings=2048 and
  ``pad_token_id=128002`` (the id the remote code also hard-codes as ``padding_idx`` and image placeholder).
- Vision tower (the ``vision_config`` dict): ``config.json`` of the same repositories - dropout_prob, hidden_act="gelu",
  hidden_size=1792, image_size (1344 for the image model, 224 for the video model), in_channels=3,
  intermediate_size=15360, layer_norm_eps=1e-06, num_heads=16, num_hidden_layers=63, num_positions
  (=(image_size/patch_size)**2 + 1: 9217 or 257), patch_size=14.
- RoPE base: not a config key upstream; ``modeling_cogvlm.py`` builds ``FastRotaryEmbedding(..., base=500000)`` and
  SwissArmyTransformer's ``LlamaVisionExpertAttnMixin`` does the same (``THUDM/CogVLM`` ``utils/models/mixin_llama3.py``),
  so it lives here as ``rope_parameters["rope_theta"] = 500000``.

The official files have no ``model_type`` and carry an ``auto_map`` that points at the remote code. ``auto_map`` is
dropped on load (so a config saved from these classes never points at remote code again), and the ``model_type`` of
these classes (``cogvlm2`` / ``cogvlm2_video``) is written on save, which is what makes ``AutoConfig`` and the Auto
model classes resolve a saved folder to this package. See ``docs/cogvlm2.md`` for loading the official folders.
"""

from __future__ import annotations

from typing import Literal

from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# Token types of the official remote code (``LANGUAGE_TOKEN_TYPE = 0``, ``VISION_TOKEN_TYPE = 1`` in
# modeling_cogvlm.py): ``token_type_ids`` route each position to the language or the vision expert.
LANGUAGE_TOKEN_TYPE = 0
VISION_TOKEN_TYPE = 1

# ``tokenizer.pad_token_id = 128002  # llama3 adapt for cogvlm`` in modeling_cogvlm.py: the id placed at vision slots
# (its embedding is replaced by the vision features) and the embedding's padding_idx.
COGVLM2_PAD_TOKEN_ID = 128002

# Architectures written by the official remote code (``architectures`` in config.json).
OFFICIAL_IMAGE_ARCHITECTURE = "CogVLMForCausalLM"
OFFICIAL_VIDEO_ARCHITECTURE = "CogVLMVideoForCausalLM"

# dtypes the official ``inv_freq`` buffer can have (``rope_inv_freq_dtype``).
ROPE_INV_FREQ_DTYPES = ("float32", "bfloat16", "float16")


class CogVLM2VisionConfig(PreTrainedConfig):
    r"""EVA2-CLIP-E vision tower of CogVLM2 (``vision_config`` in the official config.json).

    Args:
        hidden_size: width of the vision transformer (1792).
        intermediate_size: MLP width of the vision transformer (15360).
        num_hidden_layers: number of vision transformer layers (63).
        num_heads: attention heads of the vision transformer (16).
        image_size: side of the square input in pixels (1344 image model, 224 video model).
        patch_size: side of a patch in pixels (14).
        in_channels: input channels (3).
        num_positions: learned position embeddings, patches plus the class token; derived when left unset.
        hidden_act: activation of the vision MLP ("gelu", exact erf form).
        layer_norm_eps: epsilon of the vision LayerNorms (1e-6).
        dropout_prob: dropout after attention (0.0; kept for the official key).
    """

    model_type = "cogvlm2_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1792
    intermediate_size: int = 15360
    num_hidden_layers: int = 63
    num_heads: int = 16
    image_size: int = 1344
    patch_size: int = 14
    in_channels: int = 3
    num_positions: int | None = None
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    dropout_prob: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        grid = self.image_size // self.patch_size
        if self.num_positions is None:
            self.num_positions = grid * grid + 1
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        grid = self.image_size // self.patch_size
        if grid % 2:
            raise ValueError(
                f"image_size / patch_size must be even (the adapter pools 2x2 patches); got {self.image_size}/"
                f"{self.patch_size} = {grid}"
            )
        if self.num_positions != grid * grid + 1:
            raise ValueError(
                f"num_positions must be (image_size/patch_size)**2 + 1 = {grid * grid + 1} (patches + class token); "
                f"got {self.num_positions}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")

    @property
    def grid_size(self) -> int:
        """Patches per side before the 2x2 pooling of the adapter."""
        return self.image_size // self.patch_size

    @property
    def tokens_per_image(self) -> int:
        """Language-model positions one image (or one video frame) occupies: pooled patches plus boi and eoi.

        ``vision_token_num = (image_size // patch_size // 2) * (image_size // patch_size // 2) + 2`` in the official
        ``build_conversation_input_ids``: 2306 for the 1344 px image model, 66 for the 224 px video model.
        """
        pooled = self.grid_size // 2
        return pooled * pooled + 2


class CogVLM2Config(PreTrainedConfig):
    r"""CogVLM2 (Llama-3-8B language model with a vision expert in every layer, EVA2-CLIP-E vision tower).

    Defaults are those of ``THUDM/cogvlm2-llama3-chat-19B``; every field name is a key of the official config.json.

    Args:
        vision_config: the vision tower (dict or ``CogVLM2VisionConfig``).
        vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads: Llama-3-8B shapes.
        num_multi_query_heads: key/value heads of the grouped-query attention (8).
        hidden_act: activation of the gated MLPs ("silu").
        max_position_embeddings: context length the model was trained for (8192 image, 2048 video).
        initializer_range: std of the normal init of random weights.
        rms_norm_eps: epsilon of the RMSNorms.
        template_version: the official default prompt style ("base", "chat" or "vqa"); informational here, the
            processor decides the prompt.
        rope_parameters: RoPE settings; ``rope_theta`` 500000 as hard-coded upstream.
        bos_token_id, eos_token_id, pad_token_id: Llama-3 ids; 128002 is the slot id of vision positions.
        tie_word_embeddings: False upstream (separate ``lm_head``).
        use_cache: whether ``forward`` returns a KV cache by default.
        vision_experts: whether every decoder layer has a vision expert (its own QKV, output projection and MLP for
            image positions). True for CogVLM2; False for CogVLM2-Video, whose official ``CogVLMVideoForCausalLM``
            keeps only the language expert (every position goes through the Llama-3 weights).
        rope_inv_freq_dtype: dtype of the ``rotary_emb.inv_freq`` buffer of the official checkpoint, in which the
            official ``FastRotaryEmbedding(pos_idx_in_fp32=False)`` builds its cos/sin tables (positions, angles
            and cos/sin each rounded to it). ``"bfloat16"``: a bfloat16 forward reproduces those tables bit for bit
            (``load_cogvlm2`` sets it when the checkpoint's buffer is bfloat16). ``"float32"``: angles in float32,
            exact RoPE (the default for random or converted models, and the switch to turn the rounding off).
    """

    model_type = "cogvlm2"
    default_theta = 500_000.0
    sub_configs_defaults = {"vision_config": SubConfigSpec(config_class=CogVLM2VisionConfig)}
    attribute_map = {"num_key_value_heads": "num_multi_query_heads"}

    vision_config: dict | CogVLM2VisionConfig | None = None
    vocab_size: int = 128256
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_multi_query_heads: int = 8
    hidden_act: str = "silu"
    max_position_embeddings: int = 8192
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-5
    template_version: Literal["base", "chat", "vqa"] = "chat"
    rope_parameters: dict | None = None
    bos_token_id: int | None = 128000
    eos_token_id: int | list[int] | None = 128001
    pad_token_id: int | None = COGVLM2_PAD_TOKEN_ID
    tie_word_embeddings: bool = False
    use_cache: bool = True
    vision_experts: bool = True
    rope_inv_freq_dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    def __post_init__(self, **kwargs):
        # The official config.json points at the remote code; this package is the code now.
        kwargs.pop("auto_map", None)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_multi_query_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_multi_query_heads "
                f"({self.num_multi_query_heads})"
            )
        if self.rope_inv_freq_dtype not in ROPE_INV_FREQ_DTYPES:
            raise ValueError(
                f"rope_inv_freq_dtype must be one of {ROPE_INV_FREQ_DTYPES}; got {self.rope_inv_freq_dtype!r}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def is_video(self) -> bool:
        return False


class CogVLM2VideoConfig(CogVLM2Config):
    r"""CogVLM2-Video: the same network applied to up to 24 frames of 224 px, each followed by its time index.

    Defaults are those of ``THUDM/cogvlm2-video-llama3-chat`` (224 px frames, 2048 positions); the per-frame layout
    lives in the processor. ``max_num_frames`` (24) is ``num_frames = 24`` of the official ``load_video``.
    ``vision_experts`` is False: the official ``CogVLMVideoForCausalLM`` (``VisionExpertAttention`` and
    ``VisionExpertMLP`` with their vision-expert lines commented out) runs every position through the language
    expert, and its checkpoints hold no vision-expert tensors (about 12.5 B parameters, not CogVLM2's 19.5 B).
    """

    model_type = "cogvlm2_video"
    max_position_embeddings: int = 2048
    max_num_frames: int = 24
    vision_experts: bool = False

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = {"image_size": 224}
        super().__post_init__(**kwargs)

    @property
    def is_video(self) -> bool:
        return True


__all__ = [
    "CogVLM2Config",
    "CogVLM2VideoConfig",
    "CogVLM2VisionConfig",
    "LANGUAGE_TOKEN_TYPE",
    "ROPE_INV_FREQ_DTYPES",
    "VISION_TOKEN_TYPE",
]
