"""``VisionRewardModel``: a vision-language backbone (any ``AutoModelForImageTextToText``) that answers checklist questions.

The model itself is the backbone plus the checklist in its config; its ``forward`` returns the backbone logits and the
yes/no read-out at each row's answer position. Scoring whole images and videos (prefix cache, batching, scoring rule)
is :class:`trl_vision_reward.reward.scoring.VisionRewardScorer`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor, PreTrainedModel
from transformers.utils import ModelOutput

from . import cogvlm2 as _cogvlm2  # noqa: F401  (registers the native CogVLM2 backbones, so saved scorers on them load)
from .checklist import Checklist
from .configuration_vision_reward import VisionRewardConfig
from .processing_vision_reward import VisionRewardProcessor


@dataclass
class VisionRewardOutput(ModelOutput):
    """Per-row read-out at the answer position.

    p_yes: softmax over the {yes, no} logits (the default P(yes)); p_yes_full_vocab: softmax over the whole vocabulary;
    greedy_yes: whether the most likely next token is the yes token (the official answer rule).
    """

    p_yes: torch.FloatTensor | None = None
    p_yes_full_vocab: torch.FloatTensor | None = None
    greedy_yes: torch.BoolTensor | None = None
    yes_logit: torch.FloatTensor | None = None
    no_logit: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Any = None


def yes_no_readout(next_token_logits: torch.Tensor, yes_id: int, no_id: int) -> dict[str, torch.Tensor]:
    """P(yes) from next-token logits (..., V): over {yes, no} = sigmoid(l_yes - l_no), and over the full vocabulary."""
    logits = next_token_logits.float()
    yes, no = logits[..., yes_id], logits[..., no_id]
    return {
        "p_yes": torch.sigmoid(yes - no),
        "p_yes_full_vocab": torch.softmax(logits, dim=-1)[..., yes_id],
        "greedy_yes": logits.argmax(dim=-1) == yes_id,
        "yes_logit": yes,
        "no_logit": no,
    }


def cache_argument_name(backbone: torch.nn.Module) -> str:
    """The keyword under which a backbone's forward takes the KV cache (``cache`` in transformers >= 5.x models,
    ``past_key_values`` in older and remote-code ones such as CogVLM2)."""
    params = inspect.signature(backbone.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


class VisionRewardPreTrainedModel(PreTrainedModel):
    config_class = VisionRewardConfig
    base_model_prefix = "vision_reward"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def _init_weights(self, module: torch.nn.Module) -> None:
        # The backbone initialises its own modules (its class's _init_weights); nothing of ours has parameters.
        return


class VisionRewardModel(VisionRewardPreTrainedModel):
    """A VLM backbone + a checklist. ``model.checklist`` is the :class:`Checklist` from the config."""

    def __init__(self, config: VisionRewardConfig, backbone: PreTrainedModel | None = None):
        requested = backbone.config._attn_implementation if backbone is not None else None
        super().__init__(config)
        if config.backbone_config is None:
            raise ValueError("VisionRewardConfig.backbone_config is required to build a VisionRewardModel")
        self.backbone = (
            backbone if backbone is not None else AutoModelForImageTextToText.from_config(config.backbone_config)
        )
        self.post_init()
        # the wrapper's own attention resolution resets the nested configs; hand the choice back to the backbone
        requested = requested or config._attn_implementation or "sdpa"
        if self.backbone.config._attn_implementation != requested:
            self.backbone.set_attn_implementation(requested)

    @classmethod
    def from_backbone(
        cls, backbone: PreTrainedModel, checklist: Checklist | str | None = None, **config_kwargs: Any
    ) -> VisionRewardModel:
        """Wrap an already loaded backbone (no re-initialisation); ``checklist`` is a Checklist or "image"/"video"."""
        if isinstance(checklist, str):
            checklist = Checklist.load(checklist)
        config = VisionRewardConfig(
            backbone_config=backbone.config, checklist=checklist.to_dict() if checklist else None, **config_kwargs
        )
        model = cls(config, backbone=backbone)
        return model.to(backbone.dtype)

    @property
    def checklist(self) -> Checklist:
        return self.config.get_checklist()

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.backbone.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        yes_token_id: int | None = None,
        no_token_id: int | None = None,
        answer_positions: torch.LongTensor | None = None,
        **backbone_inputs: Any,
    ) -> VisionRewardOutput:
        """Backbone forward; with ``yes_token_id``/``no_token_id`` also the yes/no read-out at ``answer_positions``
        (default: each row's last real token according to ``attention_mask``, i.e. right padding)."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **backbone_inputs)
        result = VisionRewardOutput(logits=out.logits, cache=output_cache(out))
        if yes_token_id is None or no_token_id is None:
            return result
        if answer_positions is None:
            if attention_mask is None:
                answer_positions = torch.full((out.logits.shape[0],), out.logits.shape[1] - 1, device=out.logits.device)
            else:
                answer_positions = attention_mask.long().sum(-1) - 1
        rows = torch.arange(out.logits.shape[0], device=out.logits.device)
        for key, value in yes_no_readout(out.logits[rows, answer_positions], yes_token_id, no_token_id).items():
            setattr(result, key, value)
            result[key] = value
        return result


def register_auto_classes() -> None:
    """``AutoConfig`` / ``AutoModel`` / ``AutoProcessor`` resolve ``model_type: vision_reward`` after this import."""
    try:
        AutoConfig.register("vision_reward", VisionRewardConfig)
    except ValueError:  # already registered (module reloaded)
        pass
    AutoModel.register(VisionRewardConfig, VisionRewardModel, exist_ok=True)
    AutoProcessor.register(VisionRewardConfig, VisionRewardProcessor, exist_ok=True)


register_auto_classes()

__all__ = ["VisionRewardModel", "VisionRewardOutput", "VisionRewardPreTrainedModel", "yes_no_readout"]
