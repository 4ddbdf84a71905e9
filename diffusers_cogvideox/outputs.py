"""The output policy every command follows: refuse by default, delete only what it wrote, write atomically.

Commands of this project write into an output folder (``--out``, ``--output_dir``) or one output file (``--json``).
The rules, in the order a command applies them (``docs/reliability.md`` lists each command):

1. Validate every input first, then claim the output with :meth:`OutputFolder.claim` (or check a single output file
   with :func:`check_output_file`) before any work starts.
2. A folder is claimed when it is new or empty, or when it holds the manifest (:data:`MANIFEST_NAME`) this command
   left there. A non-empty folder without one is refused: it holds someone else's files.
3. An earlier run's output is refused unless ``overwrite=True`` (``--overwrite``), which replaces exactly the files
   listed in the manifest - never anything the user added - or ``resume=True`` for resumable jobs, which refuses
   a folder made with other settings (the differing keys are named) unless ``force=True`` (``--force``).
   The replaced files are set aside in :data:`PREVIOUS_NAME` inside the folder and deleted only when the new run
   succeeds (:meth:`OutputFolder.finish`, or leaving a ``with folder:`` block); a failing run puts them back
   (:meth:`OutputFolder.rollback`), and the next claim after a killed run does the same.
4. No input may lie inside the output (an ``--overwrite`` would delete it, a write would replace it).
5. Every file is written through a temporary file in the same folder and renamed into place
   (:func:`atomic_path`), optionally verified before the rename, and recorded in the manifest before it is written,
   so even a killed run leaves a manifest that covers everything it put there.

:func:`resolve_inside` is the one containment check for relative paths read from records (media paths):
absolute paths, ``..`` and symlinks that leave their root are refused.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import OutputExistsError, UsageError

MANIFEST_NAME = ".cogvideox-vr-output.json"
"""The file a command leaves in its output folder: which command wrote it, with which settings, and which files."""

PREVIOUS_NAME = ".cogvideox-vr-previous"
"""Where ``--overwrite`` sets an earlier run's files aside (inside the output folder) until the new run succeeds."""

PathLike = str | os.PathLike


# ---------------------------------------------------------------------------------------------------------------------
# Atomic writes


@contextmanager
def atomic_path(target: PathLike, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A temporary path beside ``target`` (same suffix) to write to; renamed onto ``target`` when the block succeeds.

    ``verify(tmp)`` runs before the rename and raises if the written file is not what was meant (an mp4 with no
    frames, a truncated archive): the old ``target``, if any, is then left as it was. On any error the temporary file
    is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.tmp-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file() or (tmp.stat().st_size == 0 and verify is not None):
            raise OSError(f"nothing was written to {target}")
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, value: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False, default=json_default) + "\n")


def json_default(value: Any) -> Any:
    """JSON for arrays/tensors (``tolist``) and paths; anything else is an error, not a silent ``str``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextmanager
def atomic_dir(target: PathLike) -> Iterator[Path]:
    """A temporary folder beside ``target`` to fill; it replaces ``target`` (a folder) when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# ---------------------------------------------------------------------------------------------------------------------
# Paths


