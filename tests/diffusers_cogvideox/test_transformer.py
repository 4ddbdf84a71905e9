"""CogVideoXTransformer3DModel: a drop-in, numerically equal replacement for diffusers' class, for all five variants."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel as Reference

import diffusers_cogvideox
from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video
from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
from diffusers_cogvideox.tiny import TINY_MAX_TEXT_LENGTH, TINY_TEXT_DIM, TINY_TRANSFORMER_CONFIGS

VARIANTS = list(TINY_TRANSFORMER_CONFIGS)
# (latent frames, latent height, latent width): the config's own grid first, then others. Learned positions (5b-i2v)
# only exist for their own grid.
GRIDS = {
    "2b": [(3, 4, 4), (1, 4, 6), (5, 6, 2)],
    "5b": [(3, 4, 4), (1, 4, 6), (5, 6, 2)],
    "5b-i2v": [(3, 4, 4)],
    "1.5-5b": [(2, 4, 4), (4, 6, 8), (2, 16, 16)],
    "1.5-5b-i2v": [(2, 4, 4), (4, 6, 8), (2, 16, 16)],
}


def tiny_config(variant: str, **overrides) -> dict:
    return dict(TINY_TRANSFORMER_CONFIGS[variant], num_layers=2, **overrides)


def reference_model(config: dict, seed: int = 0) -> Reference:
    """diffusers' class with every weight randomised (zero-initialised ones included)."""
    torch.manual_seed(seed)
    model = Reference(**config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    return model


def ours_from(reference: Reference) -> CogVideoXTransformer3DModel:
    model = CogVideoXTransformer3DModel(**reference.config).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    return model


def make_inputs(config: dict, frames: int, height: int, width: int, batch: int = 2) -> dict:
    inputs = dict(
        hidden_states=torch.randn(batch, frames, config["in_channels"], height, width),
        encoder_hidden_states=torch.randn(batch, TINY_MAX_TEXT_LENGTH, TINY_TEXT_DIM),
        timestep=torch.randint(0, 1000, (batch,)),
    )
    if config.get("use_rotary_positional_embeddings"):
        inputs["image_rotary_emb"] = rotary_embeddings_for_video(config, 8 * height, 8 * width, frames)
    if config.get("ofs_embed_dim"):
        inputs["ofs"] = torch.full((1,), 2.0)
    return inputs


@pytest.mark.parametrize("variant", VARIANTS)
def test_equal_to_reference_at_several_grids(variant):
    config = tiny_config(variant)
    reference = reference_model(config)
    ours = ours_from(reference)
    for frames, height, width in GRIDS[variant]:
        inputs = make_inputs(config, frames, height, width)
        with torch.no_grad():
            expected = reference(**inputs).sample
            actual = ours(**inputs).sample
        assert actual.shape == expected.shape == (2, frames, config["out_channels"], height, width)
        assert (actual - expected).abs().max().item() <= 1e-5, (frames, height, width)


@pytest.mark.parametrize("variant", ["2b", "5b"])
def test_tokens_major_attention_layout_used_on_gpus_is_equal_too(variant, monkeypatch):
    """Queries/keys reach the kernel heads-major on CPU and tokens-major elsewhere; both layouts give the same result."""
    from diffusers_cogvideox.models import transformer_cogvideox

    monkeypatch.setattr(transformer_cogvideox, "_heads_major_attention", lambda device: False)
    config = tiny_config(variant)
    reference = reference_model(config)
    ours = ours_from(reference)
    inputs = make_inputs(config, 3, 4, 6)
    with torch.no_grad():
        assert (ours(**inputs).sample - reference(**inputs).sample).abs().max().item() <= 1e-5


def test_return_dict_false_gives_a_tuple():
    config = tiny_config("2b")
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 3, 4, 4)
    with torch.no_grad():
        (sample,) = ours(**inputs, return_dict=False)
        assert torch.equal(sample, ours(**inputs).sample)


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_parameter_buffer_and_config_names(variant):
    config = tiny_config(variant)
    reference, ours = Reference(**config), CogVideoXTransformer3DModel(**config)
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert {name for name, _ in ours.named_buffers()} == {name for name, _ in reference.named_buffers()}
    assert {k: v for k, v in ours.config.items() if not k.startswith("_")} == {
        k: v for k, v in reference.config.items() if not k.startswith("_")
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_from_pretrained_of_a_hub_layout_folder(variant, tmp_path):
    config = tiny_config(variant)
    reference = reference_model(config)
    reference.save_pretrained(tmp_path / "transformer")
    ours, info = CogVideoXTransformer3DModel.from_pretrained(
        tmp_path, subfolder="transformer", output_loading_info=True
    )
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert info["error_msgs"] == []
    frames, height, width = GRIDS[variant][0]
    inputs = make_inputs(config, frames, height, width)
    with torch.no_grad():
        assert (ours.eval()(**inputs).sample - reference(**inputs).sample).abs().max().item() <= 1e-5


def test_reference_loads_what_we_save(tmp_path):
    config = tiny_config("5b-i2v")
    ours = ours_from(reference_model(config))
    ours.save_pretrained(tmp_path)
    reference, info = Reference.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert torch.equal(reference.patch_embed.pos_embedding.float(), ours.patch_embed.pos_embedding)


def test_top_level_export_is_this_class():
    assert diffusers_cogvideox.CogVideoXTransformer3DModel is CogVideoXTransformer3DModel


def test_our_modules_import_no_cogvideox_code_from_diffusers():
    """Only diffusers' generic machinery is used (read from the import statements of our model/conversion modules)."""
    import ast
    from pathlib import Path

    root = Path(diffusers_cogvideox.__file__).parent
    files = [root / "models" / "transformer_cogvideox.py", root / "models" / "embeddings.py"]
    files += sorted((root / "conversion").glob("*.py")) + [root / "commands" / "convert.py"]
    offending = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offending += [f"{file.name}: {n}" for n in names if n.startswith("diffusers") and "cogvideo" in n.lower()]
    assert offending == []


@pytest.mark.slow
def test_package_never_imports_diffusers_cogvideox_classes():
    code = (
        "import sys, torch\n"
        "from diffusers_cogvideox import CogVideoXTransformer3DModel as M\n"
        "from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS as C\n"
        "M(**C['5b'])(torch.randn(1, 3, 4, 4, 4), torch.randn(1, 16, 32), torch.tensor([3]))\n"
        "print(sorted(m for m in sys.modules if m.startswith('diffusers.') and 'cogvideo' in m))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---- positions ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["5b", "1.5-5b"])
def test_rotary_made_from_the_grid_when_not_given(variant):
    """The official pipelines pass the rotary tables; without them we build the same ones (the reference drops RoPE)."""
    config = tiny_config(variant)
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 4, 6, 8)
    with torch.no_grad():
        given = ours(**inputs).sample
        made = ours(**{k: v for k, v in inputs.items() if k != "image_rotary_emb"}).sample
    assert torch.equal(given, made)


def test_ofs_changes_the_1_5_i2v_output():
    config = tiny_config("1.5-5b-i2v")
    reference = reference_model(config)
    ours = ours_from(reference)
    inputs = make_inputs(config, 2, 4, 4)
    with torch.no_grad():
        at_2 = ours(**inputs).sample
        at_3 = ours(**dict(inputs, ofs=torch.full((1,), 3.0))).sample
        assert not torch.allclose(at_2, at_3)
        assert (
            ours(**dict(inputs, ofs=3.0)).sample - reference(**dict(inputs, ofs=torch.full((1,), 3.0))).sample
        ).abs().max() <= 1e-5


def test_timestep_as_a_number_equals_a_batch_tensor():
    config = tiny_config("5b")
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 3, 4, 4)
    with torch.no_grad():
        tensor = ours(**dict(inputs, timestep=torch.tensor([500, 500]))).sample
        number = ours(**dict(inputs, timestep=500)).sample
    assert torch.equal(tensor, number)


