"""Both Gradio Spaces, driven through gradio_client on localhost with the tiny default models."""

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the Spaces need the 'spaces' extra: pip install -e '.[spaces]'")
from gradio_client import Client, handle_file  # noqa: E402

from diffusers_cogvideox.video_io import export_to_video  # noqa: E402


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


def test_vision_reward_space_scores_an_image_and_a_video(launch, tmp_path):
    from hub_cards.spaces.vision_reward_app import QUESTION_COLUMNS, build_demo

    image = tmp_path / "i.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(image)
    video = tmp_path / "v.mp4"
    export_to_video(np.random.default_rng(1).random((9, 32, 32, 3)), video, fps=8)
    client = launch(build_demo())

    summary, chart, dims, questions = client.predict(handle_file(str(image)), None, "a cat", api_name="/score")
    assert (
        summary.startswith("### Total:")
        and "image, checklist `image_select`" in summary
        and "Tiny random scorer" in summary
    )
    assert [row[0] for row in dims["data"]] == ["Alignment", "Composition", "Quality", "Fidelity", "Safety & Emotion"]
    assert questions["headers"] == QUESTION_COLUMNS and len(questions["data"]) == 31
    assert questions["data"][0][2] == 'Does the image show "a cat"?'
    assert all(0.0 <= row[3] <= 1.0 and row[4] in ("yes", "no") for row in questions["data"])
    assert chart["data"] == dims["data"]

    summary, _, dims, questions = client.predict(None, handle_file(str(video)), "a cat", api_name="/score")
    assert "video, checklist `video_select`" in summary and len(questions["data"]) == 29
    assert "Physics" in [row[0] for row in dims["data"]]

    with pytest.raises(Exception, match="exactly one input"):
        client.predict(None, None, "a cat", api_name="/score")


@pytest.mark.slow
def test_cogvideox_space_ranks_best_of_n(launch):
    from hub_cards.spaces.cogvideox_app import build_demo

    client = launch(build_demo())
    best, summary, gallery, table = client.predict("a red ball", 3, 2, 0, api_name="/generate")
    assert summary.startswith("### Best of 3") and "Tiny random CogVideoX" in summary
    assert [row[0] for row in table["data"]] == [1, 2, 3]
    totals = [(row[2], row[3]) for row in table["data"]]
    assert totals == sorted(totals, reverse=True)
    best_path = best["video"] if isinstance(best, dict) else best
    assert len(gallery) == 3 and str(best_path).endswith(".mp4")
