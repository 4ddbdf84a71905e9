"""The whole loop in one command: generate -> score -> mine pairs -> train MPO -> save the adapter and its card ->
regenerate with it -> report.

``vr-quickstart`` (or ``vr-datasets quickstart``) runs it on the embedded default, the trained tiny world shipped with
the package (a tiny CogVideoX and VisionReward-Video trained on procedural clips, see :mod:`datasets_scripts.tiny_world`:
no download, a few minutes on 2 CPU cores); the report sets the scorer's per-dimension change beside the change the
world's procedural truth measures on the same clips. ``--random`` runs the same-sized random models instead (noise,
soft scores; the report says so). With real models (``--model THUDM/CogVideoX-2b --scorer <VisionReward-Video folder or repo>``) the same stages run at full
size. Every stage writes its own folder under ``--out``; ``report.html`` (open it in a browser) shows the videos, the
score breakdowns before and after training, the pair statistics and the training curve, with SVG plots.

Stages and folders::

    1_generate_score/   scored samples (resumable job: media/, shards/, data/*.parquet, README.md card)
    2_pairs/            MPO preference pairs (data/*.parquet with the videos embedded, stats.json, README.md card)
    3_mpo/              latents cache, the LoRA adapter (pytorch_lora_weights.safetensors) and its model card
    4_regenerate/       the same prompts and seeds regenerated with the adapter, scored
    report.html, report.json

Modules: :mod:`.config` (the knobs, source of the CLI), :mod:`.runner` (the stages), :mod:`.thresholds` (the pair
threshold and why), :mod:`.clips` (frame strips, procedural truth), :mod:`.report` (HTML/JSON), :mod:`.charts` (SVG),
:mod:`.cli` (``vr-quickstart``).
"""

from .charts import svg_bar_chart, svg_line_chart
from .cli import main, make_parser, run
from .config import DEFAULT_PROMPTS, STAGE_TITLES, STAGES, TINY_WORLD_PROMPTS, QuickstartConfig
from .report import write_report
from .runner import Quickstart, StageResult

__all__ = [
    "DEFAULT_PROMPTS",
    "STAGES",
    "STAGE_TITLES",
    "TINY_WORLD_PROMPTS",
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
