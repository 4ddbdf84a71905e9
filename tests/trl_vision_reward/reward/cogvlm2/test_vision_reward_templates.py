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


def test_official_question_text_is_what_readlines_gives_the_released_video_script():
    from trl_vision_reward.reward.checklist import data_path
    from trl_vision_reward.reward.scoring import official_question_texts

    prompt = "a panda playing a guitar"
    with data_path("VisionReward_Video", "VisionReward_video_qa_select.txt").open(encoding="utf-8") as handle:
        released = [line.replace("[[prompt]]", prompt) for line in handle.readlines()]  # inference-video.py
    texts = official_question_texts(Checklist.load("video"), prompt)
    assert texts == released
    assert all(t.endswith("\n") for t in texts[:-1]) and not texts[-1].endswith("\n")


def test_question_text_switch_on_token_ids():
    from trl_vision_reward.reward.scoring import official_question_texts

    processor = vision_reward_processor(tiny_cogvlm2_processor(video=True))
    checklist = Checklist.load("video")
    clean, official = checklist.format_all("a cat"), official_question_texts(checklist, "a cat")
    tokenizer = processor.tokenizer
    for asked, expected_text in (
        (clean[0], f"Question: {clean[0]} Answer:"),
        (official[0], f"Question: {clean[0]}\n Answer:"),
    ):
        assert processor.question_token_ids([asked])[0] == tokenizer.encode(expected_text, add_special_tokens=False)
    assert processor.question_token_ids([official[0]]) != processor.question_token_ids([clean[0]])
    assert processor.question_token_ids([official[-1]]) == processor.question_token_ids([clean[-1]])
    # the scorer asks the official text for the official video template, the clean one elsewhere or when told
    model = tiny_cogvlm2_model(video=True)
    assert VisionRewardScorer(model, processor, checklist=checklist).question_text == "official"
    assert VisionRewardScorer(model, processor, checklist=checklist, question_text="clean").question_text == "clean"
    image = vision_reward_processor(tiny_cogvlm2_processor(video=False))
    assert VisionRewardScorer(model, image, checklist=Checklist.load("image")).question_text == "clean"
    with pytest.raises(ValueError, match="question_text must be 'auto', 'official' or 'clean'"):
        VisionRewardScorer(model, processor, checklist=checklist, question_text="raw")


def _answers_vary(scorer, images, questions):
    """lm_head reduced to yes = d, no = -d (other rows 0), with d chosen so that question 0 gets yes and question 1 no.

    d is the difference of the two questions' last hidden states with their mean direction projected out, so that
    d.h0 = -d.h1 > 0. Random tiny models otherwise answer every question alike, which would prove nothing.
    """
    model = scorer.backbone
    prefix = scorer._prefix(images)
    suffixes = scorer.processor.question_token_ids(questions[:2])
    with torch.no_grad():
        h0, h1 = (model.model(**scorer._full_inputs(prefix, s)).last_hidden_state[0, -1] for s in suffixes)
        mean = (h0 + h1) / 2
        d = h0 - h1
        d = d - (d @ mean) / (mean @ mean) * mean
        yes, no = scorer.yes_id, scorer.no_id
        model.lm_head.weight.zero_()
        model.lm_head.weight[yes], model.lm_head.weight[no] = d, -d


def test_official_method_answers_equal_the_batched_answers(video):
    processor = vision_reward_processor(tiny_cogvlm2_processor(video=video))
    from trl_vision_reward.reward.scoring import official_question_texts

    model = tiny_cogvlm2_model(video=video, seed=3)
    scorer = VisionRewardScorer(model, processor, checklist=Checklist.load("video" if video else "image"))
    media = random_frames(3) if video else random_image()
    images = processor.load_media(media, "video" if video else "image", fps=1)
    asked = official_question_texts(scorer.checklist, "a panda playing a guitar")[:8]  # what score() asks
    _answers_vary(scorer, images, asked)
    batched = scorer.answer_batched(images, asked)["greedy_yes"]
    official = scorer.answer_official(images, asked)["greedy_yes"]
    naive = scorer.answer_naive(images, asked)["greedy_yes"]
    assert batched[0] and not batched[1], "the answers should not all be the same"
    assert torch.equal(official, batched) and torch.equal(naive, batched)
