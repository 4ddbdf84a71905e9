"""The memory switches train for real on the tiny model: layerwise fp8 storage (diffusers' layerwise casting) and
bitsandbytes' 8-bit AdamW, each one step against the plain float32 AdamW step on the same clip, seed and timestep."""

import math

import pytest
import torch

from .conftest import write_clip_folder
from .test_sft_on_the_fly import one_step


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clip_folder(tmp_path_factory.mktemp("mem") / "clips", [(9, 32, 32)])


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory):
    return one_step(tmp_path_factory.mktemp("fp32"), "run", clips)


def test_layerwise_fp8_storage_trains_a_step_close_to_float32(clips, reference, tmp_path):
    _, loss, lora, _ = one_step(tmp_path, "fp8", clips, layerwise_fp8=True)
    _, ref_loss, ref_lora, _ = reference
    assert math.isfinite(loss[0]) and loss[0] != ref_loss[0]  # the frozen weights really are stored in fp8
    assert abs(loss[0] - ref_loss[0]) < 0.05 * ref_loss[0]
    assert all(torch.isfinite(v).all() for v in lora.values())
    assert any((lora[k] - ref_lora[k]).abs().max() > 0 for k in lora)


def test_fp8_storage_is_float8_on_the_frozen_layers(clips, tmp_path):
    from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
    from diffusers_cogvideox.tiny import tiny_components
    from diffusers_cogvideox.training import CogVideoXSFTTrainer

    from .test_sft_trainer import sft_args

    parts = tiny_components("2b")
    args = sft_args(
        tmp_path / "run", stages=[{"name": "s", "buckets": ["9x32x32"], "max_steps": 1}], layerwise_fp8=True
    )
    train, _, _ = build_datasets(
        SFTScriptArguments(dataset_name=str(clips), cache_dir=str(tmp_path / "c")), args, parts
    )
    trainer = CogVideoXSFTTrainer(parts["transformer"], args, train, noise_scheduler=parts["scheduler"])
    dtypes = {n: p.dtype for n, p in trainer.model.named_parameters()}
    assert dtypes["transformer_blocks.0.attn1.to_q.base_layer.weight"] == torch.float8_e4m3fn
    assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}


def test_8bit_adamw_trains_a_step(clips, reference, tmp_path):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    _, loss, lora, trainer = one_step(tmp_path, "adam8", clips, optim="adamw_bnb_8bit")
    _, ref_loss, ref_lora, _ = reference
    assert loss == ref_loss  # the loss is computed before the first optimizer step
    changed = {k: (lora[k] - ref_lora[k]).abs().max().item() for k in lora}
    assert all(torch.isfinite(v).all() for v in lora.values()) and max(changed.values()) > 0
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate's wrapper
    assert isinstance(optimizer, bnb.optim.AdamW) and optimizer.args.optim_bits == 8  # how transformers builds it
