"""benchmarks/owned.py: a benchmark removes only the folders it marked as its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from owned import MARKER, make_owned, remove_owned  # noqa: E402


def test_a_marked_folder_is_emptied_and_removed(tmp_path):
    work = make_owned(tmp_path / "a" / "work")
    (work / "stale.bin").write_bytes(b"x")
    again = make_owned(work)
    assert sorted(p.name for p in again.iterdir()) == [MARKER]
    remove_owned(work)
    assert not work.exists() and (tmp_path / "a").is_dir()
    remove_owned(work)  # absent: nothing to do


def test_a_folder_it_did_not_make_is_left_alone(tmp_path):
    theirs = tmp_path / "full-45840617"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("keep")
    for call in (make_owned, remove_owned):
        with pytest.raises(SystemExit, match="was not made by a tf4ctr benchmark"):
            call(theirs)
    assert (theirs / "precious.txt").read_text() == "keep"
    target = tmp_path / "target"
    target.mkdir()
    (target / MARKER).touch()
    link = tmp_path / "link"
    link.symlink_to(target)  # a link to a marked folder is still not ours to delete through
    with pytest.raises(SystemExit):
        remove_owned(link)
    assert target.is_dir()
