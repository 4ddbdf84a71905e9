"""Gradio Space: score an image or a video and its prompt with VisionReward.

Shows the total, the per-dimension scores as a bar chart (checklist order), and every checklist question with its
P(yes) and answer. ``python -m hub_cards.spaces.vision_reward_app [--model PATH_OR_REPO] [--random]``; with no model it
runs on the trained tiny-world video scorer shipped with the package (``--random``: a random tiny scorer, noise).
A video checklist scores an uploaded image as a one-frame still clip (the page says so).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .scores import RANDOM, TINY_WORLD_PROMPTS, default_kind, model_note, ordered_dimensions, total_identity, total_rule

QUESTION_COLUMNS = ["#", "dimension", "question", "P(yes)", "answer", "weight"]
DIMENSION_COLUMNS = ["dimension", "score", "soft score"]
RULE_PLACEHOLDER = "*Score something: the page then says how this checklist's total relates to its dimension scores.*"


class ScorerCache:
    """One VisionReward scorer per modality, loaded on first use (a model path serves its own modality only)."""

    def __init__(self, model: str | None = None, scorers: dict[str, Any] | None = None):
        self.model = model
        self.default_models = scorers is None  # prebuilt scorers (tests) get no note about the default models
        self.scorers = dict(scorers or {})

    def get(self, modality: str):
        if default_kind(self.model) == "tiny world":
            modality = "video"  # one video scorer serves both: an image is scored as a one-frame still clip
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
    still = modality == "image" and scorer.checklist.modality == "video"
    if still:  # a video checklist (the tiny world's) sees the image as a clip of one frame
        result = scorer.score([media], prompt or None, modality="video", fps=1)
    else:
        result = scorer.score(media, prompt or None, modality=modality)
    checklist = scorer.checklist
    weights = checklist.weights.tolist()
    question_rows = [
        [i + 1, q.dimension, text, round(p, 4), "yes" if a else "no", round(w, 4)]
        for i, (q, text, p, a, w) in enumerate(
            zip(checklist.questions, result.questions, result.p_yes, result.answers, weights)
        )
    ]
    dim_rows = [
        [name, round(result.dimension_scores[name], 4), round(result.soft_dimension_scores.get(name, 0.0), 4)]
        for name in ordered_dimensions(checklist, result.dimension_scores)
    ]
    summary = (
        f"### Total: {result.score:.4f} (soft: {result.soft_score:.4f})\n"
        f"{modality}, checklist `{result.checklist}`, {len(checklist)} questions, {sum(result.answers)} answered yes"
        + (f", {result.num_frames} frames" if modality == "video" else "")
    )
    if still:
        summary += "\n\nThis checklist is for videos: the image was scored as a one-frame still clip."
    identity = total_identity(checklist, result.dimension_scores, result.score)
    summary += f"\n\n{identity}" if identity else ""
    note = model_note(default_kind(cache.model), "scorer")
    summary += f"\n\n{note}" if note and cache.default_models else ""
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


def example_clip(folder: str | Path, frames: int = 9, size: int = 32) -> Path:
    """A tiny-world-like example video: a red circle gliding over a grey background (9 frames of 32 x 32, 8 fps)."""
    import numpy as np

    from diffusers_cogvideox.video_io import export_to_video

    yy, xx = np.mgrid[:size, :size] / size
    clip = np.full((frames, size, size, 3), 0.5)
    for t in range(frames):
        inside = (xx - (0.3 + 0.4 * t / (frames - 1))) ** 2 + (yy - 0.5) ** 2 < 0.18**2
        clip[t][inside] = (0.92, 0.16, 0.12)
    return Path(export_to_video(clip, Path(folder) / "example.mp4", fps=8))


def build_demo(model: str | None = None, scorers: dict[str, Any] | None = None, *, preload_example: bool = False):
    """The Blocks app. ``model``: a VisionReward folder or repo id (default: the trained tiny-world video scorer;
    ``"random"``: a random tiny scorer); ``scorers``: prebuilt ``{modality: VisionRewardScorer}`` (tests).
    ``preload_example`` scores an example (a clip for the tiny world, else an image) at start-up so that the page
    opens showing a result."""
    import tempfile

    import gradio as gr

    cache = ScorerCache(model, scorers)
    kind = default_kind(model)
    initial: dict[str, Any] = {}
    if preload_example:
        folder = tempfile.mkdtemp(prefix="vision_reward_example_")
        if kind == "tiny world":
            media, text = {"video": str(example_clip(folder))}, TINY_WORLD_PROMPTS[0]
        else:
            media, text = {"image": str(example_image(folder))}, "a colourful gradient"
        md, dim_table, question_table = score_media(cache, media.get("image"), media.get("video"), text)
        initial = {**media, "prompt": text, "summary": md, "dims": dim_table, "questions": question_table}
    # the rule is stated for the default scorer at start; each result restates it for the checklist that scored it
    rule = total_rule(cache.get("video").checklist) if kind != "custom" else RULE_PLACEHOLDER
    # the random scorer answers "no" everywhere, so its chart shows the soft (P(yes)-based) scores
    y = "soft score" if kind == RANDOM and scorers is None else "score"
    with gr.Blocks(title="VisionReward scorer") as demo:
        gr.Markdown(
            "# VisionReward scorer\nUpload an image **or** a video with its prompt. VisionReward answers its checklist "
            "of yes/no questions; weighted answers give per-dimension scores and the total (arXiv:2412.21059). "
            "Dimensions are listed in checklist order."
            + (
                " The default tiny-world scorer has a video checklist: an image is scored as a one-frame still clip."
                if kind == "tiny world"
                else ""
            )
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(value=initial.get("image"), type="filepath", label="Image", height=220)
                video = gr.Video(value=initial.get("video"), label="Video", height=220)
                prompt = gr.Textbox(
                    value=initial.get("prompt"), label="Prompt", placeholder="the prompt the media was generated from"
                )
                if kind != "custom":
                    gr.Examples([[p] for p in TINY_WORLD_PROMPTS], [prompt], label="Tiny-world prompts")
                button = gr.Button("Score", variant="primary")
            with gr.Column():
                summary = gr.Markdown(value=initial.get("summary"))
                chart = gr.BarPlot(
                    value=initial.get("dims"),
                    x="dimension",
                    y=y,
                    sort=list(initial["dims"]["dimension"]) if initial else None,
                    title=f"Per-dimension {y}s",
                    height=260,
                )
                dims = gr.Dataframe(
                    value=initial.get("dims"), headers=DIMENSION_COLUMNS, label="Dimensions", interactive=False
                )
        questions = gr.Dataframe(
            value=initial.get("questions"), headers=QUESTION_COLUMNS, label="Checklist", interactive=False, wrap=True
        )
        rule_text = gr.Markdown(rule)

        def run(image_path, video_path, text):
            md, dim_table, question_table = score_media(cache, image_path, video_path, text)
            order = list(dim_table["dimension"])  # checklist order, kept by the chart
            plot = gr.BarPlot(value=dim_table, x="dimension", y=y, sort=order, title=f"Per-dimension {y}s")
            checklist = cache.get("image" if image_path else "video").checklist
            return md, plot, dim_table, question_table, total_rule(checklist)

        button.click(run, [image, video, prompt], [summary, chart, dims, questions, rule_text], api_name="score")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="VisionReward folder or Hub repo id (default: the tiny world)")
    parser.add_argument("--random", action="store_true", help="a random tiny scorer instead of the trained tiny world")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--preload-example", action="store_true", help="open the page with an example already scored")
    args = parser.parse_args(argv)
    if args.random and args.model:
        parser.error("--random replaces --model; give one or the other")
    build_demo(RANDOM if args.random else args.model, preload_example=args.preload_example).launch(
        server_name=args.host, server_port=args.port
    )


if __name__ == "__main__":
    main()
