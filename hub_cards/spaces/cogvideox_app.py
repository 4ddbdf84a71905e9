"""Gradio Space: CogVideoX text-to-video with reward-ranked best-of-N.

N videos are generated for the prompt, VisionReward scores each one, and the page shows the best video, all N ranked
by total score, and their per-dimension scores. ``python -m hub_cards.spaces.cogvideox_app [--model PATH_OR_REPO]
[--scorer PATH_OR_REPO]``; with no model it runs on the tiny random CogVideoX and scorer (the videos are noise).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any


class BestOfN:
    """Generate ``n`` samples, score them, rank them by total (soft total breaks ties); loads models lazily."""

    def __init__(
        self,
        model: str | None = None,
        scorer_model: str | None = None,
        *,
        sampler: Any = None,
        scorer: Any = None,
        out_dir: str | Path | None = None,
        **generation: Any,
    ):
        self.model, self.scorer_model = model, scorer_model
        self._sampler, self._scorer = sampler, scorer
        self.generation = generation
        self.out_dir = Path(out_dir or tempfile.mkdtemp(prefix="best_of_n_"))

    @property
    def sampler(self):
        if self._sampler is None:
            from diffusers_cogvideox.sampling import PipelineSampler, is_tiny, load_pipeline

            defaults = {"num_frames": 9, "height": 32, "width": 32} if is_tiny(self.model) else {}
            self._sampler = PipelineSampler(load_pipeline(self.model), **{**defaults, **self.generation})
        return self._sampler

    @property
    def scorer(self):
        if self._scorer is None:
            from trl_vision_reward.reward.sample_scorer import VisionRewardSampleScorer, load_vision_reward

            self._scorer = VisionRewardSampleScorer(load_vision_reward(self.scorer_model, "video"), "video")
        return self._scorer

    def __call__(self, prompt: str, n: int, num_inference_steps: int | None, seed: int) -> list[dict[str, Any]]:
        if num_inference_steps:
            self.sampler.kwargs["num_inference_steps"] = int(num_inference_steps)
        videos = self.sampler(prompt, int(n), int(seed))
        run_dir = Path(tempfile.mkdtemp(dir=self.out_dir))
        paths = []
        for k, video in enumerate(videos):
            path = run_dir / f"sample_{k}{self.sampler.suffix}"
            self.sampler.write(video, path)
            paths.append(path)
        scores = self.scorer(paths, prompt)
        ranked = sorted(
            ({"path": str(p), "index": k, **s} for k, (p, s) in enumerate(zip(paths, scores))),
            key=lambda r: (r["total"], r.get("soft_total", 0.0)),
            reverse=True,
        )
        for rank, r in enumerate(ranked, start=1):
            r["rank"] = rank
        return ranked


def build_demo(
    model: str | None = None,
    scorer_model: str | None = None,
    *,
    best_of_n: BestOfN | None = None,
    preload_example: bool = False,
):
    """The Blocks app. ``model``/``scorer_model``: folders or repo ids (default: tiny random). ``preload_example``
    runs the default prompt at start-up so that the page opens showing a result."""
    import gradio as gr
    import pandas as pd

    engine = best_of_n or BestOfN(model, scorer_model)
    tiny = model is None
    default_prompt = "a panda playing a guitar in a bamboo forest"

    def run(prompt: str, n: float, steps: float, seed: float):
        if not (prompt or "").strip():
            raise gr.Error("Type a prompt.")
        ranked = engine(prompt, int(n), int(steps) if steps else None, int(seed))
        dims = list(ranked[0]["dimension_scores"])
        table = pd.DataFrame(
            [
                [r["rank"], r["index"], round(r["total"], 4), round(r.get("soft_total", 0.0), 4)]
                + [round(r["dimension_scores"][d], 3) for d in dims]
                for r in ranked
            ],
            columns=["rank", "sample", "total", "soft total", *dims],
        )
        gallery = [(r["path"], f"#{r['rank']}: total {r['total']:.3f}") for r in ranked]
        best = ranked[0]
        summary = f"### Best of {len(ranked)}: sample {best['index']} (total {best['total']:.4f}, soft {best.get('soft_total', 0.0):.4f})"
        if tiny:
            summary += "\n\n*Tiny random CogVideoX and scorer: the videos are noise. Start the app with `--model`.*"
        return best["path"], summary, gallery, table

    initial = (
        dict(zip(("best", "summary", "gallery", "table"), run(default_prompt, 3, 2 if tiny else 50, 0)))
        if preload_example
        else {}
    )
    with gr.Blocks(title="CogVideoX best-of-N") as demo:
        gr.Markdown(
            "# CogVideoX best-of-N\nCogVideoX generates N videos for your prompt; VisionReward scores each one and "
            "the best is shown first, with every sample's per-dimension scores."
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", value=default_prompt)
                n = gr.Slider(1, 8, value=3, step=1, label="N (samples)")
                steps = gr.Slider(1, 100, value=2 if tiny else 50, step=1, label="Inference steps")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Generate", variant="primary")
            with gr.Column():
                best = gr.Video(value=initial.get("best"), label="Best sample", autoplay=True, loop=True, height=260)
                summary = gr.Markdown(value=initial.get("summary"))
        gallery = gr.Gallery(value=initial.get("gallery"), label="All samples, ranked", columns=4, object_fit="contain")
        table = gr.Dataframe(value=initial.get("table"), label="Scores", interactive=False)
        button.click(run, [prompt, n, steps, seed], [best, summary, gallery, table], api_name="generate")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="CogVideoX folder or Hub repo id (default: tiny random)")
    parser.add_argument(
        "--scorer", default=None, help="VisionReward video folder or Hub repo id (default: tiny random)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument(
        "--preload-example", action="store_true", help="open the page with an example already generated"
    )
    args = parser.parse_args(argv)
    build_demo(args.model, args.scorer, preload_example=args.preload_example).launch(
        server_name=args.host, server_port=args.port
    )


if __name__ == "__main__":
    main()
