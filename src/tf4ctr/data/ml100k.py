"""MovieLens-100K as a CTR table in the paper's ML-1M schema, with a random and a temporal split.

Where the data comes from (``tf4ctr data download ml_100k --dir DIR``):

1. GroupLens's own archive (``ml-100k.zip``: ``u.data``, ``u.user``, ``u.item``),
   tried first with a short timeout;
2. else the ``recbole==1.2.1`` wheel from the Python package index, fetched with
   ``pip download --no-deps --only-binary=:all:`` (never installed), which carries
   the same data as RecBole atomic files ``ml-100k.inter`` / ``.user`` / ``.item``.

What is checked: the wheel's SHA-256 and those of the three atomic files are pinned
below; both routes must then produce the same CTR table, whose SHA-256 is pinned too
(``TABLE_SHA256``), and so are the six split files. Members are read from the archive
by exact name with a size cap (nothing else is extracted, so no path can escape).
Everything is written into a hidden staging folder beside the target and renamed into
place at the end: the target is either absent or complete. A second call finds the
folder, checks every file against the pins and returns.

The table (one row per rating, all 100,000 kept):

* ``label``: 1 for a rating above 3 (4 or 5 stars), else 0. This is the rule of the
  paper's ML-1M (its split sizes, 800,167 + 100,021 + 100,021, add up to every one of
  ML-1M's 1,000,209 ratings, so no rating 3 was dropped) and of
  :data:`tf4ctr.data.formats.ML1M_CLICK_THRESHOLD`.
* features ``user_id``, ``item_id``, ``gender``, ``age`` (bucketed into ML-1M's age
  groups 1/18/25/35/45/50/56, see :func:`ml1m_age_group`), ``occupation``, ``zip_code``
  and ``genres`` (the movie's genres joined by ``|``: a sequence field);
* ``timestamp`` (seconds) for the temporal split; not a feature.

MovieLens may not be redistributed (GroupLens's licence): the files are written to a
folder the user names, never into this repository.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tf4ctr.data.download import download_file
from tf4ctr.data.readers import sha256_file
from tf4ctr.errors import DataError
from tf4ctr.fileio import make_dir

__all__ = [
    "AGE_GROUPS",
    "FOLDER",
    "GROUPLENS_URL",
    "Pins",
    "TABLE_COLUMNS",
    "WHEEL_SPEC",
    "build_table",
    "fetch_ml100k",
    "ml1m_age_group",
    "random_split",
    "rating_label",
    "temporal_split",
]

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
WHEEL_SPEC = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
FOLDER = "ml-100k"  # the folder under --dir (the archive's own name, as for the other datasets)
SPLIT_SEED = 2023  # the paper's seed
SPLIT_SHARES = (0.8, 0.1, 0.1)
#: ML-1M's age groups: "Under 18", 18-24, 25-34, 35-44, 45-49, 50-55, 56+
AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
CLICK_THRESHOLD = 3  # rating > 3 is a click, as ML1M_CLICK_THRESHOLD
TABLE_COLUMNS = (
    "user_id", "item_id", "gender", "age", "occupation", "zip_code", "genres", "timestamp", "label",
)  # fmt: skip
# u.item's 19 genre flags, in u.genre's order (RecBole's ``class`` lists them in that order)
_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_MAX_MEMBER_BYTES = 16 << 20  # the largest file used (ml-100k.inter) is 1.98 MB
_PIP_TIMEOUT_S = 300.0
_SPLIT_FILES = tuple(
    f"{s}/{p}.csv" for s in ("random", "temporal") for p in ("train", "valid", "test")
)
_TABLE = "ml_100k.csv"
_PROVENANCE = "PROVENANCE.md"


@dataclass(frozen=True)
class Pins:
    """The SHA-256 sums everything fetched and written is checked against.

    Computed once from the real ``recbole-1.2.1`` wheel (and the files built from it);
    tests pass their own for synthetic data.
    """

    wheel: str | None = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
    atomic: Mapping[str, str] = field(
        default_factory=lambda: {
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
        }
    )
    outputs: Mapping[str, str] = field(default_factory=lambda: dict(_OUTPUT_SHA256))


# SHA-256 of the files written into the dataset folder, as built from the pinned wheel.
_OUTPUT_SHA256: dict[str, str] = {
    _TABLE: "b0381ee162446e0f030f43a1d53fe9319a0b835745997506930e9dfe4a09776b",
    "random/train.csv": "3f8126a86dd07acbc601d4824aaab87bf3c1185fa8c6d583192b136b993eaf85",
    "random/valid.csv": "151c529331ed2d0fc2531763f6bc249348487f7931c4c9074fe1c1952d60078a",
    "random/test.csv": "22730c0b17144e1f18429859cb54552492d920f10eaad3cb9bf0dc634754ee87",
    "temporal/train.csv": "58fb2d58d2d20b41f9922a13524100a4ffe4ca38a1a3f3ffaa7e87c4c47b2370",
    "temporal/valid.csv": "e9d0fcf8ae440f3ee4d22d280497ad113f40899fdf4235bbf9724fb2dc7f7251",
    "temporal/test.csv": "414ca4a55a041c01906ee023dc616bf76e07bb7800a6ce9e8afc26cb07e2191e",
}
TABLE_SHA256 = _OUTPUT_SHA256[_TABLE]


def ml1m_age_group(age: int) -> int:
    """ML-1M's age group of an age in years: the largest group start <= age (under 18 -> 1)."""
    group = AGE_GROUPS[0]
    for start in AGE_GROUPS[1:]:
        if age >= start:
            group = start
    return group


