"""``vision-reward fit-weights`` / ``evaluate`` / ``train-sft`` on local files and ``datasets`` folders."""

import json

import numpy as np
import pytest

from trl_vision_reward import cli
from trl_vision_reward.reward.checklist import Checklist


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _scored_video_samples(n_samples=1500, n_pairs=12000, seed=0):
    """Scored samples as ``vision-reward score`` writes them (source, answers, p_yes), pairs labelled by the official
    video weights through the logistic model."""
    checklist = Checklist.load("video")
    w = checklist.weights.numpy()
    rng = np.random.default_rng(seed)
    answers = rng.random((n_samples, len(checklist))) < 0.5
    samples = [
        {"source": f"clip{i}.mp4", "answers": a.tolist(), "p_yes": np.where(a, 0.9, 0.1).tolist()}
        for i, a in enumerate(answers)
    ]
    features = np.where(answers, 1.0, -1.0)
    a, b = rng.integers(0, n_samples, n_pairs), rng.integers(0, n_samples, n_pairs)
    p_first = 1.0 / (1.0 + np.exp(-4.0 * (features[a] - features[b]) @ w))
    labels = np.where(rng.random(n_pairs) < p_first, 1, -1)
    pairs = [{"first": f"clip{i}.mp4", "second": f"clip{j}.mp4", "label": int(y)} for i, j, y in zip(a, b, labels)]
    return checklist, samples, pairs


def test_fit_weights_recovers_the_weights_and_writes_a_checklist(tmp_path, capsys):
    checklist, samples, pairs = _scored_video_samples()
    out = tmp_path / "fit"
    code = cli.main(
        [
            "fit-weights",
            "--samples",
            _write_jsonl(tmp_path / "samples.jsonl", samples),
            "--pairs",
            _write_jsonl(tmp_path / "pairs.jsonl", pairs),
            "--checklist",
            "video",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "weights.json").read_text())
    coef = np.array(result["coef"])
    truth = checklist.weights.numpy()
    assert coef.min() >= 0.0 and result["intercept"] == [0.0]
    assert coef @ truth / np.linalg.norm(coef) / np.linalg.norm(truth) >= 0.99
    assert result["num_pairs"] == 12000 and result["converged"]
    fitted = Checklist.from_dict(json.loads((out / "checklist.json").read_text()))
    assert fitted.modality == "video" and all(q.weight > 0 for q in fitted.questions)
    assert "fitted 29 weights on 12000 pairs" in capsys.readouterr().out


