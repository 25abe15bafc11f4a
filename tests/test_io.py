"""Atomic writes: all or nothing, and the file's permissions as a plain write would leave them."""

from __future__ import annotations

import os
import stat

import pytest

from qa.io import atomic_write_text


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.json", "{}\n")
        (tmp_path / "plain.json").write_text("{}\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new.json") == _mode(tmp_path / "plain.json") == 0o644
    assert (tmp_path / "new.json").read_text() == "{}\n"


def test_a_rewritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert (path.read_text(), _mode(path)) == ("new", 0o640)


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text("old")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["settings.json"]
