"""The output policy, containment, resume consistency, secrets and bounded decode, through the commands as called
in-process (``main([...])`` with the debug variable unset, so the one-line error path runs as for a user)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from diffusers_cogvideox.errors import UsageError
from diffusers_cogvideox.outputs import MANIFEST_NAME, PREVIOUS_NAME
from tests.datasets_scripts.conftest import StubSampler, StubScorer

from .helpers import snapshot


@pytest.fixture
def user_cli(monkeypatch, capsys):
    """Run ``main(argv)`` of a console script as a user does (no debug variable); returns (status, stderr)."""
    monkeypatch.delenv("COGVIDEOX_VR_DEBUG", raising=False)

    def run(main, argv):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        run.out = captured.out
        return code, captured.err

    return run


def one_line(code, err, *needles):
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- generate-score: resume consistency ----------------------------------------------------------------------------
def _job(out, **kwargs):
    from datasets_scripts.generate_and_score import run_generate_and_score

    return run_generate_and_score(["a", "b"], StubSampler(), StubScorer(), out, progress=False, **kwargs)


def test_generate_score_refuses_a_job_made_with_other_settings(tmp_path):
    out = tmp_path / "job"
    _job(out, samples_per_prompt=2, seed=0, settings={"model": "m1"})
    before = snapshot(out)
    with pytest.raises(UsageError, match=r"samples_per_prompt: 2 -> 3.*seed: 0 -> 5.*--force"):
        _job(out, samples_per_prompt=3, seed=5, settings={"model": "m1"})
    with pytest.raises(UsageError, match=r"model: 'm1' -> 'm2'"):
        _job(out, samples_per_prompt=2, seed=0, settings={"model": "m2"})
    assert snapshot(out) == before  # refused before any process wrote
    assert _job(out, samples_per_prompt=2, seed=0, settings={"model": "m1"}).skipped == 2  # same settings resume
    forced = _job(out, samples_per_prompt=2, seed=0, settings={"model": "m2"}, force=True)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert forced.skipped == 2 and manifest["settings_history"][0]["model"] == "m1"


def test_generate_score_overwrite_replaces_the_job_only_once_the_new_dataset_is_written(tmp_path):
    from datasets_scripts.generate_and_score import collect_scored_samples

    out = tmp_path / "job"
    _job(out, samples_per_prompt=2)
    collect_scored_samples(out)
    (out / "notes.txt").write_text("mine")
    old = snapshot(out)
    _job(out, samples_per_prompt=3, overwrite=True)
    assert (out / PREVIOUS_NAME / "data" / "train-00000-of-00001.parquet").is_file()  # kept until collected
    collect_scored_samples(out)
    assert not (out / PREVIOUS_NAME).exists() and (out / "notes.txt").read_text() == "mine"
    assert snapshot(out) != old and len(list((out / "media").glob("*/*.mp4"))) == 6


# ---- data loss: the commands newly on the policy --------------------------------------------------------------------
def _scores(tmp_path):
    from trl_vision_reward.reward.checklist import Checklist

    n = len(Checklist.load("image"))
    rng = np.random.default_rng(0)
    samples = [
        {"id": f"s{i}", "answers": (rng.random(n) > 0.5).astype(float).tolist(), "p_yes": rng.random(n).tolist()}
        for i in range(6)
    ]
    for i, row in enumerate(samples):
        row["score"] = float(i)
    pairs = [{"chosen": "s5", "rejected": "s0"}, {"chosen": "s4", "rejected": "s1"}, {"chosen": "s3", "rejected": "s2"}]
    (tmp_path / "samples.json").write_text(json.dumps(samples))
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    return tmp_path / "samples.json", tmp_path / "pairs.json", "image"


def test_reward_commands_refuse_user_folders_and_replace_only_their_own_output(tmp_path, user_cli):
    from trl_vision_reward.cli import main

    samples, pairs, checklist = _scores(tmp_path)
    fit = ["fit-weights", "--samples", samples, "--pairs", pairs, "--checklist", checklist, "--max-epochs", "5"]
    evaluate = ["evaluate", "--samples", samples, "--pairs", pairs]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text("my report")
    for argv in (fit, evaluate):
        one_line(*user_cli(main, [*argv, "--output-dir", mine, "--overwrite"]), "holds no manifest")
        assert (mine / "report.json").read_text() == "my report"
        out = tmp_path / argv[0]
        assert user_cli(main, [*argv, "--output-dir", out])[0] == 0
        one_line(*user_cli(main, [*argv, "--output-dir", out]), "--overwrite")  # an earlier run is not replaced
        (out / "notes.txt").write_text("mine")
        assert user_cli(main, [*argv, "--output-dir", out, "--overwrite"])[0] == 0
        assert (out / "notes.txt").read_text() == "mine" and not (out / PREVIOUS_NAME).exists()
    one_line(*user_cli(main, [*fit, "--output-dir", tmp_path]), "lies inside the output folder")


def test_a_failing_overwrite_leaves_the_previous_output_intact(tmp_path, user_cli, monkeypatch):
    import trl_vision_reward.reward.regression as regression
    from trl_vision_reward.cli import main

    samples, pairs, checklist = _scores(tmp_path)
    out = tmp_path / "fit"
    argv = ["fit-weights", "--samples", samples, "--pairs", pairs, "--checklist", checklist, "--output-dir", out]
    assert user_cli(main, [*argv, "--max-epochs", "5"])[0] == 0
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)

    def fails(*args, **kwargs):
        raise ValueError("the fit diverged")

    monkeypatch.setattr(regression, "fit_checklist_weights", fails)  # the new run fails after the claim
    one_line(*user_cli(main, [*argv, "--overwrite"]), "the fit diverged")
    assert snapshot(out) == before  # the earlier weights, byte for byte, and nothing set aside is left over


def test_cogvideox_convert_and_vr_datasets_convert_follow_the_policy(tmp_path, user_cli):
    from datasets_scripts.cli import main as datasets_main
    from diffusers_cogvideox.cli import main as cogvideox_main

    one_line(*user_cli(cogvideox_main, ["convert", "--variant", "2b", "--out", tmp_path / "o"]), "--transformer")
    ckpt = tmp_path / "t.pt"
    torch.save({"module": {}}, ckpt)
    one_line(
        *user_cli(cogvideox_main, ["convert", "--variant", "2b", "--transformer", ckpt, "--out", tmp_path]),
        "lies inside the output folder",
    )
    rows = tmp_path / "hpd.json"
    rows.write_text(json.dumps([{"prompt": "p", "file_path": ["0.png", "1.png"], "human_preference": [1, 0]}]))
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for name in ("0.png", "1.png"):
        Image.new("RGB", (4, 4)).save(images / name)
    argv = ["convert", "--format", "hpdv2", "--input", rows, "--image-root", images, "--out", tmp_path / "conv"]
    assert user_cli(datasets_main, argv)[0] == 0
    one_line(*user_cli(datasets_main, argv), "--overwrite")
    assert user_cli(datasets_main, [*argv, "--overwrite"])[0] == 0
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([{"prompt": "p", "file_path": ["../hpd.json", "1.png"], "human_preference": [1, 0]}]))
    argv[4] = outside
    one_line(*user_cli(datasets_main, [*argv[:-1], tmp_path / "conv2"]), "'..'")


def test_pairs_and_publish_dry_run_follow_the_policy(tmp_path, user_cli):
    from datasets_scripts.cli import main

    job = tmp_path / "job"
    _job(job, samples_per_prompt=3)
    argv = ["pairs", "--scored", job, "--out", tmp_path / "pairs", "--threshold", "0.1"]
    assert user_cli(main, argv)[0] == 0
    one_line(*user_cli(main, argv), "--overwrite")
    one_line(*user_cli(main, ["pairs", "--scored", job, "--out", tmp_path]), "lies inside the output folder")
    publish = ["publish", tmp_path / "pairs", "--repo-id", "me/pairs", "--dry-run", tmp_path / "dry"]
    assert user_cli(main, publish)[0] == 0
    assert (tmp_path / "dry" / "me" / "pairs" / "README.md").is_file()
    one_line(*user_cli(main, publish), "--overwrite")
    one_line(*user_cli(main, [*publish[:3], "../../escape", *publish[4:], "--overwrite"]), "'..'")
    assert not (tmp_path.parent / "escape").exists()


# ---- containment ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, match", [("../secret.png", "'..'"), ("/etc/hostname", "absolute"), ("up.png", "outside")]
)
def test_train_sft_media_stay_inside_the_media_root(tmp_path, value, match):
    from trl_vision_reward.commands.train_sft import _resolve_media

    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", root / "up.png")
    (root / "ok.png").write_bytes(b"x")
    with pytest.raises(UsageError, match=f"record 1: .*{match}"):
        _resolve_media([{"image": "ok.png"}, {"image": value}], "image", root)
    assert _resolve_media([{"image": "ok.png"}], "image", root) == [{"image": str(root / "ok.png")}]


def test_pair_media_stay_inside_the_dataset_folder(tmp_path):
    from trl_vision_reward.records import media_source

    (tmp_path / "data").mkdir()
    (tmp_path / "secret.mp4").write_bytes(b"x")
    with pytest.raises(UsageError, match="'..'"):
        media_source({"chosen": "../secret.mp4"}, "chosen", tmp_path / "data")
    os.symlink(tmp_path / "secret.mp4", tmp_path / "data" / "link.mp4")
    with pytest.raises(UsageError, match="outside its root"):
        media_source({"chosen": "link.mp4"}, "chosen", tmp_path / "data")


# ---- memory-bounded decode -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("frames, fps, max_frames", [(400, 8, 24), (37, 8, 24), (120, 7.5, 4), (9, 8, 24)])
def test_video_decode_keeps_only_the_sampled_frames(tmp_path, frames, fps, max_frames):
    from diffusers_cogvideox.video_io import export_to_video, read_sampled_frames, read_video, sample_frame_indices

    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    export_to_video(rng.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8), path, fps=fps)
    got, stats = read_sampled_frames(path, max_frames)
    everything, file_fps = read_video(path)  # the whole-clip decode, as the reference
    expected = [everything[i] for i in sample_frame_indices(len(everything), file_fps, max_frames)]
    assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert stats["frames_held"] <= 2 * max_frames + 1
    assert stats["frames_read"] <= min(len(everything), math.ceil((max_frames - 1) * file_fps + 2) + 1)


# ---- prompt length -------------------------------------------------------------------------------------------------
def test_the_scorer_checks_the_prompt_against_its_context_before_reading_media(tmp_path):
    from trl_vision_reward.reward.scoring import VisionRewardScorer
    from trl_vision_reward.reward.tiny import tiny_vision_reward

    scorer = VisionRewardScorer(*tiny_vision_reward("image"))
    context = scorer.context_length
    assert context and context > 8
    with pytest.raises(UsageError, match=f"{100_000} characters.*{context} tokens"):
        scorer.score(tmp_path / "missing.png", "x" * 100_000)  # refused before the (missing) file is read
    with pytest.raises(UsageError, match=rf"tokens long; the model reads at most {context}"):
        scorer.score(tmp_path / "missing.png", "word " * (context + 5))


# ---- secrets and resume --------------------------------------------------------------------------------------------
FAKE_TOKEN = "hf_FakeTokenForTheRedactionTest0123456789"


@pytest.mark.slow
def test_mpo_train_never_saves_the_hub_token_and_refuses_a_resume_without_optimizer_state(tmp_path, user_cli):
    from tests.fixtures import synthetic_mpo_pairs
    from trl_vision_reward.mpo.cli import main
    from trl_vision_reward.mpo.data import write_pair_folder

    ds = synthetic_mpo_pairs(4)
    write_pair_folder(tmp_path / "pairs", [dict(ds[i]) for i in range(4)])
    out = tmp_path / "run"
    argv = f"--model_name_or_path random --dataset_name {tmp_path / 'pairs'} --output_dir {out} --max_steps 2 "
    argv += "--save_steps 1 "
    argv += "--per_device_train_batch_size 2 --lora_r 4 --lora_alpha 4 --report_to none --use_cpu true "
    argv += f"--hub_token {FAKE_TOKEN} --logging_steps 1"
    code, err = user_cli(main, argv.split())
    logs = err + user_cli.out
    assert code == 0, err[-2000:]
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(p.name == "training_args.bin" and "checkpoint-" in str(p) for p in files)
    assert [str(p) for p, data in files.items() if FAKE_TOKEN.encode() in data] == []
    assert FAKE_TOKEN not in logs
    card = (out / "README.md").read_text()
    assert str(tmp_path) not in card  # no absolute path of this machine
    saved = torch.load(out / "training_args.bin", weights_only=False)
    assert saved.hub_token in (None, "") and saved.max_steps == 2
    (out / "checkpoint-1" / "optimizer.pt").unlink()
    resume = argv.replace("--max_steps 2", "--max_steps 3") + f" --resume_from_checkpoint {out / 'checkpoint-1'}"
    one_line(*user_cli(main, resume.split()), "optimizer.pt")
