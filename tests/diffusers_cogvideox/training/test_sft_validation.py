"""Validation videos: image-to-video renders from the first frame of a held-out clip; a validation shape the
variant's pipeline cannot render (1.5: 16k+1 frames) is refused when the trainer is built, before any training."""

import numpy as np
import PIL.Image
import pytest

from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
from diffusers_cogvideox.tiny import tiny_components
from diffusers_cogvideox.training import CogVideoXSFTTrainer

from .conftest import write_clip_folder
from .test_sft_trainer import sft_args

STAGES = [{"name": "only", "buckets": ["9x32x32"], "max_steps": 1, "learning_rate": 1e-2}]
VALIDATION = dict(validation_prompts=["a blue circle"], validation_num_inference_steps=2)


def build(tmp_path, variant, with_eval=True, **kw):
    parts = tiny_components(variant)
    clips = write_clip_folder(tmp_path / "clips", [(9, 32, 32)])
    held = write_clip_folder(tmp_path / "held", [(9, 32, 32)]) if with_eval else None
    args = sft_args(tmp_path / "run", stages=STAGES, per_device_train_batch_size=1, **VALIDATION, **kw)
    script = SFTScriptArguments(
        dataset_name=str(clips), eval_dataset_name=str(held) if held else None, cache_dir=str(tmp_path / "c")
    )
    train, evals, _ = build_datasets(script, args, parts)
    validation = {k: parts[k] for k in ("vae", "text_encoder", "tokenizer", "scheduler")}
    i2v = parts["transformer"].config.in_channels == 2 * parts["transformer"].config.out_channels
    return lambda: CogVideoXSFTTrainer(
        parts["transformer"], args, train, evals, noise_scheduler=parts["scheduler"],
        validation_components=validation, vae=parts["vae"] if i2v else None,
    )  # fmt: skip


def test_image_to_video_validation_renders_from_a_held_out_first_frame(tmp_path):
    trainer = build(tmp_path, "5b-i2v")()
    trainer.train()
    out = tmp_path / "run" / "validation" / "step-1"
    assert sorted(p.name for p in out.iterdir()) == ["00-image.png", "00.mp4"]
    from diffusers_cogvideox.video_io import load_video

    frames = load_video(str(out / "00.mp4"))
    assert len(frames) == 9 and frames[0].size == (32, 32)
    held = trainer.eval_dataset[0]["first_frame"].permute(1, 2, 0).numpy() * 255
    image = np.asarray(PIL.Image.open(out / "00-image.png")).astype(np.float32)
    assert np.abs(image - held).max() <= 0.5 + 1e-3  # the held-out clip's first frame, as 8-bit pixels


def test_image_to_video_validation_needs_held_out_clips(tmp_path):
    with pytest.raises(ValueError, match="first frames of held-out clips: pass an eval_dataset"):
        build(tmp_path, "5b-i2v", with_eval=False)()


def test_a_15_validation_frame_count_the_pipeline_cannot_render_is_refused_before_training(tmp_path):
    make = build(tmp_path, "1.5-5b")  # the bucket has 9 frames; the 1.5 pipeline renders 16k+1
    with pytest.raises(ValueError, match=r"validation videos of 9x32x32 \(the last stage's first bucket\) cannot be"):
        make()
    assert not (tmp_path / "run" / "validation").exists()
