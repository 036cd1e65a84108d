"""Committed results name no place on the machine that made them.

A record or report that holds ``/home/someone/checkout/runs/...`` says where one clone lived,
not what was measured, and a fresh clone elsewhere regenerates different bytes. Records keep
their run directory relative to the runs folder and their data files by name; reports are
rendered from records. The dataset configs of records are checked by
test_results_regenerate.py; this checks every string of every committed record and report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
#: an absolute POSIX path, a home-relative one, or a Windows drive path
MACHINE_PATH = re.compile(r"^(/[^/\s]+/|~/|[A-Za-z]:[\\/])")
#: an absolute path inside prose (a leading slash not part of a URL or a relative path); a
#: command's ``~/.cache/...`` is everyone's home, so prose may show it
PATH_IN_TEXT = re.compile(r"(?<![\w.:/~-])/(?:work|home|root|tmp|Users|mnt|var|opt)/")


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _stores() -> list[Path]:
    return sorted(RESULTS.glob("*/*.jsonl"))


def test_the_patterns_catch_what_they_should():
    assert MACHINE_PATH.match("/work/main/runs/x") and MACHINE_PATH.match("~/.cache/tf4ctr")
    assert MACHINE_PATH.match("C:\\data\\train.csv")
    assert not MACHINE_PATH.match("frappe_zoo/DNN-s2023") and not MACHINE_PATH.match("train.csv")
    assert PATH_IN_TEXT.search("ran in /home/me/tf4ctr") and not PATH_IN_TEXT.search(
        "see https://example.org/home/x and docs/results/frappe_x1"
    )


@pytest.mark.skipif(not _stores(), reason="no committed result stores")
@pytest.mark.parametrize("store", _stores(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_record_holds_a_machine_path(store: Path):
    for number, line in enumerate(store.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        for where, text in _strings(json.loads(line), "record"):
            assert not MACHINE_PATH.match(text), f"{store.name}:{number}: {where} = {text!r}"


def test_no_report_names_a_machine_path():
    documents = [*(REPO / "docs").rglob("*.md"), REPO / "README.md"]
    for doc in documents:
        if not doc.is_file():
            continue
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            found = PATH_IN_TEXT.search(line)
            assert not found, f"{doc.relative_to(REPO)}:{number}: {line.strip()[:120]}"
