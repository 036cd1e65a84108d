"""The download path against a real HTTP server on 127.0.0.1.

The server serves one small zip of BARS-style split files and honours
``Range`` requests; a switch makes it cut the connection half-way through
the body, as a flaky network would.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from tf4ctr.cli import main
from tf4ctr.data.download import download_file, fetch_dataset, md5_file
from tf4ctr.errors import DataError

FILES = {
    "train.csv": b"label,user,item\n1,a,x\n0,b,y\n" * 200,
    "valid.csv": b"label,user,item\n0,a,y\n" * 50,
    "test.csv": b"label,user,item\n1,b,x\n" * 50,
}
SUMS = {name: hashlib.md5(data).hexdigest() for name, data in FILES.items()}


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(f"Toy_x1/{name}", data)  # nested in a folder, like RecZoo's zips
    return buf.getvalue()


class _Server:
    """Serves /Toy_x1.zip; ``drop_first`` requests are cut after half the body."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.drop_first = 0
        self.honour_range = True
        self.requests: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/Toy_x1.zip":
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                data, start = outer.payload, 0
                if rng and outer.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drop_first > 0:
                    outer.drop_first -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/Toy_x1.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    with _Server(_zip_bytes()) as srv:
        yield srv


def test_good_checksums_unpack_flat_and_drop_the_archive(server, tmp_path):
    result = fetch_dataset(server.url, tmp_path / "Toy_x1", SUMS, progress=False)
    assert result.verified == SUMS and not result.already_present
    for name, data in FILES.items():
        assert (tmp_path / "Toy_x1" / name).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Toy_x1"]  # no archive, no .part


def test_second_call_finds_the_folder_and_downloads_nothing(server, tmp_path):
    fetch_dataset(server.url, tmp_path / "Toy_x1", SUMS, progress=False)
    n = len(server.requests)
    again = fetch_dataset(server.url, tmp_path / "Toy_x1", SUMS, progress=False)
    assert again.already_present and len(server.requests) == n


def test_bad_checksum_is_an_error_and_leaves_nothing(server, tmp_path):
    wrong = dict(SUMS, **{"valid.csv": "0" * 32})
    with pytest.raises(DataError, match=r"valid.csv: md5 .* does not match the published 0{32}"):
        fetch_dataset(server.url, tmp_path / "Toy_x1", wrong, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    server.drop_first = 1
    fetch_dataset(server.url, tmp_path / "Toy_x1", SUMS, progress=False)
    assert server.requests[0] is None
    assert server.requests[1] is not None and server.requests[1].startswith("bytes=")
    assert int(server.requests[1].removeprefix("bytes=").rstrip("-")) > 0
    assert md5_file(tmp_path / "Toy_x1" / "train.csv") == SUMS["train.csv"]


def test_server_without_ranges_restarts_cleanly(server, tmp_path):
    server.drop_first, server.honour_range = 1, False
    dest = download_file(server.url, tmp_path / "a.zip", progress=False, backoff_s=0)
    assert dest.read_bytes() == server.payload


def test_retries_exhausted_keep_the_part_and_a_rerun_resumes(server, tmp_path):
    server.drop_first = 10
    with pytest.raises(DataError, match="interrupted.*run the same command again to resume"):
        download_file(server.url, tmp_path / "a.zip", retries=1, progress=False, backoff_s=0)
    part = tmp_path / "a.zip.part"
    assert part.exists() and 0 < part.stat().st_size < len(server.payload)
    assert not (tmp_path / "a.zip").exists()
    server.drop_first = 0
    download_file(server.url, tmp_path / "a.zip", progress=False)
    assert (tmp_path / "a.zip").read_bytes() == server.payload
    assert not part.exists()


def test_archive_md5_mismatch_deletes_the_download(server, tmp_path):
    with pytest.raises(DataError, match="does not match"):
        download_file(server.url, tmp_path / "a.zip", md5="f" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_in_archive_is_named(server, tmp_path):
    with pytest.raises(DataError, match="the archive has no extra.csv"):
        fetch_dataset(
            server.url, tmp_path / "Toy_x1", dict(SUMS, **{"extra.csv": None}), progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_http_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(server.url.replace("Toy_x1", "nope"), tmp_path / "a.zip", progress=False)


def test_unsafe_member_path_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.csv", b"x")
    from tf4ctr.data.download import _unpack

    (tmp_path / "into").mkdir()
    with pytest.raises(DataError, match="unsafe path"):
        _unpack(archive, tmp_path / "into")
    assert not (tmp_path / "escape.csv").exists()


def _cli_download(directory, url) -> int:
    return main(
        ["data", "download", "frappe_x1", "--dir", str(directory), "--url", url, "--no-progress"]
    )


def test_cli_download_from_a_mirror(server, tmp_path, capsys, monkeypatch):
    from tf4ctr.data import datasets

    info = datasets.DATASETS["frappe_x1"]
    monkeypatch.setitem(
        datasets.DATASETS,
        "frappe_x1",
        datasets.DatasetInfo(**{**info.__dict__, "checksums": SUMS}),
    )
    code = _cli_download(tmp_path, server.url)
    out = capsys.readouterr().out
    assert code == 0
    assert "matches the published sum" in out
    assert (tmp_path / "Frappe_x1" / "train.csv").read_bytes() == FILES["train.csv"]


def test_cli_download_checksum_mismatch_exits_2(server, tmp_path, capsys):
    # the real registry sums cannot match the toy archive
    code = _cli_download(tmp_path, server.url)
    err = capsys.readouterr().err
    assert code == 2
    assert "does not match the published" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_folder_name_comes_from_the_archive(tmp_path: Path):
    from tf4ctr.data.datasets import download_folder_name, get_dataset

    assert download_folder_name(get_dataset("frappe")) == "Frappe_x1"
    assert download_folder_name(get_dataset("ml-1m")) == "ml-1m"
