"""``vision-reward train-sft``: stage 1, fine-tune a vision-language backbone on checklist judgments.

Input: annotated records (VisionRewardDB-style: an id, the media, the generation prompt and the ``annotation`` struct).
Each record becomes one yes/no judgment per labelled checklist question, balanced per question. A held-out part
(``--eval-data`` or ``--eval-fraction`` of the records, split by record so no image is on both sides) measures the
judgment loss and accuracy before and after training. Runs under ``accelerate launch`` like any ``Trainer`` script.

``--model`` is a VisionReward scorer folder, or a backbone (any ``AutoModelForImageTextToText``). The output folder is
a complete scorer (``VisionRewardModel`` + ``VisionRewardProcessor``) for ``vision-reward score`` and
``VisionRewardScorer.from_pretrained``, plus ``judgment_metrics.json`` (held-out loss and accuracy before and after)
and, with ``--use-peft``, the LoRA adapter in ``adapter/``. Without ``--model`` a tiny random Qwen2-VL is trained (a
smoke test: its judgments are meaningless).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, help="Annotated records: JSON/JSONL/Parquet file, dataset folder or Hub id."
    )
    parser.add_argument(
        "--eval-data", default=None, help="Held-out annotated records (default: --eval-fraction of --data)."
    )
    parser.add_argument(
        "--eval-fraction", type=float, default=0.1, help="Share of records held out when no --eval-data."
    )
    parser.add_argument("--modality", choices=["image", "video"], default="image")
    parser.add_argument(
        "--model", default=None, help="Backbone folder or Hub id (image-text-to-text). Default: tiny random."
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--questions", choices=["all", "select"], default="all")
    parser.add_argument("--balance", choices=["oversample", "undersample", "none"], default="oversample")
    parser.add_argument("--loss-type", choices=["lm", "binary"], default="lm")
    parser.add_argument(
        "--media-field", default=None, help="Media column (default: image; video: video, video_path or frames)."
    )
    parser.add_argument("--media-root", default=None, help="Folder that relative media paths are resolved against.")
    parser.add_argument("--split", default=None)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--batch-size", type=int, default=8, help="Per-device batch size.")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--use-peft", action="store_true", help="LoRA adapters instead of full fine-tuning.")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier train-sft output in --output-dir (deleted once the new scorer is saved)",
    )


def _media_field(records, modality: str) -> str:
    candidates = ("image",) if modality == "image" else ("video", "video_path", "frames")
    return next((f for f in candidates if records and f in records[0]), candidates[0])


def _has_accelerator() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def _resolve_media(records, field, root):
    """Media paths resolved inside ``--media-root``: absolute paths, ``..`` and symlinks out are refused by row."""
    if root is None:
        return records
    from diffusers_cogvideox.outputs import resolve_inside

    if not Path(root).is_dir():
        raise FileNotFoundError(2, "no --media-root folder at", str(root))
    for row, record in enumerate(records):
        value = record.get(field)
        try:
            if isinstance(value, str):
                record[field] = str(resolve_inside(root, value, what=field))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):  # frame files
                record[field] = [str(resolve_inside(root, v, what=field)) for v in value]
        except ValueError as error:
            raise type(error)(f"record {row}: {error}") from error
    return records


SAVED_NAMES = ("*.json", "*.safetensors", "*.jinja", "merges.txt", "adapter")
"""What ``save_pretrained`` of the scorer and processor writes: a foreign one in --output-dir is refused up front."""


def _load_backbone(args: argparse.Namespace):
    """(backbone, VisionRewardProcessor, checklist) from --model: a VisionReward scorer folder (its backbone is
    trained and its checklist kept), a backbone folder / Hub id, or nothing (a tiny random Qwen2-VL)."""
    import json

    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.sft import as_vision_reward_processor

    if args.model is None:
        from trl_vision_reward.reward.tiny import tiny_qwen2_vl

        print("no --model given: training a tiny RANDOM Qwen2-VL (smoke test; its judgments are meaningless)")
        backbone, processor = tiny_qwen2_vl(seed=args.seed)
        return backbone, as_vision_reward_processor(processor), Checklist.load(args.modality)
    config_file = Path(args.model) / "config.json"
    if config_file.is_file() and json.loads(config_file.read_text()).get("model_type") == "vision_reward":
        from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel
        from trl_vision_reward.reward.processing_vision_reward import VisionRewardProcessor

        scorer = VisionRewardModel.from_pretrained(args.model)
        return scorer.backbone, VisionRewardProcessor.from_pretrained(args.model), scorer.checklist
    from transformers import AutoModelForImageTextToText, AutoProcessor

    backbone = AutoModelForImageTextToText.from_pretrained(args.model)
    processor = as_vision_reward_processor(AutoProcessor.from_pretrained(args.model))
    return backbone, processor, Checklist.load(args.modality)


def run(args: argparse.Namespace) -> int:
    from trl_vision_reward.reward.sft import build_judgment_dataset

    from ._data import load_records

    records = load_records(args.data, split=args.split)
    media_field = args.media_field or _media_field(records, args.modality)
    records = _resolve_media(records, media_field, args.media_root)
    if args.eval_data:
        eval_records = _resolve_media(load_records(args.eval_data, split=args.split), media_field, args.media_root)
    else:
        if not 0 < args.eval_fraction < 1:
            raise ValueError(f"--eval-fraction must be in (0, 1); got {args.eval_fraction}")
        order = list(range(len(records)))
        random.Random(args.seed).shuffle(order)
        n_eval = max(1, round(len(records) * args.eval_fraction))
        held = set(order[:n_eval])
        eval_records = [r for i, r in enumerate(records) if i in held]
        records = [r for i, r in enumerate(records) if i not in held]

    common = dict(questions=args.questions, media_field=media_field)
    train_dataset = build_judgment_dataset(records, args.modality, balance=args.balance, seed=args.seed, **common)
    eval_dataset = build_judgment_dataset(eval_records, args.modality, balance="none", seed=args.seed, **common)

    backbone, processor, checklist = _load_backbone(args)
    folder = None
    if _is_main_process():  # inputs read; claimed before training (refused: someone else's folder, an input in it)
        from diffusers_cogvideox.outputs import OutputFolder

        folder = OutputFolder.claim(
            args.output_dir,
            "vision-reward train-sft",
            inputs=[args.data, args.eval_data, args.model, args.media_root],
            overwrite=args.overwrite,
            reserved=SAVED_NAMES,
            flag="--output-dir",
        )
    with folder or contextlib.nullcontext():  # an earlier output is deleted once the new scorer is saved
        return _train(args, train_dataset, eval_dataset, backbone, processor, checklist, folder)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _train(args, train_dataset, eval_dataset, backbone, processor, checklist, folder) -> int:
    from trl_vision_reward.reward.sft import VisionRewardSFTConfig, VisionRewardSFTTrainer

    config = VisionRewardSFTConfig(
        output_dir=args.output_dir,
        modality=args.modality,
        questions=args.questions,
        balance=args.balance,
        loss_type=args.loss_type,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        max_steps=args.max_steps,
        num_train_epochs=args.epochs,
        use_peft=args.use_peft,
        lora_r=args.lora_r,
        bf16=args.bf16,
        seed=args.seed,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to=[],
        use_cpu=not _has_accelerator(),  # on CPU-only machines this is what makes torchrun / accelerate launch use DDP
    )
    trainer = VisionRewardSFTTrainer(
        model=backbone, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=processor
    )
    before = trainer.evaluate(metric_key_prefix="before")
    trainer.train()
    after = trainer.evaluate(metric_key_prefix="after")
    if trainer.is_world_process_zero():
        from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel

        out = Path(args.output_dir)
        trained = trainer.model
        if args.use_peft:
            trained.save_pretrained(out / "adapter")  # the LoRA adapter alone, for PEFT users
            trained = trained.merge_and_unload()
        # the output is a complete scorer: the fine-tuned backbone, the checklist and the prompt template
        VisionRewardModel.from_backbone(trained, checklist).save_pretrained(out)
        trainer.processing_class.save_pretrained(out)
        summary = {
            "train_judgments": len(train_dataset),
            "eval_judgments": len(eval_dataset),
            "before": before,
            "after": after,
        }
        folder.record_new()
        folder.write_json("judgment_metrics.json", summary)
        print(
            f"held-out judgment loss {before['before_loss']:.4f} -> {after['after_loss']:.4f}, "
            f"accuracy {100 * before['before_judgment_accuracy']:.1f}% -> "
            f"{100 * after['after_judgment_accuracy']:.1f}%; scorer written to {out}"
        )
    return 0
