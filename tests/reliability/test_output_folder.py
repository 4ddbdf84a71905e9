"""The output policy (diffusers_cogvideox.outputs): refusal by default, --overwrite deletes only what was written."""

from __future__ import annotations

import os

import pytest

from diffusers_cogvideox.errors import OutputExistsError, UsageError
from diffusers_cogvideox.outputs import (
    MANIFEST_NAME,
    PREVIOUS_NAME,
    OutputFolder,
    atomic_path,
    check_output_file,
    resolve_inside,
    settings_diff,
)

from .helpers import snapshot


def test_new_and_empty_folders_are_claimed(tmp_path):
    out = OutputFolder.claim(tmp_path / "new", "cmd")
    out.write_text("a.txt", "a")
    assert (tmp_path / "new" / MANIFEST_NAME).is_file()
    (tmp_path / "empty").mkdir()
    OutputFolder.claim(tmp_path / "empty", "cmd").write_text("b.txt", "b")


def test_a_folder_with_user_files_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "mine.txt").write_text("keep me")
    before = snapshot(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="holds no manifest"):
            OutputFolder.claim(tmp_path, "cmd", overwrite=overwrite)
    assert snapshot(tmp_path) == before


def test_an_earlier_run_is_refused_without_overwrite(tmp_path):
    OutputFolder.claim(tmp_path, "cmd").write_text("a.txt", "a")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        OutputFolder.claim(tmp_path, "cmd")
    with pytest.raises(OutputExistsError, match="'other'"):
        OutputFolder.claim(tmp_path, "other", overwrite=True)


def test_overwrite_deletes_only_what_the_command_wrote(tmp_path):
    out = OutputFolder.claim(tmp_path, "cmd")
    out.write_text("a.txt", "a")
    out.write_text("sub/b.txt", "b")
    nested = out.subfolder("stage", "stage-cmd")
    nested.write_text("c.txt", "c")
    (tmp_path / "user.txt").write_text("user")  # added by the user after the run
    (tmp_path / "sub" / "user2.txt").write_text("user")
    (tmp_path / "stage" / "user3.txt").write_text("user")
    again = OutputFolder.claim(tmp_path, "cmd", overwrite=True)
    with pytest.raises(OutputExistsError, match="not written by"):
        again.write_text("user.txt", "replaced")
    again.finish()
    left = snapshot(tmp_path)
    assert {k for k in left if k != MANIFEST_NAME} == {"user.txt", "sub/user2.txt", "stage/user3.txt"}
    assert (tmp_path / "user.txt").read_text() == "user"


def _earlier_run(root):
    with OutputFolder.claim(root, "cmd") as out:
        out.write_text("a.txt", "old a")
        out.write_text("sub/b.txt", "old b")
    (root / "user.txt").write_text("user")
    return snapshot(root)


def test_overwrite_deletes_the_old_output_only_after_the_new_run_succeeds(tmp_path):
    before = _earlier_run(tmp_path)
    with pytest.raises(RuntimeError, match="conversion failed"):
        with OutputFolder.claim(tmp_path, "cmd", overwrite=True) as out:
            assert not (tmp_path / "a.txt").exists()  # set aside while the new run works
            out.write_text("a.txt", "new half")
            out.write_text("c.txt", "new only")
            raise RuntimeError("conversion failed")
    assert snapshot(tmp_path) == before  # the previous output, byte for byte; nothing of the failed run
    with OutputFolder.claim(tmp_path, "cmd", overwrite=True) as out:
        out.write_text("a.txt", "new a")
    assert (tmp_path / "a.txt").read_text() == "new a" and not (tmp_path / "sub").exists()
    assert (tmp_path / "user.txt").read_text() == "user" and not (tmp_path / PREVIOUS_NAME).exists()


def test_a_killed_overwrite_run_is_undone_by_the_next_claim(tmp_path):
    before = _earlier_run(tmp_path)
    out = OutputFolder.claim(tmp_path, "cmd", overwrite=True)
    out.write_text("a.txt", "new half")  # then killed: neither finish nor rollback ran
    with pytest.raises(OutputExistsError, match="--overwrite"):
        OutputFolder.claim(tmp_path, "cmd")  # restores the earlier output, then refuses as for any earlier run
    assert snapshot(tmp_path) == before