def rating_label(rating: float) -> int:
    """1 for a rating above 3 (a click), else 0; every rating is kept (the paper's ML-1M rule)."""
    if rating not in (1, 2, 3, 4, 5):
        raise DataError(f"rating {rating!r}: expected 1 to 5 stars")
    return int(rating > CLICK_THRESHOLD)


def random_split(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of an 8:1:1 split by a seeded permutation; each part in the table's order."""
    order = np.random.default_rng(seed).permutation(n)
    a, b = _cuts(n)
    return np.sort(order[:a]), np.sort(order[a:b]), np.sort(order[b:])


def temporal_split(timestamps: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
    """Row indices sorted by time (ties keep the table's order): first 80 %, next 10 %, last 10 %."""
    order = np.argsort(np.asarray(timestamps, dtype=np.int64), kind="stable")
    a, b = _cuts(len(order))
    return order[:a], order[a:b], order[b:]


def _cuts(n: int) -> tuple[int, int]:
    a = int(n * SPLIT_SHARES[0])
    return a, int(n * (SPLIT_SHARES[0] + SPLIT_SHARES[1]))


# --------------------------------------------------------------------------- parsing


def _member(archive: zipfile.ZipFile, where: str, name: str) -> bytes:
    """One archive member by exact name, refused when absent or larger than the cap."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise DataError(f"{where}: has no {name}") from None
    if info.file_size > _MAX_MEMBER_BYTES:
        raise DataError(
            f"{where}: {name} is {info.file_size:,} bytes, over the {_MAX_MEMBER_BYTES:,} cap"
        )
    with archive.open(info) as handle:
        data = handle.read(_MAX_MEMBER_BYTES + 1)
    if len(data) > _MAX_MEMBER_BYTES:
        raise DataError(f"{where}: {name} unpacks to more than {_MAX_MEMBER_BYTES:,} bytes")
    return data


def _rows(
    data: bytes, name: str, sep: str, ncols: int, *, header: bool, encoding: str
) -> list[list[str]]:
    lines = data.decode(encoding).splitlines()
    rows = [line.split(sep) for line in (lines[1:] if header else lines) if line.strip()]
    for i, row in enumerate(rows):
        if len(row) != ncols:
            raise DataError(
                f"{name}: line {i + 1 + header} has {len(row)} fields, expected {ncols}"
            )
    return rows


@dataclass
class _Raw:
    """The three MovieLens tables, in a form shared by both sources."""

    ratings: list[tuple[str, str, str, str]]  # user, item, rating, timestamp (file order)
    users: dict[str, tuple[str, str, str, str]]  # user -> age, gender, occupation, zip
    genres: dict[str, tuple[str, ...]]  # item -> genres


def _parse_atomic(files: Mapping[str, bytes]) -> _Raw:
    """RecBole atomic files: tab-separated, typed header line, sequences space-separated."""
    inter = _rows(files["ml-100k.inter"], "ml-100k.inter", "\t", 4, header=True, encoding="utf-8")
    user = _rows(files["ml-100k.user"], "ml-100k.user", "\t", 5, header=True, encoding="utf-8")
    item = _rows(files["ml-100k.item"], "ml-100k.item", "\t", 4, header=True, encoding="utf-8")
    return _Raw(
        ratings=[(u, i, r, t) for u, i, r, t in inter],
        users={u: (a, g, o, z) for u, a, g, o, z in user},
        genres={i: tuple(c.split()) for i, _title, _year, c in item},
    )


def _parse_grouplens(files: Mapping[str, bytes]) -> _Raw:
    """GroupLens's u.data (tabs), u.user and u.item ('|', latin-1, 19 genre flags)."""
    data = _rows(files["u.data"], "u.data", "\t", 4, header=False, encoding="latin-1")
    user = _rows(files["u.user"], "u.user", "|", 5, header=False, encoding="latin-1")
    item = _rows(files["u.item"], "u.item", "|", 5 + len(_GENRES), header=False, encoding="latin-1")
    return _Raw(
        ratings=[(u, i, r, t) for u, i, r, t in data],
        users={u: (a, g, o, z) for u, a, g, o, z in user},
        genres={
            r[0]: tuple(g for g, flag in zip(_GENRES, r[5:], strict=True) if flag == "1")
            for r in item
        },
    )


def _int(value: str, what: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise DataError(f"{what}: expected a number, found {value!r}") from None


def build_table(raw: _Raw) -> list[tuple]:
    """The CTR table's rows (``TABLE_COLUMNS``), one per rating, in the ratings file's order."""
    rows = []
    for u, i, r, t in raw.ratings:
        if u not in raw.users:
            raise DataError(f"rating of user {u}, who is not in the user file")
        if i not in raw.genres:
            raise DataError(f"rating of item {i}, which is not in the item file")
        age, gender, occupation, zip_code = raw.users[u]
        rows.append(
            (
                u,
                i,
                gender,
                ml1m_age_group(_int(age, f"age of user {u}")),
                occupation,
                zip_code,
                "|".join(raw.genres[i]),
                _int(t, "timestamp"),
                rating_label(_int(r, "rating")),
            )
        )
    return rows


def _write_csv(path: Path, rows: Sequence[tuple], columns: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


# --------------------------------------------------------------------------- sources


def _from_wheel(wheel: Path, pins: Pins) -> _Raw:
    if pins.wheel is not None:
        found = sha256_file(wheel)
        if found != pins.wheel:
            raise DataError(f"{wheel.name}: sha256 {found} does not match the pinned {pins.wheel}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            files = {
                name: _member(archive, wheel.name, f"recbole/dataset_example/ml-100k/{name}")
                for name in pins.atomic
            }
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{wheel.name}: not a readable wheel ({err})") from None
    for name, expected in pins.atomic.items():
        found = hashlib.sha256(files[name]).hexdigest()
        if found != expected:
            raise DataError(
                f"{name} in {wheel.name}: sha256 {found} does not match the pinned {expected}"
            )
    return _parse_atomic(files)


def _from_grouplens_zip(archive_path: Path) -> _Raw:
    try:
        with zipfile.ZipFile(archive_path) as archive:
            files = {
                n: _member(archive, archive_path.name, f"ml-100k/{n}")
                for n in ("u.data", "u.user", "u.item")
            }
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{archive_path.name}: not a readable zip ({err})") from None
    return _parse_grouplens(files)


def _pip_download(into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           WHEEL_SPEC, "-d", str(into), "--quiet", "--disable-pip-version-check"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DataError(f"pip download {WHEEL_SPEC}: no answer in {_PIP_TIMEOUT_S:.0f} s") from None
    wheels = sorted(into.glob("recbole-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise DataError(f"pip download {WHEEL_SPEC} failed: {last}")
    return wheels[0]


def _kind_of(archive: Path) -> str:
    """'wheel' or 'grouplens', from what the zip holds."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{archive.name}: not a readable zip ({err})") from None
    if "ml-100k/u.data" in names:
        return "grouplens"
    if any(n.startswith("recbole/dataset_example/ml-100k/") for n in names):
        return "wheel"
    raise DataError(f"{archive.name}: neither GroupLens's ml-100k.zip nor a recbole wheel")


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class Ml100kResult:
    directory: Path
    source: str
    rows: dict[str, dict[str, int]]  # split -> part -> rows
    clicks: dict[str, dict[str, float]]  # split -> part -> click rate
    already_present: bool = False
    notes: tuple[str, ...] = ()


def _verify_outputs(folder: Path, pins: Pins, *, where: str) -> None:
    for name in (_TABLE, *_SPLIT_FILES):
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"{folder}: {name} is missing; remove the folder or choose another --dir"
            )
        expected = pins.outputs.get(name)
        if expected:
            found = sha256_file(path)
            if found != expected:
                raise DataError(
                    f"{name}: sha256 {found} does not match the pinned {expected} ({where})"
                )


def _stats(folder: Path) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    rows: dict[str, dict[str, int]] = {}
    clicks: dict[str, dict[str, float]] = {}
    for name in _SPLIT_FILES:
        split, part = name.removesuffix(".csv").split("/")
        with open(folder / name, encoding="utf-8", newline="") as handle:
            labels = [int(r["label"]) for r in csv.DictReader(handle)]
        rows.setdefault(split, {})[part] = len(labels)
        clicks.setdefault(split, {})[part] = sum(labels) / len(labels) if labels else float("nan")
    return rows, clicks


def _provenance(source: str, detail: str, folder: Path) -> str:
    sums = "\n".join(f"- `{n}` sha256 `{sha256_file(folder / n)}`" for n in (_TABLE, *_SPLIT_FILES))
    return f"""# MovieLens-100K as a CTR table (tf4ctr `ml_100k`)

Written by `tf4ctr data download ml_100k`. Source: {source}.
{detail}

## Licence

MovieLens 100K is (c) GroupLens Research, University of Minnesota, distributed under
its own terms (https://files.grouplens.org/datasets/movielens/ml-100k-README.txt): use
for research, **no redistribution** without permission, cite F. Maxwell Harper and
Joseph A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015.
Do not commit these files to any repository or share them.

## What is here

- `{_TABLE}`: one row per rating (100,000), columns {", ".join(TABLE_COLUMNS)}.
  label = 1 for a rating above 3 (4, 5 stars), else 0, every rating kept (the paper's
  ML-1M rule: its splits add up to all of ML-1M's ratings). age is bucketed into ML-1M's
  groups {"/".join(map(str, AGE_GROUPS))}; genres are '|'-joined (a sequence field);
  timestamp is for the temporal split only, not a feature.
- `random/{{train,valid,test}}.csv`: 8:1:1 by a permutation with seed {SPLIT_SEED}.
- `temporal/{{train,valid,test}}.csv`: sorted by timestamp (ties keep the table's
  order), first 80 % train, next 10 % valid, last 10 % test.

## Checksums (SHA-256)

{sums}
"""


def fetch_ml100k(
    directory: str | Path,
    *,
    url: str | None = None,
    pins: Pins | None = None,
    grouplens_timeout: float = 5.0,
    pip_download: Callable[[Path], Path] = _pip_download,
    progress: bool = True,
) -> Ml100kResult:
    """Fetch MovieLens-100K, check it, build the CTR table and its splits in ``directory``.

    ``url``: fetch this archive (GroupLens-style zip or recbole wheel; ``file://``
    works) and nothing else. Without it, GroupLens's archive is tried once with a
    ``grouplens_timeout``-second timeout and, if that fails for any reason, the
    pinned recbole wheel is fetched with pip. Every failure after a source was
    chosen is a :class:`DataError`; nothing is left behind.
    """
    pins = pins or Pins()
    target = Path(directory)
    if target.is_dir() and (target / _PROVENANCE).is_file():
        _verify_outputs(target, pins, where=f"in {target}")
        rows, clicks = _stats(target)
        return Ml100kResult(target, "already present", rows, clicks, already_present=True)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(
            f"{target}: exists and is not a finished ml_100k folder; remove it or choose another --dir"
        )
    make_dir(target.parent, "--dir")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    notes: list[str] = []
    try:
        downloads = staging / ".download"
        downloads.mkdir()
        if url is not None:
            name = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] or "archive.zip"
            archive = download_file(
                url, downloads / name, retries=0, timeout=60.0, progress=progress
            )
            kind = _kind_of(archive)
            raw = _from_wheel(archive, pins) if kind == "wheel" else _from_grouplens_zip(archive)
            source = f"`{url}`" + (
                " (recbole wheel)" if kind == "wheel" else " (GroupLens archive)"
            )
        else:
            raw = None
            try:
                archive = download_file(GROUPLENS_URL, downloads / "ml-100k.zip", retries=0,
                                        timeout=grouplens_timeout, progress=progress)  # fmt: skip
                raw = _from_grouplens_zip(archive)
                source = f"GroupLens's archive `{GROUPLENS_URL}`"
            except DataError as err:
                reason = str(err).split("; ", 1)[0]  # without the .part hint: it is deleted
                notes.append(f"GroupLens archive not used: {reason}; took the {WHEEL_SPEC} wheel")
            if raw is None:
                wheel = pip_download(downloads)
                raw = _from_wheel(wheel, pins)
                source = (f"the `{WHEEL_SPEC}` wheel from the Python package index "
                          f"(`{wheel.name}`, not installed), files "
                          "`recbole/dataset_example/ml-100k/ml-100k.{inter,user,item}`")  # fmt: skip
        table = build_table(raw)
        _write_csv(staging / _TABLE, table, TABLE_COLUMNS)
        for split, parts in (
            ("random", random_split(len(table))),
            ("temporal", temporal_split([r[7] for r in table])),
        ):
            for part, idx in zip(("train", "valid", "test"), parts, strict=True):
                _write_csv(staging / split / f"{part}.csv", [table[i] for i in idx], TABLE_COLUMNS)
        _verify_outputs(staging, pins, where=f"built from {source}; nothing was kept")
        shutil.rmtree(downloads)
        detail = "\n".join(f"Note: {n}" for n in notes)
        (staging / _PROVENANCE).write_text(_provenance(source, detail, staging), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp made it private
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rows, clicks = _stats(target)
    return Ml100kResult(target, source, rows, clicks, notes=tuple(notes))
