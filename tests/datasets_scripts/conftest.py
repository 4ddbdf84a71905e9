"""Tiny media folders, annotations and stub samplers/scorers for the dataset-script tests (all made on the fly)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusers_cogvideox.video_io import export_to_video


def write_image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((16, 16, 3)) * 255).astype("uint8")).save(path)
    return path


def write_video(path: Path, seed: int, frames: int = 9) -> Path:
    rng = np.random.default_rng(seed)
    export_to_video(rng.random((frames, 16, 16, 3)), path, fps=8)
    return path


def good_annotation(modality: str, seed: int) -> dict:
    """A full, in-range annotation for every key of the taxonomy (legacy name for one image key)."""
    from trl_vision_reward.reward.taxonomy import load_taxonomy

    rng = np.random.default_rng(seed)
    ann = {k.key: int(rng.integers(k.low, k.high + 1)) for k in load_taxonomy(modality).keys.values()}
    if modality == "image":
        ann["sharpness"] = ann.pop("clarity")  # legacy key: accepted and renamed
    return ann


@pytest.fixture
def vrdb_folder(tmp_path):
    """``(media_dir, records, modality)`` factory: ``n`` good rows plus the named bad rows."""

    def make(modality: str = "image", n: int = 12, bad: bool = True):
        media = tmp_path / f"media_{modality}"
        media.mkdir()
        write = write_image if modality == "image" else write_video
        suffix = ".png" if modality == "image" else ".mp4"
        records = []
        for i in range(n):
            write(media / f"{i}{suffix}", i)
            records.append(
                {
                    "internal_id": f"{modality}-{i}",
                    "prompt": f"prompt number {i // 2}",  # two samples per prompt
                    "file_name": f"{i}{suffix}",
                    "url": f"https://example.org/{i}",
                    "annotation": good_annotation(modality, i),
                    "meta_result": [1, 0, 1],
                    "meta_mask": [1, 1, 0],
                }
            )
        if bad:
            (media / f"corrupt{suffix}").write_bytes(b"this is not a media file")
            first_key = next(iter(records[0]["annotation"]))
            records += [
                {**records[0]},  # duplicate id
                {**records[1], "internal_id": "missing-media", "file_name": f"nowhere{suffix}"},
                {**records[1], "internal_id": "corrupt-media", "file_name": f"corrupt{suffix}"},
                {**records[1], "internal_id": "out-of-range", "annotation": {first_key: 99}},
                {**records[1], "internal_id": "unknown-key", "annotation": {"not a key": 0}},
                {"internal_id": "no-prompt", "file_name": f"0{suffix}", "annotation": {}},
            ]
        ann = tmp_path / f"annotations_{modality}.jsonl"
        ann.write_text("".join(json.dumps(r) + "\n" for r in records))
        return media, ann, records

    return make


class StubSampler:
    """Deterministic random-noise 'videos'; raises ``crash`` (a BaseException: a kill) on the k-th call."""

    suffix = ".mp4"

    def __init__(self, crash_on_call: int | None = None, fail_prompts: tuple[str, ...] = ()):
        self.calls: list[str] = []
        self.crash_on_call = crash_on_call
        self.fail_prompts = fail_prompts

    def __call__(self, prompt, num_samples, seed):
        self.calls.append(prompt)
        if self.crash_on_call is not None and len(self.calls) == self.crash_on_call:
            raise KeyboardInterrupt("simulated kill")
        if prompt in self.fail_prompts:
            raise RuntimeError(f"cannot generate {prompt!r}")
        rng = np.random.default_rng(seed)
        return [rng.random((5, 16, 16, 3)) for _ in range(num_samples)]

    def write(self, sample, path):
        export_to_video(sample, path, fps=8)


class StubScorer:
    """Scores from a hash of the file's bytes: 3 dimensions, deterministic, spread wide enough to admit pairs."""

    checklist_id = "stub"

    def __init__(self):
        self.scored: list[str] = []

    def __call__(self, paths, prompt):
        out = []
        for path in paths:
            self.scored.append(str(path))
            h = int(hashlib.sha1(Path(path).read_bytes()).hexdigest(), 16)
            p = np.random.default_rng(h % 2**32).random(6)
            answers = p > 0.5
            q = answers * np.array([0.5, 0.4, 0.3, 0.6, 0.2, 0.8])
            out.append(
                {
                    "probabilities": p.tolist(),
                    "answers": answers.tolist(),
                    "question_scores": q.tolist(),
                    "dimension_scores": {
                        "alignment": float(q[:2].sum()),
                        "quality": float(q[2:4].sum()),
                        "safety": float(q[4:].sum()),
                    },
                    "total": float(q.sum()),
                }
            )
        return out


@pytest.fixture
def stub_sampler():
    return StubSampler


@pytest.fixture
def stub_scorer():
    return StubScorer
