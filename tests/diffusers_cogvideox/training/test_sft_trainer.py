"""The SFT trainer end to end on the tiny model: two stages x two buckets, held-out loss, exact resume, LoRA I/O."""

import json

import pytest
import torch

from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
from diffusers_cogvideox.tiny import tiny_components
from diffusers_cogvideox.training import CogVideoXSFTConfig, CogVideoXSFTTrainer
from diffusers_cogvideox.training.precompute import CacheIdentityError, open_cache

from .conftest import write_clip_folder

pytestmark = pytest.mark.slow
STAGES = [
    {"name": "low", "buckets": ["9x32x32", "9x32x48"], "max_steps": 10, "learning_rate": 2e-2},
    {"name": "high", "buckets": ["9x32x32", "9x32x48"], "max_steps": 10, "learning_rate": 1e-2},
]


def sft_args(out, **kw):
    defaults = dict(
        output_dir=str(out), stages=STAGES, per_device_train_batch_size=2, per_device_eval_batch_size=4, lora_r=8,
        lora_alpha=8, report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=2, seed=0,
    )  # fmt: skip
    return CogVideoXSFTConfig(**{**defaults, **kw})


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    clips = write_clip_folder(root / "clips", [(9, 32, 32), (9, 32, 48)] * 2 + [(5, 32, 32)])  # the last is too short
    held = write_clip_folder(root / "held", [(9, 32, 32), (9, 32, 48)])
    parts = tiny_components("2b")
    script = SFTScriptArguments(dataset_name=str(clips), eval_dataset_name=str(held), cache_dir=str(root / "cache"))
    train, evals, rejects = build_datasets(script, sft_args(root / "unused"), parts)
    return dict(root=root, train=train, evals=evals, rejects=rejects, scheduler=parts["scheduler"])


def trainer_for(cached, out, **kw):
    torch.manual_seed(0)
    transformer = tiny_components("2b")["transformer"]
    args = sft_args(out, **kw)
    return CogVideoXSFTTrainer(transformer, args, cached["train"], cached["evals"], noise_scheduler=cached["scheduler"])


def lora_weights(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}


def test_two_stages_two_buckets_lower_the_held_out_loss_and_the_lora_changes_the_pipeline(cached, tmp_path):
    assert {r["bucket"] for r in cached["train"].rows} == {"9x32x32", "9x32x48"}
    assert [r["reason"] for r in cached["rejects"]].count("5 frames: shorter than the smallest bucket (9 frames)") == 2
    trainer = trainer_for(cached, tmp_path / "run")
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before - 0.05
    stages_seen = [e["stage"] for e in trainer.state.log_history if "stage" in e]
    assert stages_seen[0] == 0 and stages_seen[-1] == 1
    trainer.save_model(str(tmp_path / "lora"))
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert "9x32x48" in (tmp_path / "lora" / "README.md").read_text()

    import diffusers

    from diffusers_cogvideox import CogVideoXPipeline

    def frames(pipe):
        pipe.set_progress_bar_config(disable=True)
        out = pipe("a blue circle", num_frames=9, height=32, width=32, num_inference_steps=2, output_type="pt", max_sequence_length=16,
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
        return out.frames[0]

    ours = CogVideoXPipeline(**tiny_components("2b"))
    base = frames(ours)
    ours.load_lora_weights(str(tmp_path / "lora"))
    adapted = frames(ours)
    theirs = diffusers.CogVideoXPipeline(**tiny_components("2b", library="diffusers"))
    theirs.load_lora_weights(str(tmp_path / "lora"))
    assert (adapted - base).abs().max() > 1e-3
    torch.testing.assert_close(frames(theirs), adapted, atol=1e-4, rtol=0)


def test_resume_mid_stage_reproduces_the_uninterrupted_run(cached, tmp_path):
    straight = trainer_for(cached, tmp_path / "a")
    straight.train()
    interrupted = trainer_for(cached, tmp_path / "b", save_strategy="steps", save_steps=14)
    interrupted.train()  # saves checkpoint-14, in the middle of stage "high"
    resumed = trainer_for(cached, tmp_path / "b")
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-14"))
    expected, got = lora_weights(straight), lora_weights(resumed)
    assert expected.keys() == got.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=0, rtol=0)


def test_a_cache_refuses_other_encoders(cached):
    manifest = json.loads((cached["root"] / "cache" / "manifest.json").read_text())
    with pytest.raises(CacheIdentityError, match="latents were cached with vae"):
        open_cache(cached["root"] / "cache", "0" * 16, manifest["text_encoder"], manifest["encode_mode"])
