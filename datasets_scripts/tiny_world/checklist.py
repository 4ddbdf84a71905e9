"""The questions the tiny world makes decidable: two official video-checklist questions per world dimension.

Each attribute's three levels are annotated as three options of the question's official sub-dimension, so the
project's labelling (:mod:`trl_vision_reward.reward.labels`) turns them into yes/no exactly as it does for
VisionRewardDB-Video: level 2 answers both questions "yes", level 1 only the second, level 0 neither.
"""

from __future__ import annotations

from typing import Any

from .world import ATTRIBUTES

# attribute -> (official sub-dimension, its annotation key, the options annotated for levels 0, 1, 2, the two questions)
QUESTIONS: dict[str, tuple[str, str, tuple[str, str, str], tuple[str, str]]] = {
    "lighting": (
        "Lighting Aes",
        "lighting aes",
        ("bad", "normal", "good"),
        ("Is the lighting beautiful?", "Is the lighting not unattractive?"),
    ),
    "speed": (
        "Object Motion dynamic",
        "object motion dynamic",
        ("static", "not static", "dynamic"),
        ("Is the object's motion dynamic?", "Is the object's motion not static?"),
    ),
    "flicker": (
        "Image quality stability",
        "image quality stability",
        ("unstable", "normal", "stable"),
        ("Is the image quality stable?", "Is the image quality not unstable?"),
    ),
    "pulsing": (
        "Shape throughout",
        "shape throughout",
        ("flawed", "not chaotic", "perfectly maintained"),
        (
            "Is the shape of the object perfectly maintained throughout the video?",
            "Is the shape of the object not chaotic throughout the video?",
        ),
    ),
    "size": (
        "Composition",
        "composition",
        ("bad", "normal", "good"),
        ("Is the composition aesthetically pleasing?", "Does the composition have no obvious flaws?"),
    ),
}
CHECKLIST_NAME = "tiny-world-video"


def question_texts() -> list[str]:
    """The world's 10 questions in official checklist order."""
    from trl_vision_reward.reward.checklist import Checklist

    wanted = {text for a in ATTRIBUTES for text in QUESTIONS[a][3]}
    return [q.text for q in Checklist.load("video", select=False).questions if q.text in wanted]


def world_checklist(weights: list[float] | None = None):
    """The official video checklist cut to the world's questions (official order and metadata), equal weights
    unless ``weights`` (one per question) are given: stage 2 (``fit-weights``) replaces them."""
    from trl_vision_reward.reward.checklist import Checklist

    official = Checklist.load("video", select=False).to_dict()
    texts = question_texts()
    # no line numbers: these questions are asked as written (not as lines of the official question file)
    questions = [
        dict(q, weight=1.0, selected=True, qa_line=None, select_line=None)
        for q in official["questions"]
        if q["text"] in texts
    ]
    if weights is not None:
        if len(weights) != len(questions):
            raise ValueError(f"the tiny world has {len(questions)} questions; got {len(weights)} weights")
        questions = [dict(q, weight=float(w)) for q, w in zip(questions, weights)]
    subs = {q["sub_dimension"] for q in questions}
    dims = [d for d in official["dimensions"] if any(q["dimension"] == d for q in questions)]
    data: dict[str, Any] = {
        **official,
        "name": CHECKLIST_NAME,
        "divisor": float(len(questions)),  # the official video rule divides by the number of questions asked
        "source": "the official VisionReward video checklist, cut to the questions the tiny world decides",
        "dimensions": dims,
        "sub_dimensions": [pair for pair in official["sub_dimensions"] if pair[0] in subs],
        "questions": questions,
    }
    return Checklist.from_dict(data)


def annotation(levels: dict[str, int]) -> dict[str, str]:
    """A VisionRewardDB-Video ``annotation`` struct for a clip's levels (only the world's sub-dimensions)."""
    return {QUESTIONS[a][1]: QUESTIONS[a][2][int(levels[a])] for a in ATTRIBUTES}


def answers(levels: dict[str, int]) -> dict[str, bool]:
    """The true yes/no answer of each world question."""
    out = {}
    for a in ATTRIBUTES:
        first, second = QUESTIONS[a][3]
        out[first] = levels[a] >= 2
        out[second] = levels[a] >= 1
    return out
