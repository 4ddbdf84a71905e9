"""The scorer: the batched prefix-cache pass equals the naive per-question pass; official answers; batches with bad files."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.fixtures import tiny_vision_reward
from trl_vision_reward.reward import scoring_rule
from trl_vision_reward.reward.checklist import Checklist
from trl_vision_reward.reward.scoring import VisionRewardScorer, compare


def _image(seed=0, size=(60, 80)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def _video(seed=0, frames=9):
    return np.random.default_rng(seed).integers(0, 256, (frames, 60, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def image_scorer():
    model, processor = tiny_vision_reward("image", select=False)  # all 60 image questions
    return VisionRewardScorer(model, processor)


@pytest.fixture(scope="module")
def video_scorer():
    model, processor = tiny_vision_reward("video", select=False)  # all 64 video questions
    return VisionRewardScorer(model, processor)


def test_batched_equals_naive_image(image_scorer):
    frames = image_scorer.processor.load_media(_image(), "image")
    questions = image_scorer.checklist.format_all("a red bicycle")
    ref = image_scorer.answer_naive(frames, questions)
    for sharing in ("attention", "repeat"):  # prefix broadcast inside attention / cache repeated per question
        image_scorer.prefix_sharing = sharing
        fast = image_scorer.answer_batched(frames, questions)
        assert fast["p_yes"].shape == (60,)
        assert (fast["p_yes"] - ref["p_yes"]).abs().max().item() <= 1e-5
        assert (fast["p_yes_full_vocab"] - ref["p_yes_full_vocab"]).abs().max().item() <= 1e-5
        assert torch.equal(fast["greedy_yes"], ref["greedy_yes"])
    image_scorer.prefix_sharing = "auto"
    assert image_scorer.backbone.config._attn_implementation == "sdpa"  # restored after the shared-prefix pass


def test_batched_equals_naive_video_in_question_chunks(video_scorer):
    # attention sharing: length-sorted chunks of 32 (default) or one pass of 64; repeat: one pass, or chunks of 7
    # (each chunk a fresh copy of the prefix cache); results always come back in checklist order
    frames = video_scorer.processor.load_media(_video(frames=5), "video", fps=2)  # 5 frames at 2 fps: seconds 0..2
    assert len(frames) == 3
    questions = video_scorer.checklist.format_all("a dog runs on the beach")
    ref = video_scorer.answer_naive(frames, questions)
    for sharing, batch_size in (("attention", None), ("attention", 64), ("repeat", None), ("repeat", 7)):
        video_scorer.prefix_sharing, video_scorer.question_batch_size = sharing, batch_size
        fast = video_scorer.answer_batched(frames, questions)
        assert fast["p_yes"].shape == (64,)
        assert (fast["p_yes"] - ref["p_yes"]).abs().max().item() <= 1e-5, (sharing, batch_size)
    video_scorer.prefix_sharing, video_scorer.question_batch_size = "auto", None


def test_official_method_answers_equal_the_batched_greedy_answers(video_scorer):
    frames = video_scorer.processor.load_media(_video(1), "video", fps=4)
    questions = video_scorer.checklist.format_all("a cat")[:12]
    official = video_scorer.answer_official(frames, questions)
    fast = video_scorer.answer_batched(frames, questions)
    assert torch.equal(official["greedy_yes"], fast["greedy_yes"])


def test_p_yes_is_the_softmax_over_yes_and_no(image_scorer):
    from trl_vision_reward.reward.modeling_vision_reward import yes_no_readout

    logits = torch.tensor([[0.0, 2.0, -1.0, 0.5]])
    read = yes_no_readout(logits, yes_id=1, no_id=2)
    assert read["p_yes"].item() == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert read["p_yes_full_vocab"].item() == pytest.approx(torch.softmax(logits, -1)[0, 1].item())
    assert read["greedy_yes"].item() is True


def test_score_result_is_consistent_with_the_scoring_rule(video_scorer):
    result = video_scorer.score(_video(2), "a dog", fps=3)
    c = video_scorer.checklist
    answers = torch.tensor(result.answers, dtype=torch.float64)
    p = torch.tensor(result.p_yes, dtype=torch.float64)
    assert result.score == pytest.approx(scoring_rule.official_score(c, answers).item())
    assert result.soft_score == pytest.approx(scoring_rule.soft_score(c, p).item())
    assert list(result.dimension_scores) == list(c.dimensions)
    assert list(result.sub_dimension_scores) == list(c.sub_dimensions)
    assert result.questions[0] == 'Does the video meet all the requirements stated in the text "a dog"?'
    json.dumps(result.to_dict())  # JSON-friendly
    assert compare(result, result) == 0


def test_methods_agree_on_a_whole_score(image_scorer):
    # a 6-question slice of the image checklist keeps the per-question reference paths quick
    c = image_scorer.checklist
    small = Checklist.from_dict({**c.to_dict(), "questions": c.to_dict()["questions"][:6], "name": "image_head"})
    scorer = VisionRewardScorer(image_scorer.backbone, image_scorer.processor, small)
    image = _image(3)
    batched = scorer.score(image, "a cat", method="batched")
    naive = scorer.score(image, "a cat", method="naive")
    official = scorer.score(image, "a cat", method="official")
    assert np.allclose(batched.p_yes, naive.p_yes, atol=1e-5)
    assert batched.answers == naive.answers == official.answers
    assert official.p_yes_full_vocab == [None] * 6  # the official method reads no probabilities
    json.dumps(official.to_dict(), allow_nan=False)
    assert batched.score == pytest.approx(naive.score, abs=1e-5)
    with pytest.raises(ValueError, match="method must be one of"):
        scorer.score(image, "a cat", method="fast")


def test_external_alignment_scorer_replaces_the_backbone_probability(image_scorer):
    seen = {}

    def vqascore(images, prompt):
        seen["args"] = (len(images), prompt)
        return 0.8

    scorer = VisionRewardScorer(image_scorer.backbone, image_scorer.processor, image_scorer.checklist, vqascore)
    result = scorer.score(_image(), "a cat")
    assert seen["args"] == (1, "a cat") and result.alignment == 0.8
    c = scorer.checklist
    expected = scoring_rule.official_score(c, torch.tensor(result.answers, dtype=torch.float64), alignment=0.8)
    assert result.score == pytest.approx(expected.item())


def test_batch_with_bad_files_scores_the_rest_and_reports_reasons(image_scorer, tmp_path):
    good = tmp_path / "good.png"
    _image().save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"definitely not a jpeg")
    files = [good, empty, corrupt, tmp_path / "missing.png", np.zeros((0, 0, 3), np.uint8), _image(5)]
    batch = image_scorer.score_files(files, "a cat", progress=False)
    assert [r.source for r in batch.results] == [str(good), "<Image (80, 60)>"]
    reasons = [f.error for f in batch.failures]
    assert reasons[0] == f"MediaError: image file is empty: {empty}"
    assert reasons[1].startswith(f"MediaError: cannot read image {corrupt}")
    assert reasons[2] == f"MediaError: image file not found: {tmp_path / 'missing.png'}"
    assert "MediaError: an image must be an HxWx3" in reasons[3]
    data = batch.to_dict()
    assert len(data["results"]) == 2 and len(data["failures"]) == 4
    batch.write_csv(tmp_path / "scores.csv")
    assert (tmp_path / "scores.csv").read_text().count("\n") == 7


def test_video_batch_failures_no_frames_and_missing_prompt(video_scorer):
    batch = video_scorer.score_files(
        [_video(frames=4), np.zeros((0, 60, 80, 3), np.uint8), _video(frames=4)],
        ["a cat", "a cat", None],
        fps=2,
        progress=False,
    )
    assert len(batch.results) == 1 and batch.results[0].num_frames == 3  # t = 0, 0.5, 1, 1.5 s -> seconds 0, 1, 2
    assert batch.failures[0].error == "MediaError: video has no frames"
    assert "needs the generation prompt" in batch.failures[1].error


def test_video_failures_name_the_problem(video_scorer):
    from trl_vision_reward.reward.processing_vision_reward import MediaError

    with pytest.raises(MediaError, match="video has no frames"):
        video_scorer.score(np.zeros((0, 60, 80, 3), np.uint8), "a cat", fps=8)
    with pytest.raises(ValueError, match=r"needs the generation prompt.*contains \[\[prompt\]\]"):
        video_scorer.score(_video(), None, fps=8)
    with pytest.raises(ValueError, match="is scored as 'image' but checklist 'video' is for 'video'"):
        video_scorer.score(_image(), "a cat")
    batch = video_scorer.score_files([_video(frames=4), np.zeros((0, 60, 80, 3), np.uint8)], "a cat", progress=False)
    # in-memory arrays need fps; the failure says so rather than guessing
    assert len(batch.results) == 0 and "fps is needed" in batch.failures[0].error


def test_video_file_is_decoded_and_sampled_one_frame_per_second(video_scorer, tmp_path):
    import imageio.v2 as imageio

    path = tmp_path / "clip.mp4"
    with imageio.get_writer(str(path), fps=4, codec="libx264", macro_block_size=1) as writer:
        for frame in _video(frames=13):  # 3 s at 4 fps -> seconds 0, 1, 2, 3 -> 4 frames
            writer.append_data(frame)
    result = video_scorer.score(path, "a cat")
    assert result.num_frames == 4 and result.modality == "video"
