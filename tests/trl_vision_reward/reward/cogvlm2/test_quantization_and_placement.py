"""8-bit / 4-bit loading through bitsandbytes, device-map placement, and the documented memory figures."""

import warnings

import pytest
import torch
from torch import nn

from trl_vision_reward.reward.cogvlm2 import (
    CogVLM2Config,
    CogVLM2ForConditionalGeneration,
    CogVLM2VideoConfig,
    bitsandbytes_config,
    load_cogvlm2,
    weight_memory_bytes,
)
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor

from .conftest import random_image

GIB = 2**30


@pytest.mark.parametrize(
    "config, figures",
    [(CogVLM2Config(), [36.3, 19.2, 23.3, 11.7, 17.6]), (CogVLM2VideoConfig(), [23.3, 12.7, 16.8, 8.0, 14.0])],
    ids=["image", "video"],
)
def test_documented_weight_memory(config, figures):
    """The table in modeling_cogvlm2.py / docs/cogvlm2.md: bf16, int8 (all / vision in bf16), nf4 (all / vision in bf16)."""
    settings = [(16, True), (8, True), (8, False), (4, True), (4, False)]
    assert [round(weight_memory_bytes(config, bits, vision) / GIB, 1) for bits, vision in settings] == figures


def test_bitsandbytes_configs_keep_lm_head_and_optionally_the_vision_tower():
    eight, four = bitsandbytes_config(8), bitsandbytes_config(4, quantize_vision=False)
    assert eight.load_in_8bit and eight.llm_int8_skip_modules == ["lm_head"]
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4"
    assert four.llm_int8_skip_modules == ["lm_head", "model.vision"]
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        bitsandbytes_config(2)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_cogvlm2")
    model = tiny_cogvlm2_model()
    model.save_pretrained(folder)
    processor = tiny_cogvlm2_processor()
    inputs = processor(text="Question: Is the image clear? Short answer:", images=random_image())
    with torch.no_grad():
        reference = model(**inputs).logits
    return folder, inputs, reference


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("quantize_vision", [True, False], ids=["vision-quantized", "vision-bf16"])
def test_bitsandbytes_loading(saved_tiny, bits, quantize_vision):
    bnb = pytest.importorskip("bitsandbytes")
    folder, inputs, reference = saved_tiny
    config = bitsandbytes_config(bits, quantize_vision=quantize_vision, compute_dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = load_cogvlm2(folder, quantization_config=config, device_map="cpu")
        except (RuntimeError, NotImplementedError) as error:  # a bitsandbytes build without CPU kernels
            pytest.skip(f"bitsandbytes cannot quantize on this machine: {error}")
        with torch.no_grad():
            logits = model(**inputs).logits
    quantized = bnb.nn.Linear8bitLt if bits == 8 else bnb.nn.Linear4bit
    layer = model.model.layers[0]
    for linear in (
        layer.self_attn.vision_expert_query_key_value,
        layer.self_attn.language_expert_dense,
        layer.mlp.vision_mlp.up_proj,
        layer.mlp.language_mlp.down_proj,
    ):
        assert isinstance(linear, quantized)
    vision_linear = model.model.vision.transformer.layers[0].mlp.fc1
    assert isinstance(vision_linear, quantized) == quantize_vision
    assert type(model.lm_head) is nn.Linear
    assert logits.shape == reference.shape and logits.isfinite().all()
    if bits == 8:  # LLM.int8 is close; nf4 on 32/64-wide toy layers is too coarse to compare
        assert (logits - reference).abs().max() < 0.5 * reference.std()


def test_device_map_never_splits_a_layer():
    """`_no_split_modules`: a decoder layer (both experts) and a vision layer each land on one device."""
    from accelerate import infer_auto_device_map

    with torch.device("meta"):
        model = CogVLM2ForConditionalGeneration(CogVLM2Config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        device_map = infer_auto_device_map(
            model,
            max_memory={0: "14GiB", 1: "14GiB", "cpu": "200GiB"},
            no_split_module_classes=model._no_split_modules,
            dtype=torch.bfloat16,
        )
    assert set(device_map.values()) == {0, 1, "cpu"}
    for name in device_map:
        parts = name.split(".")
        if "layers" in parts:
            assert parts[parts.index("layers") + 1 :] and len(parts) == parts.index("layers") + 2, name
