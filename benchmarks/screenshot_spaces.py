"""Headless-Chromium screenshots of both Gradio Spaces, each page showing a result (tiny default models).

    python benchmarks/screenshot_spaces.py [--out outputs/screenshots] [--report outputs/quickstart/report.html]

Each app is launched on 127.0.0.1 with ``preload_example=True`` (the example is computed at start-up, so the page opens
with its result), and ``chromium --headless --screenshot`` captures it. ``--report`` also captures a quickstart report.
Needs a Chromium binary (Debian: ``apt-get install chromium``); without one it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(
    url: str, path: Path, size: tuple[int, int] = (1280, 1400), wait_ms: int = 15000, browser: str | None = None
) -> Path:
    """Capture ``url`` to ``path`` (PNG) with headless Chromium after ``wait_ms`` of page time."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError(
            "no Chromium binary found (tried: " + ", ".join(BROWSERS) + "); apt-get install chromium"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--mute-audio",
        f"--window-size={size[0]},{size[1]}",
        f"--virtual-time-budget={wait_ms}",
        f"--screenshot={path}",
        url,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot for {url}")
    return path


def capture_spaces(out: Path, browser: str | None = None) -> list[Path]:
    from hub_cards.spaces import cogvideox_app, vision_reward_app

    shots = []
    for name, module in (("vision_reward_space", vision_reward_app), ("cogvideox_space", cogvideox_app)):
        start = time.perf_counter()
        demo = module.build_demo(preload_example=True)
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        try:
            shots.append(screenshot(url, out / f"{name}.png", browser=browser))
        finally:
            demo.close()
        print(f"{name}: {shots[-1]} ({time.perf_counter() - start:.1f}s)")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/screenshots")
    parser.add_argument("--report", default=None, help="also capture this quickstart report.html")
    args = parser.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print(
            "no Chromium binary found; install one (Debian: apt-get install chromium) to take screenshots",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    capture_spaces(out, browser)
    if args.report:
        report = Path(args.report).resolve()
        print(
            f"report: {screenshot(report.as_uri(), out / 'quickstart_report.png', size=(1200, 2400), wait_ms=3000, browser=browser)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
