"""Secrets and machine-local paths kept out of everything a command saves: args files, cards, logs.

Hub tokens are given on the command line or in the environment; a training-arguments file, a model card or a log
line is shared with the model, so every value that is or looks like a token is replaced by :data:`REDACTED`, and
absolute paths of this machine become names relative to a folder the reader has (or just the file name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|auth|credential)", re.IGNORECASE)
SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|api_org_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})\b")


def redact_text(text: str) -> str:
    """``text`` with anything shaped like a Hub (or other API) token replaced."""
    return SECRET_VALUE.sub(REDACTED, text)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key)) and not key.endswith(("_tokens", "_token_id", "_token_ids", "_length"))


def redact(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, strings) with secret-named keys and token-shaped strings redacted."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_secret_key(str(k)) and v not in (None, "", False) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def secret_fields(obj: Any) -> list[str]:
    """Names of an object's attributes (a dataclass such as ``TrainingArguments``) that hold a secret value."""
    names = getattr(obj, "__dataclass_fields__", None) or vars(obj)
    return [n for n in names if is_secret_key(n) and isinstance(getattr(obj, n, None), str) and getattr(obj, n)]


def portable_path(path: str | os.PathLike | None, base: str | os.PathLike | None = None) -> str | None:
    """``path`` as a reader elsewhere can use it: relative to ``base`` when inside it, a Hub id or relative path as
    given, otherwise only its last component (an absolute path of this machine means nothing elsewhere)."""
    if path is None:
        return None
    text = os.fspath(path)
    if not os.path.isabs(os.path.expanduser(text)):
        return text
    resolved = Path(text).expanduser().resolve(strict=False)
    if base is not None:
        base_resolved = Path(base).expanduser().resolve(strict=False)
        if resolved == base_resolved or base_resolved in resolved.parents:
            return resolved.relative_to(base_resolved).as_posix() or "."
    return resolved.name


def redacted_copy(obj: Any) -> Any:
    """A shallow copy of ``obj`` (e.g. ``TrainingArguments``) whose secret attributes are None, for saving."""
    import copy

    clone = copy.copy(obj)
    for name in secret_fields(obj):
        object.__setattr__(clone, name, None)
    return clone
