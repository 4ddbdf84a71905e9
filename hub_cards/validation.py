"""Local checks of card metadata, so that a card is known good before anything is pushed.

``RepoCard.validate`` POSTs the card to the Hub; these checks need no network. They cover what the Hub's YAML
validator rejects most often: metadata that does not round-trip through YAML, unknown licence identifiers, a
``model-index`` that does not parse back into ``EvalResult`` objects, malformed ``base_model``/``datasets`` ids,
dataset ``configs`` without ``config_name``/``data_files``, and Space keys outside their allowed values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml
from huggingface_hub import DatasetCard, ModelCard, RepoCard
from huggingface_hub.repocard_data import EvalResult, model_index_to_eval_results

# The Hub's licence identifiers (hub-docs "repositories-licenses"); "other" needs license_name (+ license_link).
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0
    gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl
    apple-amlr mpl-2.0 odc-by odbl openmdw-1.0 openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl
    lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3
    llama4 grok2-community gemma unknown other""".split()
)
SIZE_CATEGORIES = (
    "n<1K",
    "1K<n<10K",
    "10K<n<100K",
    "100K<n<1M",
    "1M<n<10M",
    "10M<n<100M",
    "100M<n<1B",
    "1B<n<10B",
    "10B<n<100B",
    "100B<n<1T",
    "n>1T",
)
PIPELINE_TAGS = frozenset(
    """text-to-video image-to-video video-to-video text-to-image image-to-image image-text-to-text
    visual-question-answering video-classification image-classification text-classification text-generation
    zero-shot-image-classification image-feature-extraction feature-extraction reinforcement-learning
    video-text-to-text any-to-any""".split()
)
TASK_CATEGORIES = PIPELINE_TAGS | {"other", "text-retrieval", "tabular-classification"}
SPACE_SDKS = ("gradio", "docker", "static")
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SPACE_HARDWARE = frozenset(
    """cpu-basic cpu-upgrade t4-small t4-medium l4x1 l4x4 l40sx1 l40sx4 l40sx8 a10g-small a10g-large a10g-largex2
    a10g-largex4 a100-large a100x4 a100x8""".split()
)
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


class CardValidationError(ValueError):
    """A card whose metadata the Hub would reject; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("card metadata is invalid:\n- " + "\n- ".join(self.problems))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_repo_ids(key: str, values: Iterable[Any], problems: list[str]) -> None:
    for value in values:
        if not isinstance(value, str) or not REPO_ID.match(value) or "--" in value or ".." in value:
            problems.append(f"{key}: {value!r} is not a Hub repo id ('owner/name')")


def _check_license(meta: dict, problems: list[str]) -> None:
    for lic in _as_list(meta.get("license")):
        if lic not in HUB_LICENSES:
            problems.append(f"license: {lic!r} is not a Hub licence identifier (use 'other' with license_name)")
    if "other" in _as_list(meta.get("license")) and not meta.get("license_name"):
        problems.append("license: 'other' needs license_name")


def _check_common(card: RepoCard, problems: list[str]) -> dict:
    meta = card.data.to_dict()
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) != meta:
        problems.append("metadata does not round-trip through YAML")
    reparsed = type(card)(str(card)).data.to_dict()
    if reparsed != meta:
        problems.append("the rendered card does not parse back to the same metadata")
    _check_license(meta, problems)
    for key in ("tags", "language"):
        for value in _as_list(meta.get(key)):
            if not isinstance(value, str) or not value:
                problems.append(f"{key}: entries must be non-empty strings; got {value!r}")
    if not card.text.strip():
        problems.append("the card has no body text")
    return meta


def validate_model_card(card: ModelCard) -> None:
    """Raise :class:`CardValidationError` listing every problem with a model card's metadata."""
    problems: list[str] = []
    meta = _check_common(card, problems)
    _check_repo_ids("base_model", _as_list(meta.get("base_model")), problems)
    _check_repo_ids("datasets", _as_list(meta.get("datasets")), problems)
    if meta.get("pipeline_tag") is not None and meta["pipeline_tag"] not in PIPELINE_TAGS:
        problems.append(f"pipeline_tag: {meta['pipeline_tag']!r} is not one of the Hub's tasks")
    if "model-index" in meta:
        try:
            name, results = model_index_to_eval_results(meta["model-index"])
        except (KeyError, TypeError, IndexError) as exc:
            problems.append(f"model-index does not parse: {exc!r}")
        else:
            if not name:
                problems.append("model-index: the model needs a name")
            for result in results:
                if not isinstance(result.metric_value, (int, float)):
                    problems.append(f"model-index: {result.metric_type} value {result.metric_value!r} is not a number")
    if problems:
        raise CardValidationError(problems)


