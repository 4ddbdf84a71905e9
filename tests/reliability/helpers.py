"""Run the console scripts as a user does: a fresh process, exactly what the installed entry point calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENTRY_POINTS = {
    "cogvideox": "diffusers_cogvideox.cli:main",
    "vision-reward": "trl_vision_reward.cli:main",
    "mpo-train": "trl_vision_reward.mpo.cli:main",
    "vr-datasets": "datasets_scripts.cli:main",
    "vr-quickstart": "datasets_scripts.quickstart:main",
}
REPO = Path(__file__).resolve().parents[2]


def cli(
    name: str,
    *args: str,
    cwd: str | os.PathLike | None = None,
    env: dict | None = None,
    timeout: float = 240,
    subprocess_run: bool = False,
):
    """``name ARGS...`` as a user runs it (offline, no debug variable); returns a CompletedProcess with text
    stdout/stderr. In-process by default (the entry point's ``main(argv)``, a few seconds cheaper per call);
    ``subprocess_run=True`` starts a fresh interpreter, for what only a process shows (``--debug`` tracebacks)."""
    if not subprocess_run:
        return _in_process(name, [str(a) for a in args], cwd, env)
    module, func = ENTRY_POINTS[name].split(":")
    code = f"import sys; from {module} import {func}; sys.exit({func}())"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    environment.pop("COGVIDEOX_VR_DEBUG", None)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _in_process(name: str, argv: list[str], cwd, env) -> subprocess.CompletedProcess:
    import contextlib
    import importlib
    import io

    module, func = ENTRY_POINTS[name].split(":")
    main = getattr(importlib.import_module(module), func)
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.pop("COGVIDEOX_VR_DEBUG", None)
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})})
    out, err = io.StringIO(), io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess([name, *argv], int(code or 0), out.getvalue(), err.getvalue())


def assert_one_line_error(result, *needles: str) -> str:
    """Exit status 2, no traceback, and one ``error:`` line on stderr that mentions every needle."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to compare before and after a refused command."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
