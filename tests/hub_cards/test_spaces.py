"""Both Gradio Spaces in-process, driven through gradio_client on localhost, and the score-reading rules they share."""

import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio", reason="the Spaces need the 'spaces' extra: pip install -e '.[spaces]'")
from gradio_client import Client, handle_file  # noqa: E402

from diffusers_cogvideox.video_io import export_to_video  # noqa: E402
from hub_cards.spaces.scores import ordered_dimensions, rank_samples, total_identity, total_rule  # noqa: E402
from trl_vision_reward.reward import scoring_rule  # noqa: E402


@pytest.fixture
def launch():
    demos = []

    def start(demo):
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, show_error=True)
        demos.append(demo)
        return Client(url, verbose=False)

    yield start
    for demo in demos:
        demo.close()


@pytest.fixture(scope="module")
def world_scorer():
    from trl_vision_reward.reward.sample_scorer import load_vision_reward

    return load_vision_reward(None, "video")


# ------------------------------------------------------------------------------------------------ the shared rules
def test_ranking_is_by_total_then_soft_total_and_flags_the_ties_it_broke():
    samples = [
        {"index": 0, "total": 0.1, "soft_total": 0.05},
        {"index": 1, "total": 0.3, "soft_total": 0.01},
        {"index": 2, "total": 0.1, "soft_total": 0.07},
        {"index": 3, "total": -0.2, "soft_total": 0.9},
    ]
    ranked = rank_samples(samples)
    assert [r["index"] for r in ranked] == [1, 2, 0, 3]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert [r["tie_broken_by_soft"] for r in ranked] == [False, True, True, False]


def test_total_identity_matches_the_official_rule_of_the_tiny_world_checklist(world_scorer):
    checklist = world_scorer.checklist.with_weights(torch.linspace(0.1, 1.0, len(world_scorer.checklist)))
    answers = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=torch.float64)
    dims = dict(zip(checklist.dimensions, scoring_rule.dimension_scores(checklist, answers).tolist()))
    total = float(scoring_rule.official_score(checklist, answers))
    line = total_identity(checklist, dims, total)
    two_r, w, d, shown = (float(x) for x in re.match(r"total = \(2 × (\S+) − (\S+)\) / (\S+) = (\S+)", line).groups())
    assert (2 * two_r - w) / d == pytest.approx(total, rel=1e-3) and shown == pytest.approx(total, rel=1e-3)
    assert f"divided by {checklist.divisor:g}" in total_rule(checklist)


def test_dimensions_are_put_in_checklist_order_and_unknown_ones_refused(world_scorer):
    c = world_scorer.checklist
    assert ordered_dimensions(c, {d: 0.0 for d in reversed(c.dimensions)}) == list(c.dimensions)
    with pytest.raises(ValueError, match="not dimensions of checklist"):
        ordered_dimensions(c, {"Safety": 0.0})


# ------------------------------------------------------------------------------------------------ the apps
def test_vision_reward_space_on_the_random_scorer_scores_an_image_and_a_video(launch, tmp_path):
    from hub_cards.spaces.vision_reward_app import QUESTION_COLUMNS, build_demo

    image = tmp_path / "i.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(image)
    video = tmp_path / "v.mp4"
    export_to_video(np.random.default_rng(1).random((9, 32, 32, 3)), video, fps=8)
    client = launch(build_demo("random"))

    summary, chart, dims, questions, rule = client.predict(handle_file(str(image)), None, "a cat", api_name="/score")
    assert (
        summary.startswith("### Total:")
        and "image, checklist `image_select`" in summary
        and "Tiny random scorer" in summary
    )
    assert [row[0] for row in dims["data"]] == ["Alignment", "Composition", "Quality", "Fidelity", "Safety & Emotion"]
    assert questions["headers"] == QUESTION_COLUMNS and len(questions["data"]) == 31
    assert questions["data"][0][2] == 'Does the image show "a cat"?'
    assert all(0.0 <= row[3] <= 1.0 and row[4] in ("yes", "no") for row in questions["data"])
    assert chart["value"]["data"] == dims["data"] and chart["sort"] == [row[0] for row in dims["data"]]
    assert "probability feature" in rule  # the image rule has masks and the alignment probability

    summary, _, dims, questions, _ = client.predict(None, handle_file(str(video)), "a cat", api_name="/score")
    assert "video, checklist `video_select`" in summary and len(questions["data"]) == 29
    assert "Physics" in [row[0] for row in dims["data"]]

    with pytest.raises(Exception, match="exactly one input"):
        client.predict(None, None, "a cat", api_name="/score")


def test_vision_reward_space_on_the_tiny_world_scores_a_video_and_an_image_as_a_still(launch, tmp_path, world_scorer):
    from hub_cards.spaces.vision_reward_app import build_demo, example_clip, example_image

    checklist = world_scorer.checklist
    client = launch(build_demo(None, {"video": world_scorer}))
    clip, image = example_clip(tmp_path), example_image(tmp_path)

    summary, chart, dims, questions, rule = client.predict(
        None, handle_file(str(clip)), "a red circle on a grey background", api_name="/score"
    )
    shown = min(world_scorer.processor.max_frames, 9)  # the 9-frame example clip, as the scorer samples it
    assert (
        f"video, checklist `{checklist.name}`, {len(checklist)} questions" in summary and f"{shown} frames" in summary
    )
    assert [row[0] for row in dims["data"]] == list(checklist.dimensions) == chart["sort"]
    assert chart["value"]["data"] == dims["data"]
    assert [row[2] for row in questions["data"]] == [q.text for q in checklist.questions]
    assert "total = (2 ×" in summary and "total = (2 × Σ_dims R(dim) − Σ w)" in rule
    total = float(re.search(r"### Total: (\S+)", summary).group(1))
    assert math.isfinite(total)

    summary, _, dims, _, _ = client.predict(handle_file(str(image)), None, "a red circle", api_name="/score")
    assert "one-frame still clip" in summary and [row[0] for row in dims["data"]] == list(checklist.dimensions)
