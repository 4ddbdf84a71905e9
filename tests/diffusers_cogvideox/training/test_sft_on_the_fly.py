"""``precompute=False``: the trainer encodes each batch with the resident VAE and T5, through the cache's encoder
calls, so a step trains on exactly what the cached step trains on."""

import pytest
import torch

from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
from diffusers_cogvideox.tiny import tiny_components
from diffusers_cogvideox.training import CachedLatentDataset, ClipFrameDataset, CogVideoXSFTTrainer

from .conftest import write_clip_folder
from .test_sft_trainer import sft_args as trainer_args

STAGES = [{"name": "only", "buckets": ["9x32x32"], "max_steps": 1, "learning_rate": 1e-2}]


def one_step(tmp_path, name, clips, **kw):
    torch.manual_seed(0)
    parts = tiny_components("2b")
    args = trainer_args(tmp_path / name, stages=STAGES, per_device_train_batch_size=1, logging_steps=1, **kw)
    script = SFTScriptArguments(dataset_name=str(clips), cache_dir=str(tmp_path / f"{name}-cache"))
    train, _, _ = build_datasets(script, args, parts)
    encoders = None if args.precompute else {k: parts[k] for k in ("vae", "text_encoder", "tokenizer")}
    trainer = CogVideoXSFTTrainer(
        parts["transformer"], args, train, noise_scheduler=parts["scheduler"], encoders=encoders
    )
    trainer.train()
    loss = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    lora = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}
    return train, loss, lora, trainer


def test_an_on_the_fly_step_equals_the_cached_step(tmp_path):
    clips = write_clip_folder(tmp_path / "clips", [(9, 32, 32)])
    cached, cached_loss, cached_lora, _ = one_step(tmp_path, "cached", clips)
    fly, fly_loss, fly_lora, fly_trainer = one_step(tmp_path, "fly", clips, precompute=False)
    assert type(cached) is CachedLatentDataset and type(fly) is ClipFrameDataset
    assert not (tmp_path / "fly-cache").exists()  # nothing cached
    assert "frames" in fly[0] and fly[0]["frames"].shape == (9, 3, 32, 32)
    assert len(cached_loss) == len(fly_loss) == 1
    torch.testing.assert_close(torch.tensor(fly_loss), torch.tensor(cached_loss), atol=1e-6, rtol=1e-6)
    assert [e["timestep"] for e in fly_trainer.state.log_history if "timestep" in e]  # same seed: same t, same noise
    for k in cached_lora:
        torch.testing.assert_close(fly_lora[k], cached_lora[k], atol=1e-6, rtol=1e-5)


def test_on_the_fly_needs_the_encoders(tmp_path):
    transformer = tiny_components("2b")["transformer"]
    args = trainer_args(tmp_path, stages=STAGES, precompute=False)
    with pytest.raises(ValueError, match=r"precompute=False encodes every batch: pass encoders= with \['vae'"):
        CogVideoXSFTTrainer(transformer, args, ClipFrameDataset([]))
