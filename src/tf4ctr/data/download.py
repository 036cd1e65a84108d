"""Fetch a benchmark dataset's archive, verify it, and unpack it atomically.

What a user can rely on:

* **Resume.** Bytes arrive in ``<archive>.part``. A dropped connection is
  retried from where it stopped with an HTTP ``Range`` request; a server that
  ignores ranges (answers 200) restarts the file from byte 0. If every retry
  fails the ``.part`` file stays, and rerunning the same command continues it.
* **Verification.** Every file with a published md5 is checked after
  unpacking (the registry publishes per-file sums, not archive sums). A
  mismatch is an error, and the archive, the ``.part`` file and the half-made
  folder are all removed: nothing unverified is left where a later run could
  pick it up.
* **Atomic unpacking.** The archive is unpacked into a hidden temporary
  folder next to the target and renamed into place only when every check
  passed; the target either does not exist or is complete.

Only the standard library's ``urllib`` is used, so no extra dependency is
needed for a once-per-dataset download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from tf4ctr.errors import DataError
from tf4ctr.fileio import make_dir
from tf4ctr.progress import show_bars

__all__ = ["DownloadResult", "download_file", "fetch_dataset", "md5_file"]

_CHUNK = 1 << 20
# Errors after which a retry with a Range request makes sense.
_TRANSIENT = (ConnectionError, socket.timeout, TimeoutError, HTTPException, urllib.error.URLError)


def md5_file(path: Path, chunk_size: int = _CHUNK) -> str:
    """Hex md5 of a file, read in chunks (the sums BARS / RecZoo publish are md5)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "tf4ctr"})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _expected_total(response, start: int) -> int | None:
    """Total size of the file from Content-Range (206) or Content-Length (200)."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (start if response.status == 206 else 0)
    return None


def _transfer(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part``; raises a transient error if cut off."""
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:
            # The range starts at or past the end: the .part is not a prefix we can trust.
            part.unlink()
            response = _open(url, 0, timeout)
            start = 0
        else:
            raise
    with response:
        if start > 0 and response.status != 206:
            start = 0  # the server ignored the Range header: start again
        total = _expected_total(response, start)
        mode = "ab" if start > 0 else "wb"
        received = start
        with (
            open(part, mode) as handle,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=not show_bars(progress),
            ) as bar,
        ):
            while block := response.read(_CHUNK):
                handle.write(block)
                received += len(block)
                bar.update(len(block))
        if total is not None and received < total:
            raise ConnectionError(f"connection closed after {received:,} of {total:,} bytes")
        if total is not None and received > total:
            part.unlink()
            raise DataError(
                f"{url}: received {received:,} bytes, more than the {total:,} announced"
            )


def download_file(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff_s: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming after dropped connections.

    ``dest`` appears only once complete (and, with ``md5``, verified). A
    checksum mismatch deletes the download and raises :class:`DataError`.
    When all ``retries`` fail the partial file is kept for the next call.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _transfer(url, part, timeout=timeout, progress=progress)
            break
        except urllib.error.HTTPError as err:
            raise DataError(f"{url}: server answered HTTP {err.code} {err.reason}") from None
        except _TRANSIENT as err:
            attempt += 1
            if attempt > retries:
                have = part.stat().st_size if part.exists() else 0
                raise DataError(
                    f"{url}: download interrupted ({err}); {have:,} bytes kept in {part}, "
                    "run the same command again to resume"
                ) from None
            time.sleep(backoff_s * attempt)
    if md5 is not None:
        found = md5_file(part)
        if found != md5.lower():
            part.unlink()
            raise DataError(
                f"{url}: md5 {found} does not match the published {md5}; the download was deleted"
            )
    os.replace(part, dest)
    return dest


@dataclass(frozen=True)
class DownloadResult:
    """Where a dataset landed and which of its files were checked."""

    directory: Path
    verified: dict[str, str]
    unverified: tuple[str, ...]
    already_present: bool = False


def _unpack(archive: Path, into: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    _check_member(archive, member)
                zf.extractall(into)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
        else:
            shutil.copy2(archive, into / archive.name)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise DataError(f"{archive}: cannot unpack ({err})") from None


def _check_member(archive: Path, member: str) -> None:
    """Refuse archive paths that would land outside the target folder."""
    parts = Path(member).parts
    if Path(member).is_absolute() or ".." in parts:
        raise DataError(f"{archive}: unsafe path {member!r} in the archive")


def _find(root: Path, name: str) -> Path | None:
    """The one file called ``name`` under ``root`` (archives nest their files in a folder)."""
    hits = sorted(p for p in root.rglob(name) if p.is_file() and "__MACOSX" not in p.parts)
    return hits[0] if hits else None


def _flatten(unpacked: Path, names: list[str]) -> None:
    """Move the expected files to the top of ``unpacked`` when the archive nests them."""
    for name in names:
        found = _find(unpacked, name)
        if found is not None and found.parent != unpacked:
            os.replace(found, unpacked / name)


def fetch_dataset(
    url: str,
    directory: str | Path,
    checksums: Mapping[str, str | None],
    *,
    archive_name: str | None = None,
    keep_archive: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> DownloadResult:
    """Download the archive at ``url`` and unpack it into ``directory`` after verification.

    ``checksums`` maps each file the archive must contain to its published
    md5 (``None``: expected but no published sum, so it is only checked to
    exist). A folder that already holds every file with the right sums is
    left alone. ``directory`` is created only when everything checked out.
    """
    target = Path(directory)
    names = list(checksums)
    if target.is_dir() and all((target / n).is_file() for n in names):
        verified = _verify(target, checksums, where=target)
        unverified = tuple(n for n, s in checksums.items() if s is None)
        return DownloadResult(target, verified, unverified, already_present=True)
    if target.exists() and any(target.iterdir()):
        raise DataError(
            f"{target}: folder exists but lacks {', '.join(n for n in names if not (target / n).is_file())}; "
            "remove it or choose another --dir"
        )
    make_dir(target.parent, "--dir")
    archive_name = archive_name or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    archive = target.parent / archive_name
    download_file(url, archive, retries=retries, timeout=timeout, progress=progress)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _unpack(archive, staging)
        _flatten(staging, names)
        missing = [n for n in names if not (staging / n).is_file()]
        if missing:
            raise DataError(f"{url}: the archive has no {', '.join(missing)}")
        verified = _verify(staging, checksums, where=None)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, DataError):
            archive.unlink(missing_ok=True)  # a wrong archive must not be reused by a rerun
        raise
    if not keep_archive:
        archive.unlink(missing_ok=True)
    unverified = tuple(n for n, s in checksums.items() if s is None)
    return DownloadResult(target, verified, unverified)


def _verify(
    folder: Path, checksums: Mapping[str, str | None], *, where: Path | None
) -> dict[str, str]:
    """md5 of every file with a published sum; ``where`` names an existing folder in errors."""
    verified: dict[str, str] = {}
    for name, expected in checksums.items():
        if expected is None:
            continue
        found = md5_file(folder / name)
        if found != expected.lower():
            raise DataError(
                f"{name}: md5 {found} does not match the published {expected}"
                + (f" (in {where})" if where is not None else "; nothing was kept")
            )
        verified[name] = found
    return verified
