"""Model card of a CogVideoX checkpoint fine-tuned with the SFT trainer (stages, buckets, LoRA, final metrics)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ._render import is_repo_id, kv_table, rows_table, template, versions
from .model_cards import _base_link, _default_usage
from .validation import validate_model_card

PAPER_TAGS = ["arxiv:2408.06072"]


def render_sft_model_card(
    *,
    model_name: str = "CogVideoX fine-tune",
    base_model: str | None = None,
    hub_model_id: str | None = None,
    dataset_name: str | None = None,
    stages: Sequence[Mapping[str, Any]] = (),
    hyperparameters: Mapping[str, Any] | None = None,
    lora: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, Any] | None = None,
    pipeline_tag: str = "text-to-video",
    license: str = "apache-2.0",
    validate: bool = True,
) -> ModelCard:
    """A card from plain data: ``stages`` rows (name, buckets, steps, learning_rate, dataset), hyperparameters."""
    random_weights = not base_model or "tiny" in str(base_model).lower()
    shown_base = os.path.basename(base_model.rstrip("/")) if base_model and os.path.isabs(base_model) else base_model
    data_ids = [dataset_name] if dataset_name else []
    tags = ["diffusers", pipeline_tag, "cogvideox", *(["lora"] if lora else []), "sft", *PAPER_TAGS]
    data = ModelCardData(
        base_model=base_model if is_repo_id(base_model) else None,
        datasets=[d for d in data_ids if is_repo_id(d)] or None,
        license=license,
        library_name="diffusers",
        pipeline_tag=pipeline_tag,
        tags=tags,
    )
    hp = {k: v for k, v in (hyperparameters or {}).items() if isinstance(v, (str, int, float, bool, type(None), list))}
    rows = [{k: (", ".join(v) if isinstance(v, list) else v) for k, v in s.items()} for s in stages]
    kind = "LoRA adapter" if lora else "fine-tuned weights"
    card = ModelCard.from_template(
        data,
        template_str=template("sft_model_card.md"),
        model_name=model_name,
        summary=f"A {kind} of `{shown_base or 'the embedded tiny CogVideoX'}` trained in {len(rows)} stage(s).",
        random_weights=random_weights,
        base_model_link=_base_link(base_model),
        weights_kind=kind,
        data_line=", ".join(f"`{os.path.basename(str(d).rstrip('/'))}`" for d in data_ids) or "not recorded",
        hub_model_id=hub_model_id if is_repo_id(hub_model_id) else None,
        usage=_default_usage(base_model, hub_model_id or model_name, random_weights),
        stages_table=rows_table(rows) if rows else "Not recorded.",
        hyperparameters_table=kv_table(hp) or "Not recorded.",
        lora_table=kv_table(dict(lora) if lora else None),
        training_table=kv_table(dict(training_metrics) if training_metrics else None),
        versions_table=kv_table(
            versions("diffusers", "transformers", "peft", "torch", "accelerate"), ("package", "version")
        ),
    )
    card = ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))
    if validate:
        validate_model_card(card)
    return card
