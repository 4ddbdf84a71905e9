"""VisionReward on the transformers API, its training, and MPO (multi-objective Diffusion-DPO) on the TRL pattern.

Public names are resolved lazily so that importing the package does not import torch-heavy modules. Importing it also
registers the native CogVLM2 backbones (``model_type`` ``cogvlm2`` / ``cogvlm2_video``) with the transformers Auto
classes, deferred until transformers' Auto modules are imported (``trl_vision_reward.reward.auto_registration``).
"""

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # name: module (relative). Each area adds its public names here.
    # the records on the loop's arrows (scored samples, preference pairs)
    "ScoredSample": ".records",
    "PreferencePair": ".records",
    # checklist, scoring rule, VisionReward model / processor / scorer
    "Checklist": ".reward.checklist",
    "Question": ".reward.checklist",
    "official_score": ".reward.scoring_rule",
    "soft_score": ".reward.scoring_rule",
    "dimension_scores": ".reward.scoring_rule",
    "soft_dimension_scores": ".reward.scoring_rule",
    "VisionRewardConfig": ".reward.configuration_vision_reward",
    "VisionRewardModel": ".reward.modeling_vision_reward",
    "VisionRewardOutput": ".reward.modeling_vision_reward",
    "VisionRewardProcessor": ".reward.processing_vision_reward",
    "PromptTemplate": ".reward.processing_vision_reward",
    "register_prompt_template": ".reward.processing_vision_reward",
    "VisionRewardScorer": ".reward.scoring",
    "ScoreResult": ".reward.scoring",
    # reward-model training (stage 1 SFT, stage 2 weights) and evaluation
    "JudgmentLabels": ".reward.labels",
    "judgment_labels": ".reward.labels",
    "label_records": ".reward.labels",
    "WeightFit": ".reward.regression",
    "fit_nonnegative_logistic": ".reward.regression",
    "fit_checklist_weights": ".reward.regression",
    "pair_differences": ".reward.regression",
    "select_questions": ".reward.regression",
    "apply_weights": ".reward.regression",
    "PreferenceAccuracy": ".reward.evaluation",
    "JudgmentAccuracy": ".reward.evaluation",
    "EvaluationReport": ".reward.evaluation",
    "preference_accuracy": ".reward.evaluation",
    "accuracy_with_ties": ".reward.evaluation",
    "accuracy_without_ties": ".reward.evaluation",
    "judgment_accuracy": ".reward.evaluation",
    "VisionRewardSFTConfig": ".reward.sft",
    "VisionRewardSFTTrainer": ".reward.sft",
    "JudgmentCollator": ".reward.sft",
    "build_judgment_dataset": ".reward.sft",
    # MPO: pair mining, Diffusion-DPO loss, config, trainer, data
    "PairRule": ".mpo.pairs",
    "MiningStats": ".mpo.pairs",
    "PAPER_THRESHOLDS": ".mpo.pairs",
    "dominates": ".mpo.pairs",
    "mine_pairs": ".mpo.pairs",
    "mpo_rule": ".mpo.pairs",
    "dpo_rule": ".mpo.pairs",
    "deduplicate_pairs": ".mpo.pairs",
    "diffusion_dpo_loss": ".mpo.losses",
    "MPOConfig": ".mpo.config",
    "MPOTrainer": ".mpo.trainer",
    "NonFiniteLossError": ".mpo.trainer",
    "MPODataCollator": ".mpo.data",
    "PairDataError": ".mpo.data",
    "PairFolder": ".mpo.data",
    "precompute_latent_pairs": ".mpo.data",
}

from diffusers_cogvideox import __version__ as __version__  # noqa: E402  (one version for the distribution)

# `cogvlm2` / `cogvlm2_video` in the transformers Auto classes; costs nothing until transformers' Auto modules load.
import_module(".reward.auto_registration", __name__).register_auto_classes()


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trl_vision_reward' has no attribute {name!r}; it exports {sorted(_EXPORTS)}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
