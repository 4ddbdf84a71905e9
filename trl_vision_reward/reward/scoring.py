"""Score images and videos: every checklist question answered over ONE encoding of the media.

Fast path (``method="batched"``): run the backbone once on the prefix (media block), keep its KV cache, and run all
question suffixes over it in one forward pass - the prefix keys/values broadcast inside attention
(:mod:`trl_vision_reward.reward.shared_prefix`) or, for backbones with their own attention code, the cache repeated across the
question batch. Suffixes are right-padded, so every
real token sees only the prefix and its own earlier tokens (causal attention; positions continue from the cache
length); P(yes) is read at each question's last real token. This is exact: it equals the naive per-question forward
(``method="naive"``) up to float rounding. ``method="official"`` reproduces the released scripts: one greedy
``generate`` call per question over the full input, "yes" iff the first generated token is the yes token.

P(yes) is the softmax over the {yes, no} logits (``p_yes``), the quantity a yes/no judge is calibrated on and immune to
mass on other tokens; the full-vocabulary softmax is kept too (``p_yes_full_vocab``). Answers follow the official rule
(yes iff the greedy next token is "yes") in every method, so the batched path reproduces the official answers.
"""

from __future__ import annotations

import copy
import csv
import inspect
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from diffusers_cogvideox.checks import check_number, check_prompt_length
from diffusers_cogvideox.outputs import atomic_path, atomic_write_text

from . import scoring_rule
from .checklist import Checklist
from .modeling_vision_reward import VisionRewardModel, cache_argument_name, output_cache, yes_no_readout
from .processing_vision_reward import MediaInput, VisionRewardProcessor, guess_modality
from .shared_prefix import shared_prefix, supports_shared_prefix

Method = Literal["batched", "naive", "official"]
QuestionText = Literal["auto", "official", "clean"]
# The prompt template of the official VisionReward-Video checkpoint, whose released script asks the questions with the
# newline `readlines()` leaves on them (trl_vision_reward.reward.cogvlm2.templates).
READLINES_TEMPLATES = ("cogvlm2_video",)
SHARED_PREFIX_CHUNK = 32  # questions per suffix pass when the prefix is shared inside attention (length-sorted)
AlignmentScorer = Callable[[list[Image.Image], str], float]


@dataclass
class ScoreResult:
    """One scored image or video: per-question probabilities/answers, (sub-)dimension scores, official and soft totals."""

    source: str
    modality: str
    prompt: str | None
    checklist: str
    method: str
    questions: list[str]
    p_yes: list[float]
    p_yes_full_vocab: list[float | None]  # None for the official method (it reads no probabilities)
    answers: list[bool]
    score: float
    soft_score: float
    dimension_scores: dict[str, float]
    sub_dimension_scores: dict[str, float]
    soft_dimension_scores: dict[str, float]
    soft_sub_dimension_scores: dict[str, float]
    alignment: float | None = None
    num_frames: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_row(self) -> dict[str, Any]:
        """A flat CSV row: totals, then dimension and sub-dimension scores."""
        row = {
            "source": self.source,
            "modality": self.modality,
            "prompt": self.prompt,
            "score": self.score,
            "soft_score": self.soft_score,
        }
        row.update({f"dim/{k}": v for k, v in self.dimension_scores.items()})
        row.update({f"sub/{k}": v for k, v in self.sub_dimension_scores.items()})
        return row


@dataclass
class ScoreFailure:
    source: str
    error: str


@dataclass
class BatchScores:
    """Results of :meth:`VisionRewardScorer.score_files`: what was scored and what failed (with the reason)."""

    results: list[ScoreResult]
    failures: list[ScoreFailure]

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "failures": [asdict(f) for f in self.failures]}

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        rows = [r.to_row() for r in self.results] + [{"source": f.source, "error": f.error} for f in self.failures]
        fields: list[str] = []
        for row in rows:
            fields += [k for k in row if k not in fields]
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return path


