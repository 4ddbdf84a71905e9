"""Converters from public image-preference record formats to the common pair format.

Common pair record (one preference)::

    {"prompt": str, "chosen": {"bytes": ..., "path": ...}, "rejected": {...},
     "source": "pickapic_v2" | "hpdv2" | "imagerewarddb", "source_id": str, "chosen_id": str, "rejected_id": str}

``chosen``/``rejected`` are ``datasets.Image`` storage dicts (bytes or a path relative to the source's image root), so
the pairs cast straight to ``Image()`` and push with the bytes embedded. Every record that gives no strict preference
(a tie, no label, identical images, a malformed row) is returned in the rejects list with the reason; nothing is
dropped silently.

Source formats (from the datasets' cards and files):

- **Pick-a-Pic v2** (``yuvalkirstain/pickapic_v2``): one row per comparison with ``caption``, ``jpg_0``/``jpg_1``
  (JPEG bytes), ``label_0``/``label_1`` (1/0 for a preference, 0.5/0.5 for a tie), ``image_0_uid``/``image_1_uid``,
  ``has_label``, ``are_different``, ``ranking_id``.
- **HPDv2** (``ymhao/HPDv2``): ``train.json`` rows ``{"prompt", "file_path": [two paths], "human_preference": [1, 0]}``
  (1 marks the preferred image); ``test.json`` rows ``{"prompt", "image_path": [...], "rank": [...]}`` (a ranking, 1 =
  best), converted to every strictly ordered pair.
- **ImageRewardDB** (``THUDM/ImageRewardDB``): one row per image, ``image_path, prompt_id, prompt, rank, ...``; images
  of one ``prompt_id`` are ranked (1 = best) and converted to every strictly ordered pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

FORMATS = ("pickapic_v2", "hpdv2", "imagerewarddb")


def _image(value: Any) -> dict[str, Any]:
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, str):
        return {"bytes": None, "path": value}
    raise ValueError(f"an image must be bytes, a path or a {{'bytes', 'path'}} dict; got {type(value).__name__}")


def _pair(prompt, chosen, rejected, source, source_id, chosen_id, rejected_id) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "chosen": _image(chosen),
        "rejected": _image(rejected),
        "source": source,
        "source_id": str(source_id),
        "chosen_id": str(chosen_id),
        "rejected_id": str(rejected_id),
    }


def convert_pickapic(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Pick-a-Pic v2 rows -> (pairs, rejects). Ties, unlabelled rows and identical images are rejected."""
    pairs, rejects = [], []
    for row, r in enumerate(records):
        rid = r.get("ranking_id", row)
        try:
            if r.get("has_label") is False:
                raise ValueError("unlabelled: has_label is false")
            if r.get("are_different") is False:
                raise ValueError("identical images: are_different is false")
            l0, l1 = float(r["label_0"]), float(r["label_1"])
            if l0 == l1:
                raise ValueError(f"tie: label_0 = label_1 = {l0}")
            first = l0 > l1
            pairs.append(
                _pair(
                    r["caption"],
                    r["jpg_0"] if first else r["jpg_1"],
                    r["jpg_1"] if first else r["jpg_0"],
                    "pickapic_v2",
                    rid,
                    r.get("image_0_uid" if first else "image_1_uid"),
                    r.get("image_1_uid" if first else "image_0_uid"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"missing column: {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
            rejects.append({"row": row, "source_id": str(rid), "reason": reason})
    return pairs, rejects


def _ranked_pairs(prompt, images, ranks, source, source_id, ids) -> list[dict]:
    """Every strictly ordered pair of a ranking (lower rank = better; equal ranks give no pair)."""
    out = []
    for i, j in itertools.combinations(range(len(images)), 2):
        if ranks[i] == ranks[j]:
            continue
        better, worse = (i, j) if ranks[i] < ranks[j] else (j, i)
        out.append(_pair(prompt, images[better], images[worse], source, source_id, ids[better], ids[worse]))
    return out


def convert_hpdv2(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """HPDv2 ``train.json`` (two images + ``human_preference``) or ``test.json`` (``image_path`` + ``rank``) rows."""
    pairs, rejects = [], []
    for row, r in enumerate(records):
        try:
            if "human_preference" in r:
                paths, pref = list(r["file_path"]), list(r["human_preference"])
                if len(paths) != 2 or len(pref) != 2:
                    raise ValueError(f"expected 2 images and 2 preferences; got {len(paths)} and {len(pref)}")
                if pref[0] == pref[1]:
                    raise ValueError(f"tie: human_preference = {pref}")
                # a preference of 1 marks the better image: rank = 1 - preference
                pairs += _ranked_pairs(r["prompt"], paths, [1 - p for p in pref], "hpdv2", row, paths)
            else:
                paths, ranks = list(r["image_path"]), list(r["rank"])
                if len(paths) != len(ranks) or len(paths) < 2:
                    raise ValueError(
                        f"expected >= 2 images with one rank each; got {len(paths)} images, {len(ranks)} ranks"
                    )
                found = _ranked_pairs(r["prompt"], paths, ranks, "hpdv2", row, paths)
                if not found:
                    raise ValueError("tie: every image has the same rank")
                pairs += found
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"missing column: {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
            rejects.append({"row": row, "source_id": str(row), "reason": reason})
    return pairs, rejects


def convert_imagerewarddb(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """ImageRewardDB per-image rows, grouped by ``prompt_id`` and ranked (1 = best) into pairs."""
    groups: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    rejects = []
    for row, r in enumerate(records):
        missing = [k for k in ("image_path", "prompt_id", "prompt", "rank") if r.get(k) is None]
        if missing:
            rejects.append(
                {"row": row, "source_id": str(r.get("prompt_id")), "reason": f"missing column: {missing[0]}"}
            )
            continue
        groups.setdefault(str(r["prompt_id"]), []).append((row, r))
    pairs = []
    for prompt_id, members in groups.items():
        if len(members) < 2:
            rejects.append({"row": members[0][0], "source_id": prompt_id, "reason": "single image: no pair to form"})
            continue
        images = [m["image"] if m.get("image") is not None else m["image_path"] for _, m in members]
        found = _ranked_pairs(
            members[0][1]["prompt"],
            images,
            [int(m["rank"]) for _, m in members],
            "imagerewarddb",
            prompt_id,
            [m["image_path"] for _, m in members],
        )
        if not found:
            rejects.append(
                {"row": members[0][0], "source_id": prompt_id, "reason": "tie: every image has the same rank"}
            )
        pairs += found
    return pairs, rejects


CONVERTERS = {"pickapic_v2": convert_pickapic, "hpdv2": convert_hpdv2, "imagerewarddb": convert_imagerewarddb}
SOURCE_DATASETS = {
    "pickapic_v2": "yuvalkirstain/pickapic_v2",
    "hpdv2": "ymhao/HPDv2",
    "imagerewarddb": "THUDM/ImageRewardDB",
}


def convert(records: Iterable[Mapping[str, Any]], source_format: str) -> tuple[list[dict], list[dict]]:
    """Convert ``records`` of ``source_format`` (one of :data:`FORMATS`) to common pairs; returns (pairs, rejects)."""
    if source_format not in CONVERTERS:
        raise ValueError(f"source_format must be one of {FORMATS}; got {source_format!r}")
    return CONVERTERS[source_format](records)


def pair_features():
    """``datasets.Features`` of the common pair format."""
    from datasets import Features, Image, Value

    return Features(
        {
            "prompt": Value("string"),
            "chosen": Image(),
            "rejected": Image(),
            "source": Value("string"),
            "source_id": Value("string"),
            "chosen_id": Value("string"),
            "rejected_id": Value("string"),
        }
    )


def pairs_to_dataset(pairs: list[dict[str, Any]], image_root: str | None = None):
    """A ``datasets.Dataset`` of common pairs; image paths are resolved inside ``image_root`` (absolute paths, ``..``
    and symlinks out of it are refused: the images are embedded into Parquet that ``publish`` would push)."""
    from datasets import Dataset

    from diffusers_cogvideox.outputs import resolve_inside

    def resolve(img: dict[str, Any]) -> dict[str, Any]:
        if img["bytes"] is None and image_root and img["path"]:
            return {"bytes": None, "path": str(resolve_inside(image_root, img["path"], what="image path"))}
        return img

    rows = [{**p, "chosen": resolve(p["chosen"]), "rejected": resolve(p["rejected"])} for p in pairs]
    return Dataset.from_list(rows, features=pair_features())
