"""The official Hub layout loads as it is: key names, config.json (auto_map, no model_type), Auto classes, bad files.

Key names, as published: the ``state_dict()`` list of the public cogvlm.cpp port of ``THUDM/cogvlm2-llama3-chat-19B``
(1189 tensors for 32 + 63 layers: 13 per language layer, 12 per vision layer, 14 outside), the per-layer names of the
llama.cpp CogVLM converter (``model.layers.{}.self_attn.language_expert_query_key_value.weight`` ...), the remote
``modeling_cogvlm.py`` / ``visual.py`` module attributes, and the shard listing of ``THUDM/cogvlm2-llama3-caption``
(``model.vision.boi`` [1, 1, 4096], ``model.vision.conv.weight`` [1792, 1792, 2, 2],
``model.vision.linear_proj.dense_4h_to_h.weight`` [4096, 14336], ``lm_head.weight`` [128256, 4096]).
"""

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForImageTextToText

from trl_vision_reward.reward.cogvlm2 import (
    CogVLM2Config,
    CogVLM2ForConditionalGeneration,
    CogVLM2VideoConfig,
    CogVLM2VideoForConditionalGeneration,
    load_cogvlm2,
)
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_config

# CogVLMDecoderLayer: VisionExpertAttention (language expert QKV without bias, output projection), VisionExpertMLP
# (the Llama MLP of each expert), two RMSNorms. The video model (CogVLMVideoForCausalLM) comments the vision expert
# out of both modules, so its layers hold the language part only.
OFFICIAL_LANGUAGE_EXPERT_KEYS = [
    "self_attn.language_expert_query_key_value.weight",
    "self_attn.language_expert_dense.weight",
    "mlp.language_mlp.gate_proj.weight",
    "mlp.language_mlp.up_proj.weight",
    "mlp.language_mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]
OFFICIAL_VISION_EXPERT_KEYS = [
    "self_attn.vision_expert_query_key_value.weight",
    "self_attn.vision_expert_query_key_value.bias",
    "self_attn.vision_expert_dense.weight",
    "mlp.vision_mlp.gate_proj.weight",
    "mlp.vision_mlp.up_proj.weight",
    "mlp.vision_mlp.down_proj.weight",
]
OFFICIAL_LANGUAGE_LAYER_KEYS = OFFICIAL_VISION_EXPERT_KEYS + OFFICIAL_LANGUAGE_EXPERT_KEYS
OFFICIAL_VISION_LAYER_KEYS = [
    "input_layernorm.weight",
    "input_layernorm.bias",
    "attention.query_key_value.weight",
    "attention.query_key_value.bias",
    "attention.dense.weight",
    "attention.dense.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
    "post_attention_layernorm.weight",
    "post_attention_layernorm.bias",
]
OFFICIAL_OTHER_KEYS = [
    "model.embed_tokens.weight",
    "model.norm.weight",
    "model.vision.patch_embedding.proj.weight",
    "model.vision.patch_embedding.proj.bias",
    "model.vision.patch_embedding.position_embedding.weight",
    "model.vision.patch_embedding.cls_embedding",
    "model.vision.linear_proj.linear_proj.weight",
    "model.vision.linear_proj.norm1.weight",
    "model.vision.linear_proj.norm1.bias",
    "model.vision.linear_proj.dense_h_to_4h.weight",
    "model.vision.linear_proj.gate_proj.weight",
    "model.vision.linear_proj.dense_4h_to_h.weight",
    "model.vision.conv.weight",
    "model.vision.conv.bias",
    "model.vision.boi",
    "model.vision.eoi",
    "lm_head.weight",
]


def official_keys(num_layers: int, num_vision_layers: int, video: bool = False) -> list[str]:
    keys = list(OFFICIAL_OTHER_KEYS)
    layer_keys = OFFICIAL_LANGUAGE_EXPERT_KEYS if video else OFFICIAL_LANGUAGE_LAYER_KEYS
    keys += [f"model.layers.{i}.{name}" for i in range(num_layers) for name in layer_keys]
    keys += [
        f"model.vision.transformer.layers.{i}.{name}"
        for i in range(num_vision_layers)
        for name in OFFICIAL_VISION_LAYER_KEYS
    ]
    return keys


def official_config_json(config: CogVLM2Config, video: bool) -> dict:
    """config.json as the official repositories write it: remote-code auto_map, no model_type, torch_dtype."""
    vision = config.vision_config
    return {
        "architectures": ["CogVLMVideoForCausalLM" if video else "CogVLMForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_cogvlm.CogVLMConfig",
            "AutoModelForCausalLM": f"modeling_cogvlm.{'CogVLMVideoForCausalLM' if video else 'CogVLMForCausalLM'}",
        },
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "hidden_act": "silu",
        "hidden_size": config.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": 2048 if video else 8192,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "num_multi_query_heads": config.num_multi_query_heads,
        "rms_norm_eps": 1e-05,
        "template_version": "chat",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "vision_config": {
            "dropout_prob": 0.0,
            "hidden_act": "gelu",
            "hidden_size": vision.hidden_size,
            "image_size": vision.image_size,
            "in_channels": 3,
            "intermediate_size": vision.intermediate_size,
            "layer_norm_eps": 1e-06,
            "num_heads": vision.num_heads,
            "num_hidden_layers": vision.num_hidden_layers,
            "num_positions": vision.num_positions,
            "patch_size": vision.patch_size,
        },
        "vocab_size": config.vocab_size,
    }


def write_official_checkpoint(folder, video=False, drop=(), add=None, with_inv_freq=False):
    """A tiny checkpoint in the official layout, its tensors created from the names above (not from our model).

    ``with_inv_freq``: also the persistent ``inv_freq`` buffer the remote ``FastRotaryEmbedding`` registers in every
    layer, in bfloat16 (``True``) or in the dtype given.
    """
    config = tiny_cogvlm2_config(video=video)
    reference = CogVLM2ForConditionalGeneration(tiny_cogvlm2_config()).state_dict()  # shapes only (with experts)
    torch.manual_seed(1)
    tensors = {}
    for key in official_keys(config.num_hidden_layers, config.vision_config.num_hidden_layers, video):
        if key not in drop:
            tensors[key] = torch.randn(reference[key].shape).to(torch.bfloat16)
    if with_inv_freq:
        dtype = torch.bfloat16 if with_inv_freq is True else with_inv_freq
        exponents = torch.arange(0, config.head_dim, 2, dtype=torch.float32) / config.head_dim
        for layer in range(config.num_hidden_layers):
            tensors[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = (1.0 / 500000**exponents).to(dtype)
    tensors.update(add or {})
    half = len(tensors) // 2
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard), metadata={"format": "pt"})
    index = {"metadata": {"total_size": 0}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps(official_config_json(config, video)))
    return tensors


