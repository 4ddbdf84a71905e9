"""Small shared helpers for card rendering: Markdown tables, template loading, repo-id checks, versions."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable, Mapping
from enum import Enum
from importlib import resources
from typing import Any

from .validation import REPO_ID


def template(name: str) -> str:
    """The text of ``hub_cards/templates/<name>``."""
    return resources.files("hub_cards").joinpath("templates", name).read_text(encoding="utf-8")


def is_repo_id(value: Any) -> bool:
    """Whether ``value`` looks like a Hub repo id (``owner/name``) rather than a local path."""
    import os

    if not isinstance(value, str) or value.startswith(".") or os.path.exists(value):
        return False  # an existing folder is a local checkpoint, even when its path looks like "owner/name"
    return "/" in value and bool(REPO_ID.match(value))


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, containers as compact JSON, pipes escaped."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def kv_table(mapping: Mapping[str, Any] | None, headers: tuple[str, str] = ("name", "value")) -> str:
    """A two-column Markdown table of a mapping ('' when empty)."""
    if not mapping:
        return ""
    lines = [f"| {headers[0]} | {headers[1]} |", "| --- | --- |"]
    lines += [f"| {fmt(k)} | {fmt(v)} |" for k, v in mapping.items()]
    return "\n".join(lines)


def rows_table(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    """A Markdown table of records ('' when empty); columns default to the first record's keys."""
    rows = list(rows)
    if not rows:
        return ""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones are left out)."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "1M<n<10M" if n < 10_000_000 else "10M<n<100M"
