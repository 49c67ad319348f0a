"""posekit.io: writes are atomic and leave nothing half-written behind."""

import os

import pytest

from posekit import io


def test_atomic_write_replaces_content_and_uses_normal_permissions(tmp_path):
    path = tmp_path / "sub" / "a.json"
    io.atomic_write_json(path, {"x": 1})
    io.atomic_write_json(path, {"x": 2})
    assert path.read_text().strip().replace(" ", "").replace("\n", "") == '{"x":2}'
    assert os.stat(path).st_mode & 0o044, "written file is not readable by group/others"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    io.atomic_write_json(path, {"x": 1})
    with pytest.raises(TypeError):
        io.atomic_write_json(path, {"x": object()})  # not JSON-serializable: fails before anything is written
    assert '"x": 1' in path.read_text()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_replace_dir_swaps_a_finished_folder_into_place(tmp_path):
    final = tmp_path / "ds"
    for content in ("old", "new"):
        tmp = tmp_path / f".ds.{content}"
        tmp.mkdir()
        (tmp / "f.txt").write_text(content)
        io.atomic_replace_dir(tmp, final)
        assert (final / "f.txt").read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    io.atomic_write_bytes(path, b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