def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve(strict=False)


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, symlinks resolved."""
    path, folder = _resolved(path), _resolved(folder)
    return path == folder or folder in path.parents


def resolve_inside(root: PathLike, relative: str | PathLike, what: str = "media path") -> Path:
    """``root / relative`` resolved, refusing absolute paths, ``..`` and symlinks that lead out of ``root``.

    Paths read from records (annotation files, pair lists) are relative to their dataset; this keeps a record from
    pulling in ``/etc/passwd`` or ``../../private/x.png`` (which would be embedded into a Parquet or copied out).
    """
    text = os.fspath(relative)
    if not text:
        raise UsageError(f"empty {what}; paths must be relative to {root}")
    if Path(text).is_absolute() or PureWindowsPath(text).is_absolute() or PureWindowsPath(text).drive:
        raise UsageError(f"{what} {text!r} is absolute; paths must be relative to their root {root}")
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        raise UsageError(f"{what} {text!r} contains '..'; paths must stay inside their root {root}")
    path = Path(root, text)
    if not is_inside(path, root):
        raise UsageError(f"{what} {text!r} resolves (through a symlink) to {_resolved(path)}, outside its root {root}")
    return path


def check_inputs_outside(out: PathLike, inputs: Iterable[PathLike | None], flag: str = "--out") -> None:
    """Refuse an output folder that is, or holds, one of the ``inputs`` (local paths; others are skipped)."""
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        if is_inside(item, out):
            raise UsageError(
                f"input {item} lies inside the output folder {flag} {out}; choose an output folder outside the inputs"
            )


def check_output_file(
    path: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    suffixes: tuple[str, ...] | None = None,
    flag: str = "--out",
) -> Path:
    """Check a single output file before any work: not an input, not a folder, the right suffix, and only
    replaced when ``overwrite`` is set."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {path}: the file name must end with {' or '.join(suffixes)}")
    for item in inputs:
        if item is not None and Path(item).exists() and _resolved(item) == _resolved(path):
            raise UsageError(f"{flag} {path} is also an input; choose another output file")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{flag} {path} already exists; pass --overwrite to replace it, or choose another file")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Settings of a resumable job


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=json_default, sort_keys=True))


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every key whose value differs (missing keys read as ``None``)."""
    old, new = _jsonable(dict(old)), _jsonable(dict(new))

    def same(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return a == b or (math.isnan(a) and math.isnan(b))
        return a == b

    return [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if not same(old.get(key), new.get(key))
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Output folders


class OutputFolder:
    """An output folder this command owns, with the manifest of every file it wrote there.

    Get one with :meth:`claim`; write through :meth:`atomic` / :meth:`write_text` / :meth:`write_json`, or let a
    library write (``save_pretrained``, a ``Trainer``) and then call :meth:`record_new`.
    """

    def __init__(self, root: Path, command: str, manifest: dict[str, Any], foreign: set[str]):
        self.root = root
        self.command = command
        self.manifest = manifest
        self.foreign = foreign  # relative paths that were there before and are not ours: never written or deleted

    # -- claiming ------------------------------------------------------------------------------------------------------
    @classmethod
    def claim(
        cls,
        root: PathLike,
        command: str,
        *,
        inputs: Iterable[PathLike | None] = (),
        overwrite: bool = False,
        resume: bool = False,
        settings: Mapping[str, Any] | None = None,
        force: bool = False,
        reserved: Iterable[str] = (),
        flag: str = "--out",
    ) -> OutputFolder:
        """Take ``root`` as the output of ``command``; call it after the inputs are validated, before any work.

        Args:
            inputs: local input paths; none may lie inside ``root``.
            overwrite: delete what an earlier run of ``command`` wrote here (only that) and start afresh.
            resume: keep an earlier run's files (a resumable job); with ``settings`` that differ from the
                recorded ones this is refused unless ``force``.
            reserved: glob patterns of top-level names the command writes through a library that cannot be
                told to skip a file (e.g. ``checkpoint-*`` of a Trainer, which rotates such folders away); a
                foreign entry matching one is refused.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise UsageError(f"{flag} {root} is a file; give a folder")
        check_inputs_outside(root, inputs, flag)
        settings = _jsonable(dict(settings or {}))
        manifest = read_manifest(root)
        if manifest is not None and manifest.get("command") == command:
            manifest = _settle_previous(root, manifest, keep_interrupted=resume and not overwrite)
        existing = _relative_files(root) if root.is_dir() else set()
        existing.discard(MANIFEST_NAME)
        if manifest is None and existing:
            shown = ", ".join(sorted(existing)[:3]) + (", ..." if len(existing) > 3 else "")
            raise OutputExistsError(
                f"{flag} {root} is not empty ({shown}) and holds no manifest of an earlier '{command}' run, so it "
                f"is someone else's folder; choose a new or empty folder (nothing was changed)"
            )
        if manifest is not None and manifest.get("command") != command:
            raise OutputExistsError(
                f"{flag} {root} holds the output of '{manifest.get('command')}', not of '{command}'; choose another "
                f"folder (nothing was changed)"
            )
        owned = set(manifest["files"]) if manifest else set()
        earlier_output = bool(existing & owned) or any(
            (root / sub).exists() for sub in (manifest or {}).get("folders", [])
        )
        if earlier_output and resume and not overwrite:
            diff = settings_diff(manifest.get("settings", {}), settings)
            if diff and not force:
                raise UsageError(
                    f"{flag} {root} was made with other settings ({'; '.join(diff)}); use another folder, "
                    f"--overwrite to start afresh, or --force to continue it with the new settings"
                )
            if diff:
                manifest.setdefault("settings_history", []).append(manifest.get("settings", {}))
            manifest["settings"] = settings
            folder = cls(root, command, manifest, existing - owned)
            folder._check_reserved(reserved, flag)
            folder._save()
            return folder
        if earlier_output and not overwrite:
            raise OutputExistsError(
                f"{flag} {root} holds the output of an earlier '{command}' run; pass --overwrite to replace it "
                f"(only the files that run wrote are deleted), or choose another folder"
            )
        fresh = {"command": command, "settings": settings, "files": [], "folders": []}
        if earlier_output:  # reserved names are checked before anything moves
            cls(root, command, fresh, existing - owned)._check_reserved(reserved, flag)
            cls(root, command, manifest, existing - owned)._set_aside(fresh)
            fresh["previous"] = PREVIOUS_NAME
        foreign = _relative_files(root) - {MANIFEST_NAME} if root.is_dir() else set()
        folder = cls(root, command, fresh, foreign)
        folder._check_reserved(reserved, flag)
        root.mkdir(parents=True, exist_ok=True)
        folder._save()
        return folder

    def _check_reserved(self, patterns: Iterable[str], flag: str) -> None:
        tops = {PurePosixPath(name).parts[0] for name in self.foreign}
        for pattern in patterns:
            clash = sorted(name for name in tops if fnmatch.fnmatch(name, pattern))
            if clash:
                raise OutputExistsError(
                    f"{flag} {self.root} holds {clash[0]}, which this command did not write but would replace or "
                    f"delete; move it away or choose another folder"
                )

    # -- writing -------------------------------------------------------------------------------------------------------
    def path(self, relative: str | PathLike) -> Path:
        """``root / relative``, recorded as ours; refused if it would replace a file the command did not write."""
        name = resolve_inside(self.root, relative, what="output path").relative_to(self.root).as_posix()
        self.record(name)
        return self.root / name

    def _check_free(self, name: str) -> None:
        if name in self.foreign or any(f.startswith(name.rstrip("/") + "/") for f in self.foreign):
            raise OutputExistsError(
                f"{self.root / name} exists and was not written by '{self.command}'; move it away or choose "
                f"another folder"
            )

    def record(self, *relative: str) -> None:
        """Mark files as written by this command (before writing them, so a killed run still covers them)."""
        files = set(self.manifest["files"])
        new = []
        for name in relative:
            name = PurePosixPath(name).as_posix()
            self._check_free(name)
            if name not in files:
                files.add(name)
                new.append(name)
        if new:
            self.manifest["files"] = sorted(files)
            self._save()

    def adopt(self, *relative: str) -> None:
        """Record files found in the folder as this command's own: ones a killed run of it wrote before it could
        record them (the caller knows them by name, e.g. the media of a job's own prompts)."""
        self.foreign -= {PurePosixPath(name).as_posix() for name in relative}
        self.record(*relative)

    def record_new(self) -> list[str]:
        """Record every file that appeared under the folder since it was claimed (written by a library)."""
        known = set(self.manifest["files"]) | self.foreign | {MANIFEST_NAME}
        subs = tuple(f"{name}/" for name in self.manifest["folders"])
        new = sorted(name for name in _relative_files(self.root) - known if not name.startswith(subs))
        if new:
            self.manifest["files"] = sorted(set(self.manifest["files"]) | set(new))
            self._save()
        return new

    @contextmanager
    def atomic(self, relative: str | PathLike, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
        """:func:`atomic_path` for ``root / relative``, recorded as ours first."""
        with atomic_path(self.path(relative), verify) as tmp:
            yield tmp

    def write_bytes(self, relative: str | PathLike, data: bytes) -> Path:
        return atomic_write_bytes(self.path(relative), data)

    def write_text(self, relative: str | PathLike, text: str) -> Path:
        return atomic_write_text(self.path(relative), text)

    def write_json(self, relative: str | PathLike, value: Any) -> Path:
        return atomic_write_json(self.path(relative), value)

    def subfolder(self, relative: str, command: str, **claim_kwargs: Any) -> OutputFolder:
        """Claim ``root / relative`` for a nested stage with its own manifest; an ``--overwrite`` of this folder
        deletes what the stage wrote there too."""
        name = resolve_inside(self.root, relative, what="output path").relative_to(self.root).as_posix()
        self._check_free(name)
        if name not in self.manifest["folders"]:
            self.manifest["folders"] = sorted({*self.manifest["folders"], name})
            self._save()
        return OutputFolder.claim(self.root / name, command, **claim_kwargs)

    # -- deleting ------------------------------------------------------------------------------------------------------
    def owned_paths(self) -> list[str]:
        """Every file this command recorded, relative to the root: nested stages' files and manifests included."""
        out = []
        for sub in self.manifest.get("folders", []):
            nested = read_manifest(self.root / sub)
            if nested is not None:
                inner = OutputFolder(self.root / sub, nested.get("command", ""), nested, set()).owned_paths()
                out += [f"{sub}/{name}" for name in inner] + [f"{sub}/{MANIFEST_NAME}"]
        return out + list(self.manifest.get("files", []))

    def _prune(self, names: Iterable[str]) -> None:
        """Remove the folders above ``names`` that became empty (only folders that held our files)."""
        emptied = {
            p for name in names for p in (self.root / name).parents if is_inside(p, self.root) and p != self.root
        }
        for folder in sorted(emptied, key=lambda p: -len(p.parts)):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def remove_owned(self) -> None:
        """Delete the files this command recorded (nested stages' too), then the folders that became empty."""
        names = self.owned_paths()
        for name in names:
            path = self.root / name
            if path.is_file() or path.is_symlink():
                path.unlink()
        (self.root / MANIFEST_NAME).unlink(missing_ok=True)
        self._prune(names)
        self.manifest = {
            "command": self.command,
            "settings": self.manifest.get("settings", {}),
            "files": [],
            "folders": [],
        }

    def _set_aside(self, fresh: dict[str, Any]) -> None:
        """Move this (earlier) run's files into :data:`PREVIOUS_NAME`, where they wait for the new run's outcome.

        Crash-safe order: the old manifest is copied there first, then the root manifest says that a previous output
        is set aside, then the files move (renames inside the folder, no copies).
        """
        backup = self.root / PREVIOUS_NAME
        atomic_write_json(backup / MANIFEST_NAME, self.manifest)
        atomic_write_json(self.root / MANIFEST_NAME, {**fresh, "previous": PREVIOUS_NAME})
        names = self.owned_paths()
        for name in names:
            source = self.root / name
            if source.is_file() or source.is_symlink():
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, backup / name)
        self._prune(names)

    @property
    def previous(self) -> Path | None:
        """The earlier output an ``--overwrite`` set aside (deleted by :meth:`finish`), or None."""
        return self.root / PREVIOUS_NAME if self.manifest.get("previous") else None

    def finish(self) -> None:
        """The new output is complete: delete the earlier output that ``--overwrite`` set aside."""
        if self.manifest.pop("previous", None):
            self._save()  # first: a crash in between leaves a stale copy that the next claim deletes
            shutil.rmtree(self.root / PREVIOUS_NAME, ignore_errors=True)

    def rollback(self) -> None:
        """The new work failed: delete what it wrote and put the earlier output back, as it was before the run.

        Without an earlier output the partial files stay (recorded in the manifest, so the next run may replace them).
        """
        if self.manifest.get("previous"):
            self.manifest = _restore_previous(self.root, self.manifest)

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, Exception):  # Ctrl-C and kills leave the state for the next claim to settle
            self.rollback()

    def _save(self) -> None:
        atomic_write_json(self.root / MANIFEST_NAME, self.manifest)


