"""Stage 1: balanced judgment data, the scorer's own prompts, answer-token-only loss, and learning on a tiny backbone."""

import numpy as np
import pytest
import torch
from PIL import Image

from trl_vision_reward.reward.sft import (
    JudgmentCollator,
    VisionRewardSFTConfig,
    VisionRewardSFTTrainer,
    balance_judgments,
    build_judgment_dataset,
    judgment_loss,
    judgment_rows,
)

BRIGHT_QUESTIONS = ("Are the colors bright?", "Are the colors not dark?")


def _image(bright: bool, rng: np.random.Generator, size: int = 56) -> Image.Image:
    base = 200 if bright else 40
    return Image.fromarray(np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8))


def _brightness_records(n: int, seed: int, start: int = 0):
    """The answer is in the pixels: "color brightness" is 1 (bright) for light images and -1 (dark) for dark ones,
    so both brightness questions are yes exactly for light images."""
    rng = np.random.default_rng(seed)
    return [
        {
            "internal_id": f"img{start + i}",
            "image": _image(i % 2 == 0, rng),
            "annotation": {"color brightness": 1 if i % 2 == 0 else -1},
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tiny():
    from trl_vision_reward.reward.tiny import tiny_qwen2_vl

    return tiny_qwen2_vl(seed=0)


def test_judgment_rows_skip_masked_questions_and_fill_the_prompt():
    image_rows = judgment_rows(
        [{"internal_id": "a", "image": "a.png", "annotation": {"hands": -4, "richness": 2}}], "image"
    )
    texts = {r["question_text"]: r["answer"] for r in image_rows}
    assert texts["Are there human hands in the image?"] == "no"
    assert "Are the human hands perfect?" not in texts  # masked: no hands, so no judgment
    assert texts["Is the image very rich?"] == "yes"
    assert len(image_rows) == 1 + 4
    video_rows = judgment_rows(
        [{"internal_id": "v", "video": "v.mp4", "prompt": "a cat", "annotation": {"alignment": 4}}], "video"
    )
    assert video_rows[0]["question"] == 'Does the video meet all the requirements stated in the text "a cat"?'
    assert [r["label"] for r in video_rows] == [0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"record 'v' \(row 0\): question .* needs the generation prompt"):
        judgment_rows([{"internal_id": "v", "video": "v.mp4", "annotation": {"alignment": 4}}], "video")
    with pytest.raises(ValueError, match=r"record 'a' \(row 0\) has no media field 'image'"):
        judgment_rows([{"internal_id": "a", "annotation": {}}], "image")


def _rows(counts):
    rows = []
    for q, (n_yes, n_no) in counts.items():
        rows += [{"question_text": q, "label": 1, "k": i} for i in range(n_yes)]
        rows += [{"question_text": q, "label": 0, "k": i} for i in range(n_no)]
    return rows


@pytest.mark.parametrize("strategy, expected", [("oversample", 6), ("undersample", 2)])
def test_balance_per_question(strategy, expected):
    rows = _rows({"q1": (6, 2), "q2": (2, 6), "q3": (3, 0)})
    out = balance_judgments(rows, strategy=strategy, seed=0)
    for q in ("q1", "q2"):
        labels = [r["label"] for r in out if r["question_text"] == q]
        assert labels.count(1) == labels.count(0) == expected
    assert [r["label"] for r in out if r["question_text"] == "q3"] == [1, 1, 1]  # nothing to balance against
    assert out == balance_judgments(rows, strategy=strategy, seed=0)  # seeded
    assert out != balance_judgments(rows, strategy=strategy, seed=1)


def test_balance_rejects_unknown_strategy():
    with pytest.raises(ValueError, match="strategy must be 'oversample', 'undersample' or 'none'; got 'smote'"):
        balance_judgments([], strategy="smote")


def test_collator_uses_the_scorers_tokens_with_left_padding(tiny):
    from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor

    _, backbone_processor = tiny
    processor = VisionRewardProcessor.from_backbone_processor(backbone_processor)
    records = _brightness_records(2, seed=0)
    rows = [
        {"media": records[0]["image"], "question": "Are the colors bright?", "label": 1},
        {"media": records[1]["image"], "question": "Is the image very rich?", "label": 0},
    ]
    batch = JudgmentCollator(backbone_processor)(rows)
    yes_id, no_id = processor.answer_token_ids()
    assert batch["answer_ids"].tolist() == [yes_id, no_id]
    assert batch["labels"].tolist() == [1, 0]
    for r, row in enumerate(rows):
        # the same ids the scorer feeds for this (image, question): prefix + question suffix
        expected = processor(images=row["media"], text=[row["question"]])["input_ids"][0].tolist()
        got = batch["input_ids"][r][batch["attention_mask"][r].bool()].tolist()
        assert got == expected
        assert batch["attention_mask"][r, -1] == 1  # the prompt ends in the last column
    assert batch["image_grid_thw"].shape[0] == 2


def test_video_judgments_use_the_sampled_frames(tiny):
    from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor

    _, backbone_processor = tiny
    rng = np.random.default_rng(0)
    frames = [_image(True, rng) for _ in range(3)]  # in-memory frames are taken as already sampled (one per second)
    records = [{"internal_id": "v", "video_path": frames, "prompt": "a lamp", "annotation": {"alignment": 5}}]
    data = build_judgment_dataset(records, "video", balance="none")
    assert len(data) == 4 and set(data["label"]) == {1}
    batch = JudgmentCollator(backbone_processor, modality="video")([data[0], data[1]])
    assert batch["image_grid_thw"].shape[0] == 2 * 3  # three frames per sample
    processor = VisionRewardProcessor.from_backbone_processor(backbone_processor)
    expected = processor(videos=frames, fps=1.0, text=[data[0]["question"]])["input_ids"][0].tolist()
    assert batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist() == expected


def test_judgment_loss_is_on_the_answer_token_only():
    logits = torch.tensor([[0.0, 2.0, 1.0], [0.0, 1.0, 3.0]])
    answer = torch.tensor([1, 2])
    lm = judgment_loss(logits, answer, [2, 1], "lm")
    assert lm == pytest.approx(torch.nn.functional.cross_entropy(logits, answer).item())
    binary = judgment_loss(logits, answer, [2, 1], "binary")  # only the yes/no columns compete
    expected = (
        -(torch.log_softmax(torch.tensor([1.0, 2.0]), 0)[1] + torch.log_softmax(torch.tensor([3.0, 1.0]), 0)[0]) / 2
    )
    assert binary == pytest.approx(expected.item())


def test_config_validates_choices(tmp_path):
    with pytest.raises(
        ValueError, match=r"balance must be one of \['oversample', 'undersample', 'none'\]; got 'smote'"
    ):
        VisionRewardSFTConfig(output_dir=str(tmp_path), balance="smote", report_to=[])


def test_lora_trains_only_adapters(tiny, tmp_path):
    from trl_vision_reward.reward.tiny import tiny_qwen2_vl

    model, processor = tiny_qwen2_vl(seed=1)
    data = build_judgment_dataset(_brightness_records(4, seed=2), "image", seed=0)
    args = VisionRewardSFTConfig(
        output_dir=str(tmp_path),
        use_peft=True,
        lora_r=4,
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
    )
    trainer = VisionRewardSFTTrainer(model=model, args=args, train_dataset=data, processing_class=processor)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if n in before)


@pytest.mark.slow
def test_sft_learns_a_judgment_the_pixels_decide(tmp_path):
    """Held-out loss falls and held-out judgment accuracy rises from chance to (near) perfect, and the scorer then
    reads the same P(yes) as the trainer: stage 1 trains exactly what stage 2 and scoring use."""
    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor
    from trl_vision_reward.reward.scoring import VisionRewardScorer
    from trl_vision_reward.reward.tiny import tiny_qwen2_vl

    model, processor = tiny_qwen2_vl(seed=0)
    train = build_judgment_dataset(_brightness_records(32, seed=0), "image", questions=list(BRIGHT_QUESTIONS), seed=0)
    held_out_records = _brightness_records(16, seed=1, start=100)
    held_out = build_judgment_dataset(held_out_records, "image", questions=list(BRIGHT_QUESTIONS), balance="none")
    args = VisionRewardSFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        num_train_epochs=8,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=6,
        seed=0,
    )
    trainer = VisionRewardSFTTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=held_out, processing_class=processor
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < 0.5 * before["eval_loss"]
    assert before["eval_judgment_accuracy"] <= 0.6  # chance: the yes/no split of the held-out set is 50/50
    assert after["eval_judgment_accuracy"] >= 0.9
    logged = [h for h in trainer.state.log_history if "judgment/accuracy" in h]
    assert logged and logged[-1]["judgment/accuracy"] >= 0.9

    checklist = Checklist.from_questions(list(BRIGHT_QUESTIONS))
    scorer = VisionRewardScorer(
        trainer.model.eval(), VisionRewardProcessor.from_backbone_processor(processor), checklist
    )
    record = held_out_records[0]
    p_yes = scorer.answer_batched([record["image"]], list(BRIGHT_QUESTIONS))["p_yes"]
    rows = [{"media": record["image"], "question": q, "label": 1} for q in BRIGHT_QUESTIONS]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        _, margin, _ = trainer._forward(trainer.model, batch)
    torch.testing.assert_close(p_yes.float(), torch.sigmoid(margin), atol=1e-4, rtol=1e-4)
    assert bool((p_yes > 0.5).all())  # record 0 is a light image: both answers are yes