def official_question_texts(checklist: Checklist, prompt: str | None = None) -> list[str]:
    """The questions as the released video script asks them: read with ``readlines()``, so each keeps its line's
    newline - every line of the question file but the last (which has none).

    The file is the one the checklist comes from (``select_line`` for the ``_select`` lists, else ``qa_line``); a
    question without a line number is used as it is.
    """
    texts = checklist.format_all(prompt)
    select = all(q.select_line is not None for q in checklist.questions)
    lines = [q.select_line if select else q.qa_line for q in checklist.questions]
    last = max((line for line in lines if line is not None), default=None)
    return [t + "\n" if line is not None and line != last else t for t, line in zip(texts, lines)]


def compare(a: ScoreResult, b: ScoreResult) -> int:
    """Official pairwise preference: +1 if ``a`` scores higher, -1 if ``b`` does, 0 on a tie."""
    if a.checklist != b.checklist:
        raise ValueError(f"cannot compare scores from different checklists: {a.checklist!r} vs {b.checklist!r}")
    return (a.score > b.score) - (a.score < b.score)


class VisionRewardScorer:
    """Answers a checklist about images/videos with a :class:`VisionRewardModel` (or any image-text-to-text backbone).

    ``alignment_scorer(images, prompt) -> probability`` replaces the backbone's P(yes) for "probability" features (the
    official image scorer used VQAScore). ``question_batch_size`` bounds how many questions share one batched pass.
    ``prefix_sharing``: ``"attention"`` keeps one copy of the prefix KV cache and broadcasts it inside attention
    (:mod:`trl_vision_reward.reward.shared_prefix`); ``"repeat"`` repeats the cache once per question (any backbone that
    takes a ``Cache``); ``"auto"`` (default) picks the first when the backbone supports it.
    ``question_text``: ``"official"`` asks each question as the released VisionReward-Video script does (with the
    trailing newline its ``readlines()`` keeps, see :func:`official_question_texts`: what the video weights were
    evaluated with); ``"clean"`` asks the text as given; ``"auto"`` (default) is ``"official"`` for the official
    video template (``cogvlm2_video``) and ``"clean"`` otherwise. Results list the clean texts either way.
    """

    def __init__(
        self,
        model: VisionRewardModel | torch.nn.Module,
        processor: VisionRewardProcessor,
        checklist: Checklist | str | None = None,
        alignment_scorer: AlignmentScorer | None = None,
        question_batch_size: int | None = None,
        p_yes: Literal["yes_no", "full_vocab"] | None = None,
        prefix_sharing: Literal["auto", "attention", "repeat"] = "auto",
        question_text: QuestionText = "auto",
    ):
        self.backbone = model.backbone if isinstance(model, VisionRewardModel) else model
        if checklist is None:
            if not isinstance(model, VisionRewardModel):
                raise ValueError(
                    "pass checklist=... (a Checklist, 'image' or 'video') when scoring with a bare backbone"
                )
            checklist = model.checklist
        self.checklist = Checklist.load(checklist) if isinstance(checklist, str) else checklist
        self.processor = processor
        self.alignment_scorer = alignment_scorer
        if question_batch_size is not None:
            check_number("question_batch_size", question_batch_size, low=1)
        self.question_batch_size = question_batch_size
        if prefix_sharing not in ("auto", "attention", "repeat"):
            raise ValueError(f"prefix_sharing must be 'auto', 'attention' or 'repeat'; got {prefix_sharing!r}")
        self.prefix_sharing = prefix_sharing
        if question_text not in ("auto", "official", "clean"):
            raise ValueError(f"question_text must be 'auto', 'official' or 'clean'; got {question_text!r}")
        if question_text == "auto":
            template = getattr(getattr(processor, "template", None), "name", None)
            question_text = "official" if template in READLINES_TEMPLATES else "clean"
        self.question_text = question_text
        config = model.config if isinstance(model, VisionRewardModel) else None
        self.p_yes_mode = p_yes or (config.p_yes if config is not None else "yes_no")
        if self.p_yes_mode not in ("yes_no", "full_vocab"):
            raise ValueError(f"p_yes must be 'yes_no' or 'full_vocab'; got {self.p_yes_mode!r}")
        if config is not None and config.alignment == "external" and alignment_scorer is None:
            raise ValueError(
                "this scorer's config says alignment='external': pass alignment_scorer=callable(images, prompt)"
            )
        self.yes_id, self.no_id = processor.answer_token_ids()
        self._cache_kw = cache_argument_name(self.backbone)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.backbone.forward).parameters

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> VisionRewardScorer:
        """Load a scorer folder / Hub repo written by ``save_pretrained`` (model + processor)."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        model = VisionRewardModel.from_pretrained(path, **({"dtype": dtype} if dtype else {})).eval()
        if device is not None:
            model = model.to(device)
        processor = VisionRewardProcessor.from_pretrained(path)
        return cls(model, processor, **kwargs)

    @property
    def context_length(self) -> int | None:
        """The most tokens the backbone's language model reads (its ``max_position_embeddings``), if it says."""
        config = getattr(self.backbone, "config", None)
        text = getattr(config, "text_config", None) or config
        value = getattr(text, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # ------------------------------------------------------------------ the three ways to answer questions
    def _prefix(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        inputs = self.processor.prefix_inputs(images)
        dtype = next(self.backbone.parameters()).dtype
        return {
            k: (v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device)) for k, v in inputs.items()
        }

    @torch.no_grad()
    def answer_batched(self, images: list[Image.Image], questions: Sequence[str]) -> dict[str, torch.Tensor]:
        """All questions over one prefix encoding; results in question order (see ``prefix_sharing``)."""
        prefix = self._prefix(images)
        prefix_out = self.backbone(**prefix, use_cache=True, **({"logits_to_keep": 1} if self._keeps_logits else {}))
        prefix_cache = output_cache(prefix_out)
        if prefix_cache is None:
            raise RuntimeError(f"{type(self.backbone).__name__} returned no KV cache; the batched path needs use_cache")
        suffixes = self.processor.question_token_ids(questions)
        mode = self.prefix_sharing
        if mode == "auto":
            mode = "attention" if supports_shared_prefix(self.backbone, prefix_cache) else "repeat"
        if mode == "attention":
            # chunks cost no cache copies here, so group questions of similar length to cut padding
            order = sorted(range(len(suffixes)), key=lambda i: len(suffixes[i]))
            size = self.question_batch_size or SHARED_PREFIX_CHUNK
        else:
            order = list(range(len(suffixes)))
            size = self.question_batch_size or len(suffixes)
        parts: list[dict[str, torch.Tensor]] = []
        for start in range(0, len(order), size):
            chunk = [suffixes[i] for i in order[start : start + size]]
            if mode == "attention":  # one prefix copy, broadcast inside attention
                with shared_prefix(self.backbone, prefix_cache) as cache:
                    parts.append(self._answer_suffixes(chunk, cache))
            else:  # the prefix cache repeated once per question (works with any Cache-based backbone)
                cache = copy.deepcopy(prefix_cache) if start + size < len(suffixes) else prefix_cache
                cache.batch_repeat_interleave(len(chunk))
                parts.append(self._answer_suffixes(chunk, cache))
        restore = torch.empty(len(order), dtype=torch.long)
        restore[torch.tensor(order)] = torch.arange(len(order))
        return {k: torch.cat([p[k] for p in parts]).cpu()[restore] for k in parts[0]}

    def _answer_suffixes(self, chunk: list[list[int]], cache: Any) -> dict[str, torch.Tensor]:
        pad = self.processor.tokenizer.pad_token_id or 0
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long, device=self.device)
        for r, s in enumerate(chunk):
            ids[r, : len(s)] = torch.tensor(s, device=self.device)
        last = torch.tensor([len(s) - 1 for s in chunk], device=self.device)
        # no attention mask: padding sits after every real token, so causal attention never reaches it
        kwargs: dict[str, Any] = {self._cache_kw: cache}
        if self._keeps_logits:  # the answer positions all lie in the last `keep` columns: skip the others' logits
            kwargs["logits_to_keep"] = width - int(last.min())
        out = self.backbone(input_ids=ids, use_cache=True, **kwargs)
        columns = last - (width - out.logits.shape[1])
        rows = torch.arange(len(chunk), device=self.device)
        return yes_no_readout(out.logits[rows, columns], self.yes_id, self.no_id)

    def _full_inputs(self, prefix: dict[str, torch.Tensor], suffix: list[int]) -> dict[str, torch.Tensor]:
        suffix_t = torch.tensor([suffix], device=self.device)
        inputs = dict(prefix)
        inputs["input_ids"] = torch.cat([prefix["input_ids"], suffix_t], dim=1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        if "mm_token_type_ids" in prefix:
            inputs["mm_token_type_ids"] = torch.cat([prefix["mm_token_type_ids"], torch.zeros_like(suffix_t)], dim=1)
        return inputs

    @torch.no_grad()
    def answer_naive(self, images: list[Image.Image], questions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Reference: one full forward (media re-encoded) per question."""
        prefix = self._prefix(images)
        parts = []
        for suffix in self.processor.question_token_ids(questions):
            kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
            out = self.backbone(**self._full_inputs(prefix, suffix), use_cache=False, **kwargs)
            parts.append(yes_no_readout(out.logits[:, -1], self.yes_id, self.no_id))
        return {k: torch.cat([p[k] for p in parts]).cpu() for k in parts[0]}

    @torch.no_grad()
    def answer_official(self, images: list[Image.Image], questions: Sequence[str]) -> dict[str, torch.Tensor]:
        """The released method: one greedy ``generate`` per question; yes iff the first generated token is yes.

        It yields answers only: its ``p_yes`` is the 0/1 answer (so soft scores equal hard ones, and a backbone-scored
        alignment feature is 0 or 1; the official image rule used an external VQAScore, see ``alignment_scorer``)."""
        prefix = self._prefix(images)
        yes = []
        for suffix in self.processor.question_token_ids(questions):
            inputs = self._full_inputs(prefix, suffix)
            out = self.backbone.generate(
                **inputs, max_new_tokens=1, do_sample=False, pad_token_id=self.processor.tokenizer.pad_token_id
            )
            yes.append(bool(out[0, inputs["input_ids"].shape[1]] == self.yes_id))
        greedy = torch.tensor(yes)
        nan = torch.full((len(yes),), float("nan"))
        return {
            "p_yes": greedy.double(),
            "p_yes_full_vocab": nan,
            "greedy_yes": greedy,
            "yes_logit": nan,
            "no_logit": nan,
        }

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        media: MediaInput,
        prompt: str | None = None,
        *,
        modality: str | None = None,
        fps: float | None = None,
        method: Method = "batched",
        source: str | None = None,
    ) -> ScoreResult:
        """Score one image or video against the whole checklist."""
        modality = modality or guess_modality(media)
        if modality != self.checklist.modality:
            raise ValueError(
                f"{_describe(media)} is scored as {modality!r} but checklist {self.checklist.name!r} is for "
                f"{self.checklist.modality!r}; pass modality=... or use the {modality!r} checklist"
            )
        if prompt and self.context_length:  # before any tokenizing of questions or decoding of media
            check_prompt_length(prompt, self.processor.tokenizer, self.context_length, what="the prompt")
        questions = self.checklist.format_all(prompt)  # raises if [[prompt]] needs a prompt and none is given
        asked = official_question_texts(self.checklist, prompt) if self.question_text == "official" else questions
        images = self.processor.load_media(media, modality, fps=fps)
        answer = {"batched": self.answer_batched, "naive": self.answer_naive, "official": self.answer_official}
        if method not in answer:
            raise ValueError(f"method must be one of {sorted(answer)}; got {method!r}")
        read = answer[method](images, asked)
        return self._result(read, images, prompt, modality, method, source or _describe(media), questions)

    def _result(self, read, images, prompt, modality, method, source, questions) -> ScoreResult:
        c = self.checklist
        p_yes = read["p_yes_full_vocab" if self.p_yes_mode == "full_vocab" and method != "official" else "p_yes"]
        p_yes = p_yes.double()
        answers = read["greedy_yes"].double()
        alignment = None
        if any(q.feature == "probability" for q in c.questions):
            if self.alignment_scorer is not None:
                alignment = float(self.alignment_scorer(images, prompt or ""))
                if not 0.0 <= alignment <= 1.0:
                    raise ValueError(f"alignment_scorer must return a probability in [0, 1]; got {alignment}")
            else:
                alignment = float(p_yes[next(q.index for q in c.questions if q.feature == "probability")])
        total = float(scoring_rule.official_score(c, answers, p_yes, alignment=alignment))
        soft = float(scoring_rule.soft_score(c, p_yes, alignment=alignment))

        def named(values: torch.Tensor, level: str) -> dict[str, float]:
            return {n: float(v) for n, v in zip(c.group_names(level), values)}

        return ScoreResult(
            source=source,
            modality=modality,
            prompt=prompt,
            checklist=c.name,
            method=method,
            questions=list(questions),
            p_yes=[float(x) for x in p_yes],
            p_yes_full_vocab=[None if math.isnan(x) else float(x) for x in read["p_yes_full_vocab"].tolist()],
            answers=[bool(x) for x in answers],
            score=total,
            soft_score=soft,
            dimension_scores=named(scoring_rule.dimension_scores(c, answers, "dimension"), "dimension"),
            sub_dimension_scores=named(scoring_rule.dimension_scores(c, answers, "sub_dimension"), "sub_dimension"),
            soft_dimension_scores=named(scoring_rule.soft_dimension_scores(c, p_yes, "dimension"), "dimension"),
            soft_sub_dimension_scores=named(
                scoring_rule.soft_dimension_scores(c, p_yes, "sub_dimension"), "sub_dimension"
            ),
            alignment=alignment,
            num_frames=len(images),
        )

    def score_files(
        self,
        files: Iterable[MediaInput],
        prompts: str | Sequence[str | None] | None = None,
        *,
        modality: str | None = None,
        fps: float | None = None,
        method: Method = "batched",
        progress: bool = True,
    ) -> BatchScores:
        """Score many files; a file that fails is recorded with its reason and the rest are still scored."""
        from tqdm.auto import tqdm

        files = list(files)
        if prompts is None or isinstance(prompts, str):
            prompts = [prompts] * len(files)
        if len(prompts) != len(files):
            raise ValueError(f"got {len(files)} files but {len(prompts)} prompts; pass one prompt or one per file")
        results, failures = [], []
        for media, prompt in tqdm(list(zip(files, prompts)), desc="VisionReward", disable=not progress, unit="file"):
            try:
                results.append(self.score(media, prompt, modality=modality, fps=fps, method=method))
            except (ValueError, OSError, RuntimeError) as err:
                failures.append(ScoreFailure(_describe(media), f"{type(err).__name__}: {err}"))
        return BatchScores(results, failures)


def _describe(media: Any) -> str:
    if isinstance(media, (str, Path)):
        return str(media)
    shape = getattr(media, "shape", None) or getattr(media, "size", None)
    return f"<{type(media).__name__} {tuple(shape) if shape is not None else ''}>"


__all__ = ["BatchScores", "ScoreFailure", "ScoreResult", "VisionRewardScorer", "compare", "official_question_texts"]