def test_our_parameter_names_are_exactly_the_official_ones(video):
    config = tiny_cogvlm2_config(video=video)
    model_class = CogVLM2VideoForConditionalGeneration if video else CogVLM2ForConditionalGeneration
    model = model_class(config)
    assert sorted(model.state_dict()) == sorted(official_keys(2, 2, video))
    with torch.device("meta"):
        full = model_class(CogVLM2VideoConfig() if video else CogVLM2Config())
    assert sorted(full.state_dict()) == sorted(official_keys(32, 63, video))
    # image: the count of the cogvlm.cpp state_dict() for cogvlm2-llama3-chat-19B; video: 6 vision-expert tensors
    # fewer in each of the 32 layers
    assert len(full.state_dict()) == (1189 - 32 * 6 if video else 1189)


def test_full_size_parameter_counts():
    """CogVLM2 19.5 B; CogVLM2-Video 12.5 B (Llama-3-8B + the EVA2-CLIP-E tower and adapter: the published caption
    checkpoint's 6 bf16 shards, about 25 GB)."""
    with torch.device("meta"):
        image = CogVLM2ForConditionalGeneration(CogVLM2Config())
        video = CogVLM2VideoForConditionalGeneration(CogVLM2VideoConfig())
    count = {name: sum(p.numel() for p in m.parameters()) for name, m in (("image", image), ("video", video))}
    assert round(count["image"] / 1e9, 2) == 19.50
    assert round(count["video"] / 1e9, 1) == 12.5
    assert 24e9 < 2 * count["video"] < 26e9