# ---- training and inference features ----------------------------------------------------------------------------------


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config("5b", dropout=0.0)
    ours = ours_from(reference_model(config)).train()
    inputs = make_inputs(config, 3, 4, 4)

    def gradients():
        ours.zero_grad()
        ours(**inputs).sample.square().mean().backward()
        return {name: p.grad.clone() for name, p in ours.named_parameters()}

    plain = gradients()
    ours.enable_gradient_checkpointing()
    assert ours.gradient_checkpointing
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


@pytest.mark.parametrize("variant", ["2b", "1.5-5b-i2v"])
def test_fused_qkv_equals_unfused(variant):
    config = tiny_config(variant)
    ours = ours_from(reference_model(config))
    frames, height, width = GRIDS[variant][1]
    inputs = make_inputs(config, frames, height, width)
    with torch.no_grad():
        unfused = ours(**inputs).sample
        ours.fuse_qkv_projections()
        assert all(block.attn1.fused_projections for block in ours.transformer_blocks)
        fused = ours(**inputs).sample
        ours.unfuse_qkv_projections()
        assert not hasattr(ours.transformer_blocks[0].attn1, "to_qkv")
        again = ours(**inputs).sample
    assert (fused - unfused).abs().max().item() <= 1e-5
    assert torch.equal(again, unfused)


