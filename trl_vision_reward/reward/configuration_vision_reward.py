"""``VisionRewardConfig``: a vision-language backbone's config plus the checklist (questions, weights, taxonomy).

Because the checklist and its weights live in ``config.json``, ``save_pretrained`` / ``from_pretrained`` /
``push_to_hub`` carry a complete scorer: weights of the backbone, questions, their weights and the scoring rule.
"""

from __future__ import annotations

from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .checklist import Checklist

P_YES_MODES = ("yes_no", "full_vocab")


@strict(accept_kwargs=True)
class VisionRewardConfig(PreTrainedConfig):
    r"""
    backbone_config (`dict` or `PreTrainedConfig`):
        Config of the vision-language backbone, any model loadable with `AutoModelForImageTextToText`.
    checklist (`dict`):
        `Checklist.to_dict()` of the checklist the scorer answers (default: the official image select checklist).
    p_yes (`str`, defaults to `"yes_no"`):
        How P(yes) is read from the next-token logits: `"yes_no"` = softmax over the {yes, no} token logits only
        (what greedy decoding between the two answers implies, and independent of how much mass other tokens get);
        `"full_vocab"` = softmax over the whole vocabulary. Both are always returned by the scorer; this picks the
        one that feeds the soft scores.
    alignment (`str`, defaults to `"backbone"`):
        Where "probability" features (the image alignment question) come from: `"backbone"` = P(yes) of that question
        from the backbone; `"external"` = a callable passed to the scorer (the official image model used VQAScore).
    """

    model_type = "vision_reward"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_vl", optional=True),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    checklist: dict | None = None
    p_yes: Literal["yes_no", "full_vocab"] = "yes_no"
    alignment: Literal["backbone", "external"] = "backbone"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any):
        if self.checklist is None:
            self.checklist = Checklist.load("image", select=True).to_dict()
        elif isinstance(self.checklist, Checklist):
            self.checklist = self.checklist.to_dict()
        Checklist.from_dict(self.checklist)  # validate early, with the checklist's own error messages
        if self.p_yes not in P_YES_MODES:
            raise ValueError(f"p_yes must be one of {P_YES_MODES}; got {self.p_yes!r}")
        if self.alignment not in ("backbone", "external"):
            raise ValueError(f"alignment must be 'backbone' or 'external'; got {self.alignment!r}")
        super().__post_init__(**kwargs)

    def get_checklist(self) -> Checklist:
        return Checklist.from_dict(self.checklist)


__all__ = ["VisionRewardConfig"]
