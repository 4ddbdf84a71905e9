"""Publish a dataset folder (Parquet shards + card + rejects) to the Hub with ``push_to_hub``.

Order of operations, so the card that lands is ours *and* carries ``dataset_info``:

1. ``create_repo(exist_ok=True)`` and commit our ``README.md`` (the card) and side files (``rejects.jsonl``, ``stats.json``);
2. ``DatasetDict.push_to_hub``: it uploads the Parquet shards (media bytes embedded), reads the card from step 1 back
   from the repo, adds ``dataset_info``/``configs`` to its metadata, and commits it with the shards.

:func:`capture_uploads` replaces the network calls of ``HfApi`` (and the Hub file system that ``push_to_hub`` reads
the card back through) with an in-memory repository and writes every file that would be uploaded to a local folder.
The tests use it, and ``vr-datasets publish --dry-run DIR`` uses it to show what would be pushed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

SIDE_FILES = ("rejects.jsonl", "stats.json")


def load_folder(folder: str | Path):
    """A dataset folder written by these scripts as a ``DatasetDict`` (one split per ``data/{split}-*.parquet``).

    Loads through the Parquet builder with explicit files, whose cache follows the files' paths and modification
    times. ``load_dataset(folder)`` (which reads the card's ``configs``) keys its cache on the folder's *name* and
    card (datasets 5.2), so a rebuilt folder, or another folder with the same name, can come back with stale rows;
    give it its own ``cache_dir`` there.
    """
    from datasets import load_dataset

    folder = Path(folder)
    splits: dict[str, list[str]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        splits.setdefault(path.name.split("-")[0], []).append(str(path))
    if not splits:
        raise ValueError(f"{folder.name!r} has no data/*.parquet shards to publish")
    return load_dataset("parquet", data_files=splits)


def publish_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload dataset",
    side_files: Sequence[str] = SIDE_FILES,
) -> Any:
    """Push ``folder`` (see module docstring) to the dataset repo ``repo_id``; returns the last ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(folder)
    dataset = load_folder(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(folder / "README.md"))]
    operations += [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
        for name in side_files
        if (folder / name).is_file()
    ]
    api.create_commit(repo_id, operations=operations, commit_message="Add dataset card", repo_type="dataset")
    return dataset.push_to_hub(
        repo_id, private=private, token=token, commit_message=commit_message, embed_external_files=True
    )


@dataclass
class CapturedRepo:
    """Files a capture received, by repo id: ``{path_in_repo: bytes}`` (latest commit wins), plus the commit log."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    preuploaded: list[str] = field(default_factory=list)


def _read_operation(op: Any) -> bytes:
    src = op.path_or_fileobj
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    if isinstance(src, (str, Path)):
        return Path(src).read_bytes()
    pos = src.tell()
    data = src.read()
    src.seek(pos)
    return data


@contextlib.contextmanager
def capture_uploads(out_dir: str | Path | None = None, sha: str = "0" * 40) -> Iterator[CapturedRepo]:
    """Intercept Hub uploads: ``HfApi.create_repo``/``repo_info``/``preupload_lfs_files``/``create_commit`` and the
    ``HfFileSystem`` that ``push_to_hub`` reads the existing card through are served from memory.

    With ``out_dir``, every committed file is also written to ``out_dir/<repo_id>/<path_in_repo>`` on exit.
    Nothing reaches the network.
    """
    import fsspec
    from huggingface_hub import CommitInfo, HfApi
    from huggingface_hub.utils import RepositoryNotFoundError  # noqa: F401  (kept importable for callers)

    captured = CapturedRepo()
    memfs = fsspec.filesystem("memory", skip_instance_cache=True)
    memfs.store.clear()
    memfs.pseudo_dirs.clear()
    memfs.pseudo_dirs.append("")
    pending: dict[int, bytes] = {}

    def create_repo(self, repo_id, *args, **kwargs):
        captured.files.setdefault(repo_id, {})
        return SimpleNamespace(repo_id=repo_id, url=f"https://huggingface.co/datasets/{repo_id}")

    def repo_info(self, repo_id, *args, **kwargs):
        captured.files.setdefault(repo_id, {})
        return SimpleNamespace(id=repo_id, sha=sha)

    def preupload_lfs_files(self, repo_id, additions, *args, **kwargs):
        for op in additions:
            pending[id(op)] = _read_operation(op)  # the temp shard file is deleted once uploaded
            captured.preuploaded.append(op.path_in_repo)

    def create_commit(self, repo_id, operations, *args, commit_message="", **kwargs):
        files = captured.files.setdefault(repo_id, {})
        record = {"repo_id": repo_id, "message": commit_message, "added": [], "deleted": []}
        for op in operations:
            if type(op).__name__ == "CommitOperationAdd":
                data = pending.pop(id(op), None)
                files[op.path_in_repo] = data if data is not None else _read_operation(op)
                memfs.pipe(f"/datasets/{repo_id}@{sha}/{op.path_in_repo}", files[op.path_in_repo])
                record["added"].append(op.path_in_repo)
            elif type(op).__name__ == "CommitOperationDelete":
                files.pop(op.path_in_repo, None)
                record["deleted"].append(op.path_in_repo)
        captured.commits.append(record)
        return CommitInfo(
            commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/{sha}",
            commit_message=commit_message,
            commit_description="",
            oid=sha,
        )

    def fake_hffs(*args, **kwargs):
        return _RootedMemoryFS(memfs)

    patches = [
        mock.patch.object(HfApi, "create_repo", create_repo),
        mock.patch.object(HfApi, "repo_info", repo_info),
        mock.patch.object(HfApi, "preupload_lfs_files", preupload_lfs_files),
        mock.patch.object(HfApi, "create_commit", create_commit),
        mock.patch("datasets.dataset_dict.HfFileSystem", fake_hffs),
    ]
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        yield captured
    if out_dir is not None:
        for repo_id, files in captured.files.items():
            for path, data in files.items():
                target = Path(out_dir) / repo_id / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)


class _RootedMemoryFS:
    """The slice of ``HfFileSystem`` that ``push_to_hub`` uses, backed by an fsspec memory file system."""

    def __init__(self, fs: Any):
        self.fs = fs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fs, name)

    def _p(self, path: str) -> str:
        return "/" + str(path).lstrip("/")

    def glob(self, path: str, **kwargs):
        return [p.lstrip("/") for p in self.fs.glob(self._p(path), **kwargs)]

    def exists(self, path: str, **kwargs) -> bool:
        return self.fs.exists(self._p(path))

    def isfile(self, path: str) -> bool:
        return self.fs.isfile(self._p(path))

    def open(self, path: str, mode: str = "rb", **kwargs):
        if "r" in mode and not self.fs.exists(self._p(path)):
            raise FileNotFoundError(path)
        data = self.fs.cat(self._p(path)) if "r" in mode else b""
        return io.StringIO(data.decode("utf-8")) if "b" not in mode else io.BytesIO(data)

    def cat(self, path: str, **kwargs):
        return self.fs.cat(self._p(path))

    def info(self, path: str, **kwargs):
        return self.fs.info(self._p(path))

    def ls(self, path: str, detail: bool = True, **kwargs):
        return self.fs.ls(self._p(path), detail=detail)


def load_captured(folder: str | Path):
    """Load files captured by :func:`capture_uploads` (one repo's folder) back with ``datasets``."""
    return load_folder(folder)
