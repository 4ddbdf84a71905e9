"""Scoring samples with VisionReward for the datasets and Spaces: load a scorer (a folder, a repo id, or the tiny
default) and turn its results into the score fields of a :class:`trl_vision_reward.records.ScoredSample`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffusers_cogvideox.sampling import is_random, is_tiny


def load_vision_reward(model: str | None = None, modality: str = "video", *, device: str = "cpu", seed: int = 0):
    """A ``trl_vision_reward.reward.scoring.VisionRewardScorer`` from a folder / repo id; ``None`` / ``"tiny"``: the
    trained tiny-world video scorer (it scores an image as a one-frame still clip); ``"random"``: a random tiny one."""
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    if is_tiny(model) and not is_random(model):
        from trl_vision_reward.reward.tiny import tiny_world_scorer_folder

        return VisionRewardScorer.from_pretrained(str(tiny_world_scorer_folder()), device=device)
    if is_random(model):
        from trl_vision_reward.reward.tiny import tiny_vision_reward

        vr_model, processor = tiny_vision_reward(modality, seed=seed)
        return VisionRewardScorer(vr_model.eval().to(device), processor)
    return VisionRewardScorer.from_pretrained(model, device=device)


class VisionRewardSampleScorer:
    """The job's scorer: ``scorer(paths, prompt)`` -> one score dict per path (see :class:`Scorer`)."""

    def __init__(self, scorer: Any, modality: str = "video"):
        self.scorer = scorer
        self.modality = modality
        self.checklist = scorer.checklist
        self.checklist_id = scorer.checklist.name

    def __call__(self, paths: Sequence[Path], prompt: str) -> list[dict[str, Any]]:
        import torch

        from trl_vision_reward.reward import scoring_rule

        c = self.checklist
        out = []
        for path in paths:
            r = self.scorer.score(str(path), prompt, modality=self.modality)
            answers = torch.tensor([float(a) for a in r.answers], dtype=torch.float64)
            p = torch.tensor([float(x) for x in r.p_yes], dtype=torch.float64)
            out.append(
                {
                    "probabilities": p.tolist(),
                    "answers": [bool(a) for a in r.answers],
                    "question_scores": scoring_rule.dimension_scores(c, answers, "question").tolist(),
                    "dimension_scores": dict(r.dimension_scores),
                    "sub_dimension_scores": dict(r.sub_dimension_scores),
                    "total": float(r.score),
                    "soft_question_scores": scoring_rule.soft_dimension_scores(c, p, "question").tolist(),
                    "soft_dimension_scores": dict(r.soft_dimension_scores),
                    "soft_sub_dimension_scores": dict(r.soft_sub_dimension_scores),
                    "soft_total": float(r.soft_score),
                }
            )
        return out