def test_fit_weights_names_the_pair_that_references_a_missing_sample(tmp_path):
    samples = [{"id": "a", "answers": [1] * 29}, {"id": "b", "answers": [0] * 29}]
    pairs = [{"chosen": "a", "rejected": "b"}, {"chosen": "a", "rejected": "nope"}]
    pairs_file = _write_jsonl(tmp_path / "pairs.jsonl", pairs)
    with pytest.raises(
        ValueError, match=r"pairs.jsonl: pair row 1 references rejected sample 'nope', which is not among the samples"
    ):
        cli.main(
            [
                "fit-weights",
                "--samples",
                _write_jsonl(tmp_path / "s.jsonl", samples),
                "--pairs",
                pairs_file,
                "--checklist",
                "video",
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )


def test_fit_weights_rejects_answers_of_the_wrong_length(tmp_path):
    samples = [{"id": "a", "answers": [1] * 28}, {"id": "b", "answers": [0] * 29}]
    with pytest.raises(ValueError, match=r"s.jsonl: row 0 has 28 answers, but the checklist has 29 questions"):
        cli.main(
            [
                "fit-weights",
                "--samples",
                _write_jsonl(tmp_path / "s.jsonl", samples),
                "--pairs",
                _write_jsonl(tmp_path / "p.jsonl", [{"chosen": "a", "rejected": "b"}]),
                "--checklist",
                "video",
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )


def test_evaluate_preference_and_judgment_accuracy(tmp_path, capsys):
    # the hand-computed case of test_evaluation: tau 4/6 (epsilon 0.3), diff 2/4
    human = [1, 1, -1, 0, 0, 1]
    margins = [0.5, -0.2, -1.0, 0.05, 0.3, 0.0]
    samples, pairs = [{"id": "base", "score": 0.0, "p_yes": [0.5] * 29}], []
    for k, (h, m) in enumerate(zip(human, margins)):
        samples.append({"id": f"s{k}", "score": m, "p_yes": [0.8] * 29})
        pairs.append({"first": f"s{k}", "second": "base", "label": h})
    annotations = [{"internal_id": "s0", "annotation": {"alignment": 5, "letters": 1}}]  # 4 yes, 3 no
    out = tmp_path / "report"
    code = cli.main(
        [
            "evaluate",
            "--samples",
            _write_jsonl(tmp_path / "samples.jsonl", samples),
            "--pairs",
            "monetbench=" + _write_jsonl(tmp_path / "pairs.jsonl", pairs),
            "--annotations",
            _write_jsonl(tmp_path / "ann.jsonl", annotations),
            "--checklist",
            "video",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    bench = report["preference"]["monetbench"]
    assert bench["tau"] == pytest.approx(4 / 6) and bench["diff"] == 0.5 and bench["epsilon"] == 0.3
    judgment = report["judgment"]
    # select video checklist: alignment lines 1, 2, 4 (all yes) and letters lines 54, 56 (both no at "no letter")
    assert judgment["num_judgments"] == 5
    assert judgment["per_dimension"]["Alignment"] == 1.0 and judgment["per_dimension"]["Fidelity"] == 0.0
    printed = capsys.readouterr().out
    assert "| monetbench | 6 | 2 | 66.7 | 50.0 | 0.3 |" in printed
    assert (out / "report.md").read_text().startswith("| benchmark |")


def test_evaluate_reads_parquet_and_saved_datasets(tmp_path):
    from datasets import Dataset

    samples = Dataset.from_list([{"id": "a", "score": 1.0}, {"id": "b", "score": 0.0}])
    samples.to_parquet(str(tmp_path / "samples.parquet"))
    Dataset.from_list([{"chosen": "a", "rejected": "b"}, {"chosen": "b", "rejected": "a"}]).save_to_disk(
        str(tmp_path / "pairs")
    )
    out = tmp_path / "report"
    cli.main(
        [
            "evaluate",
            "--samples",
            str(tmp_path / "samples.parquet"),
            "--pairs",
            str(tmp_path / "pairs"),
            "--output-dir",
            str(out),
        ]
    )
    assert json.loads((out / "report.json").read_text())["preference"]["pairs"]["diff"] == 0.5


def test_evaluate_reads_the_scorers_json(tmp_path):
    # `vision-reward score --json` writes {"results": [...], "failures": [...]} with "source" as the sample id
    scored = {"results": [{"source": "x.png", "score": 0.2}, {"source": "y.png", "score": 0.7}], "failures": []}
    (tmp_path / "scores.json").write_text(json.dumps(scored))
    pairs = _write_jsonl(tmp_path / "hpd.jsonl", [{"chosen": "y.png", "rejected": "x.png"}])
    out = tmp_path / "report"
    cli.main(["evaluate", "--samples", str(tmp_path / "scores.json"), "--pairs", pairs, "--output-dir", str(out)])
    assert json.loads((out / "report.json").read_text())["preference"]["hpd"]["diff"] == 1.0


def test_evaluate_names_missing_samples_and_fields(tmp_path):
    samples = _write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "score": 1.0}])
    pairs = _write_jsonl(tmp_path / "p.jsonl", [{"first": "a", "second": "zz", "label": 0}])
    with pytest.raises(
        ValueError, match=r"p.jsonl: pair row 0 references second sample 'zz', which is not among the samples"
    ):
        cli.main(["evaluate", "--samples", samples, "--pairs", pairs, "--output-dir", str(tmp_path / "o")])
    bad_label = _write_jsonl(tmp_path / "b.jsonl", [{"first": "a", "second": "a", "label": "left"}])
    with pytest.raises(ValueError, match=r"b.jsonl: pair row 0 has label 'left'; accepted labels are 1"):
        cli.main(["evaluate", "--samples", samples, "--pairs", bad_label, "--output-dir", str(tmp_path / "o")])


def test_train_sft_writes_a_scorer_and_metrics(tmp_path, capsys):
    from PIL import Image

    records = []
    for i in range(6):
        bright = i % 2 == 0
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((56, 56, 3), 200 if bright else 40, dtype=np.uint8)).save(path)
        records.append(
            {"internal_id": f"img{i}", "image": path.name, "annotation": {"color brightness": 1 if bright else -1}}
        )
    out = tmp_path / "sft"
    code = cli.main(
        [
            "train-sft",
            "--data",
            _write_jsonl(tmp_path / "train.jsonl", records),
            "--media-root",
            str(tmp_path),
            "--eval-fraction",
            "0.34",
            "--output-dir",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--learning-rate",
            "1e-3",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "judgment_metrics.json").read_text())
    assert (
        metrics["eval_judgments"] == 4
    )  # 2 held-out images x 2 brightness questions (other sub-dimensions unannotated)
    assert metrics["train_judgments"] >= 8  # 4 training images x 2 questions, minority answers resampled up
    assert "after_judgment_accuracy" in metrics["after"]
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    scorer = VisionRewardScorer.from_pretrained(str(out))  # the output is a complete scorer
    assert scorer.checklist.name == "image_select"
    assert "RANDOM" in capsys.readouterr().out
