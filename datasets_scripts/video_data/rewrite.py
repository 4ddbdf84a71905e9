"""Prompt rewriting (CogVideoX "prompt upsampling", paper App. F): short prompts -> the long, dense captions the model
was trained on, with any chat causal LM.

The system prompt, the three few-shot pairs and the user template are those of THUDM/CogVideo
``inference/convert_demo.py`` (package data ``data/cogvideox_prompt_rewrite.json``, with its source and Apache-2.0
licence), and so are the sampling settings (temperature 0.01, top_p 0.7, 250 new tokens). Sampling is seeded per
prompt (from the prompt's hash and ``seed``), so a rewrite does not depend on batch order or process count.

:func:`run_rewrite` / :func:`collect_rewrites` are the ``vr-datasets rewrite-prompts`` job (resumable, sharded with
``accelerate``, like the other stages): a prompts file in; ``data/*.parquet`` (prompt, rewritten prompt, seed),
``rewritten.jsonl`` (``{"prompt": <rewritten>}`` lines that ``generate-score --prompts`` reads), rejects and a card out.
The tiny default (:func:`save_tiny_rewriter`) is a random Qwen2 causal LM written as a checkpoint folder and loaded
back with the Auto classes, so it runs the code path of a real checkpoint (its rewrites are noise).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .jobs import Item, StageSummary, claim_job, open_job, pending_rejects, results, run_stage

TINY = "tiny"

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
    def from_pretrained(
        cls, path: str | Path, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs
    ) -> PromptRewriter:
        """Any ``AutoModelForCausalLM`` folder or repo id whose tokenizer has a chat template."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"the tokenizer of {Path(path).name!r} has no chat template; the rewriter needs a chat model "
                "(an instruct / chat checkpoint)"
            )
        model = AutoModelForCausalLM.from_pretrained(path, **({"dtype": dtype} if dtype else {}))
        return cls(model.eval().to(device), tokenizer, **kwargs)

    @classmethod
    def tiny(cls, seed: int = 0, device: str = "cpu", **kwargs) -> PromptRewriter:
        """The tiny random rewriter (noise rewrites), loaded from a checkpoint folder like a real model."""
        kwargs.setdefault("max_new_tokens", TINY_MAX_NEW_TOKENS)
        with tempfile.TemporaryDirectory(prefix="tiny-rewriter-") as folder:
            return cls.from_pretrained(save_tiny_rewriter(folder), device=device, seed=seed, **kwargs)

    def prompt_seed(self, prompt: str) -> int:
        from ..generate_and_score import prompt_seed

        return prompt_seed(self.seed, prompt)

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


TINY_MAX_NEW_TOKENS = 16


