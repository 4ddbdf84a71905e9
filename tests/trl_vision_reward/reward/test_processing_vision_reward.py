"""Media loading, the official frame sampling, and the prefix/suffix split of the prompts."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffusers_cogvideox.video_io import load_video
from tests.fixtures import tiny_qwen2_vl_processor, tiny_qwen2_vl_tokenizer
from trl_vision_reward.reward.processing_vision_reward import (
    MediaError,
    PromptTemplate,
    get_prompt_template,
    load_image,
    register_prompt_template,
    sample_frame_indices,
)


def released_frame_ids(num_frames, fps, num_frames_max=24):
    """The released load_video('chat') selection, restated over timestamps i / fps."""
    timestamps = [i / fps for i in range(num_frames)]
    ids = []
    for second in range(round(max(timestamps)) + 1):
        closest = min(timestamps, key=lambda x: abs(x - second))
        ids.append(timestamps.index(closest))
        if len(ids) >= num_frames_max:
            break
    return ids


def test_six_second_clip_at_8_fps_gives_seven_frames():
    assert sample_frame_indices(49, 8) == [0, 8, 16, 24, 32, 40, 48]


@pytest.mark.parametrize("num_frames, fps", [(1, 8), (13, 4), (49, 8), (81, 16), (300, 30), (1000, 24), (7, 2.5)])
def test_sampling_matches_the_released_rule(num_frames, fps):
    assert sample_frame_indices(num_frames, fps) == released_frame_ids(num_frames, fps)


def test_sampling_caps_at_max_frames():
    assert len(sample_frame_indices(30 * 60, 30)) == 24
    assert sample_frame_indices(30 * 60, 30, max_frames=3) == [0, 30, 60]


def test_sampling_refuses_empty_videos_and_bad_fps():
    with pytest.raises(MediaError, match="video has no frames"):
        sample_frame_indices(0, 8)
    with pytest.raises(MediaError, match="fps must be a positive number; got 0"):
        sample_frame_indices(10, 0)


def test_load_video_from_arrays_and_lists():
    video = np.random.default_rng(0).integers(0, 256, (9, 20, 24, 3), dtype=np.uint8)
    frames = load_video(video, per_second=True, fps=4)
    assert [f.size for f in frames] == [(24, 20)] * 3
    assert np.array_equal(np.asarray(frames[1]), video[4])
    assert len(load_video(list(video), per_second=True, fps=1)) == 9
    assert len(load_video(torch.from_numpy(video), 5, per_second=True, fps=1)) == 5
    with pytest.raises(MediaError, match="fps is needed"):
        load_video(video, per_second=True)
    with pytest.raises(MediaError, match=r"must be \(frames, height, width, 3\)"):
        load_video(np.zeros((20, 24, 3), np.uint8), fps=1)
    assert [np.asarray(f).tolist() for f in load_video(video, 2)] == [v.tolist() for v in video[:2]]  # the first N


def test_video_files_load_the_first_frames_or_one_per_second(tmp_path):
    from diffusers_cogvideox.video_io import MediaError, export_to_video

    path = export_to_video(np.random.default_rng(1).random((17, 16, 16, 3)), tmp_path / "clip.mp4", fps=8)
    assert len(load_video(path)) == 17 and len(load_video(path, 5)) == 5
    assert len(load_video(path, per_second=True)) == 3  # seconds 0, 1, 2 of a 2 s clip at 8 fps
    with pytest.raises(MediaError, match="video file not found"):
        load_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="video file is empty"):
        load_video(tmp_path / "empty.mp4")


def test_load_image_errors(tmp_path):
    with pytest.raises(MediaError, match="image file not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="image file is empty"):
        load_image(tmp_path / "empty.png")
    assert load_image(np.zeros((3, 8, 8), np.float32)).size == (8, 8)  # CHW floats in [0, 1]


def test_prefix_then_suffix_tokens_make_the_full_prompt():
    processor = tiny_qwen2_vl_processor()
    image = Image.new("RGB", (64, 64), (120, 30, 200))
    prefix = processor.prefix_inputs(processor.load_media(image, "image"))
    ids = prefix["input_ids"][0].tolist()
    n_visual = int(prefix["image_grid_thw"][0].prod()) // 4
    assert (prefix["mm_token_type_ids"][0] == 1).sum().item() == n_visual
    suffix = processor.question_token_ids(["Is the image clear?"])[0]
    text = processor.tokenizer.decode(ids + suffix)
    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|>")
    assert text.endswith("<|vision_end|>Is the image clear? Answer yes or no.<|im_end|>\n<|im_start|>assistant\n")
    assert processor.answer_token_ids() == tuple(
        processor.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("yes", "no")
    )


def test_tiny_tokenizer_has_single_token_answers_and_qwen_special_tokens():
    tok = tiny_qwen2_vl_tokenizer()
    for word in ("yes", "no", " yes", " no", "<|image_pad|>", "<|vision_start|>", "<|im_end|>"):
        assert len(tok.encode(word, add_special_tokens=False)) == 1, word


def test_prompt_templates_are_registered_by_name_and_serialised():
    template = PromptTemplate(name="plain-test", image_seq_length=4, question="Q: {question} A:")
    register_prompt_template(template)
    assert get_prompt_template("plain-test") == template
    assert get_prompt_template(template.to_dict()) == template
    with pytest.raises(ValueError, match="unknown prompt template 'nope'; registered:"):
        get_prompt_template("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_prompt_template(PromptTemplate(name="plain-test", question="other {question}"))


def test_processor_call_builds_right_padded_rows_for_training():
    processor = tiny_qwen2_vl_processor()
    batch = processor(images=Image.new("RGB", (56, 56)), text=["Is it clear?", "Is the image very rich and not empty?"])
    lengths = batch["attention_mask"].sum(-1)
    assert lengths[0] < lengths[1] and batch["attention_mask"][0, -1] == 0
    assert batch["image_grid_thw"].shape[0] == 2
    with pytest.raises(ValueError, match="exactly one of images"):
        processor(text="x")


@pytest.mark.parametrize(
    "sampling, max_frames, expected",
    [("first", 4, [0, 1, 2, 3]), ("uniform", 5, [0, 2, 4, 6, 8]), ("uniform", 20, list(range(9)))],
)
def test_frame_sampling_modes_pick_the_documented_frames(sampling, max_frames, expected, tmp_path):
    from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor

    processor = tiny_qwen2_vl_processor()
    processor.frame_sampling, processor.max_frames = sampling, max_frames
    processor.save_pretrained(tmp_path)
    loaded = VisionRewardProcessor.from_pretrained(tmp_path)
    assert (loaded.frame_sampling, loaded.max_frames) == (sampling, max_frames)
    clip = np.zeros((9, 8, 8, 3), np.uint8) + (np.arange(9, dtype=np.uint8) * 20)[:, None, None, None]
    frames = loaded.load_media(clip, "video", fps=1.0)
    assert [int(np.asarray(f)[0, 0, 0]) // 20 for f in frames] == expected


def test_unknown_frame_sampling_names_the_choices():
    from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor

    base = tiny_qwen2_vl_processor()
    with pytest.raises(ValueError, match=r"frame_sampling must be one of \['per_second', 'first', 'uniform'\]"):
        VisionRewardProcessor(base.image_processor, base.tokenizer, frame_sampling="every_other")
