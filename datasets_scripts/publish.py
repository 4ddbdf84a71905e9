"""Publish a dataset folder (Parquet shards + card + side files) to the Hub in one commit, through public ``HfApi``.

The folder's shards (``data/{split}-*.parquet``, media bytes already embedded by the writers) are uploaded as they
are; the card is ours, with the ``configs`` metadata the Hub (and ``load_dataset(repo)``) uses to find the splits.
``vr-datasets publish --dry-run DIR`` runs the same code against :class:`LocalRepo`, which writes what would be
committed under ``DIR/<repo_id>/`` instead of uploading: no patching, nothing reaches the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SIDE_FILES = ("rejects.jsonl", "stats.json")


def load_folder(folder: str | Path):
    """A dataset folder written by these scripts as a ``DatasetDict`` (one split per ``data/{split}-*.parquet``).

    Loads through the Parquet builder with explicit files, whose cache follows the files' paths and modification
    times. ``load_dataset(folder)`` (which reads the card's ``configs``) keys its cache on the folder's *name* and
    card (datasets 5.2), so a rebuilt folder, or another folder with the same name, can come back with stale rows;
    give it its own ``cache_dir`` there.
    """
    from datasets import load_dataset

    return load_dataset("parquet", data_files={s: [str(p) for p in ps] for s, ps in shards(folder).items()})


def shards(folder: str | Path) -> dict[str, list[Path]]:
    """``{split: [shard paths]}`` of a dataset folder; an error names the folder when it has none."""
    folder = Path(folder)
    splits: dict[str, list[Path]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        splits.setdefault(path.name.split("-")[0], []).append(path)
    if not splits:
        raise ValueError(f"{folder.name!r} has no data/*.parquet shards to publish")
    return splits


def card_with_configs(folder: str | Path) -> str:
    """The folder's ``README.md`` with ``configs`` naming each split's shards (kept when the card already has them)."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(Path(folder) / "README.md")
    if not getattr(card.data, "configs", None):
        card.data.configs = [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in shards(folder)],
            }
        ]
    return str(card)


def publish_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload dataset",
    side_files: Sequence[str] = SIDE_FILES,
    api: Any = None,
) -> Any:
    """Push ``folder`` to the dataset repo ``repo_id`` in one commit; returns the ``CommitInfo``.

    ``api`` is anything with ``HfApi``'s ``create_repo`` and ``create_commit`` (default: ``HfApi(token=token)``;
    :class:`LocalRepo` for a dry run).
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(folder)
    load_folder(folder)  # the shards must load as a dataset before anything is uploaded
    operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_with_configs(folder).encode())]
    operations += [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
        for name in side_files
        if (folder / name).is_file()
    ]
    operations += [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for paths in shards(folder).values()
        for path in paths
    ]
    api = api if api is not None else HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    return api.create_commit(repo_id, operations=operations, commit_message=commit_message, repo_type="dataset")


@dataclass
class LocalRepo:
    """The upload calls of ``HfApi`` served locally: each committed file goes to ``write(f"{repo_id}/{path}", data)``
    (default: under ``root``) and is recorded in ``files``."""

    root: str | Path | None = None
    write: Callable[[str, bytes], Any] | None = None
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
        self.files.setdefault(repo_id, {})
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id: str, operations: Sequence[Any], commit_message: str = "", **kwargs: Any) -> Any:
        files = self.files.setdefault(repo_id, {})
        for op in operations:
            src = op.path_or_fileobj
            data = bytes(src) if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
            files[op.path_in_repo] = data
            if self.write is not None:
                self.write(f"{repo_id}/{op.path_in_repo}", data)
            elif self.root is not None:
                target = Path(self.root) / repo_id / op.path_in_repo
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        self.commits.append(
            {"repo_id": repo_id, "message": commit_message, "added": [op.path_in_repo for op in operations]}
        )
        return SimpleNamespace(commit_url=None, commit_message=commit_message, oid=None)


def load_captured(folder: str | Path):
    """Load a repo folder written by :class:`LocalRepo` back with ``datasets``."""
    return load_folder(folder)
