"""Key checks shared by the SAT -> diffusers converters: fail loudly, listing every unknown and missing key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


class StateDictMismatchError(ValueError):
    """A state dict does not have exactly the keys (and shapes) a converter expects."""


def _listing(title: str, keys: list[str], limit: int) -> str:
    shown = "\n".join(f"    {key}" for key in keys[:limit])
    more = f"\n    ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"  {title} ({len(keys)}):\n{shown}{more}"


def check_state_dict_keys(
    found: Mapping[str, torch.Tensor] | Iterable[str],
    expected: Mapping[str, tuple[int, ...] | torch.Size | None] | Iterable[str],
    *,
    what: str,
    optional: Iterable[str] = (),
    limit: int = 50,
) -> None:
    """Raise ``StateDictMismatchError`` unless ``found`` has exactly the ``expected`` keys (shapes too, where given).

    Args:
        found: the state dict (or its keys) to check.
        expected: the keys it must have; a mapping to shapes also checks every tensor's shape (``None``: any shape).
        what: names the state dict in the message, e.g. ``"SAT transformer checkpoint (variant 5b)"``.
        optional: keys that may be present or absent (e.g. buffers that are recomputed and dropped).
        limit: at most this many keys are listed per category.
    """
    found_keys = list(found.keys() if isinstance(found, Mapping) else found)
    expected_keys = list(expected.keys() if isinstance(expected, Mapping) else expected)
    optional = set(optional)
    expected_set, found_set = set(expected_keys), set(found_keys)
    unknown = sorted(k for k in found_set - expected_set if k not in optional)
    missing = sorted(k for k in expected_set - found_set if k not in optional)
    wrong_shapes = []
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        for key in sorted(expected_set & found_set):
            shape = expected[key]
            if shape is not None and tuple(found[key].shape) != tuple(shape):
                wrong_shapes.append(f"{key}: expected {list(shape)}, found {list(found[key].shape)}")
    if not (unknown or missing or wrong_shapes):
        return
    parts = [f"{what} does not match the expected keys:"]
    if unknown:
        parts.append(_listing("unknown keys", unknown, limit))
    if missing:
        parts.append(_listing("missing keys", missing, limit))
    if wrong_shapes:
        parts.append(_listing("wrong shapes", wrong_shapes, limit))
    raise StateDictMismatchError("\n".join(parts))