def test_video_checkpoint_with_vision_experts_is_refused(tmp_path):
    """A video checkpoint holding vision-expert tensors is not the official CogVLMVideoForCausalLM layout."""
    config = tiny_cogvlm2_config()
    extra = {
        f"model.layers.0.{key}": torch.zeros(
            CogVLM2ForConditionalGeneration(config).state_dict()[f"model.layers.0.{key}"].shape
        )
        for key in OFFICIAL_VISION_EXPERT_KEYS
    }
    write_official_checkpoint(tmp_path, video=True, add=extra)
    with pytest.raises(ValueError, match=r"unexpected keys: \['model\.layers\.0\.mlp\.vision_mlp"):
        load_cogvlm2(tmp_path)


def test_official_checkpoint_loads_without_missing_or_unexpected_keys(tmp_path, video):
    tensors = write_official_checkpoint(tmp_path, video=video, with_inv_freq=True)
    model = load_cogvlm2(tmp_path)
    assert type(model) is (CogVLM2VideoForConditionalGeneration if video else CogVLM2ForConditionalGeneration)
    assert model.dtype == torch.bfloat16  # the checkpoint's dtype (dtype="auto" is the default in transformers 5)
    state = model.state_dict()
    assert sorted(state) == sorted(official_keys(2, 2, video))
    for key in official_keys(2, 2, video):
        assert torch.equal(state[key], tensors[key]), key
    model_class = CogVLM2VideoForConditionalGeneration if video else CogVLM2ForConditionalGeneration
    _, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_official_config_json_loads_into_our_classes(tmp_path, video):
    write_official_checkpoint(tmp_path, video=video)
    config_class = CogVLM2VideoConfig if video else CogVLM2Config
    config = config_class.from_pretrained(tmp_path)
    assert config.num_multi_query_heads == 2 and config.vision_config.image_size == 28
    assert config.template_version == "chat" and config.dtype == torch.bfloat16
    assert not hasattr(config, "auto_map")
    # the remote code is not needed and not referenced once saved by us; Auto classes resolve the saved folder
    model = load_cogvlm2(tmp_path)
    model.save_pretrained(tmp_path / "ours")
    saved = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert "auto_map" not in saved and saved["model_type"] == config_class.model_type
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "ours"), config_class)
    assert type(AutoModelForImageTextToText.from_pretrained(tmp_path / "ours")) is type(model)


def test_auto_config_cannot_resolve_the_official_folder_without_remote_code(tmp_path):
    """Why ``load_cogvlm2`` exists: the official config.json has no model_type, only the remote-code auto_map."""
    write_official_checkpoint(tmp_path)
    with pytest.raises(ValueError):
        AutoConfig.from_pretrained(tmp_path, trust_remote_code=False)


def test_checkpoint_with_a_missing_key_is_refused_with_its_name(tmp_path):
    missing = "model.layers.1.mlp.vision_mlp.up_proj.weight"
    write_official_checkpoint(tmp_path, drop=(missing,))
    with pytest.raises(ValueError, match=r"missing keys: \['model\.layers\.1\.mlp\.vision_mlp\.up_proj\.weight'\]"):
        load_cogvlm2(tmp_path)


def test_checkpoint_with_an_unknown_key_is_refused_with_its_name(tmp_path):
    write_official_checkpoint(tmp_path, add={"model.vision.extra_projection.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"unexpected keys: \['model\.vision\.extra_projection\.weight'\]"):
        load_cogvlm2(tmp_path)
    assert load_cogvlm2(tmp_path, strict=False) is not None


def test_checkpoint_with_a_misshapen_tensor_is_refused(tmp_path):
    config = tiny_cogvlm2_config()
    write_official_checkpoint(
        tmp_path, drop=("model.vision.boi",), add={"model.vision.boi": torch.zeros(1, 1, config.hidden_size + 1)}
    )
    with pytest.raises(ValueError, match="model.vision.boi"):
        load_cogvlm2(tmp_path)


def test_processor_of_an_official_folder_is_built_from_its_config_and_tokenizer(tmp_path, video):
    from trl_vision_reward.reward.cogvlm2 import load_cogvlm2_processor
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_tokenizer

    from .conftest import media_inputs

    write_official_checkpoint(tmp_path, video=video)
    tiny_cogvlm2_tokenizer().save_pretrained(tmp_path)  # the official repos ship tokenizer files, no processor
    processor = load_cogvlm2_processor(tmp_path)
    assert processor.image_processor.image_size == 28 and processor.image_processor.is_video == video
    inputs = media_inputs(processor, video, ["Question: Is it clear? Short answer:"])
    with torch.no_grad():
        assert load_cogvlm2(tmp_path)(**inputs).logits.isfinite().all()