def _restore_previous(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Delete an unfinished run's files and move the output it had set aside back; returns the restored manifest.

    Each step is repeatable, so a crash during the restore is settled by the next claim.
    """
    backup = root / PREVIOUS_NAME
    old = read_manifest(backup) or {"command": manifest.get("command"), "settings": {}, "files": [], "folders": []}
    unfinished = OutputFolder(root, manifest.get("command", ""), manifest, set())
    names = unfinished.owned_paths()
    for name in names:
        path = root / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    unfinished._prune(names)
    atomic_write_json(root / MANIFEST_NAME, {**manifest, "files": [], "folders": []})  # nothing of it is left
    for dirpath, _, filenames in os.walk(backup):
        for filename in filenames:
            source = Path(dirpath, filename)
            name = source.relative_to(backup).as_posix()
            if name != MANIFEST_NAME:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, root / name)
    atomic_write_json(root / MANIFEST_NAME, old)
    shutil.rmtree(backup, ignore_errors=True)
    return old


def _settle_previous(root: Path, manifest: dict[str, Any], keep_interrupted: bool) -> dict[str, Any]:
    """The state an earlier ``--overwrite`` run left: a finished one's stale copy is deleted; an unfinished one is
    kept for ``resume`` (the previous output stays aside until the resumed run finishes) or else undone."""
    backup = root / PREVIOUS_NAME
    if not backup.exists():
        manifest.pop("previous", None)
        return manifest
    if not manifest.get("previous"):  # superseded: the run that set it aside finished
        shutil.rmtree(backup)
        return manifest
    if keep_interrupted:
        return manifest
    print(
        f"{root}: an earlier run was interrupted; its files were removed and the output before it restored",
        file=sys.stderr,
    )
    return _restore_previous(root, manifest)


def read_manifest(root: PathLike) -> dict[str, Any] | None:
    """The manifest an earlier run left in ``root``, or None; a corrupt one is an error, not a blank slate."""
    path = Path(root, MANIFEST_NAME)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not a readable manifest ({error}); move the folder away") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", []), list):
        raise UsageError(f"{path} is not a manifest of this project; move the folder away")
    manifest.setdefault("files", [])
    manifest.setdefault("folders", [])
    return manifest


def _relative_files(root: Path) -> set[str]:
    """Every file (and symlink) under ``root``, relative, posix; symlinked folders are not followed."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        if base == root and PREVIOUS_NAME in dirnames:  # the earlier output an --overwrite set aside
            dirnames.remove(PREVIOUS_NAME)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        out.update((base / name).relative_to(root).as_posix() for name in names)
        if not names and not dirnames and base != root:
            out.add(base.relative_to(root).as_posix() + "/")  # an empty folder still makes the folder non-empty
    return out
