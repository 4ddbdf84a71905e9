"""``python -m hub_cards.spaces write``: the Space folder it writes, its refusals, and each Space launched from its
folder as a Space runs it (``python app.py`` with GRADIO_SERVER_NAME/PORT) and driven with gradio_client."""

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from hub_cards.spaces.space_folder import distribution

WRITE = [sys.executable, "-m", "hub_cards.spaces", "write"]


def write(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command as a user runs it: a fresh process without the tests' debug variable (one-line errors)."""
    env = {key: value for key, value in os.environ.items() if key != "COGVIDEOX_VR_DEBUG"}
    return subprocess.run([*WRITE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.parametrize(
    ("app", "title"), [("cogvideox", "CogVideoX best-of-N"), ("vision-reward", "VisionReward scorer")]
)
def test_write_makes_a_space_folder_with_app_requirements_and_readme_metadata(tmp_path, app, title):
    import gradio

    done = write("--app", app, "--out", "space", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "space"
    assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == {
        "app.py",
        "requirements.txt",
        "README.md",
    }
    meta = front_matter(folder / "README.md")
    assert {
        "title",
        "emoji",
        "colorFrom",
        "colorTo",
        "sdk",
        "sdk_version",
        "app_file",
        "license",
        "short_description",
    } <= set(meta)
    assert (meta["title"], meta["sdk"], meta["sdk_version"], meta["app_file"]) == (
        title,
        "gradio",
        gradio.__version__,
        "app.py",
    )
    name, version = distribution()
    assert f"{name}[spaces]=={version}" in (folder / "requirements.txt").read_text().splitlines()
    module = "cogvideox_app" if app == "cogvideox" else "vision_reward_app"
    source = (folder / "app.py").read_text()
    assert f"from hub_cards.spaces.{module} import build_demo" in source and "demo.launch()" in source
    compile(source, "app.py", "exec")


def test_write_refuses_a_foreign_folder_an_earlier_write_and_a_local_model_path(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done = write("--app", "cogvideox", "--out", "mine", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not empty" in done.stderr
    assert (
        sorted(p.name for p in foreign.iterdir()) == ["notes.txt"] and (foreign / "notes.txt").read_text() == "keep me"
    )

    assert write("--app", "cogvideox", "--out", "space", cwd=tmp_path).returncode == 0
    again = write("--app", "vision-reward", "--out", "space", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert "cogvideox_app" in (tmp_path / "space" / "app.py").read_text()  # unchanged
    replaced = write("--app", "vision-reward", "--out", "space", "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0 and "vision_reward_app" in (tmp_path / "space" / "app.py").read_text()

    (tmp_path / "ckpt").mkdir()
    local = write("--app", "vision-reward", "--out", "other", "--model", "ckpt", cwd=tmp_path)
    assert local.returncode == 2 and "Hub repo id" in local.stderr and not (tmp_path / "other").exists()
    mixed = write("--app", "cogvideox", "--out", "other", "--random", "--model", "a/b", cwd=tmp_path)
    assert mixed.returncode == 2 and "--random replaces" in mixed.stderr


def test_write_random_and_repo_ids_reach_app_py_and_the_metadata(tmp_path):
    assert write("--app", "cogvideox", "--out", "r", "--random", cwd=tmp_path).returncode == 0
    assert "build_demo(model='random', scorer_model='random')" in (tmp_path / "r" / "app.py").read_text()
    done = write(
        "--app", "cogvideox", "--out", "h", "--model", "THUDM/CogVideoX-2b", "--scorer", "me/vr-video", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert front_matter(tmp_path / "h" / "README.md")["models"] == ["THUDM/CogVideoX-2b", "me/vr-video"]


# ------------------------------------------------------------------------------------------------ launched as a Space
def world_checklist():
    """The shipped scorer's checklist, read from its config (no model load in the test process)."""
    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.tiny import tiny_world_scorer_folder

    return Checklist.from_dict(json.loads((tiny_world_scorer_folder() / "config.json").read_text())["checklist"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def space(tmp_path):
    """Write the Space folder for an app, run ``python app.py`` there on 127.0.0.1, yield a gradio_client Client."""
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    servers = []

    def start(app: str, *extra: str):
        done = write("--app", app, "--out", "space", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        port = free_port()
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
        env["GRADIO_ANALYTICS_ENABLED"] = "False"
        log = open(tmp_path / "server.log", "w")
        server = subprocess.Popen([sys.executable, "app.py"], cwd=tmp_path / "space", env=env, stdout=log, stderr=log)
        servers.append((server, log))
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Space did not answer within 180 s"
            time.sleep(0.5)
        return Client(url, verbose=False)

    yield start
    for server, log in servers:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_cogvideox_space_from_its_folder_ranks_n_tiny_world_samples(space):
    dims = list(world_checklist().dimensions)
    client = space("cogvideox")
    best, summary, gallery, chart, table = client.predict(
        "a red circle on a grey background", 4, 10, 0, api_name="/generate"
    )
    assert summary.startswith("### Best of 4") and "Trained tiny-world CogVideoX and scorer" in summary
    assert table["headers"] == ["rank", "sample", "total", "soft total", "tie broken by soft total", *dims]
    rows = table["data"]
    assert [row[0] for row in rows] == [1, 2, 3, 4] and sorted(row[1] for row in rows) == [0, 1, 2, 3]
    keys = [(row[2], row[3]) for row in rows]
    assert keys == sorted(keys, reverse=True)
    assert all(math.isfinite(x) for row in rows for x in [row[2], row[3], *row[5:]])
    totals = [row[2] for row in rows]
    assert [row[4] for row in rows] == [totals.count(t) > 1 for t in totals]
    assert chart["sort"] == dims and [row[0] for row in chart["value"]["data"]] == dims
    best_path = best["video"] if isinstance(best, dict) else best
    assert len(gallery) == 4 and str(best_path).endswith(".mp4")


@pytest.mark.slow
def test_vision_reward_space_from_its_folder_scores_a_clip(space, tmp_path):
    from gradio_client import handle_file

    from hub_cards.spaces.vision_reward_app import example_clip

    clip = example_clip(tmp_path)
    client = space("vision-reward")
    summary, chart, dims, questions, rule = client.predict(
        None, handle_file(str(clip)), "a red circle on a grey background", api_name="/score"
    )
    assert summary.startswith("### Total:") and "Trained tiny-world scorer" in summary
    checklist = world_checklist()
    assert [row[2] for row in questions["data"]] == [q.text for q in checklist.questions]
    assert all(0.0 <= row[3] <= 1.0 for row in questions["data"])
    assert chart["sort"] == [row[0] for row in dims["data"]] == list(checklist.dimensions)
    assert all(math.isfinite(row[1]) and math.isfinite(row[2]) for row in dims["data"])
    assert "How the total relates to the dimension scores" in rule