def test_attention_backend_native_is_selectable():
    config = tiny_config("5b")
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 3, 4, 4)
    with torch.no_grad():
        default = ours(**inputs).sample
        ours.set_attention_backend("native")
        assert ours.transformer_blocks[0].attn1.processor._attention_backend.value == "native"
        assert torch.equal(ours(**inputs).sample, default)


def test_layerwise_fp8_casting_matches_the_reference():
    """``enable_layerwise_casting`` skips the same modules (``_skip_layerwise_casting_patterns``) as the reference."""
    config = tiny_config("5b")
    reference = reference_model(config)
    ours = ours_from(reference)
    inputs = make_inputs(config, 3, 4, 4)
    for model in (reference, ours):
        model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.float32)
    assert ours.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert ours.transformer_blocks[0].norm1.linear.weight.dtype == torch.float32  # "norm" modules stay
    with torch.no_grad():
        assert (ours(**inputs).sample - reference(**inputs).sample).abs().max().item() <= 1e-5


def test_peft_lora_adapter_and_scale():
    from peft import LoraConfig

    config = tiny_config("5b")
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 3, 4, 4)
    with torch.no_grad():
        base = ours(**inputs).sample
    lora = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    ours.add_adapter(lora, adapter_name="style")
    ours.set_adapter("style")
    assert ours.active_adapters() == ["style"]
    assert sum("lora_A" in name for name, _ in ours.named_parameters()) == 4 * config["num_layers"]
    with torch.no_grad():
        adapted = ours(**inputs).sample
        unscaled = ours(**inputs, attention_kwargs={"scale": 0.0}).sample
    assert not torch.allclose(adapted, base)
    assert torch.allclose(unscaled, base, atol=1e-6)


@pytest.mark.parametrize("cache", ["first-block", "pyramid-attention-broadcast"])
def test_diffusers_cache_hooks_apply(cache):
    from diffusers import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig

    config = tiny_config("5b")
    ours = ours_from(reference_model(config))
    inputs = make_inputs(config, 3, 4, 4)
    with torch.no_grad():
        plain = ours(**inputs).sample
    step = {"t": 900}
    if cache == "first-block":
        ours.enable_cache(FirstBlockCacheConfig(threshold=0.0))
    else:
        ours.enable_cache(
            PyramidAttentionBroadcastConfig(
                spatial_attention_block_skip_range=2,
                spatial_attention_timestep_skip_range=(100, 800),
                current_timestep_callback=lambda: step["t"],
            )
        )
    with torch.no_grad(), ours.cache_context("cond"):
        first = ours(**inputs).sample  # nothing cached yet: the plain result
        step["t"] = 700
        second = ours(**inputs).sample
    ours.disable_cache()
    assert torch.allclose(first, plain, atol=1e-6)
    assert second.shape == plain.shape


def test_context_parallel_plan_names_real_modules_and_arguments():
    import inspect

    config = tiny_config("5b")
    ours = CogVideoXTransformer3DModel(**config)
    for module_name, plan in CogVideoXTransformer3DModel._cp_plan.items():
        module = ours.get_submodule(module_name)
        if isinstance(plan, dict):
            names = [name for name in plan if isinstance(name, str)]
            assert set(names) <= set(inspect.signature(module.forward).parameters), module_name
    # the rope module yields the (cos, sin) pair that the plan splits along tokens
    cos, sin = ours.rope((3, 2, 2), None, torch.device("cpu"))
    assert cos.shape == sin.shape == (12, config["attention_head_dim"])


