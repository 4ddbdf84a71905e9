"""What the stages read: a clip dataset folder (``data/*.parquet`` of Clip rows), a folder of media, or a list file.

Every input becomes a dict with ``path`` (the file to open), ``clip_id`` (stable: the dataset's id, or a hash of the
name relative to the input) and the Clip fields known so far, so each stage runs alone from files or chained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import stable_hash
from .media import list_media


def _named(path: Path, name: str) -> dict[str, Any]:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).stem)[:40]
    return {
        "path": str(path),
        "clip_id": f"{stem}-{stable_hash(name):016x}"[: len(stem) + 9],
        "media": name,
        "source": name,
    }


def clip_inputs(source: str | Path, images: bool = False) -> list[dict[str, Any]]:
    """The clips of ``source``; raises ``ValueError`` naming what is accepted when it is none of them."""
    from diffusers_cogvideox.records import load_clips

    source = Path(source)
    if source.is_dir() and any((source / "data").glob("*.parquet")):
        return [{**clip.to_row(), "path": str(source / clip.media)} for clip in load_clips(source)]
    if source.is_dir():
        files = list_media(source, images=images)
        if not files:
            raise ValueError(f"no video{' or image' if images else ''} files under {source.name!r}")
        return [_named(p, p.relative_to(source).as_posix()) for p in files]
    if source.is_file() and source.suffix == ".txt":
        lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        paths = [(source.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines]
        missing = [line for line, p in zip(lines, paths) if not p.is_file()]
        if missing:
            raise ValueError(f"{source.name}: {len(missing)} listed files do not exist, e.g. {missing[0]!r}")
        return [_named(p, line) for p, line in zip(paths, lines)]
    raise ValueError(
        f"cannot read clips from {source.name!r}: pass a clip dataset folder (data/*.parquet), a folder of "
        "videos, or a .txt file listing one video path a line"
    )
