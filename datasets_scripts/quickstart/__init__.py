"""The whole loop in one command: generate -> score -> mine pairs -> train MPO -> save the adapter and its card ->
regenerate with it -> report.

``vr-quickstart`` (or ``vr-datasets quickstart``) runs it on the embedded tiny default (random CogVideoX and VisionReward
weights built locally: no download, a few minutes on 2 CPU cores; the videos are noise and the report says so). With
real models (``--model THUDM/CogVideoX-2b --scorer <VisionReward-Video folder or repo>``) the same stages run at full
size. Every stage writes its own folder under ``--out``; ``report.html`` (open it in a browser) shows the videos, the
score breakdowns before and after training, the pair statistics and the training curve, with SVG plots.

Stages and folders::

    1_generate_score/   scored samples (resumable job: media/, shards/, data/*.parquet, README.md card)
    2_pairs/            MPO preference pairs (data/*.parquet with the videos embedded, stats.json, README.md card)
    3_mpo/              latents cache, the LoRA adapter (pytorch_lora_weights.safetensors) and its model card
    4_regenerate/       the same prompts and seeds regenerated with the adapter, scored
    report.html, report.json

Modules: :mod:`.config` (the knobs, source of the CLI), :mod:`.runner` (the stages), :mod:`.report` (HTML/JSON),
:mod:`.charts` (SVG), :mod:`.cli` (``vr-quickstart``).
"""

from .charts import svg_bar_chart, svg_line_chart
from .cli import main, make_parser, run
from .config import DEFAULT_PROMPTS, STAGE_TITLES, STAGES, QuickstartConfig
from .report import write_report
from .runner import Quickstart, StageResult

__all__ = [
    "DEFAULT_PROMPTS",
    "STAGES",
    "STAGE_TITLES",
    "Quickstart",
    "QuickstartConfig",
    "StageResult",
    "main",
    "make_parser",
    "run",
    "svg_bar_chart",
    "svg_line_chart",
    "write_report",
]