# ---- bad input ----------------------------------------------------------------------------------------------------------


def _model(variant: str) -> CogVideoXTransformer3DModel:
    return CogVideoXTransformer3DModel(**tiny_config(variant)).eval()


def _call(model, **overrides):
    config = dict(model.config)
    grid = overrides.pop("grid", (3, 4, 4) if config["patch_size_t"] is None else (2, 4, 4))
    inputs = make_inputs(config, *grid)
    inputs.update(overrides)
    with torch.no_grad():
        return model(**inputs)


def test_rejects_a_channel_count_other_than_in_channels():
    with pytest.raises(
        ValueError,
        match=r"^hidden_states has 4 channels; this model takes in_channels=8 \(noise latents \+ image latents\)$",
    ):
        _call(_model("5b-i2v"), hidden_states=torch.randn(2, 3, 4, 4, 4))


def test_rejects_a_resolution_off_the_patch_grid():
    message = r"^latent height and width must be multiples of patch_size=2; got 5x4 \(video height and width must be multiples of 16 pixels\)$"
    with pytest.raises(ValueError, match=message):
        _call(_model("2b"), hidden_states=torch.randn(2, 3, 4, 5, 4), image_rotary_emb=None)


def test_rejects_an_odd_latent_frame_count_for_1_5():
    message = (
        r"^the number of latent frames must be a multiple of patch_size_t=2 for CogVideoX 1.5 \(2, 4, 6, 8, ...; the "
        r"pipelines pad an odd count with one frame\); got 3$"
    )
    with pytest.raises(ValueError, match=message):
        _call(_model("1.5-5b"), grid=(2, 4, 4), hidden_states=torch.randn(2, 3, 4, 4, 4))


@pytest.mark.parametrize("grid", [(2, 4, 4), (3, 6, 4)], ids=["other-frame-count", "other-resolution"])
def test_learned_positions_reject_a_grid_they_were_not_trained_for(grid):
    """The reference silently swaps in sin-cos positions for another frame count; we refuse."""
    message = (
        r"^this model's learned positional embeddings \(CogVideoX-5b-I2V\) cover exactly 3 latent frames \(9 video "
        rf"frames\) of 4x4 latents \(32x32 pixels\); got {grid[0]} latent frames of {grid[1]}x{grid[2]} latents$"
    )
    with pytest.raises(ValueError, match=message):
        _call(_model("5b-i2v"), grid=grid)


@pytest.mark.parametrize("variant", ["2b", "5b-i2v"])
def test_additive_positions_need_max_text_seq_length_tokens(variant):
    kind = "sincos" if variant == "2b" else "learned"
    message = (
        rf"^this model adds {kind} positional embeddings over exactly max_text_seq_length=16 text tokens; got 15 text "
        r"tokens \(pad or truncate the prompt embeddings to 16\)$"
    )
    with pytest.raises(ValueError, match=message):
        _call(_model(variant), encoder_hidden_states=torch.randn(2, 15, TINY_TEXT_DIM))


def test_rotary_models_take_any_text_length():
    config = tiny_config("5b")
    reference = reference_model(config)
    ours = ours_from(reference)
    inputs = make_inputs(config, 3, 4, 4)
    inputs["encoder_hidden_states"] = torch.randn(2, 7, TINY_TEXT_DIM)
    with torch.no_grad():
        assert (ours(**inputs).sample - reference(**inputs).sample).abs().max() <= 1e-5


def test_rejects_text_embeddings_of_the_wrong_width():
    with pytest.raises(
        ValueError,
        match=r"^encoder_hidden_states must be \[batch, tokens, text_embed_dim=32\]; got shape \[2, 16, 8\]$",
    ):
        _call(_model("5b"), encoder_hidden_states=torch.randn(2, 16, 8))


def test_rejects_rotary_tables_of_the_wrong_shape():
    message = (
        r"^image_rotary_emb must be \(cos, sin\), each of shape \[12, 16\] \(video tokens x attention_head_dim\) for a "
        r"3x2x2 token grid; got shapes \[8, 16\] and \[8, 16\]$"
    )
    with pytest.raises(ValueError, match=message):
        _call(_model("5b"), image_rotary_emb=(torch.zeros(8, 16), torch.zeros(8, 16)))


