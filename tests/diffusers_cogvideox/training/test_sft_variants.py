"""The SFT trainer on the other variants: 5b-I2V (image latents concatenated, the official noised first frame),
1.5 (front padding to ``patch_size_t``; 1.5-I2V's ``ofs``), and validation videos written as files."""

import pytest
import torch

from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
from diffusers_cogvideox.tiny import tiny_components
from diffusers_cogvideox.training import CachedLatentDataset, CogVideoXSFTTrainer
from diffusers_cogvideox.training.precompute import image_latent, noised_image_latents

from .conftest import write_clip_folder
from .test_sft_trainer import sft_args as trainer_args

STAGES = [{"name": "only", "buckets": ["9x32x32"], "max_steps": 8, "learning_rate": 2e-2}]


def sft_args(out, **kw):
    return trainer_args(out, **{"stages": STAGES, **kw})


def run_variant(tmp_path, variant: str, **kw):
    """Encode four 9x32x32 clips with the variant's tiny components, train 8 steps; returns what the model saw."""
    parts = tiny_components(variant)
    clips = write_clip_folder(tmp_path / "clips", [(9, 32, 32)] * 4)
    script = SFTScriptArguments(dataset_name=str(clips), eval_dataset_name=str(clips), cache_dir=str(tmp_path / "c"))
    args = sft_args(tmp_path / "run", **kw)
    train, evals, _ = build_datasets(script, args, parts)
    seen = []

    def record(module, args_, kwargs):
        seen.append(
            {"hidden": tuple(kwargs["hidden_states"].shape), "ofs": kwargs.get("ofs"), "train": module.training}
        )

    transformer = parts["transformer"]
    transformer.register_forward_pre_hook(record, with_kwargs=True)
    i2v = transformer.config.in_channels == 2 * transformer.config.out_channels
    validation = {k: parts[k] for k in ("vae", "text_encoder", "tokenizer", "scheduler")}
    trainer = CogVideoXSFTTrainer(
        transformer, args, train, evals, noise_scheduler=parts["scheduler"],
        vae=parts["vae"] if i2v else None, validation_components=None if i2v else validation,
    )  # fmt: skip
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    return dict(trainer=trainer, seen=seen, before=before, after=after, train=train, parts=parts)


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant, hidden, has_ofs",
    [("5b-i2v", (2, 3, 8, 4, 4), False), ("1.5-5b", (2, 4, 4, 4, 4), False), ("1.5-5b-i2v", (2, 4, 8, 4, 4), True)],
)
def test_variants_train_with_their_input_layout_and_lower_the_loss(tmp_path, variant, hidden, has_ofs):
    kw = {}
    if variant == "1.5-5b":  # the 1.5 pipeline renders 16k+1 frames
        kw = dict(validation_prompts=["a blue circle"], validation_num_inference_steps=2, validation_bucket="17x32x32")
    out = run_variant(tmp_path, variant, **kw)
    train_calls = [s for s in out["seen"] if s["train"]]
    assert train_calls and all(s["hidden"] == hidden for s in train_calls)  # [B, F (front-padded for 1.5), C, h, w]
    assert all((s["ofs"] is not None) == has_ofs for s in out["seen"])
    assert out["after"] < out["before"]
    if variant == "1.5-5b":  # validation videos at the end of training, as files
        videos = sorted((tmp_path / "run" / "validation" / "step-8").glob("*.mp4"))
        assert [v.name for v in videos] == ["00.mp4"] and videos[0].stat().st_size > 0
        from diffusers_cogvideox.video_io import load_video

        frames = load_video(str(videos[0]))  # PIL frames
        assert len(frames) == 17 and frames[0].size == (32, 32)


def test_noised_image_condition_is_near_the_clean_latent_and_fresh_each_call():
    vae = tiny_components("5b-i2v")["vae"]
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(3, 32, 32, generator=g)
    clean = image_latent(vae, frame)  # [1, C, h, w]
    a = noised_image_latents(vae, frame[None], torch.Generator().manual_seed(1))
    b = noised_image_latents(vae, frame[None], torch.Generator().manual_seed(2))
    assert a.shape == (1, 1, *clean.shape[1:])
    assert (a - b).abs().max() > 0  # a new sigma, noise and posterior sample each step
    torch.testing.assert_close(
        noised_image_latents(vae, frame[None], torch.Generator().manual_seed(1)), a, atol=0, rtol=0
    )
    # sigma ~ exp(-3) and a posterior sample: centred on the clean latent (averaging draws approaches it)
    average = torch.stack([noised_image_latents(vae, frame[None], torch.Generator().manual_seed(s)) for s in range(32)])
    assert (average.mean(0)[0] - clean).abs().mean() < 0.5 * (a[0] - clean).abs().mean()


def test_noised_image_condition_needs_the_vae():
    transformer = tiny_components("5b-i2v")["transformer"]
    with pytest.raises(ValueError, match="image_condition='noised' .* pass the vae"):
        CogVideoXSFTTrainer(transformer, sft_args("unused"), CachedLatentDataset([]))


def test_image_condition_choices_are_checked():
    with pytest.raises(ValueError, match=r"image_condition must be one of \('noised', 'clean'\); got 'pixel'"):
        sft_args("unused", image_condition="pixel")
