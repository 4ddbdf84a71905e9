"""Stage 1 of VisionReward: supervised fine-tuning of a vision-language backbone on checklist judgments.

The paper fine-tunes the VLM on yes/no instruction data built from the annotations, with yes and no balanced per
question (image: 97,680 judgments, batch 64, LR 1e-6, 1,500 steps; video: 89,473 judgments, LR 4e-6). Here:

- :func:`build_judgment_dataset` turns annotated records into one row per (sample, question) with a yes/no answer
  (labels by :mod:`trl_vision_reward.reward.labels`, masked questions skipped) and balances yes/no per question by seeded
  resampling;
- :class:`JudgmentCollator` renders each row with the same prompt the scorer uses, so that training teaches exactly the
  next-token distribution the scorer reads P(yes) from;
- :class:`VisionRewardSFTTrainer` (a ``transformers.Trainer``) puts the loss on the answer token only.

Why not TRL's ``SFTTrainer`` (trl 1.16): its vision-language collator renders prompts with the processor's chat
template and tokenizes the completion separately, so the tokens would not be the scorer's prefix + question suffix and
the trained answer token could differ from the yes/no token ids the scorer reads; it also hands media to the processor
as ``images`` only, while video judgments here are the scorer's sampled frames. The trainer below keeps TRL's shape (a
config dataclass + a ``Trainer`` subclass with a short ``compute_loss`` and stable metric names) and needs only the
logits at the last prompt position (``logits_to_keep=1``), far cheaper than full-sequence logits.
"""

from __future__ import annotations

import io
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from .labels import label_records, labeled_questions, record_id_of

ANSWERS = ("no", "yes")  # index = label


