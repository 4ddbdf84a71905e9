"""Captions through the CogVLM2-Caption recipe on the tiny CogVLM2-Video, and through any image-text-to-text model."""

from __future__ import annotations

import pytest

from datasets_scripts.video_data.caption import (
    Caption,
    CaptionConfig,
    CogVLM2VideoCaptioner,
    caption_frames,
    collect_captions,
    run_caption,
)
from datasets_scripts.video_data.inputs import clip_inputs
from diffusers_cogvideox.records import load_clips
from trl_vision_reward.reward.processing_vision_reward import read_video, sample_frame_indices

from . import synthetic


@pytest.fixture(scope="module")
def captioner():
    return CogVLM2VideoCaptioner.tiny(max_new_tokens=6)


def test_frames_and_prompt_follow_the_official_captioner(captioner, tmp_path):
    path = synthetic.write(synthetic.moving(0, 27), tmp_path / "a.mp4")  # 27 frames at 8 fps: seconds 0..3
    frames = caption_frames(path)
    decoded, fps = read_video(path)
    assert sample_frame_indices(len(decoded), fps) == [0, 8, 16, 24] and len(frames) == 4
    inputs = captioner.inputs([frames])
    tok = captioner.processor.tokenizer
    slots = captioner.processor.tokens_per_image
    expected = [tok.bos_token_id]
    for second in range(4):  # each frame's slots, then its time index as text (the remote code's "chat" layout)
        expected += [captioner.processor.pad_token_id] * slots + tok.encode(str(second), add_special_tokens=False)
    expected += tok.encode("Question: Please describe this video in detail. Answer:", add_special_tokens=False)
    assert inputs["input_ids"][0].tolist() == expected


def test_batched_captions_equal_one_at_a_time(captioner, clip_set):
    paths = [clip_set["moving"][0], clip_set["cut"][1], clip_set["text"][0]]
    assert captioner(paths) == [captioner([p])[0] for p in paths]


def test_caption_job_writes_the_sft_dataset_and_rejects_bad_captions(clip_set, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    for kind in ("moving", "static"):
        synthetic.write(synthetic.KINDS[kind](0), folder / f"{kind}.mp4")
    captioner = CogVLM2VideoCaptioner.tiny(max_new_tokens=4)
    real = captioner.caption_frames

    def some_empty(videos):  # the static clip's caption comes back empty
        out = real(videos)
        return [
            Caption("", c.num_frames, 0, False) if len(v) == 3 and i == 1 else c
            for i, (c, v) in enumerate(zip(out, videos))
        ]

    monkeypatch.setattr(captioner, "caption_frames", some_empty)
    config = CaptionConfig(truncated="keep")
    summary = run_caption(clip_inputs(folder), tmp_path / "sft", captioner, config, batch_size=2, progress=False)
    assert (summary.done, summary.failed) == (1, 1) and "empty caption" in summary.rejects[0]["reason"]
    collect_captions(tmp_path / "sft", config)
    (clip,) = load_clips(tmp_path / "sft")
    assert clip.caption and (clip.num_frames, clip.fps, clip.size) == (17, 8.0, (128, 96))
    assert clip.duration == pytest.approx(17 / 8) and (tmp_path / "sft" / clip.media).is_file()
    strict = run_caption(clip_inputs(folder), tmp_path / "strict", captioner, CaptionConfig(), progress=False)
    assert all("cut off at max_new_tokens=4" in r["reason"] for r in strict.rejects[:1])
