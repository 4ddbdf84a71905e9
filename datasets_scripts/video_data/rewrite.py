"""Prompt rewriting (CogVideoX "prompt upsampling", paper App. F): short prompts -> the long, dense captions the model
was trained on, with any chat causal LM.

The system prompt, the three few-shot pairs and the user template are those of THUDM/CogVideo
``inference/convert_demo.py`` (package data ``data/cogvideox_prompt_rewrite.json``, with its source and Apache-2.0
licence), and so are the sampling settings (temperature 0.01, top_p 0.7, 250 new tokens). Sampling is seeded per
prompt (from the prompt's hash and ``seed``), so a rewrite does not depend on batch order or process count.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import torch

from ..files import stable_hash

REWRITE_FILE = "cogvideox_prompt_rewrite.json"


class RewriteError(ValueError):
    """The rewriter returned nothing usable for a prompt."""


@lru_cache(maxsize=1)
def official_rewrite_prompt() -> dict[str, Any]:
    """The official system prompt, few-shot examples, templates and sampling settings (package data)."""
    return json.loads(resources.files(__package__).joinpath("data", REWRITE_FILE).read_text("utf-8"))


def rewrite_messages(prompt: str, spec: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The chat of ``convert_demo.py``: system prompt, three example turns, then the user's prompt."""
    spec = spec or official_rewrite_prompt()
    messages = [{"role": "system", "content": spec["system_prompt"]}]
    for example in spec["examples"]:
        messages.append({"role": "user", "content": spec["example_user_template"].format(prompt=example["prompt"])})
        messages.append({"role": "assistant", "content": example["rewritten"]})
    messages.append({"role": "user", "content": spec["user_template"].format(prompt=prompt.strip())})
    return messages


class PromptRewriter:
    """``rewriter(prompts) -> rewritten prompts`` with an ``AutoModelForCausalLM`` and a chat-template tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, seed: int = 0, spec: dict[str, Any] | None = None, **generation):
        self.model, self.tokenizer, self.seed = model, tokenizer, seed
        self.spec = spec or official_rewrite_prompt()
        self.generation = {**self.spec["generation"], **generation}

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", **kwargs) -> PromptRewriter:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path).eval().to(device)
        return cls(model, AutoTokenizer.from_pretrained(path), **kwargs)

    @classmethod
    def tiny(cls, **kwargs) -> PromptRewriter:
        """A random tiny Qwen2 causal LM over the tiny chat tokenizer, built offline (noise rewrites)."""
        from transformers import Qwen2Config, Qwen2ForCausalLM

        from trl_vision_reward.reward.tiny import tiny_qwen2_vl_tokenizer

        tokenizer = tiny_qwen2_vl_tokenizer()
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        kwargs.setdefault("max_new_tokens", 16)
        return cls(Qwen2ForCausalLM(config).eval(), tokenizer, **kwargs)

    def prompt_seed(self, prompt: str) -> int:
        return (self.seed * 1_000_003 + stable_hash(prompt)) % 2**31

    @torch.no_grad()
    def rewrite(self, prompt: str) -> str:
        if not prompt.strip():
            raise RewriteError("the prompt is empty")
        ids = self.tokenizer.apply_chat_template(
            rewrite_messages(prompt, self.spec), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        device = next(self.model.parameters()).device
        ids = {k: v.to(device) for k, v in ids.items()}
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.prompt_seed(prompt))
        try:
            out = self.model.generate(
                **ids,
                do_sample=True,
                temperature=self.generation["temperature"],
                top_p=self.generation["top_p"],
                max_new_tokens=self.generation["max_new_tokens"],
                pad_token_id=self.tokenizer.pad_token_id,
            )
        finally:
            torch.random.set_rng_state(generator_state)
        text = self.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        if not text:
            raise RewriteError(f"the rewriter returned nothing for {prompt!r}")
        return text

    def __call__(self, prompts: list[str]) -> list[str]:
        return [self.rewrite(p) for p in prompts]