def test_a_killed_overwrite_run_can_be_resumed_and_then_replaces_the_old_output(tmp_path):
    _earlier_run(tmp_path)
    out = OutputFolder.claim(tmp_path, "cmd", overwrite=True, resume=True, settings={"s": 1})
    out.write_text("checkpoint-1/w.bin", "new")  # killed here
    resumed = OutputFolder.claim(tmp_path, "cmd", resume=True, settings={"s": 1})
    assert (tmp_path / "checkpoint-1" / "w.bin").read_text() == "new" and resumed.previous is not None
    with resumed:
        resumed.write_text("final.bin", "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [MANIFEST_NAME, "checkpoint-1", "final.bin", "user.txt"]
    )


def test_library_writes_are_recorded_after_the_fact(tmp_path):
    out = OutputFolder.claim(tmp_path, "cmd")
    (tmp_path / "checkpoint-1").mkdir()
    (tmp_path / "checkpoint-1" / "w.bin").write_bytes(b"w")
    assert out.record_new() == ["checkpoint-1/w.bin"]
    OutputFolder.claim(tmp_path, "cmd", overwrite=True)
    assert not (tmp_path / "checkpoint-1").exists()


def test_reserved_names_the_user_put_there_are_refused(tmp_path):
    OutputFolder.claim(tmp_path, "train").write_text("a.txt", "a")
    (tmp_path / "checkpoint-7").mkdir()
    (tmp_path / "checkpoint-7" / "user.bin").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="checkpoint-7"):
        OutputFolder.claim(tmp_path, "train", overwrite=True, reserved=["checkpoint-*"])
    assert (tmp_path / "checkpoint-7" / "user.bin").exists()


def test_an_input_inside_the_output_is_refused_before_anything_is_deleted(tmp_path):
    out = OutputFolder.claim(tmp_path / "out", "cmd")
    out.write_text("input.pt", "weights")
    with pytest.raises(UsageError, match="lies inside the output"):
        OutputFolder.claim(tmp_path / "out", "cmd", overwrite=True, inputs=[tmp_path / "out" / "input.pt"])
    assert (tmp_path / "out" / "input.pt").read_text() == "weights"
    with pytest.raises(UsageError, match="lies inside the output"):
        OutputFolder.claim(tmp_path, "cmd2", inputs=[tmp_path])  # the output is the input folder itself


def test_resume_names_the_differing_settings(tmp_path):
    OutputFolder.claim(tmp_path, "job", resume=True, settings={"steps": 10, "cfg": 6.0}).write_text("a", "a")
    OutputFolder.claim(tmp_path, "job", resume=True, settings={"steps": 10, "cfg": 6.0})  # same settings: resumes
    with pytest.raises(UsageError, match=r"cfg: 6\.0 -> 7\.0.*--force"):
        OutputFolder.claim(tmp_path, "job", resume=True, settings={"steps": 10, "cfg": 7.0})
    folder = OutputFolder.claim(tmp_path, "job", resume=True, settings={"steps": 10, "cfg": 7.0}, force=True)
    assert folder.manifest["settings_history"] == [{"cfg": 6.0, "steps": 10}]
    assert settings_diff({"a": [1, 2]}, {"a": (1, 2), "b": None}) == []


def test_atomic_path_keeps_the_old_file_when_writing_or_verification_fails(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")

    def reject(path):
        raise ValueError("no frames")

    with pytest.raises(ValueError, match="no frames"), atomic_path(target, verify=reject) as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left behind


def test_single_output_files(tmp_path):
    image = tmp_path / "img.png"
    image.write_bytes(b"png")
    with pytest.raises(UsageError, match="also an input"):
        check_output_file(image, inputs=[image], overwrite=True, flag="--json")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output_file(image, flag="--json")
    with pytest.raises(UsageError, match=r"must end with \.json"):
        check_output_file(tmp_path / "x.png", suffixes=(".json",), flag="--json")
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path, overwrite=True)
    assert check_output_file(image, overwrite=True) == image


@pytest.mark.parametrize(
    "relative, match",
    [("/etc/passwd", "absolute"), ("../../private/x.png", r"'\.\.'"), ("a/../../b.png", r"'\.\.'"), ("", "empty")],
)
def test_resolve_inside_refuses_paths_that_leave_the_root(tmp_path, relative, match):
    with pytest.raises(UsageError, match=match):
        resolve_inside(tmp_path, relative)


def test_resolve_inside_follows_symlinks(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", tmp_path / "root" / "link.png")
    os.symlink(tmp_path, tmp_path / "root" / "up")
    for name in ("link.png", "up/secret.png"):
        with pytest.raises(UsageError, match="outside its root"):
            resolve_inside(tmp_path / "root", name)
    (tmp_path / "root" / "ok.png").write_bytes(b"x")
    assert resolve_inside(tmp_path / "root", "ok.png") == tmp_path / "root" / "ok.png"
