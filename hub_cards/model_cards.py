"""Model cards: CogVideoX fine-tunes trained with MPO, and VisionReward scorers.

Every renderer returns a :class:`huggingface_hub.ModelCard` whose metadata has passed
:func:`hub_cards.validation.validate_model_card` (no network). ``card.save(path)`` writes ``README.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ._render import fmt, is_repo_id, kv_table, rows_table, template, versions
from .validation import validate_model_card

PAPER_TAGS = ["arxiv:2412.21059"]
_EVAL_KEYS = set(EvalResult.__dataclass_fields__)


def to_eval_results(
    results: Sequence[EvalResult | Mapping[str, Any]] | Mapping[str, float] | None,
    *,
    task_type: str = "text-to-video",
    dataset_name: str = "evaluation prompts",
    dataset_type: str = "prompts",
) -> list[EvalResult]:
    """Normalise evaluation results to ``EvalResult`` objects.

    Accepts ``EvalResult`` objects, dicts with ``EvalResult`` field names (missing task/dataset fields take the
    defaults given here), or a plain ``{metric_name: value}`` mapping.
    """
    if not results:
        return []
    if isinstance(results, Mapping):
        results = [{"metric_type": k, "metric_name": k, "metric_value": v} for k, v in results.items()]
    out = []
    for item in results:
        if isinstance(item, EvalResult):
            out.append(item)
            continue
        unknown = set(item) - _EVAL_KEYS
        if unknown:
            raise ValueError(f"evaluation result has unknown keys {sorted(unknown)}; expected {sorted(_EVAL_KEYS)}")
        fields = {"task_type": task_type, "dataset_name": dataset_name, "dataset_type": dataset_type, **item}
        value = fields["metric_value"]
        fields["metric_value"] = float(value) if not isinstance(value, (int, float)) else value
        out.append(EvalResult(**fields))
    return out


def _eval_table(results: list[EvalResult]) -> str:
    rows = [
        {
            "dataset": r.dataset_name + (f" ({r.dataset_split})" if r.dataset_split else ""),
            "metric": r.metric_name or r.metric_type,
            "value": r.metric_value,
        }
        for r in results
    ]
    return rows_table(rows)


def _base_link(base_model: str | None) -> str:
    if not base_model:
        return "not recorded"
    if is_repo_id(base_model):
        return f"[{base_model}](https://huggingface.co/{base_model})"
    name = os.path.basename(base_model.rstrip("/")) if os.path.isabs(base_model) else base_model
    return f"`{name}` (local)"


def is_tiny_world(base_model: str | None) -> bool:
    """The embedded default (the trained tiny world shipped with the package): no base, ``tiny`` or a name saying so."""
    name = str(base_model or "").lower()
    return not name or name == "tiny" or "tiny world" in name or "tiny-world" in name


def is_random_default(base_model: str | None) -> bool:
    """The random-weight tiny models (``random``, or a name that says random weights)."""
    return "random" in str(base_model or "").lower() and not is_repo_id(base_model)


def _default_usage(base_model: str | None, model_id: str, random_weights: bool) -> str:
    if os.path.isabs(model_id):
        model_id = os.path.basename(model_id.rstrip("/"))  # never a path of the machine that trained it
    if not random_weights and is_tiny_world(base_model):
        return (
            "from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS, tiny_world_pipeline\n"
            "from diffusers_cogvideox.video_io import export_to_video\n\n"
            "pipe = tiny_world_pipeline()  # the tiny world's CogVideoX, shipped with the package\n"
            f'pipe.load_lora_weights("{model_id}")\n'
            'video = pipe("a red circle on a grey background", num_inference_steps=TINY_WORLD_STEPS, guidance_scale=1.0, '
            "**TINY_WORLD_RESOLUTION).frames[0]\n"
            'export_to_video(video, "circle.mp4", fps=8)'
        )
    if random_weights and not is_repo_id(base_model):
        return (
            "from diffusers_cogvideox.tiny import tiny_pipeline\n"
            "from diffusers_cogvideox.video_io import export_to_video\n\n"
            "pipe = tiny_pipeline()  # the same random base weights, rebuilt locally\n"
            f'pipe.load_lora_weights("{model_id}")\n'
            'video = pipe("a panda playing a guitar", num_frames=9, height=32, width=32, num_inference_steps=2).frames[0]\n'
            'export_to_video(video, "panda.mp4", fps=8)'
        )
    if not base_model:
        base = "THUDM/CogVideoX-2b"
    elif os.path.isabs(base_model):
        base = os.path.basename(base_model.rstrip("/"))  # a local folder: named, never a path of this machine
    else:
        base = base_model
    return (
        "import torch\n"
        "from diffusers_cogvideox import CogVideoXPipeline\n"
        "from diffusers_cogvideox.video_io import export_to_video\n\n"
        f'pipe = CogVideoXPipeline.from_pretrained("{base}", dtype=torch.bfloat16).to("cuda")\n'
        f'pipe.load_lora_weights("{model_id}")\n'
        'video = pipe("a panda playing a guitar in a bamboo forest", num_frames=49).frames[0]\n'
        'export_to_video(video, "panda.mp4", fps=8)'
    )


def rule_sentence(pair_rule: Mapping[str, Any] | None, rule_level: str = "dimension") -> str:
    """The method line's description of the pairs: the rule that admitted them, or the paper's when unknown."""
    if not pair_rule:
        return f"pairs where the chosen sample *dominates* the rejected one on every VisionReward {rule_level}"
    gap = f"{float(pair_rule.get('min_total_gap', 0.0)):g}"
    scores = pair_rule.get("scores") or "official"
    on = "soft (P(yes)-based) scores" if scores == "soft" else "official (hard-answer) scores"
    if pair_rule.get("rule") == "dpo":
        text = f"pairs whose VisionReward totals differ by at least {gap} (the plain-DPO rule, no dominance check)"
    else:
        text = (
            f"pairs where the chosen sample *dominates* the rejected one on every VisionReward "
            f"{str(pair_rule.get('granularity', 'dimension')).replace('_', '-')} and beats its total by at least {gap}"
        )
    source = pair_rule.get("source")
    return f"{text}, on {on}" + (f" ({source})" if source else "")


def render_mpo_model_card(
    *,
    model_name: str = "CogVideoX MPO",
    base_model: str | None = None,
    hub_model_id: str | None = None,
    output_dir: str | None = None,
    dataset_name: str | None = None,
    datasets: Sequence[str] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    lora: Mapping[str, Any] | None = None,
    pair_statistics: Mapping[str, Any] | None = None,
    rule_level: str | None = None,
    pair_rule: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, Any] | None = None,
    eval_results: Sequence[EvalResult | Mapping[str, Any]] | Mapping[str, float] | None = None,
    eval_dataset_name: str = "evaluation prompts",
    tags: Sequence[str] | None = None,
    license: str = "apache-2.0",
    pipeline_tag: str = "text-to-video",
    library_name: str = "diffusers",
    random_weights: bool | None = None,
    usage: str | None = None,
    summary: str | None = None,
    validate: bool = True,
    **extra: Any,
) -> ModelCard:
    """Model card of a CogVideoX (or any diffusers) checkpoint fine-tuned with MPO.

    Every field is optional; the card says what it knows. ``hyperparameters`` is typically ``MPOConfig`` as a dict
    (only JSON-able values are shown), ``pair_statistics`` the admission statistics of the pair dataset (rule,
    threshold, pairs admitted/considered), ``eval_results`` VisionReward scores before/after, and anything else
    passed by keyword lands in an "Other details" table. ``base_model`` is recorded in the metadata only when it
    is a Hub repo id (local folders appear in the text). ``random_weights`` defaults to whether ``base_model``
    names the random tiny models (no base means the trained tiny world). ``pair_rule`` is the rule that admitted the training pairs
    (``rule``, ``granularity``, ``min_total_gap``, ``scores``, and ``source``: where it was read from), stated in
    the card's method line.
    """
    shown_base = os.path.basename(base_model.rstrip("/")) if base_model and os.path.isabs(base_model) else base_model
    model_id = hub_model_id or output_dir or model_name
    data_ids = [d for d in ([dataset_name] if dataset_name else []) + list(datasets or []) if d]
    results = to_eval_results(eval_results, dataset_name=eval_dataset_name)
    if random_weights is None:
        random_weights = is_random_default(base_model)
    rule_level = rule_level or str(
        (pair_statistics or {}).get("granularity") or (pair_statistics or {}).get("rule") or "dimension"
    )
    video = pipeline_tag == "text-to-video"
    card_tags = [
        "diffusers",
        *(["text-to-video", "cogvideox"] if video else []),
        "lora",
        "mpo",
        "dpo",
        "vision-reward",
        "trl",
        *PAPER_TAGS,
    ]
    card_tags += [t for t in (tags or []) if t not in card_tags]
    data = ModelCardData(
        base_model=base_model if is_repo_id(base_model) else None,
        datasets=[d for d in data_ids if is_repo_id(d)] or None,
        eval_results=results or None,
        model_name=model_name if results else None,
        license=license,
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        tags=card_tags,
    )
    hp = {k: v for k, v in (hyperparameters or {}).items() if isinstance(v, (str, int, float, bool, type(None), list))}
    card = ModelCard.from_template(
        data,
        template_str=template("mpo_model_card.md"),
        model_name=model_name,
        summary=summary
        or f"A LoRA adapter for `{shown_base or 'the embedded tiny CogVideoX'}` trained with MPO on VisionReward "
        "preference pairs.",
        random_weights=random_weights,
        tiny_world=not random_weights and is_tiny_world(base_model),
        base_model_link=_base_link(base_model),
        rule_sentence=rule_sentence(pair_rule, rule_level),
        weights_kind="LoRA adapter" if lora or "lora" in str(hp).lower() else "fine-tuned weights",
        data_line=", ".join(f"`{d}`" for d in data_ids) or "not recorded",
        hub_model_id=hub_model_id if is_repo_id(hub_model_id) else None,
        usage=usage or _default_usage(base_model, model_id, random_weights),
        hyperparameters_table=kv_table(hp) or "Not recorded.",
        lora_table=kv_table(dict(lora) if lora else None),
        pairs_table=kv_table(dict(pair_statistics) if pair_statistics else None),
        training_table=kv_table(dict(training_metrics) if training_metrics else None),
        eval_table=_eval_table(results),
        extra_table=kv_table({k: v for k, v in extra.items() if v is not None}),
        versions_table=kv_table(
            versions("cogvideox-visionreward", "diffusers", "transformers", "trl", "peft", "torch", "datasets"),
            ("package", "version"),
        ),
    )
    card = ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))
    if validate:
        validate_model_card(card)
    return card


def render_vision_reward_model_card(
    *,
    model_name: str = "VisionReward",
    modality: str = "video",
    base_model: str | None = None,
    hub_model_id: str | None = None,
    checklist: Any = None,
    accuracy: Mapping[str, Any] | Sequence[EvalResult | Mapping[str, Any]] | None = None,
    training: Mapping[str, Any] | None = None,
    datasets: Sequence[str] | None = None,
    license: str = "other",
    license_name: str | None = "cogvlm2",
    license_link: str | None = "https://huggingface.co/THUDM/cogvlm2-llama3-chat-19B/blob/main/LICENSE",
    random_weights: bool | None = None,
    tags: Sequence[str] | None = None,
    validate: bool = True,
    **extra: Any,
) -> ModelCard:
    """Model card of a VisionReward scorer: its checklist (dimensions, questions, weights) and accuracy.

    ``checklist`` is a ``trl_vision_reward.reward.checklist.Checklist`` (loaded for ``modality`` when omitted) or a list of
    ``{dimension, question, weight}`` dicts. ``accuracy`` is ``{metric: value}`` or ``EvalResult``-like records.
    The official VisionReward weights are under the cogvlm2 licence, hence the default ``license="other"``; pass
    ``license="apache-2.0", license_name=None`` for a scorer trained from scratch on an Apache backbone.
    """
    rows = _checklist_rows(checklist, modality)
    results = to_eval_results(
        accuracy,
        task_type="video-classification" if modality == "video" else "image-classification",
        dataset_name="preference pairs",
        dataset_type="pairs",
    )
    if random_weights is None:
        random_weights = not base_model or is_random_default(base_model)  # train-sft's default backbone is random
    per_dim: dict[str, list[float]] = {}
    for row in rows:
        per_dim.setdefault(row["dimension"], []).append(float(row.get("weight") or 0.0))
    dims = [{"dimension": d, "questions": len(w), "weight sum": sum(w)} for d, w in per_dim.items()]
    card_tags = ["vision-reward", "reward-model", "preference", modality, *PAPER_TAGS]
    card_tags += [t for t in (tags or []) if t not in card_tags]
    data = ModelCardData(
        base_model=base_model if is_repo_id(base_model) else None,
        datasets=[d for d in (datasets or []) if is_repo_id(d)] or None,
        eval_results=results or None,
        model_name=model_name if results else None,
        license=license,
        license_name=license_name if license == "other" else None,
        license_link=license_link if license == "other" else None,
        library_name="transformers",
        pipeline_tag="video-text-to-text" if modality == "video" else "image-text-to-text",
        tags=card_tags,
    )
    body = [
        f"# {model_name}",
        "",
        f"A VisionReward {modality} scorer: a vision-language model answers a checklist of yes/no questions about "
        f"{'a video' if modality == 'video' else 'an image'} and its prompt; the weighted answers give per-dimension "
        "scores and a total (Xu et al., arXiv:2412.21059).",
        "",
    ]
    if random_weights:
        body += ["> **Random weights.** Built from the random tiny models; its scores are noise.", ""]
    body += [
        f"- **Backbone:** {_base_link(base_model)}",
        f"- **Checklist:** {len(rows)} questions in {len(per_dim)} dimensions (THUDM/VisionReward, Apache-2.0)",
        "",
        "## How to use",
        "",
        "```python",
        "from trl_vision_reward import VisionRewardModel, VisionRewardProcessor",
        "",
        f'model = VisionRewardModel.from_pretrained("{hub_model_id or model_name}")',
        f'processor = VisionRewardProcessor.from_pretrained("{hub_model_id or model_name}")',
        "```",
        "",
        "## Dimensions",
        "",
        rows_table(dims),
        "",
        "## Checklist and weights",
        "",
        rows_table(rows, ["dimension", "question", "weight"]) or "Not recorded.",
        "",
    ]
    if results:
        body += ["## Accuracy", "", _eval_table(results), ""]
    if training:
        body += ["## Training", "", kv_table(dict(training)), ""]
    if extra:
        body += ["## Other details", "", kv_table({k: v for k, v in extra.items() if v is not None}), ""]
    body += [
        "## Licence and attribution",
        "",
        "The checklist questions and weights are copied from THUDM/VisionReward (Apache-2.0). "
        'Xu et al., "VisionReward: Fine-Grained Multi-Dimensional Human Preference Learning for Image and Video '
        'Generation", arXiv:2412.21059.',
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")
    if validate:
        validate_model_card(card)
    return card


def _checklist_rows(checklist: Any, modality: str) -> list[dict[str, Any]]:
    """``[{dimension, question, weight}]`` from a Checklist object, a list of dicts, or the packaged taxonomy."""
    if isinstance(checklist, (list, tuple)):
        return [dict(r) for r in checklist]
    if checklist is None:
        try:
            from trl_vision_reward.reward.checklist import Checklist

            checklist = Checklist.load(modality)
        except ImportError:
            return _taxonomy_rows(modality)
    return _rows_from_checklist_object(checklist) or _taxonomy_rows(modality)


def _rows_from_checklist_object(checklist: Any) -> list[dict[str, Any]]:
    questions = getattr(checklist, "questions", None)
    if not questions:
        return []
    rows = []
    weights = getattr(checklist, "weights", None)
    for i, q in enumerate(questions):
        text = getattr(q, "text", q if isinstance(q, str) else str(q))
        dim = getattr(q, "dimension", None)
        if dim is None and hasattr(checklist, "dimension_of"):
            dim = checklist.dimension_of(i)
        weight = getattr(q, "weight", None)
        if weight is None and weights is not None:
            weight = float(weights[i])
        rows.append({"dimension": fmt(dim or "?"), "question": text, "weight": weight})
    return rows


def _taxonomy_rows(modality: str) -> list[dict[str, Any]]:
    from trl_vision_reward.reward.taxonomy import load_taxonomy

    return [
        {"dimension": q["dimension"], "question": q["text"], "weight": q["weight"]}
        for q in load_taxonomy(modality).questions
        if not q["is_mask"]
    ]


__all__ = ["render_mpo_model_card", "render_vision_reward_model_card", "rule_sentence", "to_eval_results"]
