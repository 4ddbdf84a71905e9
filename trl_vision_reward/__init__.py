"""VisionReward on the transformers API, its training, and MPO (multi-objective Diffusion-DPO) on the TRL pattern.

Public names are resolved lazily so that importing the package does not import torch-heavy modules.
"""

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # name: module (relative). Each area adds its public names here.
    # checklist, scoring rule, VisionReward model / processor / scorer
    "Checklist": ".checklist",
    "Question": ".checklist",
    "official_score": ".scoring_rule",
    "soft_score": ".scoring_rule",
    "dimension_scores": ".scoring_rule",
    "soft_dimension_scores": ".scoring_rule",
    "VisionRewardConfig": ".configuration_vision_reward",
    "VisionRewardModel": ".modeling_vision_reward",
    "VisionRewardOutput": ".modeling_vision_reward",
    "VisionRewardProcessor": ".processing_vision_reward",
    "PromptTemplate": ".processing_vision_reward",
    "register_prompt_template": ".processing_vision_reward",
    "VisionRewardScorer": ".scoring",
    "ScoreResult": ".scoring",
    # reward-model training (stage 1 SFT, stage 2 weights) and evaluation
    "JudgmentLabels": ".labels",
    "judgment_labels": ".labels",
    "label_records": ".labels",
    "WeightFit": ".regression",
    "fit_nonnegative_logistic": ".regression",
    "fit_checklist_weights": ".regression",
    "pair_differences": ".regression",
    "select_questions": ".regression",
    "apply_weights": ".regression",
    "PreferenceAccuracy": ".evaluation",
    "JudgmentAccuracy": ".evaluation",
    "EvaluationReport": ".evaluation",
    "preference_accuracy": ".evaluation",
    "accuracy_with_ties": ".evaluation",
    "accuracy_without_ties": ".evaluation",
    "judgment_accuracy": ".evaluation",
    "VisionRewardSFTConfig": ".reward_training",
    "VisionRewardSFTTrainer": ".reward_training",
    "JudgmentCollator": ".reward_training",
    "build_judgment_dataset": ".reward_training",
    # MPO: pair mining, Diffusion-DPO loss, config, trainer, data
    "PairRule": ".pairs",
    "MiningStats": ".pairs",
    "PAPER_THRESHOLDS": ".pairs",
    "dominates": ".pairs",
    "mine_pairs": ".pairs",
    "mpo_rule": ".pairs",
    "dpo_rule": ".pairs",
    "deduplicate_pairs": ".pairs",
    "diffusion_dpo_loss": ".losses",
    "MPOConfig": ".mpo_config",
    "MPOTrainer": ".mpo_trainer",
    "NonFiniteLossError": ".mpo_trainer",
    "MPODataCollator": ".mpo_data",
    "PairDataError": ".mpo_data",
    "PairFolder": ".mpo_data",
    "precompute_latent_pairs": ".mpo_data",
}

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trl_vision_reward' has no attribute {name!r}; it exports {sorted(_EXPORTS)}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