def test_rejects_rotary_tables_for_a_sincos_model():
    with pytest.raises(ValueError, match=r"^image_rotary_emb was given, but this model uses 3D sin-cos positions"):
        _call(_model("2b"), image_rotary_emb=(torch.zeros(12, 16), torch.zeros(12, 16)))


def test_ofs_is_required_exactly_where_it_is_used():
    with pytest.raises(
        ValueError, match=r"^this model has an ofs embedding \(CogVideoX1.5-5B-I2V, ofs_embed_dim=16\); pass ofs"
    ):
        _call(_model("1.5-5b-i2v"), ofs=None)
    with pytest.raises(
        ValueError, match=r"^ofs was given, but this model has no ofs embedding \(ofs_embed_dim=None\); pass ofs=None$"
    ):
        _call(_model("1.5-5b"), ofs=2.0)


def test_rejects_timestep_cond():
    with pytest.raises(
        ValueError, match=r"^this model has no timestep-condition projection; timestep_cond must be None$"
    ):
        _call(_model("5b"), timestep_cond=torch.zeros(2, 4))


def test_rejects_rope_with_a_head_dim_it_cannot_split():
    model = CogVideoXTransformer3DModel(**tiny_config("5b", attention_head_dim=8))
    with pytest.raises(ValueError, match=r"multiple of 16 .* got attention_head_dim=8"):
        with torch.no_grad():
            model(torch.randn(1, 3, 4, 4, 4), torch.randn(1, 16, TINY_TEXT_DIM), torch.tensor([1]))


def test_config_errors():
    with pytest.raises(
        ValueError, match=r"^use_learned_positional_embeddings=True needs use_rotary_positional_embeddings=True"
    ):
        CogVideoXTransformer3DModel(**tiny_config("2b", use_learned_positional_embeddings=True))
    with pytest.raises(
        ValueError,
        match=r"^ofs_embed_dim is added to the timestep embedding, so it must equal time_embed_dim=16; got ofs_embed_dim=8$",
    ):
        CogVideoXTransformer3DModel(**tiny_config("1.5-5b-i2v", ofs_embed_dim=8))


_CONTEXT_PARALLEL_SCRIPT = r"""
import os, sys, torch, torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    torch.accelerator.device_count = lambda: 1  # diffusers picks "accelerator 0"; here that is the CPU
    from diffusers import ContextParallelConfig
    from diffusers_cogvideox import CogVideoXTransformer3DModel
    from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video
    from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS

    worst = 0.0
    for variant, grid, given_rope in [("2b", (3, 4, 8), False), ("5b", (3, 4, 8), True), ("5b", (1, 4, 8), False),
                                      ("1.5-5b-i2v", (2, 4, 8), True)]:
        config = dict(TINY_TRANSFORMER_CONFIGS[variant], num_layers=2)
        torch.manual_seed(0)
        model = CogVideoXTransformer3DModel(**config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        inputs = dict(hidden_states=torch.randn(1, grid[0], config["in_channels"], grid[1], grid[2]),
                      encoder_hidden_states=torch.randn(1, 16, 32), timestep=torch.tensor([10]))
        if given_rope:
            inputs["image_rotary_emb"] = rotary_embeddings_for_video(config, 8 * grid[1], 8 * grid[2], grid[0])
        if config.get("ofs_embed_dim"):
            inputs["ofs"] = torch.tensor([2.0])
        with torch.no_grad():
            single = model(**inputs).sample
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=2))
            parallel = model(**inputs).sample
        worst = max(worst, (parallel - single).abs().max().item())
    if rank == 0:
        print("MAXDIFF", worst)
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(int(sys.argv[1]),), nprocs=2)
"""


@pytest.mark.slow
def test_context_parallel_ulysses_on_two_cpu_ranks_equals_one_rank(tmp_path):
    """diffusers' context parallelism through ``_cp_plan``: video and text tokens and RoPE tables sharded over 2 ranks."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "context_parallel.py"
    script.write_text(_CONTEXT_PARALLEL_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(port)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("MAXDIFF"))
    assert float(line.split()[1]) <= 1e-5
