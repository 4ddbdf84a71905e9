"""The ``vr-datasets`` command line."""

import json

import pytest

from datasets_scripts import cli


def test_unknown_command_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert all(name in err for name in cli.COMMANDS)


def test_build_pairs_and_convert_commands(vrdb_folder, tmp_path, stub_sampler, stub_scorer, capsys):
    from datasets_scripts.generate_and_score import run_generate_and_score

    media, ann, _ = vrdb_folder("image", n=6, bad=True)
    assert (
        cli.main(
            [
                "build-vrdb",
                "--media-dir",
                str(media),
                "--annotations",
                str(ann),
                "--modality",
                "image",
                "--out",
                str(tmp_path / "vrdb"),
            ]
        )
        == 0
    )
    assert "rejected 6 rows" in capsys.readouterr().out

    job = tmp_path / "job"
    run_generate_and_score(["a", "b"], stub_sampler(), stub_scorer(), job, samples_per_prompt=3, progress=False)
    assert cli.main(["pairs", "--scored", str(job), "--out", str(tmp_path / "pairs"), "--threshold", "0.1"]) == 0
    assert "pairs admitted of 6 candidates" in capsys.readouterr().out
    assert (tmp_path / "pairs" / "README.md").is_file()

    rows = tmp_path / "hpd.json"
    rows.write_text(json.dumps([{"prompt": "p", "file_path": ["0.png", "1.png"], "human_preference": [1, 0]}]))
    assert (
        cli.main(
            [
                "convert",
                "--format",
                "hpdv2",
                "--input",
                str(rows),
                "--image-root",
                str(media),
                "--out",
                str(tmp_path / "conv"),
            ]
        )
        == 0
    )
    assert "1 pairs, 0 rejected" in capsys.readouterr().out
    assert "ymhao/HPDv2" in (tmp_path / "conv" / "README.md").read_text()


@pytest.mark.parametrize(
    "flags, generator, random_note",
    [
        ([], "tiny world (trained, shipped with the package)", False),
        (["--model", "random", "--scorer", "random"], "random tiny CogVideoX (random weights)", True),
    ],
    ids=["tiny-world", "random"],
)
def test_generate_score_names_the_embedded_default_and_flags_only_random_weights(
    tmp_path, flags, generator, random_note
):
    from huggingface_hub import DatasetCard

    (tmp_path / "prompts.txt").write_text("a red circle on a grey background\n")
    argv = ["generate-score", "--prompts", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "scored"),
            "--samples-per-prompt", "1", "--num-inference-steps", "2", "--no-progress", *flags]  # fmt: skip
    assert cli.main(argv) == 0
    card = DatasetCard.load(tmp_path / "scored" / "README.md").text
    scorer = "random tiny scorer (random weights)" if random_note else generator
    assert f"| generator | {generator} |" in card and f"| scorer | {scorer} |" in card
    assert ("Made with random weights" in card) is random_note
