"""``python -m hub_cards.spaces write``: a ready-to-upload Space folder for one of the two apps.

The folder holds ``app.py`` (imports the app from this package and launches it; Gradio reads ``GRADIO_SERVER_NAME``
and ``GRADIO_SERVER_PORT``, which Spaces set), ``requirements.txt`` (this distribution with its ``spaces`` extra) and
``README.md`` (the Space card from :func:`hub_cards.space_cards.render_space_readme`, ``sdk_version`` = the installed
Gradio). It is written under the project's output policy: a foreign folder is refused, files are written atomically.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

APPS = {"cogvideox": "cogvideox", "vision-reward": "vision_reward"}  # command-line name -> SPACES key
COMMAND = "hub_cards.spaces write"
FILES = ("app.py", "requirements.txt", "README.md")


def distribution() -> tuple[str, str]:
    """(name, version) of the distribution that ships ``hub_cards``, read from the installed metadata."""
    names = importlib.metadata.packages_distributions().get("hub_cards")
    if not names:
        raise OSError("hub_cards is not installed as a distribution; install it (pip install -e '.[spaces]') first")
    return names[0], importlib.metadata.version(names[0])


def app_source(app: str, models: dict[str, str | None]) -> str:
    """``app.py``: build the demo from this package and launch it (``demo`` at module level, as Spaces expect)."""
    from ..space_cards import SPACES

    spec = SPACES[APPS[app]]
    args = ", ".join(f"{key}={value!r}" for key, value in models.items())
    return (
        f'"""{spec["title"]}: the Space runs {spec["module"]} from the cogvideox-visionreward distribution."""\n\n'
        f"from {spec['module']} import build_demo\n\n"
        f"demo = build_demo({args})\n\n"
        'if __name__ == "__main__":\n'
        "    demo.launch()  # host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Spaces: 0.0.0.0:7860)\n"
    )


def requirements(requirement: str | None = None) -> str:
    """``requirements.txt``: this distribution (``requirement`` replaces its line: a wheel file, a VCS URL)."""
    name, version = distribution()
    line = requirement or f"{name}[spaces]=={version}"
    return (
        "# Gradio itself comes from the README's sdk_version; this installs the apps and the models' libraries.\n"
        "# On CPU hardware, install the CPU build of torch first (a far smaller download): add PyTorch's CPU wheel\n"
        "# index as an extra index URL above this line.\n"
        f"{line}\n"
    )


def readme(app: str, models: dict[str, str | None]) -> str:
    from ..space_cards import render_space_readme

    repos = [m for m in models.values() if m]
    return str(render_space_readme(APPS[app], models=repos))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", required=True, choices=sorted(APPS), help="which Space to write")
    parser.add_argument("--out", required=True, type=Path, help="the Space folder to write (new or empty)")
    parser.add_argument("--model", default=None, help="Hub repo id of the model (default: the trained tiny world)")
    parser.add_argument(
        "--scorer", default=None, help="cogvideox: Hub repo id of the VisionReward video scorer (default: tiny world)"
    )
    parser.add_argument("--random", action="store_true", help="run the Space on random tiny models (noise)")
    parser.add_argument(
        "--requirement",
        default=None,
        help="requirements.txt line that installs this distribution (default: NAME==VERSION)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the files an earlier write put there")


def models_of(args: argparse.Namespace) -> dict[str, str | None]:
    """The ``build_demo`` arguments, validated: Hub repo ids only (a local folder does not exist on the Space)."""
    from diffusers_cogvideox.errors import UsageError

    from .._render import is_repo_id
    from .scores import RANDOM

    if args.app != "cogvideox" and args.scorer is not None:
        raise UsageError("--scorer is for --app cogvideox; the vision-reward Space's scorer is --model")
    given = {"--model": args.model, "--scorer": args.scorer}
    if args.random and any(given.values()):
        raise UsageError("--random replaces --model and --scorer; give one or the other")
    for flag, value in given.items():
        if value is not None and not is_repo_id(value):
            raise UsageError(f"{flag} {value!r}: give a Hub repo id (owner/name); a local folder is not on the Space")
    model = RANDOM if args.random else args.model
    if args.app == "cogvideox":
        return {"model": model, "scorer_model": RANDOM if args.random else args.scorer}
    return {"model": model}


def run(args: argparse.Namespace) -> int:
    from diffusers_cogvideox.outputs import OutputFolder

    models = models_of(args)
    texts = {"app.py": app_source(args.app, models), "requirements.txt": requirements(args.requirement)}
    texts["README.md"] = readme(args.app, models)  # all three are rendered (and validated) before the first write
    settings = {"app": args.app, **models, "requirement": args.requirement}
    with OutputFolder.claim(args.out, COMMAND, overwrite=args.overwrite, settings=settings) as folder:
        for name in FILES:
            folder.write_text(name, texts[name])
    print(
        f"wrote the {args.app} Space to {args.out} ({', '.join(FILES)}); upload it with "
        f"`hf upload OWNER/SPACE {args.out} . --repo-type space --exclude .cogvideox-vr-output.json`"
    )
    return 0