# ---------------------------------------------------------------------------------------------------------- config
@dataclass
class VisionRewardSFTConfig(TrainingArguments):
    """Training arguments for stage 1 (every ``transformers.TrainingArguments`` field, plus the ones below).

    Defaults follow the paper where it gives a value (learning rate 1e-6 for images; use 4e-6 for video).
    """

    modality: str = field(default="image", metadata={"help": "'image' or 'video': which checklist and taxonomy."})
    questions: str = field(
        default="all",
        metadata={"help": "Questions to train on: 'all' (every labelled question) or 'select' (the select list)."},
    )
    balance: str = field(
        default="oversample",
        metadata={"help": "Yes/no balance per question: 'oversample' (minority resampled up), 'undersample', 'none'."},
    )
    loss_type: str = field(
        default="lm",
        metadata={
            "help": "'lm': cross-entropy over the vocabulary at the answer token (instruction tuning); "
            "'binary': cross-entropy over the two answers only (yes vs no logits)."
        },
    )
    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters (PEFT) instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get LoRA adapters (language model attention by default)."},
    )
    learning_rate: float = field(default=1e-6, metadata={"help": "Peak learning rate (paper: 1e-6 image, 4e-6 video)."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep the raw media/question columns: the collator renders them."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = {
            "modality": ("image", "video"),
            "questions": ("all", "select"),
            "balance": ("oversample", "undersample", "none"),
            "loss_type": ("lm", "binary"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}; got {getattr(self, name)!r}")


# ---------------------------------------------------------------------------------------------------------- data
def judgment_rows(
    records: Iterable[Mapping[str, Any]],
    modality: str,
    *,
    questions: str | Sequence[str] | None = None,
    media_field: str | None = None,
    prompt_field: str = "prompt",
    annotation_field: str = "annotation",
    value_order: str | None = None,
) -> list[dict[str, Any]]:
    """One row per labelled (record, question): ``media``, ``question`` (``[[prompt]]`` filled), ``answer`` ("yes" or
    "no"), ``label`` (1/0), ``question_text`` (raw), ``dimension``, ``record_id``, ``fps`` (video, if the record has
    one). Masked questions give no row."""
    records = list(records)
    if media_field is None:  # VisionRewardDB-Image: "image"; VisionRewardDB-Video: "video_path"
        candidates = ("image",) if modality == "image" else ("video", "video_path", "frames")
        media_field = next((f for f in candidates if records and f in records[0]), candidates[0])
    all_labels = label_records(
        records, modality, questions=questions, annotation_field=annotation_field, value_order=value_order
    )
    dimension_of = {q.text: q.dimension for q in labeled_questions(modality)}
    rows = []
    for row, (record, labels) in enumerate(zip(records, all_labels)):
        if media_field not in record:
            raise ValueError(
                f"record {record_id_of(record, row)!r} (row {row}) has no media field {media_field!r}; "
                f"its keys are {sorted(record)}"
            )
        prompt = record.get(prompt_field)
        for text, label in zip(labels.questions, labels.labels):
            if label is None:
                continue
            if "[[prompt]]" in text and not prompt:
                raise ValueError(
                    f"record {labels.record_id!r} (row {row}): question {text!r} needs the generation prompt, but "
                    f"field {prompt_field!r} is missing or empty"
                )
            rows.append(
                {
                    "media": record[media_field],
                    "question": text.replace("[[prompt]]", str(prompt)) if "[[prompt]]" in text else text,
                    "answer": ANSWERS[label],
                    "label": label,
                    "question_text": text,
                    "dimension": dimension_of[text],
                    "record_id": str(labels.record_id),
                    "fps": record.get("fps"),
                }
            )
    return rows


def balance_judgments(
    rows: Sequence[Mapping[str, Any]],
    *,
    strategy: Literal["oversample", "undersample", "none"] = "oversample",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Balance yes/no per question (``question_text``) by seeded resampling, then shuffle.

    ``oversample`` draws extra copies of the minority answer (with replacement) up to the majority count;
    ``undersample`` keeps a random subset of the majority answer. A question with only one answer stays as it is
    (nothing to balance against). The output is a deterministic function of the rows and ``seed``.
    """
    if strategy not in ("oversample", "undersample", "none"):
        raise ValueError(f"strategy must be 'oversample', 'undersample' or 'none'; got {strategy!r}")
    rng = random.Random(seed)
    groups: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for row in rows:
        groups[row["question_text"]][int(row["label"])].append(dict(row))
    out: list[dict[str, Any]] = []
    for text in sorted(groups):
        no, yes = groups[text]
        if strategy != "none" and no and yes:
            small, big = (no, yes) if len(no) < len(yes) else (yes, no)
            if strategy == "oversample":
                small = small + [dict(rng.choice(small)) for _ in range(len(big) - len(small))]
            else:
                big = rng.sample(big, len(small))
            no, yes = small, big
        out += no + yes
    rng.shuffle(out)
    return out


def build_judgment_dataset(
    records: Iterable[Mapping[str, Any]],
    modality: str,
    *,
    questions: str | Sequence[str] | None = None,
    balance: Literal["oversample", "undersample", "none"] = "oversample",
    seed: int = 0,
    **row_kwargs: Any,
):
    """A ``datasets.Dataset`` of balanced judgments (see :func:`judgment_rows` and :func:`balance_judgments`).

    Media stay as given (PIL images, paths or frame lists); the collator loads them when a batch is built.
    """
    from datasets import Dataset

    rows = balance_judgments(
        judgment_rows(records, modality, questions=questions, **row_kwargs), strategy=balance, seed=seed
    )
    if not rows:
        raise ValueError("no labelled judgments: every question is masked or unannotated in these records")
    return Dataset.from_list(rows)


# ---------------------------------------------------------------------------------------------------------- media
def decode_media(media: Any) -> Any:
    """Undo storage encodings the scorer's loader does not read: raw bytes and ``datasets`` image dicts
    (``{"bytes": ..., "path": ...}``) become PIL images; paths, PIL images, arrays and frame lists pass through."""
    from PIL import Image

    if isinstance(media, Mapping):
        if media.get("bytes"):
            return Image.open(io.BytesIO(media["bytes"])).convert("RGB")
        if media.get("path"):
            return media["path"]
        raise ValueError(f"a media dict needs 'bytes' or 'path'; got keys {sorted(media)}")
    if isinstance(media, bytes | bytearray):
        return Image.open(io.BytesIO(media)).convert("RGB")
    return media


# ---------------------------------------------------------------------------------------------------------- collator
def as_vision_reward_processor(processor: Any) -> Any:
    """The scorer's processor for ``processor``: a ``VisionRewardProcessor`` stays as it is; a backbone processor
    (e.g. ``Qwen2VLProcessor``) is wrapped with the default prompt template, exactly as the scorer would wrap it."""
    from .processing_vision_reward import VisionRewardProcessor

    if isinstance(processor, VisionRewardProcessor) or hasattr(processor, "prefix_inputs"):
        return processor
    return VisionRewardProcessor.from_backbone_processor(processor)


@dataclass
class JudgmentCollator:
    """Renders rows (``media``, ``question``, ``label``) into left-padded model inputs plus ``answer_ids``.

    The tokens are the scorer's own: ``processor.prefix_inputs(media)`` followed by
    ``processor.question_token_ids([question])``, so the last prompt position is where the scorer reads P(yes) and
    training moves exactly that distribution. Left padding keeps every prompt's last token in the last column.
    In-memory video frames are taken as already sampled unless the row has an ``fps``.
    """

    processor: Any
    modality: str = "image"

    def __post_init__(self) -> None:
        self.processor = as_vision_reward_processor(self.processor)
        yes_id, no_id = self.processor.answer_token_ids()
        self.answer_ids = [no_id, yes_id]  # index = label

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        proc = self.processor
        sequences, type_rows, visual = [], [], defaultdict(list)
        for row in rows:
            fps = row.get("fps") or (1.0 if self.modality == "video" and not isinstance(row["media"], str) else None)
            frames = proc.load_media(decode_media(row["media"]), self.modality, fps=fps)
            prefix = proc.prefix_inputs(frames)
            ids = prefix["input_ids"][0].tolist() + proc.question_token_ids([row["question"]])[0]
            sequences.append(ids)
            if "mm_token_type_ids" in prefix:
                types = prefix["mm_token_type_ids"][0].tolist()
                type_rows.append(types + [0] * (len(ids) - len(types)))
            for key, value in prefix.items():
                if key not in ("input_ids", "attention_mask", "mm_token_type_ids"):
                    visual[key].append(value)
        width = max(map(len, sequences))
        pad = proc.tokenizer.pad_token_id if proc.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, ids in enumerate(sequences):
            input_ids[r, width - len(ids) :] = torch.tensor(ids)
            attention_mask[r, width - len(ids) :] = 1
        batch: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if type_rows:
            types = torch.zeros((len(rows), width), dtype=torch.long)
            for r, t in enumerate(type_rows):
                types[r, width - len(t) :] = torch.tensor(t)
            batch["mm_token_type_ids"] = types
        for key, values in visual.items():
            batch[key] = torch.cat(values)  # pixel rows / grids of every sample, in batch order
        labels = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        batch["answer_ids"] = torch.tensor(self.answer_ids, dtype=torch.long)[labels]
        batch["labels"] = labels
        return batch


# ---------------------------------------------------------------------------------------------------------- loss
def answer_logits(model: Any, inputs: Mapping[str, Any]) -> torch.Tensor:
    """Next-token logits at the end of each (left-padded) prompt: shape (batch, vocab)."""
    outputs = model(**inputs, logits_to_keep=1, use_cache=False)
    return outputs.logits[:, -1, :]


def judgment_loss(
    logits: torch.Tensor, answer_ids: torch.Tensor, yes_no_ids: Sequence[int], loss_type: str = "lm"
) -> torch.Tensor:
    """Cross-entropy of the answer token. ``lm``: over the vocabulary (SFT on the answer token only);
    ``binary``: over the two answers, i.e. ``-log P(answer | answer in {yes, no})``."""
    if loss_type == "lm":
        return F.cross_entropy(logits.float(), answer_ids)
    pair = logits[:, list(yes_no_ids)].float()  # columns: no, yes
    target = (answer_ids == yes_no_ids[1]).long()
    return F.cross_entropy(pair, target)


def yes_margin(logits: torch.Tensor, yes_no_ids: Sequence[int]) -> torch.Tensor:
    """logit(yes) - logit(no): P(yes | yes or no) = sigmoid(margin); positive means the answer is "yes"."""
    return (logits[:, yes_no_ids[1]] - logits[:, yes_no_ids[0]]).float()


# ---------------------------------------------------------------------------------------------------------- trainer
class VisionRewardSFTTrainer(Trainer):
    """``transformers.Trainer`` for checklist judgments: loss on the answer token only; metrics
    ``judgment/accuracy`` and ``judgment/p_correct`` in training logs, ``eval_judgment_accuracy`` on evaluation.

    ``processing_class`` is a ``VisionRewardProcessor`` or a backbone processor (wrapped with the default template). With ``args.use_peft`` (or a ``peft_config``) the model is wrapped with LoRA adapters.
    """

    def __init__(
        self,
        model: Any,
        args: VisionRewardSFTConfig,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        data_collator: JudgmentCollator | None = None,
        peft_config: Any = None,
        **kwargs: Any,
    ) -> None:
        if processing_class is None and data_collator is None:
            raise ValueError("pass processing_class (the backbone's processor) or a JudgmentCollator")
        if data_collator is None:
            processing_class = as_vision_reward_processor(processing_class)
            data_collator = JudgmentCollator(processing_class, modality=args.modality)
        if peft_config is None and args.use_peft:
            from peft import LoraConfig

            peft_config = LoraConfig(
                r=args.lora_r,
                lora_alpha=args.lora_alpha,
                lora_dropout=args.lora_dropout,
                target_modules=list(args.lora_target_modules),
                task_type="CAUSAL_LM",
            )
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        if "compute_metrics" not in kwargs:
            kwargs["compute_metrics"] = judgment_metrics
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        self.yes_no_ids = list(data_collator.answer_ids)  # [no, yes]
        self._judgment_stats: dict[str, list[float]] = defaultdict(list)

    def _forward(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs = dict(inputs)
        answer_ids = inputs.pop("answer_ids")
        labels = inputs.pop("labels")
        logits = answer_logits(model, inputs)
        loss = judgment_loss(logits, answer_ids, self.yes_no_ids, self.args.loss_type)
        return loss, yes_margin(logits, self.yes_no_ids), labels

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, margin, labels = self._forward(model, inputs)
        if model.training:
            with torch.no_grad():
                p_yes = torch.sigmoid(margin)
                p_correct = torch.where(labels == 1, p_yes, 1 - p_yes)
                self._judgment_stats["judgment/accuracy"].append(((margin > 0).long() == labels).float().mean().item())
                self._judgment_stats["judgment/p_correct"].append(p_correct.mean().item())
        return (loss, {"margin": margin}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss, margin, labels = self._forward(model, inputs)
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), margin.detach(), labels.detach()

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._judgment_stats and "loss" in logs:
            for key, values in self._judgment_stats.items():
                logs[key] = sum(values) / len(values)
            self._judgment_stats.clear()
        super().log(logs, *args, **kwargs)


def judgment_metrics(eval_prediction: Any) -> dict[str, float]:
    """``compute_metrics`` for the trainer: accuracy of sign(logit(yes) - logit(no)) and mean P(correct)."""
    margin = torch.as_tensor(eval_prediction.predictions).float().reshape(-1)
    labels = torch.as_tensor(eval_prediction.label_ids).long().reshape(-1)
    p_yes = torch.sigmoid(margin)
    p_correct = torch.where(labels == 1, p_yes, 1 - p_yes)
    return {
        "judgment_accuracy": ((margin > 0).long() == labels).float().mean().item(),
        "judgment_p_correct": p_correct.mean().item(),
    }
