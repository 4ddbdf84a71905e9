"""CogVLM2 under the generic VisionReward scorer: official prompt layouts, batched prefix == naive == official."""

import numpy as np
import pytest
import torch

from trl_vision_reward.reward.checklist import Checklist
from trl_vision_reward.reward.cogvlm2.templates import (
    IMAGE_QUESTION,
    VIDEO_QUESTION,
    check_prefix_layout,
    vision_reward_processor,
)
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor
from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor, get_prompt_template
from trl_vision_reward.reward.scoring import VisionRewardScorer

from .conftest import random_frames, random_image


def test_full_size_templates_are_registered_by_name():
    image, video = get_prompt_template("cogvlm2"), get_prompt_template("cogvlm2_video")
    assert image.image_seq_length == 2306 and image.question == IMAGE_QUESTION == "Question: {question} Short answer:"
    assert video.image_seq_length == 66 and video.question == VIDEO_QUESTION == "Question: {question} Answer:"
    for template in (image, video):
        assert template.prefix == "<|begin_of_text|>{media}" and template.image_token == "<|reserved_special_token_0|>"
        assert (template.yes, template.no) == ("yes", "no") and template.mm_token_type_ids


def scorer_for(video):
    model = tiny_cogvlm2_model(video=video)
    processor = vision_reward_processor(tiny_cogvlm2_processor(video=video))
    return VisionRewardScorer(model, processor, checklist=Checklist.load("video" if video else "image"))


def test_prefix_layout_is_the_official_one(video):
    scorer = scorer_for(video)
    frames = scorer.processor.load_media(
        random_frames(3) if video else random_image(), "video" if video else "image", fps=1
    )
    prefix = scorer.processor.prefix_inputs(frames)
    reference = tiny_cogvlm2_processor(video=video)(
        text="", **({"videos": [frames]} if video else {"images": frames[0]})
    )
    assert prefix["input_ids"].tolist() == reference["input_ids"].tolist()
    assert prefix["mm_token_type_ids"].tolist() == reference["token_type_ids"].tolist()
    torch.testing.assert_close(prefix["pixel_values"], reference["pixel_values"])


def test_batched_prefix_scoring_equals_naive_and_official(video):
    scorer = scorer_for(video)
    media = random_frames(3) if video else random_image()
    images = scorer.processor.load_media(media, "video" if video else "image", fps=1)
    questions = scorer.checklist.format_all("a panda playing a guitar")[:5]
    batched = scorer.answer_batched(images, questions)
    naive = scorer.answer_naive(images, questions)
    official = scorer.answer_official(images, questions)
    torch.testing.assert_close(batched["p_yes"], naive["p_yes"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched["p_yes_full_vocab"], naive["p_yes_full_vocab"], rtol=1e-4, atol=1e-6)
    assert torch.equal(batched["greedy_yes"], official["greedy_yes"])
    scorer.question_batch_size = 2  # several chunks over copies of the same prefix cache
    torch.testing.assert_close(
        scorer.answer_batched(images, questions)["p_yes"], batched["p_yes"], rtol=1e-4, atol=1e-5
    )


def test_whole_checklist_scores_over_one_prefix():
    scorer = scorer_for(False)
    result = scorer.score(random_image(3), "a panda playing a guitar", method="batched")
    assert len(result.p_yes) == len(result.answers) == len(scorer.checklist.questions)
    assert all(0.0 <= p <= 1.0 for p in result.p_yes) and np.isfinite(result.score)


def test_vision_reward_processor_refuses_a_layout_it_cannot_reproduce():
    processor = tiny_cogvlm2_processor()
    wrong = VisionRewardProcessor(processor.image_processor, processor.tokenizer, prompt_template="cogvlm2")
    with pytest.raises(NotImplementedError, match="bos \\+ image slots"):
        check_prefix_layout(wrong, processor, video=False)  # 2306 slots per image: the full-size template


def test_yes_and_no_are_the_bare_words():
    processor = vision_reward_processor(tiny_cogvlm2_processor(video=False))
    yes, no = processor.answer_token_ids()
    tokenizer = processor.tokenizer
    assert tokenizer.decode([yes]) == "yes" and tokenizer.decode([no]) == "no"
    assert np.unique([yes, no]).size == 2


def test_batched_scoring_switches_only_the_language_model_attention():
    scorer = scorer_for(False)
    vision_before = scorer.backbone.config.vision_config._attn_implementation
    text_before = scorer.backbone.config._attn_implementation
    images = scorer.processor.load_media(random_image(), "image")
    scorer.answer_batched(images, scorer.checklist.format_all("a panda playing a guitar")[:2])
    # the vision tower never runs in the suffix pass: its setting is neither switched nor overwritten on restore
    assert scorer.backbone.config.vision_config._attn_implementation == vision_before
    assert scorer.backbone.config._attn_implementation == text_before


def test_a_larger_tiny_vocabulary_splits_questions_word_by_word():
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_tokenizer

    question = Checklist.load("image", select=False).texts[5]
    small, large = tiny_cogvlm2_tokenizer(), tiny_cogvlm2_tokenizer(4096)
    assert [large.bos_token_id, large.eos_token_id, large.pad_token_id] == [0, 1, 2]  # the roles stay where they were
    assert len(large(question)["input_ids"]) <= len(question.split()) + 2 < len(small(question)["input_ids"])
