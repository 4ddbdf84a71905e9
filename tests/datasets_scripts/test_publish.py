"""Publishing: what would be committed (the same code against a local repo, no patching) loads back with datasets."""

import yaml
from datasets import load_dataset

from datasets_scripts.cli import main as cli_main
from datasets_scripts.publish import LocalRepo, load_captured, publish_folder
from datasets_scripts.visionrewarddb import build_visionrewarddb

# load_dataset(folder) caches by the folder's name and card, so two test folders named alike would share a cache:
# each test loads with its own cache_dir.


def test_push_to_hub_uploads_shards_and_our_card(vrdb_folder, tmp_path):
    media, ann, _ = vrdb_folder("image", n=6, bad=True)
    folder = tmp_path / "built"
    result = build_visionrewarddb(media, ann, "image", folder)
    hub = LocalRepo(tmp_path / "hub")
    publish_folder(folder, "someone/vrdb-image", api=hub)
    files = hub.files["someone/vrdb-image"]
    assert set(files) == {"README.md", "rejects.jsonl", *(f"data/{s}-00000-of-00001.parquet" for s in result.dataset)}
    assert [c["message"] for c in hub.commits] == ["Upload dataset"]  # one commit: card, side files and shards
    for s in result.dataset:  # the shards go up as written (media embedded)
        assert files[f"data/{s}-00000-of-00001.parquet"] == (folder / f"data/{s}-00000-of-00001.parquet").read_bytes()
    # the card that lands is ours (body, taxonomy, attribution) plus the configs that name the splits
    card = files["README.md"].decode()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "apache-2.0" and meta["configs"][0]["config_name"] == "default"
    assert "## Annotation taxonomy" in card and "THUDM/VisionReward" in card
    # load it back with datasets from the captured files: same records, same features
    back = load_captured(tmp_path / "hub" / "someone" / "vrdb-image")
    for split, ds in result.dataset.items():
        assert back[split].features == ds.features
        assert list(back[split]["internal_id"]) == list(ds["internal_id"])
        assert [a for a in back[split]["annotation"]] == [a for a in ds["annotation"]]
    assert load_dataset(
        str(tmp_path / "hub" / "someone" / "vrdb-image"), cache_dir=str(tmp_path / "hf_cache")
    )  # by its card's configs


def test_cli_publish_dry_run(vrdb_folder, tmp_path, capsys):
    media, ann, _ = vrdb_folder("video", n=4, bad=False)
    assert (
        cli_main(
            [
                "build-vrdb",
                "--media-dir",
                str(media),
                "--annotations",
                str(ann),
                "--modality",
                "video",
                "--out",
                str(tmp_path / "built"),
            ]
        )
        == 0
    )
    assert cli_main(["publish", str(tmp_path / "built"), "--repo-id", "me/v", "--dry-run", str(tmp_path / "hub")]) == 0
    assert "would be committed to me/v" in capsys.readouterr().out
    back = load_captured(tmp_path / "hub" / "me" / "v")
    assert sum(len(d) for d in back.values()) == 4
    assert back[next(iter(back))][0]["video"]["bytes"]
