"""VisionRewardConfig / VisionRewardModel / VisionRewardProcessor on the transformers API: Auto classes and round trips."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.fixtures import save_tiny_vision_reward, tiny_qwen2_vl, tiny_vision_reward
from trl_vision_reward.reward.checklist import Checklist
from trl_vision_reward.reward.configuration_vision_reward import VisionRewardConfig
from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel
from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor
from trl_vision_reward.reward.scoring import VisionRewardScorer


def _image(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 72, 3), dtype=np.uint8))


def test_config_carries_checklist_and_backbone_config():
    backbone, _ = tiny_qwen2_vl()
    video = Checklist.load("video")
    config = VisionRewardConfig(backbone_config=backbone.config, checklist=video.to_dict())
    assert config.get_checklist() == video
    assert config.backbone_config.model_type == "qwen2_vl"
    assert VisionRewardConfig().get_checklist() == Checklist.load("image")  # the default: official image select


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="p_yes must be one of"):
        VisionRewardConfig(p_yes="logits")
    bad = Checklist.load("video").to_dict()
    bad["questions"][0]["weight"] = -1.0
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        VisionRewardConfig(checklist=bad)


def test_save_and_load_a_scorer_through_the_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoProcessor

    path = save_tiny_vision_reward(tmp_path / "tiny-vision-reward-video", "video")
    files = sorted(p.name for p in path.iterdir())
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= set(files)
    stored = json.loads((path / "config.json").read_text())
    assert stored["model_type"] == "vision_reward" and stored["backbone_config"]["model_type"] == "qwen2_vl"
    assert len(stored["checklist"]["questions"]) == 29

    config = AutoConfig.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert isinstance(config, VisionRewardConfig) and isinstance(model, VisionRewardModel)
    assert isinstance(processor, VisionRewardProcessor)
    assert model.checklist == Checklist.load("video")
    assert processor.template.name == "qwen2_vl" and processor.max_frames == 24

    original, _ = tiny_vision_reward("video")
    for (name, a), (_, b) in zip(original.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name


def test_reloaded_scorer_gives_identical_probabilities(tmp_path):
    model, processor = tiny_vision_reward("image")
    before = VisionRewardScorer(model, processor).score(_image(), "a cat")
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    after = VisionRewardScorer.from_pretrained(str(tmp_path)).score(_image(), "a cat")
    assert before.p_yes == after.p_yes and before.score == after.score


def test_custom_weights_round_trip(tmp_path):
    model, processor = tiny_vision_reward("video")
    refit = model.checklist.with_weights(torch.linspace(0, 1, 29), name="video_refit")
    model.config.checklist = refit.to_dict()
    model.save_pretrained(tmp_path)
    loaded = VisionRewardModel.from_pretrained(tmp_path)
    assert loaded.checklist == refit and loaded.checklist.name == "video_refit"


def test_forward_reads_yes_no_at_the_last_real_token():
    model, processor = tiny_vision_reward("image")
    yes, no = processor.answer_token_ids()
    inputs = processor(images=_image(), text=["Is the image clear?", "Are the colors bright and not dark at all?"])
    out = model(**inputs, yes_token_id=yes, no_token_id=no)
    last = inputs["attention_mask"].sum(-1) - 1
    logits = out.logits[torch.arange(2), last]
    assert torch.allclose(out.p_yes, torch.sigmoid(logits[:, yes] - logits[:, no]))
    assert out.p_yes.shape == (2,)


def test_any_image_text_to_text_backbone_is_built_from_its_config():
    from transformers import AutoModelForImageTextToText

    backbone, _ = tiny_qwen2_vl()
    model = VisionRewardModel(VisionRewardConfig(backbone_config=backbone.config.to_dict()))
    assert type(model.backbone) is type(AutoModelForImageTextToText.from_config(backbone.config))
    with pytest.raises(ValueError, match="backbone_config is required"):
        VisionRewardModel(VisionRewardConfig())


def test_a_larger_tiny_vocabulary_tokenizes_the_checklist_word_by_word():
    from trl_vision_reward.reward.checklist import Checklist

    backbone, processor = tiny_qwen2_vl(vocab_size=4096)
    assert backbone.config.text_config.vocab_size == len(processor.tokenizer) > 512
    questions = Checklist.load("video", select=False).format_all("a panda playing a guitar in a bamboo forest")
    words = sum(len(q.split()) for q in questions)
    tokens = sum(len(ids) for ids in processor.question_token_ids(questions))
    # each question: its words (plus punctuation), "Answer yes or no." and the 5 chat-template closing tokens
    assert tokens < words + 12 * len(questions)
