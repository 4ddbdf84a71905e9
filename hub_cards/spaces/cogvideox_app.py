"""Gradio Space: CogVideoX text-to-video with reward-ranked best-of-N.

N videos are generated for the prompt, VisionReward scores each one, and the page shows the best video, all N ranked
by official total (the soft total breaks ties), and their per-dimension scores in checklist order.
``python -m hub_cards.spaces.cogvideox_app [--model PATH_OR_REPO] [--scorer PATH_OR_REPO] [--random]``; with no
model it runs on the trained tiny world shipped with the package (``--random``: the same-sized random models, noise).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from .scores import (
    RANDOM,
    TINY_WORLD_PROMPTS,
    default_kind,
    model_note,
    ordered_dimensions,
    rank_samples,
    total_identity,
    total_rule,
)

CHART_TITLE = "Dimension scores of the best sample"
TABLE_COLUMNS = ["rank", "sample", "total", "soft total", "tie broken by soft total"]


def default_steps(model: str | None) -> int:
    """Inference steps the page starts with: the tiny world's DDIM steps, 2 for random weights, 50 for real models."""
    kind = default_kind(model)
    if kind == "tiny world":
        from diffusers_cogvideox.tiny import TINY_WORLD_STEPS

        return TINY_WORLD_STEPS
    return 2 if kind == RANDOM else 50


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
            from diffusers_cogvideox.sampling import PipelineSampler, load_pipeline
            from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION

            kind = default_kind(self.model)
            defaults: dict[str, Any] = {}
            if kind != "custom":
                defaults = {**TINY_WORLD_RESOLUTION, "num_inference_steps": default_steps(self.model)}
            if kind == "tiny world":
                defaults["guidance_scale"] = 1.0  # the tiny world is trained without classifier-free guidance
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
        return rank_samples({"path": str(p), "index": k, **s} for k, (p, s) in enumerate(zip(paths, scores)))


def results_table(ranked: list[dict[str, Any]], dims: list[str]):
    """One row per sample in rank order: rank, sample, total, soft total, tie flag, then the dimension scores."""
    import pandas as pd

    rows = [
        [r["rank"], r["index"], round(r["total"], 4), round(r.get("soft_total", 0.0), 4), r["tie_broken_by_soft"]]
        + [round(r["dimension_scores"][d], 4) for d in dims]
        for r in ranked
    ]
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *dims])


def build_demo(
    model: str | None = None,
    scorer_model: str | None = None,
    *,
    best_of_n: BestOfN | None = None,
    preload_example: bool = False,
):
    """The Blocks app. ``model``/``scorer_model``: folders or repo ids (default: the trained tiny world; ``"random"``:
    random tiny models). ``preload_example`` runs the default prompt at start-up so that the page opens with a result."""
    import gradio as gr
    import pandas as pd

    engine = best_of_n or BestOfN(model, scorer_model)
    kind = default_kind(model)
    steps_default = default_steps(model)
    default_prompt = TINY_WORLD_PROMPTS[0] if kind != "custom" else "a panda playing a guitar in a bamboo forest"

    def compute(prompt: str, n: float, steps: float, seed: float) -> dict[str, Any]:
        if not (prompt or "").strip():
            raise gr.Error("Type a prompt.")
        ranked = engine(prompt, int(n), int(steps) if steps else None, int(seed))
        dims = ordered_dimensions(checklist, ranked[0]["dimension_scores"])
        best = ranked[0]
        chart = pd.DataFrame(
            [
                [d, round(best["dimension_scores"][d], 4), round(best["soft_dimension_scores"].get(d, 0.0), 4)]
                for d in dims
            ],
            columns=["dimension", "score", "soft score"],
        )
        gallery = [
            (r["path"], f"#{r['rank']}: total {r['total']:.4f} (soft {r.get('soft_total', 0.0):.4f})") for r in ranked
        ]
        summary = (
            f"### Best of {len(ranked)}: sample {best['index']} (total {best['total']:.4f}, "
            f"soft {best.get('soft_total', 0.0):.4f})"
        )
        identity = total_identity(checklist, best["dimension_scores"], best["total"])
        summary += f"\n\n{identity}" if identity else ""
        if best["tie_broken_by_soft"]:
            summary += "\n\nIts official total ties with another sample's: the soft total decided the rank."
        note = model_note(kind, "CogVideoX and scorer")
        summary += f"\n\n{note}" if note else ""
        return {
            "best": best["path"],
            "summary": summary,
            "gallery": gallery,
            "chart": chart,
            "table": results_table(ranked, dims),
        }

    def run(prompt: str, n: float, steps: float, seed: float):
        out = compute(prompt, n, steps, seed)
        order = list(out["chart"]["dimension"])  # checklist order, kept by the chart
        plot = gr.BarPlot(value=out["chart"], x="dimension", y="score", sort=order, title=CHART_TITLE)
        return out["best"], out["summary"], out["gallery"], plot, out["table"]

    checklist = engine.scorer.checklist  # loaded now: the page states its scoring rule
    initial = compute(default_prompt, 3, steps_default, 0) if preload_example else {}
    with gr.Blocks(title="CogVideoX best-of-N") as demo:
        gr.Markdown(
            "# CogVideoX best-of-N\nCogVideoX generates N videos for your prompt and VisionReward scores each one. "
            "Samples are **ranked by the official total**; where two totals are equal the **soft total** breaks the "
            "tie (the table says where it did). Dimension scores are listed in checklist order."
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", value=default_prompt)
                if kind != "custom":
                    gr.Examples([[p] for p in TINY_WORLD_PROMPTS], [prompt], label="Tiny-world prompts")
                n = gr.Slider(1, 8, value=3, step=1, label="N (samples)")
                steps = gr.Slider(1, 100, value=steps_default, step=1, label="Inference steps")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Generate", variant="primary")
            with gr.Column():
                best = gr.Video(value=initial.get("best"), label="Best sample", autoplay=True, loop=True, height=260)
                summary = gr.Markdown(value=initial.get("summary"))
        gallery = gr.Gallery(value=initial.get("gallery"), label="All samples, ranked", columns=4, object_fit="contain")
        with gr.Row():
            chart = gr.BarPlot(
                value=initial.get("chart"), x="dimension", y="score", sort=list(checklist.dimensions), title=CHART_TITLE
            )
            table = gr.Dataframe(value=initial.get("table"), label="Scores (ranked)", interactive=False)
        gr.Markdown(total_rule(checklist))
        button.click(run, [prompt, n, steps, seed], [best, summary, gallery, chart, table], api_name="generate")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="CogVideoX folder or Hub repo id (default: the tiny world)")
    parser.add_argument("--scorer", default=None, help="VisionReward video folder or repo id (default: the tiny world)")
    parser.add_argument("--random", action="store_true", help="random tiny models instead of the trained tiny world")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument(
        "--preload-example", action="store_true", help="open the page with an example already generated"
    )
    args = parser.parse_args(argv)
    if args.random and (args.model or args.scorer):
        parser.error("--random replaces --model and --scorer; give one or the other")
    model, scorer = (RANDOM, RANDOM) if args.random else (args.model, args.scorer)
    build_demo(model, scorer, preload_example=args.preload_example).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