def save_tiny_rewriter(path: str | Path, weight_seed: int = 0) -> Path:
    """Write a tiny random Qwen2 causal LM and its chat tokenizer (the tiny byte-level BPE with a ChatML template,
    trained locally, deterministic) as a checkpoint folder: ``config.json``, safetensors, tokenizer files."""
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
    torch.manual_seed(weight_seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_rewriter(model: str | None, device: str = "cpu", seed: int = 0, **kwargs) -> PromptRewriter:
    """``"tiny"`` (or None): the tiny random rewriter; else a chat causal LM folder or repo id."""
    if model is None or model == TINY:
        return PromptRewriter.tiny(seed=seed, device=device, **kwargs)
    return PromptRewriter.from_pretrained(model, device=device, seed=seed, **kwargs)


def rewrite_all(
    prompts: Sequence[str], model: str | None, device: str = "cpu", seed: int = 0, progress: bool = True
) -> list[str]:
    """``--rewrite-prompt MODEL`` of the generation commands: every prompt rewritten before generation (seeded per
    prompt, so every process of a sharded job gets the same list); a prompt the model returns nothing for raises
    :class:`RewriteError` naming it, before anything is generated."""
    from tqdm.auto import tqdm

    rewriter = load_rewriter(model, device=device, seed=seed)
    return [rewriter.rewrite(p) for p in tqdm(prompts, desc="rewrite prompts", unit="prompt", disable=not progress)]


# ------------------------------------------------------------------------------------------------ the job
@dataclass(frozen=True)
class RewriteConfig:
    """What decides the rewrites (recorded in the job folder's manifest)."""

    model: str = TINY
    seed: int = 0
    temperature: float | None = None  # None: the official 0.01
    top_p: float | None = None  # None: the official 0.7
    max_new_tokens: int | None = None  # None: the official 250 (16 for tiny)

    def generation(self) -> dict[str, Any]:
        return {
            k: v for k, v in asdict(self).items() if k in ("temperature", "top_p", "max_new_tokens") and v is not None
        }


def rewrite_items(prompts: Sequence[str]) -> list[Item]:
    """Items keyed like ``generate-score`` keys prompts (a hash of the text, ``-2``... for repeats)."""
    from ..generate_and_score import prompt_items

    if not prompts:
        raise ValueError("the prompts file holds no prompts; give one prompt a line (.txt) or 'prompt' records")
    return [Item(p.prompt_id, p.index, {"prompt": p.prompt}) for p in prompt_items(prompts)]


def run_rewrite(
    prompts: Sequence[str],
    out_dir: str | Path,
    rewriter: PromptRewriter,
    config: RewriteConfig = RewriteConfig(),
    *,
    state: Any = None,
    progress: bool = True,
    inputs: Sequence[str | Path | None] = (),
    overwrite: bool = False,
    force: bool = False,
) -> StageSummary:
    """Rewrite every prompt not rewritten yet (this process's share); then :func:`collect_rewrites`. A prompt the
    rewriter returns nothing for is a rejects row with that reason."""
    from accelerate import PartialState

    state = state or PartialState()
    items = rewrite_items(prompts)
    claim_job(out_dir, "rewrite-prompts", asdict(config), state, inputs=inputs, overwrite=overwrite, force=force)

    def work(item: Item) -> list[dict[str, Any]]:
        prompt = item.payload["prompt"]
        return [
            {
                "prompt_id": item.item_id,
                "prompt_index": item.index,
                "prompt": prompt,
                "rewritten_prompt": rewriter.rewrite(prompt),
                "seed": rewriter.prompt_seed(prompt),
            }
        ]

    return run_stage(items, work, out_dir, desc="rewrite", state=state, progress=progress)


def rewrite_features():
    from datasets import Features, Value

    return Features(
        {
            "prompt_id": Value("string"),
            "prompt_index": Value("int64"),
            "prompt": Value("string"),
            "rewritten_prompt": Value("string"),
            "seed": Value("int64"),
        }
    )


def collect_rewrites(out_dir: str | Path) -> Path:
    """Write ``data/train-00000-of-00001.parquet``, ``rewritten.jsonl``, ``rejects.jsonl`` and ``README.md``."""
    from datasets import Dataset

    from ..files import write_jsonl
    from ..visionrewarddb import write_parquet
    from .cards import render_stage_card

    out_dir = Path(out_dir)
    with open_job(out_dir, "rewrite-prompts") as folder:  # an --overwrite's earlier output is deleted on success
        rows = results(out_dir)
        rejects = pending_rejects(out_dir)
        if not rows:
            raise ValueError(f"no rewritten prompts in {out_dir.name!r}: every prompt failed (see rejects)")
        settings = dict(folder.manifest.get("settings", {}))
        dataset = Dataset.from_list(rows, features=rewrite_features())
        write_parquet(dataset, folder.path("data/train-00000-of-00001.parquet"))
        write_jsonl(
            folder.path("rewritten.jsonl"), [{"prompt": r["rewritten_prompt"], "id": r["prompt_id"]} for r in rows]
        )
        write_jsonl(folder.path("rejects.jsonl"), rejects)
        words = [len(r["rewritten_prompt"].split()) for r in rows]
        spec = official_rewrite_prompt()
        card = render_stage_card(
            pretty_name="CogVideoX prompts (rewritten)",
            summary=(
                f"{len(rows)} user prompts rewritten into the long, dense style CogVideoX was trained on "
                f"(`vr-datasets rewrite-prompts`, model {settings.get('model')!r}): the official system prompt and "
                "few-shot examples of THUDM/CogVideo `inference/convert_demo.py`. `rewritten.jsonl` feeds "
                "`vr-datasets generate-score --prompts`."
            ),
            num_rows=len(rows),
            features=dataset.features,
            settings=settings,
            statistics={
                "prompts": len(rows),
                "mean words before": sum(len(r["prompt"].split()) for r in rows) / len(rows),
                "mean words after": sum(words) / len(words),
                "rejects": len(rejects),
            },
            rejects=rejects,
            task_categories=("text-generation",),
            random_data=settings.get("model") in (TINY, None),
            attribution=f"System prompt and examples: {spec['source'].split(':')[0]} ({spec['licence']}).",
        )
        folder.write_text("README.md", str(card))
        return out_dir