def validate_dataset_card(card: DatasetCard) -> None:
    """Raise :class:`CardValidationError` listing every problem with a dataset card's metadata."""
    problems: list[str] = []
    meta = _check_common(card, problems)
    for size in _as_list(meta.get("size_categories")):
        if size not in SIZE_CATEGORIES:
            problems.append(f"size_categories: {size!r} is not one of {SIZE_CATEGORIES}")
    for task in _as_list(meta.get("task_categories")):
        if task not in TASK_CATEGORIES:
            problems.append(f"task_categories: {task!r} is not one of the Hub's tasks")
    _check_repo_ids("source_datasets", [s for s in _as_list(meta.get("source_datasets")) if "/" in str(s)], problems)
    for config in _as_list(meta.get("configs")):
        if not isinstance(config, dict) or "config_name" not in config:
            problems.append(f"configs: every entry needs config_name; got {config!r}")
            continue
        files = config.get("data_files")
        if files is None:
            problems.append(f"configs[{config['config_name']}]: data_files is missing")
        for entry in _as_list(files) if not isinstance(files, str) else []:
            if isinstance(entry, dict) and not {"split", "path"} <= set(entry):
                problems.append(f"configs[{config['config_name']}]: data_files entries need split and path")
    if problems:
        raise CardValidationError(problems)


def validate_space_card(card: RepoCard) -> None:
    """Raise :class:`CardValidationError` listing every problem with a Space README's metadata."""
    problems: list[str] = []
    meta = _check_common(card, problems)
    for key in ("title", "sdk"):
        if not meta.get(key):
            problems.append(f"{key} is required for a Space")
    if meta.get("sdk") not in (None, *SPACE_SDKS):
        problems.append(f"sdk: {meta['sdk']!r} is not one of {SPACE_SDKS}")
    for key in ("colorFrom", "colorTo"):
        if meta.get(key) is not None and meta[key] not in SPACE_COLORS:
            problems.append(f"{key}: {meta[key]!r} is not one of {SPACE_COLORS}")
    if meta.get("suggested_hardware") is not None and meta["suggested_hardware"] not in SPACE_HARDWARE:
        problems.append(f"suggested_hardware: {meta['suggested_hardware']!r} is not a Space hardware flavour")
    if len(meta.get("short_description") or "") > 60:
        problems.append("short_description: at most 60 characters")
    if meta.get("sdk") == "gradio" and not str(meta.get("app_file", "")).endswith(".py"):
        problems.append("app_file: a Gradio Space needs a .py app file")
    _check_repo_ids("models", _as_list(meta.get("models")), problems)
    _check_repo_ids("datasets", _as_list(meta.get("datasets")), problems)
    if problems:
        raise CardValidationError(problems)


def validate_card(card: RepoCard) -> None:
    """Dispatch on the card's repo type."""
    if card.repo_type == "dataset":
        validate_dataset_card(card)
    elif card.repo_type == "space":
        validate_space_card(card)
    else:
        validate_model_card(card)


__all__ = [
    "CardValidationError",
    "EvalResult",
    "validate_card",
    "validate_dataset_card",
    "validate_model_card",
    "validate_space_card",
]
