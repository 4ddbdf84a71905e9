"""The weights shipped with the package: they are the ones the training script recorded, they load through the
public loaders, and the scorer judges held-out procedural clips as the rules do (the slow test)."""

import json
from pathlib import Path

import numpy as np
import pytest

from datasets_scripts.tiny_world import train, world

HASHES = Path(train.__file__).with_name("shipped_weights.json")


def shipped_folders():
    from diffusers_cogvideox.tiny import tiny_world_folder
    from trl_vision_reward.reward.tiny import tiny_world_scorer_folder

    return {"pipeline": tiny_world_folder(), "scorer": tiny_world_scorer_folder()}


def test_shipped_weights_are_the_recorded_ones():
    recorded = json.loads(HASHES.read_text())["sha256"]
    assert {part: train.weight_files(folder) for part, folder in shipped_folders().items()} == recorded


def test_shipped_weights_fit_the_size_budget():
    total = sum(p.stat().st_size for folder in shipped_folders().values() for p in folder.rglob("*") if p.is_file())
    assert total <= 20 * 2**20


def test_default_pipeline_renders_a_tiny_world_clip():
    import torch

    from diffusers_cogvideox.sampling import load_pipeline
    from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS

    pipe = load_pipeline(None)
    video = pipe(
        prompt="a red circle on a grey background",
        generator=torch.Generator().manual_seed(0),
        num_inference_steps=TINY_WORLD_STEPS,
        guidance_scale=1.0,
        output_type="np",
        **TINY_WORLD_RESOLUTION,
    ).frames[0]
    assert np.asarray(video).shape == (world.NUM_FRAMES, world.HEIGHT, world.WIDTH, 3)


def test_default_scorer_is_the_world_checklist():
    from datasets_scripts.tiny_world.checklist import CHECKLIST_NAME, question_texts
    from trl_vision_reward.reward.sample_scorer import load_vision_reward

    scorer = load_vision_reward(None, "video")
    assert scorer.checklist.name == CHECKLIST_NAME
    assert [q.text for q in scorer.checklist.questions] == question_texts()
    assert all(q.weight >= 0 for q in scorer.checklist.questions)
    assert scorer.processor.frame_sampling == "uniform"  # frames 0, 2, 4, 6, 8 of a 9-frame clip
    frames = scorer.processor.load_media(
        np.zeros((9, 32, 32, 3), np.uint8) + np.arange(9)[:, None, None, None], "video"
    )
    assert [np.asarray(f)[0, 0, 0] for f in frames] == [0, 2, 4, 6, 8]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the shipped scorer decides lighting (0.98-0.99) but stays near the base rate on motion, flicker, pulsing and "
    "size of rendered clips: its stage-1 budget was too small (docs/tiny_world.md); strict, so a retrained scorer "
    "that passes turns this into a failure to remove the mark",
)
def test_trained_scorer_judges_held_out_clips_like_the_rules(tmp_path):
    """Held-out procedural clips (a stream the training never drew), half rendered and half through the shipped VAE,
    written as mp4 and judged on the decoded frames: accuracy >= 0.9 on every question the world decides."""
    from diffusers_cogvideox.models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    folders = shipped_folders()
    vae = AutoencoderKLCogVideoX.from_pretrained(folders["pipeline"] / "vae").eval()
    clips, prompts = train.judgment_clips(200, vae, np.random.default_rng([2026, 12, 1]))
    records = train.write_clips(tmp_path, clips, prompts, "h")
    scorer = VisionRewardScorer.from_pretrained(str(folders["scorer"]))
    accuracy = train.judgment_accuracy(scorer, tmp_path, records)
    assert min(accuracy.values()) >= 0.9, accuracy
