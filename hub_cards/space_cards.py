"""Space READMEs for the two Gradio apps (``hub_cards/spaces``), with their configuration metadata.

The Space folder (``python -m hub_cards.spaces write``) runs each app from an ``app.py`` that imports it from this
package, so ``app_file`` is ``app.py`` and ``module`` names the app it launches.
"""

from __future__ import annotations

from collections.abc import Sequence

from huggingface_hub import RepoCard, SpaceCardData

from ._render import is_repo_id, versions
from .validation import validate_space_card

SPACES = {
    "vision_reward": {
        "title": "VisionReward scorer",
        "emoji": "🎯",
        "colorFrom": "indigo",
        "colorTo": "pink",
        "short_description": "Checklist scores of an image or video and prompt",
        "app_file": "app.py",
        "module": "hub_cards.spaces.vision_reward_app",
        "body": "Upload a video (or an image) with its prompt: VisionReward answers its checklist of yes/no questions "
        "and shows the per-dimension scores as a chart in checklist order and every question's P(yes) and answer as "
        "a table. By default it runs the trained tiny-world video scorer shipped with the package, which scores an "
        "image as a one-frame still clip.",
    },
    "cogvideox": {
        "title": "CogVideoX best-of-N",
        "emoji": "🎬",
        "colorFrom": "blue",
        "colorTo": "green",
        "short_description": "Text-to-video with reward-ranked best-of-N",
        "app_file": "app.py",
        "module": "hub_cards.spaces.cogvideox_app",
        "body": "Type a prompt: CogVideoX generates N videos, VisionReward scores each one, and the videos are shown "
        "ranked by official total score (the soft total breaks ties) with their per-dimension breakdown in "
        "checklist order. By default it runs the trained tiny world shipped with the package: 9-frame 32x32 clips "
        'of one shape over a plain background, prompts like "a red circle on a grey background".',
    },
}


def render_space_readme(
    app: str,
    *,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    suggested_hardware: str | None = None,
    sdk_version: str | None = None,
    validate: bool = True,
) -> RepoCard:
    """README.md of the Space for ``app`` ("vision_reward" or "cogvideox")."""
    if app not in SPACES:
        raise ValueError(f"app must be one of {sorted(SPACES)}; got {app!r}")
    spec = SPACES[app]
    data = SpaceCardData(
        title=spec["title"],
        sdk="gradio",
        sdk_version=sdk_version or versions("gradio").get("gradio"),
        python_version="3.10",
        app_file=spec["app_file"],
        license="apache-2.0",
        models=[m for m in (models or []) if is_repo_id(m)] or None,
        datasets=[d for d in (datasets or []) if is_repo_id(d)] or None,
        tags=["vision-reward", "cogvideox", "arxiv:2412.21059"],
        emoji=spec["emoji"],
        colorFrom=spec["colorFrom"],
        colorTo=spec["colorTo"],
        short_description=spec["short_description"],
        suggested_hardware=suggested_hardware,
        pinned=False,
    )
    body = [
        f"# {spec['title']}",
        "",
        spec["body"],
        "",
        "The total is the sum of the checklist's fitted non-negative question weights times the answers (+1 yes, -1 "
        "no), divided by the checklist's divisor; a dimension score sums the weights of that dimension's questions "
        "answered yes (paper Eq. 6). The soft scores use P(yes) in place of each answer.",
        "",
        "Run it locally (the trained tiny world by default, `--random` for random tiny weights; pass a model path or "
        "Hub repo id for real ones):",
        "",
        "```bash",
        "pip install -e '.[spaces]'   # in a clone of the cogvideox-visionreward repository",
        f"python -m {spec['module']}",
        f"python -m {spec['module']} --random",
        "```",
        "",
        "The checklist questions come from THUDM/VisionReward (Apache-2.0; arXiv:2412.21059); the tiny world's scorer "
        "asks 10 of the official video questions, with weights fitted on the tiny world's own preferences.",
        "",
    ]
    card = RepoCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    card.repo_type = "space"
    if validate:
        validate_space_card(card)
    return card


__all__ = ["SPACES", "render_space_readme"]
