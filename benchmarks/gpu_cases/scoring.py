"""Case 3: VisionReward scoring at the official models' size, the batched prefix-cache pass vs the released method
(one greedy ``generate`` per question, the media re-encoded each time).

Backbones: this package's CogVLM2 (the 19B image architecture, ``CogVLMForCausalLM``: EVA2-CLIP-E at 1344 px, Llama-3-8B
with vision experts) and CogVLM2-Video (``CogVLMVideoForCausalLM``: 24 frames of 224 px), built from their config
classes' defaults. Every question of the full checklist (image: alignment + 59, video: 64) about one image / one
24-frame clip. The official method's time is measured on as many questions as the budget allows and scaled to the
whole checklist. Then images scored one after another through ``VisionRewardScorer.score``: images per second (the
scorer batches questions, not media). The tokenizer is the byte-level BPE of ``cogvlm2.tiny`` trained on the
checklists (4096 merges: questions split word by word, about as Llama-3's tokenizer splits them) inside the full
128256-token vocabulary. ``--quick``: the tiny 64-wide CogVLM2 models.
"""

from __future__ import annotations

import numpy as np
import torch

from .device import free_memory, measure, peak_window, random_model, timed
from .report import MIB, CaseContext

TITLE = "3. VisionReward at CogVLM2 size: every checklist question, batched vs one generate per question"
BUDGET_S = 120
MIN_S = 40
PROMPT = "a panda playing a guitar in a bamboo forest"
VIDEO_FRAMES = 24  # the most frames the official CogVLM2-Video sampler keeps
IMAGES_PER_SECOND_MEDIA = 8
QUICK_OFFICIAL_QUESTIONS = 4  # --quick: the path is what counts


def build_scorer(modality: str, quick: bool, device: str, dtype: torch.dtype):
    """A random VisionReward scorer with the official architecture (``--quick``: the tiny one) and its processor."""
    from trl_vision_reward import Checklist, VisionRewardModel, VisionRewardScorer
    from trl_vision_reward.reward.cogvlm2 import (
        CogVLM2Config,
        CogVLM2ForConditionalGeneration,
        CogVLM2ImageProcessor,
        CogVLM2Processor,
        CogVLM2VideoConfig,
        CogVLM2VideoForConditionalGeneration,
    )
    from trl_vision_reward.reward.cogvlm2.templates import vision_reward_processor
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_config, tiny_cogvlm2_tokenizer

    video = modality == "video"
    tokenizer = tiny_cogvlm2_tokenizer() if quick else tiny_cogvlm2_tokenizer(4096)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    if quick:
        config = tiny_cogvlm2_config(video=video)
    else:
        config = (CogVLM2VideoConfig if video else CogVLM2Config)(**ids)
    model_class = CogVLM2VideoForConditionalGeneration if video else CogVLM2ForConditionalGeneration
    backbone = random_model(lambda: model_class(config), device, dtype)
    vision = config.vision_config
    image_processor = CogVLM2ImageProcessor(image_size=vision.image_size, patch_size=vision.patch_size, is_video=video)
    processor = vision_reward_processor(CogVLM2Processor(image_processor, tokenizer))
    model = VisionRewardModel.from_backbone(backbone, Checklist.load(modality, select=False)).eval()
    return VisionRewardScorer(model, processor), config


def media(config, modality: str, quick: bool) -> list:
    from PIL import Image

    size = config.vision_config.image_size
    count = 1 if modality == "image" else (2 if quick else VIDEO_FRAMES)
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def architecture_name(video: bool) -> str:
    from trl_vision_reward.reward.cogvlm2.configuration_cogvlm2 import (
        OFFICIAL_IMAGE_ARCHITECTURE,
        OFFICIAL_VIDEO_ARCHITECTURE,
    )

    return OFFICIAL_VIDEO_ARCHITECTURE if video else OFFICIAL_IMAGE_ARCHITECTURE


def run(ctx: CaseContext) -> None:
    for modality in ("image", "video"):
        if not ctx.budget.allows(10):
            ctx.skip(f"{modality}: all questions", f"{max(ctx.budget.left(), 0):.0f} s of the case budget left")
            continue
        score_one(ctx, modality, share=0.5 if modality == "image" else 1.0)
        free_memory(ctx.device)


def score_one(ctx: CaseContext, modality: str, share: float) -> None:
    budget = ctx.budget.part(share)
    scorer, config = build_scorer(modality, ctx.quick, ctx.device, ctx.dtype)
    images = media(config, modality, ctx.quick)
    questions = scorer.checklist.format_all(PROMPT)
    prefix_tokens = int(scorer.processor.prefix_inputs(images)["input_ids"].shape[1])
    params = sum(p.numel() for p in scorer.backbone.parameters()) / 1e9
    what = "image" if modality == "image" else f"{len(images)}-frame video"
    label = f"{architecture_name(modality == 'video')} ({params:.1f}B), one {what} ({prefix_tokens} prefix tokens)"
    ctx.details[f"{modality}_backbone"] = {"parameters_billion": round(params, 2), "prefix_tokens": prefix_tokens}
    scorer.answer_batched(images, questions[:1])  # warm-up: kernels and allocator, both methods
    batched = measure(lambda: scorer.answer_batched(images, questions), ctx.device, budget.part(0.3), ctx.repeats,
                      keep_output=True)  # fmt: skip

    # the official method answers each question alone: the peak of one question is the peak of all
    with peak_window(ctx.device) as official_peak:
        one_s, _ = timed(lambda: scorer.answer_official(images, questions[:1]), ctx.device)
    fit = QUICK_OFFICIAL_QUESTIONS if ctx.quick else int(budget.part(0.6).left() / max(one_s, 1e-6))
    asked = questions[: max(1, min(len(questions), fit))]
    official_s, official = timed(lambda: scorer.answer_official(images, asked), ctx.device)
    official_all = official_s * len(questions) / len(asked)
    agree = int((batched.output["greedy_yes"][: len(asked)] == official["greedy_yes"]).sum())
    scaled = "" if len(asked) == len(questions) else f", scaled from {len(asked)} questions"
    ctx.row(f"{label}: {len(questions)} questions", batched.seconds, official_all, "s",
            f"reference: one generate per question{scaled}; answers agree on {agree}/{len(asked)}")  # fmt: skip
    ctx.row(f"{label}: peak memory", batched.peak_bytes / MIB, official_peak.peak_bytes / MIB, "MiB",
            "allocated beyond the weights")  # fmt: skip
    if modality == "image":
        images_per_second(ctx, scorer, images[0], batched.seconds, budget)


def images_per_second(ctx: CaseContext, scorer, image, seconds_per_image: float, budget) -> None:
    """Images scored one after another through ``score`` (preprocessing and the scoring rule included)."""
    count = 1 if ctx.quick else IMAGES_PER_SECOND_MEDIA
    count = max(1, min(count, int(budget.left() / max(seconds_per_image, 1e-6)) - 1))
    seconds, _ = timed(lambda: [scorer.score(image, PROMPT, modality="image") for _ in range(count)], ctx.device)
    ctx.row(f"images per second, {count} scored one by one", count / seconds, None, "images/s",
            "VisionRewardScorer.score: preprocessing, batched questions, the official scoring rule")  # fmt: skip
