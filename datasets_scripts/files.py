"""Small file helpers shared by the dataset scripts: JSON/JSONL reading, atomic writes, media probing, hashing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from diffusers_cogvideox.outputs import atomic_write_bytes  # the one atomic writer (re-exported)
from diffusers_cogvideox.video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES  # noqa: F401  (the media module's, re-exported)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a ``.jsonl`` file (one object a line) or a ``.json`` file (a list, or ``{"data": [...]}``).

    Raises ``ValueError`` naming the file and line for a malformed line (an annotation file is input the user
    controls: a broken line is an error, not something to drop).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {n}: not JSON ({exc.msg})") from exc
        return out
    data = json.loads(text)
    if isinstance(data, Mapping):
        for key in ("data", "records", "rows", "annotations"):
            if isinstance(data.get(key), list):
                return list(data[key])
        raise ValueError(f"{path.name}: expected a JSON list or an object with a 'data' list; got keys {sorted(data)}")
    if not isinstance(data, list):
        raise ValueError(f"{path.name}: expected a JSON list of records; got {type(data).__name__}")
    return data


def iter_jsonl_tolerant(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of an append-only JSONL log, skipping a torn last line left by a crash mid-write."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn write: the record was never committed
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def append_jsonl(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record as a single line and fsync it: the line is the commit point of a resumable job.

    A torn line from an earlier crash is closed off first, so the new record always starts on its own line.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"
    with path.open("a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as JSONL atomically (temp file + rename)."""
    return atomic_write_text(
        path, "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in records)
    )


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of a readable image; raises ``ValueError`` saying why it is not readable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"unreadable image ({type(exc).__name__}: {exc})") from exc


def probe_video(path: str | Path) -> int:
    """Number of frames decoded (at least one) from a readable video; raises ``ValueError`` otherwise."""
    from diffusers_cogvideox.video_io import count_frames

    return count_frames(path)


def probe_media(path: str | Path, modality: str) -> None:
    """Raise ``ValueError`` with the reason if ``path`` is missing or not a readable ``modality`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"missing media file {path.name!r}")
    if path.stat().st_size == 0:
        raise ValueError(f"empty media file {path.name!r}")
    if modality == "image":
        probe_image(path)
    else:
        probe_video(path)
