"""Gradio Space: score an image or a video and its prompt with VisionReward.

Shows the total, the per-dimension scores as a bar chart, and every checklist question with its P(yes) and answer.
``python -m hub_cards.spaces.vision_reward_app [--model PATH_OR_REPO]``; with no model it runs on the tiny random
scorer (scores are noise), so the page works anywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

QUESTION_COLUMNS = ["#", "dimension", "question", "P(yes)", "answer", "weight"]
DIMENSION_COLUMNS = ["dimension", "score", "soft score"]


class ScorerCache:
    """One VisionReward scorer per modality, loaded on first use (a model path serves its own modality only)."""

    def __init__(self, model: str | None = None, scorers: dict[str, Any] | None = None):
        self.model = model
        self.scorers = dict(scorers or {})

    def get(self, modality: str):
        if modality not in self.scorers:
            from trl_vision_reward.reward.sample_scorer import load_vision_reward

            self.scorers[modality] = load_vision_reward(self.model, modality)
        return self.scorers[modality]


def score_media(cache: ScorerCache, image: str | None, video: str | None, prompt: str):
    """(summary markdown, dimension table, question table) for the given image or video."""
    import gradio as gr
    import pandas as pd

    if bool(image) == bool(video):
        raise gr.Error("Give exactly one input: an image or a video.")
    modality, media = ("image", image) if image else ("video", video)
    scorer = cache.get(modality)
    if scorer.checklist.needs_prompt and not (prompt or "").strip():
        raise gr.Error("This checklist asks about the prompt: type the prompt the media was generated from.")
    result = scorer.score(media, prompt or None, modality=modality)
    questions = scorer.checklist.questions
    weights = scorer.checklist.weights.tolist()
    question_rows = [
        [i + 1, q.dimension, text, round(p, 4), "yes" if a else "no", round(w, 4)]
        for i, (q, text, p, a, w) in enumerate(zip(questions, result.questions, result.p_yes, result.answers, weights))
    ]
    dim_rows = [
        [name, round(score, 4), round(result.soft_dimension_scores.get(name, 0.0), 4)]
        for name, score in result.dimension_scores.items()
    ]
    summary = (
        f"### Total: {result.score:.4f} (soft: {result.soft_score:.4f})\n"
        f"{modality}, checklist `{result.checklist}`, {len(questions)} questions, {sum(result.answers)} answered yes"
        + (f", {result.num_frames} frames" if modality == "video" else "")
    )
    if cache.model is None:
        summary += "\n\n*Tiny random scorer: the scores are noise. Start the app with `--model` for real scores.*"
    return (
        summary,
        pd.DataFrame(dim_rows, columns=DIMENSION_COLUMNS),
        pd.DataFrame(question_rows, columns=QUESTION_COLUMNS),
    )


def example_image(folder: str | Path) -> Path:
    """A small gradient image to score as the page's example."""
    import numpy as np
    from PIL import Image

    x = np.linspace(0, 1, 64)
    rgb = np.stack([np.outer(x, np.ones(64)), np.outer(np.ones(64), x), np.full((64, 64), 0.6)], axis=-1)
    path = Path(folder) / "example.png"
    Image.fromarray((rgb * 255).astype("uint8")).save(path)
    return path


def build_demo(model: str | None = None, scorers: dict[str, Any] | None = None, *, preload_example: bool = False):
    """The Blocks app. ``model``: a VisionReward folder or repo id (default: tiny random); ``scorers``: prebuilt
    ``{modality: VisionRewardScorer}`` (tests). ``preload_example`` scores an example image at start-up so that the
    page opens showing a result."""
    import tempfile

    import gradio as gr

    cache = ScorerCache(model, scorers)
    initial: dict[str, Any] = {}
    if preload_example:
        image_path = example_image(tempfile.mkdtemp(prefix="vision_reward_example_"))
        md, dim_table, question_table = score_media(cache, str(image_path), None, "a colourful gradient")
        initial = {
            "image": str(image_path),
            "prompt": "a colourful gradient",
            "summary": md,
            "dims": dim_table,
            "questions": question_table,
        }
    with gr.Blocks(title="VisionReward scorer") as demo:
        gr.Markdown(
            "# VisionReward scorer\nUpload an image **or** a video with its prompt. VisionReward answers its checklist "
            "of yes/no questions; weighted answers give per-dimension scores and the total (arXiv:2412.21059)."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(value=initial.get("image"), type="filepath", label="Image", height=220)
                video = gr.Video(label="Video", height=220)
                prompt = gr.Textbox(
                    value=initial.get("prompt"), label="Prompt", placeholder="the prompt the media was generated from"
                )
                button = gr.Button("Score", variant="primary")
            with gr.Column():
                summary = gr.Markdown(value=initial.get("summary"))
                # the tiny random scorer answers "no" everywhere, so its chart shows the soft (P(yes)-based) scores
                y = "soft score" if model is None and scorers is None else "score"
                chart = gr.BarPlot(
                    value=initial.get("dims"), x="dimension", y=y, title=f"Per-dimension {y}s", height=260
                )
                dims = gr.Dataframe(
                    value=initial.get("dims"), headers=DIMENSION_COLUMNS, label="Dimensions", interactive=False
                )
        questions = gr.Dataframe(
            value=initial.get("questions"), headers=QUESTION_COLUMNS, label="Checklist", interactive=False, wrap=True
        )

        def run(image_path, video_path, text):
            md, dim_table, question_table = score_media(cache, image_path, video_path, text)
            return md, dim_table, dim_table, question_table

        button.click(run, [image, video, prompt], [summary, chart, dims, questions], api_name="score")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="VisionReward folder or Hub repo id (default: tiny random)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--preload-example", action="store_true", help="open the page with an example already scored")
    args = parser.parse_args(argv)
    build_demo(args.model, preload_example=args.preload_example).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
