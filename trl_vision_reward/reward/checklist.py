"""The VisionReward checklist: which yes/no questions, in what order, with which weights, in which (sub-)dimension.

One immutable :class:`Checklist` answers all of that for the official image and video checklists (package data copied
unchanged from THUDM/VisionReward, Apache-2.0; see ``data/SOURCE.md`` and ``data/LICENSE``) and for custom checklists
built for new domains. A checklist round-trips through a plain dict, so it can live inside a model config.

The official scoring rule in one formula (see :mod:`trl_vision_reward.reward.scoring_rule`)::

    score = sum_i  w_i * gate_i * f_i  /  divisor

where ``f_i`` is +1/-1 for a yes/no answer, or a probability for a "probability" feature (the image alignment
question, which the released code scores with VQAScore); ``gate_i`` is 0 when the question's mask question was answered
"no" (image: no body -> body and harmfulness features 0, no face -> face features 0, no hands -> hands feature 0) and 1
otherwise; mask questions have weight 0. Image: ``divisor = 1`` (dot product with ``weight_select``). Video: ``divisor =
29`` (the mean over the 29 select questions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import torch

from .taxonomy import load_taxonomy

PROMPT_PLACEHOLDER = "[[prompt]]"
MODALITIES = ("image", "video")
FEATURE_KINDS = ("answer", "probability")

# Official mask questions (image) in the released code, by sub-dimension: their "no" answer zeroes every non-mask
# question of the same sub-dimension, plus the lines the taxonomy lists under `gates_select_lines` (harmfulness).
_IMAGE_MASK_SUB_DIMENSIONS = ("Body", "Face", "Hands")


@dataclass(frozen=True)
class Question:
    """One yes/no question of a checklist.

    ``index`` is the position in the checklist (the order of answers, probabilities and weights). ``masked_by`` is the
    index of the mask question that gates this question's feature, or ``None``. ``feature`` says how the official rule
    reads the question: ``"answer"`` (+1 yes / -1 no) or ``"probability"`` (P(yes) itself, the image alignment).
    ``selected`` marks membership of the official ``*_select`` list; ``qa_line``/``select_line`` are 1-based lines in
    the official question files (``None`` where absent); ``annotation_key`` names the VisionRewardDB annotation field
    of the sub-dimension.
    """

    index: int
    text: str
    dimension: str
    sub_dimension: str
    weight: float = 0.0
    is_mask: bool = False
    masked_by: int | None = None
    feature: Literal["answer", "probability"] = "answer"
    selected: bool = True
    qa_line: int | None = None
    select_line: int | None = None
    annotation_key: str | None = None
    option_row: str | None = None

    @property
    def needs_prompt(self) -> bool:
        return PROMPT_PLACEHOLDER in self.text

    def format(self, prompt: str | None = None) -> str:
        """The question text with ``[[prompt]]`` filled in; raises if the question needs a prompt and none is given."""
        if not self.needs_prompt:
            return self.text
        if prompt is None or not str(prompt).strip():
            raise ValueError(
                f"question {self.index} ({self.text!r}) contains {PROMPT_PLACEHOLDER} and needs the generation prompt; "
                "pass prompt='...'"
            )
        return self.text.replace(PROMPT_PLACEHOLDER, str(prompt))


@dataclass(frozen=True)
class Checklist:
    """An ordered yes/no checklist with weights, a dimension taxonomy, masks and the scoring-rule ``divisor``.

    Build the official ones with :meth:`load`; custom ones with :meth:`from_questions`; swap weights with
    :meth:`with_weights`. ``dimensions`` and ``sub_dimensions`` are ordered names (paper order for the official ones).
    """

    name: str
    modality: str
    questions: tuple[Question, ...]
    dimensions: tuple[str, ...]
    sub_dimensions: tuple[str, ...]
    sub_dimension_to_dimension: Mapping[str, str]
    divisor: float = 1.0
    source: str = ""
    _weights: torch.Tensor = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}; got {self.modality!r}")
        if not self.questions:
            raise ValueError("a checklist needs at least one question")
        if not self.divisor > 0:
            raise ValueError(f"divisor must be > 0; got {self.divisor}")
        object.__setattr__(self, "questions", tuple(self.questions))
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "sub_dimensions", tuple(self.sub_dimensions))
        object.__setattr__(self, "sub_dimension_to_dimension", dict(self.sub_dimension_to_dimension))
        if len(set(self.sub_dimensions)) != len(self.sub_dimensions):
            raise ValueError(f"sub-dimension names must be unique; got {self.sub_dimensions}")
        for i, q in enumerate(self.questions):
            if q.index != i:
                raise ValueError(f"question {q.text!r} has index {q.index} but sits at position {i}")
            if q.feature not in FEATURE_KINDS:
                raise ValueError(f"question {i} feature must be one of {FEATURE_KINDS}; got {q.feature!r}")
            if q.sub_dimension not in self.sub_dimension_to_dimension:
                raise ValueError(
                    f"question {i} has unknown sub-dimension {q.sub_dimension!r}; known: {self.sub_dimensions}"
                )
            if self.sub_dimension_to_dimension[q.sub_dimension] != q.dimension:
                raise ValueError(
                    f"question {i} is in sub-dimension {q.sub_dimension!r} of dimension "
                    f"{self.sub_dimension_to_dimension[q.sub_dimension]!r}, not {q.dimension!r}"
                )
            if q.weight < 0 or q.weight != q.weight:
                raise ValueError(f"question {i} weight must be a finite number >= 0; got {q.weight}")
            if q.is_mask and q.weight != 0:
                raise ValueError(f"mask question {i} ({q.text!r}) must have weight 0; got {q.weight}")
            if q.masked_by is not None:
                if not (0 <= q.masked_by < len(self.questions)) or not self.questions[q.masked_by].is_mask:
                    raise ValueError(f"question {i} is masked_by {q.masked_by}, which is not a mask question index")
        for s, d in self.sub_dimension_to_dimension.items():
            if d not in self.dimensions:
                raise ValueError(f"sub-dimension {s!r} maps to unknown dimension {d!r}; known: {self.dimensions}")
        object.__setattr__(self, "_weights", torch.tensor([q.weight for q in self.questions], dtype=torch.float64))

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, modality: Literal["image", "video"], select: bool = True) -> Checklist:
        """The official checklist. ``select=True`` (default, what the released scorers use): image = alignment + 30
        select questions (3 masks) with ``weight_select.json``; video = 29 select questions with ``weight.json``.
        ``select=False``: image = alignment + all 59 questions with ``weight.json`` (27 zero weights); video = all 64
        questions (35 unselected ones weigh 0). The official score is the same for both lists."""
        return _load_official(modality, bool(select))

    @classmethod
    def from_questions(
        cls,
        questions: Sequence[str | Mapping[str, Any]],
        weights: Sequence[float] | torch.Tensor | None = None,
        *,
        modality: str = "image",
        name: str = "custom",
        divisor: float = 1.0,
        dimensions: Sequence[str] | None = None,
    ) -> Checklist:
        """A custom checklist. Each question is a string or a dict with ``text`` and optionally ``dimension``,
        ``sub_dimension`` (default: the dimension, or ``"default"``), ``weight``, ``is_mask``, ``masked_by`` (index),
        ``feature``. ``weights`` (if given) overrides per-question weights and must have one entry per question."""
        items = [{"text": q} if isinstance(q, str) else dict(q) for q in questions]
        if weights is not None:
            w = _as_weight_list(weights)
            if len(w) != len(items):
                raise ValueError(f"checklist/weights length mismatch: {len(items)} questions but {len(w)} weights")
            for item, wi in zip(items, w):
                item["weight"] = wi
        qs, sub_to_dim, subs, dims = [], {}, [], list(dimensions or [])
        for i, item in enumerate(items):
            if "text" not in item:
                raise ValueError(f"question {i} needs a 'text'; got keys {sorted(item)}")
            dim = item.pop("dimension", None) or "default"
            sub = item.pop("sub_dimension", None) or dim
            if sub in sub_to_dim and sub_to_dim[sub] != dim:
                raise ValueError(f"sub-dimension {sub!r} appears under two dimensions: {sub_to_dim[sub]!r} and {dim!r}")
            if sub not in sub_to_dim:
                sub_to_dim[sub] = dim
                subs.append(sub)
            if dim not in dims:
                dims.append(dim)
            item.pop("index", None)
            item["weight"] = float(item.get("weight", 0.0) or 0.0)
            qs.append(Question(index=i, dimension=dim, sub_dimension=sub, **item))
        return cls(name, modality, tuple(qs), tuple(dims), tuple(subs), sub_to_dim, float(divisor))

    def with_weights(self, weights: Sequence[float] | torch.Tensor, name: str | None = None) -> Checklist:
        """The same questions with new weights (e.g. freshly fitted ones); mask questions must keep weight 0."""
        w = _as_weight_list(weights)
        if len(w) != len(self.questions):
            raise ValueError(
                f"checklist/weights length mismatch: checklist {self.name!r} has {len(self.questions)} questions "
                f"but {len(w)} weights were given"
            )
        qs = tuple(replace(q, weight=wi) for q, wi in zip(self.questions, w))
        return replace(self, questions=qs, name=name or self.name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what :class:`VisionRewardConfig` stores); inverse of :meth:`from_dict`."""
        return {
            "name": self.name,
            "modality": self.modality,
            "divisor": self.divisor,
            "source": self.source,
            "dimensions": list(self.dimensions),
            "sub_dimensions": [[s, self.sub_dimension_to_dimension[s]] for s in self.sub_dimensions],
            "questions": [{k: v for k, v in asdict(q).items() if k != "index"} for q in self.questions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checklist:
        missing = {"modality", "questions", "dimensions", "sub_dimensions"} - set(data)
        if missing:
            raise ValueError(f"checklist dict is missing keys {sorted(missing)}")
        subs = [tuple(pair) for pair in data["sub_dimensions"]]
        qs = tuple(Question(index=i, **dict(q)) for i, q in enumerate(data["questions"]))
        return cls(
            name=data.get("name", "custom"),
            modality=data["modality"],
            questions=qs,
            dimensions=tuple(data["dimensions"]),
            sub_dimensions=tuple(s for s, _ in subs),
            sub_dimension_to_dimension={s: d for s, d in subs},
            divisor=float(data.get("divisor", 1.0)),
            source=data.get("source", ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.questions)

    @property
    def weights(self) -> torch.Tensor:
        """Weights in checklist order (float64; a copy, so callers may modify it)."""
        return self._weights.clone()

    @property
    def texts(self) -> list[str]:
        return [q.text for q in self.questions]

    @property
    def needs_prompt(self) -> bool:
        return any(q.needs_prompt for q in self.questions)

    @property
    def mask_questions(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.is_mask)

    @property
    def masked_questions(self) -> dict[int, tuple[int, ...]]:
        """Mask question index -> indices of the questions it gates."""
        out: dict[int, list[int]] = {q.index: [] for q in self.mask_questions}
        for q in self.questions:
            if q.masked_by is not None:
                out[q.masked_by].append(q.index)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def question_to_sub_dimension(self) -> dict[int, str]:
        return {q.index: q.sub_dimension for q in self.questions}

    @property
    def question_to_dimension(self) -> dict[int, str]:
        return {q.index: q.dimension for q in self.questions}

    def questions_in(self, name: str) -> tuple[Question, ...]:
        """The questions of a dimension or sub-dimension (by name)."""
        if name in self.sub_dimension_to_dimension:
            return tuple(q for q in self.questions if q.sub_dimension == name)
        if name in self.dimensions:
            return tuple(q for q in self.questions if q.dimension == name)
        raise KeyError(f"{name!r} is neither a dimension {self.dimensions} nor a sub-dimension {self.sub_dimensions}")

    def membership(self, level: Literal["dimension", "sub_dimension", "question"] = "dimension") -> torch.Tensor:
        """A 0/1 matrix (questions x groups) placing each question in its group, in ``group_names(level)`` order."""
        names = self.group_names(level)
        m = torch.zeros(len(self.questions), len(names), dtype=torch.float64)
        if level == "question":
            return torch.eye(len(self.questions), dtype=torch.float64)
        pos = {n: j for j, n in enumerate(names)}
        for q in self.questions:
            m[q.index, pos[q.dimension if level == "dimension" else q.sub_dimension]] = 1.0
        return m

    def group_names(self, level: Literal["dimension", "sub_dimension", "question"] = "dimension") -> tuple[str, ...]:
        if level == "dimension":
            return self.dimensions
        if level == "sub_dimension":
            return self.sub_dimensions
        if level == "question":
            return tuple(str(q.index) for q in self.questions)
        raise ValueError(f"level must be 'dimension', 'sub_dimension' or 'question'; got {level!r}")

    def format(self, question: int | Question | str, prompt: str | None = None) -> str:
        """Fill ``[[prompt]]`` in one question (by index, :class:`Question` or raw text)."""
        if isinstance(question, int):
            if not 0 <= question < len(self.questions):
                raise IndexError(f"question index must be in [0, {len(self.questions)}); got {question}")
            return self.questions[question].format(prompt)
        if isinstance(question, Question):
            return question.format(prompt)
        return Question(index=-1, text=question, dimension="", sub_dimension="").format(prompt)

    def format_all(self, prompt: str | None = None) -> list[str]:
        """Every question with ``[[prompt]]`` filled in, in checklist order."""
        if self.needs_prompt and (prompt is None or not str(prompt).strip()):
            first = next(q for q in self.questions if q.needs_prompt)
            raise ValueError(
                f"checklist {self.name!r} needs the generation prompt: question {first.index} ({first.text!r}) "
                f"contains {PROMPT_PLACEHOLDER}; pass prompt='...'"
            )
        return [q.format(prompt) for q in self.questions]


# ---------------------------------------------------------------------- official data
def _as_weight_list(weights: Sequence[float] | torch.Tensor) -> list[float]:
    if isinstance(weights, torch.Tensor):
        if weights.ndim != 1:
            raise ValueError(f"weights must be one-dimensional; got shape {tuple(weights.shape)}")
        return [float(x) for x in weights.tolist()]
    return [float(x) for x in weights]


def data_path(*parts: str):
    """Path to a file in the package data (the official checklists, weights, taxonomy, LICENSE, SOURCE.md)."""
    return resources.files("trl_vision_reward").joinpath("data", *parts)


def _read_json(*parts: str) -> Any:
    return json.loads(data_path(*parts).read_text(encoding="utf-8"))


def _read_lines(*parts: str) -> list[str]:
    # the released code strips lines (one select line has a trailing space, video lines keep "\n" in one script)
    return [line.strip() for line in data_path(*parts).read_text(encoding="utf-8").splitlines() if line.strip()]


@lru_cache(maxsize=4)
def _load_official(modality: str, select: bool) -> Checklist:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}; got {modality!r}")
    tax = load_taxonomy(modality).raw
    files = tax["files"]
    lines = _read_lines(files["select" if select else "qa"])
    if modality == "image":
        weight_file = _read_json(files["weight_select" if select else "weight"])["coef"]
        weight_key = "weight_select_index" if select else "weight_json_index"
    else:
        weight_file = _read_json(files["weight"])
        weight_key = "weight_json_index"

    entries = []  # (sort key, dimension, sub-dimension entry, question entry)
    dims, subs, sub_to_dim = [], [], {}
    for dim in tax["dimensions"]:
        dims.append(dim["name"])
        for sd in dim["sub_dimensions"]:
            subs.append(sd["name"])
            sub_to_dim[sd["name"]] = dim["name"]
            for q in sd["questions"]:
                line = q["select_line"] if select else q["qa_line"]
                alignment = modality == "image" and q["qa_line"] is None
                if line is None and not alignment:
                    continue
                entries.append((0 if alignment else line, dim["name"], sd, q))
    entries.sort(key=lambda e: e[0])

    line_to_index = {}
    questions = []
    for i, (line, dim_name, sd, q) in enumerate(entries):
        if line:
            if lines[line - 1] != q["text"]:
                raise RuntimeError(
                    f"package data mismatch at {modality} line {line}: {lines[line - 1]!r} != {q['text']!r}"
                )
            line_to_index[q["qa_line"]] = i
        widx = q.get(weight_key)
        weight = 0.0 if widx is None else float(weight_file[widx])
        if widx is not None and q["weight"] is not None and abs(weight - q["weight"]) > 1e-12:
            raise RuntimeError(
                f"package data mismatch: weight of {q['text']!r} is {weight}, taxonomy says {q['weight']}"
            )
        questions.append(
            dict(
                text=q["text"],
                dimension=dim_name,
                sub_dimension=sd["name"],
                weight=weight,
                is_mask=bool(q["is_mask"]),
                feature="probability" if line == 0 else "answer",
                selected=q["select_line"] is not None or line == 0,
                qa_line=q["qa_line"],
                select_line=q["select_line"],
                annotation_key=sd.get("annotation_key"),
                option_row=q.get("option_row"),
            )
        )
    n_lines = len(lines)
    n_file_questions = sum(1 for e in entries if e[0])
    if n_file_questions != n_lines:
        raise RuntimeError(f"package data mismatch: {n_lines} lines but {n_file_questions} placed questions")

    # masks used by the released image code: gate the same sub-dimension, plus the taxonomy's explicit extra lines
    if modality == "image":
        masks_in_code = {}
        for _, _, sd, q in entries:
            if q.get("mask_in_released_code"):
                masks_in_code[sd["name"]] = line_to_index[q["qa_line"]]
        for i, (_, _, sd, q) in enumerate(entries):
            if q["is_mask"]:
                continue
            by_line = q.get("masked_by_line")
            if by_line is not None:
                questions[i]["masked_by"] = line_to_index[by_line]
            elif sd["name"] in masks_in_code:
                questions[i]["masked_by"] = masks_in_code[sd["name"]]
        if select and set(masks_in_code) != set(_IMAGE_MASK_SUB_DIMENSIONS):
            raise RuntimeError(
                f"expected mask questions for {_IMAGE_MASK_SUB_DIMENSIONS}; found {sorted(masks_in_code)}"
            )

    qs = tuple(Question(index=i, **q) for i, q in enumerate(questions))
    n_selected = sum(1 for q in qs if q.selected and q.feature == "answer" and not q.is_mask)
    divisor = float(n_selected) if modality == "video" else 1.0
    return Checklist(
        name=f"{modality}{'_select' if select else ''}",
        modality=modality,
        questions=qs,
        dimensions=tuple(dims),
        sub_dimensions=tuple(subs),
        sub_dimension_to_dimension=sub_to_dim,
        divisor=divisor,
        source="THUDM/VisionReward@511960d (Apache-2.0); see trl_vision_reward/data/SOURCE.md",
    )


def image_mask_rule() -> str:
    """The image masking rule of the released code, in words (for docs and cards)."""
    return (
        "If 'Is there a human body in the image?' is answered no, the body features and the two harmfulness features "
        "are set to 0; if 'Is there a human face in the image?' is no, the face features are 0; if 'Are there human "
        "hands in the image?' is no, the hands feature is 0. The three mask questions carry no weight."
    )
