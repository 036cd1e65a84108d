"""The progress bar of one read of a split file, decided in one place (cache builds, scoring).

A plain CSV or TSV reports how far its reader has come in bytes, so its bar is in bytes of the
file: that gives the first read of a split, whose rows nobody knows yet, a total. Anything
else counts rows, with a total where one is known: a count from an earlier pass, or a
parquet file's footer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tf4ctr.data.readers import byte_total
from tf4ctr.data.schema import DatasetConfig
from tf4ctr.progress import show_bars


def parquet_rows(path: Path) -> int | None:
    """Rows of a parquet file from its footer; None for anything else (the reader reports a
    file it cannot read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError):
        return None


class ReadBar:
    """A bar over one read of ``path``: hand :attr:`on_bytes` to ``iter_chunks`` and call
    :meth:`rows_read` with each block's rows; whichever the bar does not count is ignored.

    ``in_bytes=False`` counts rows even for a CSV (a later pass, whose ``rows`` are known).
    """

    def __init__(
        self,
        path: Path,
        config: DatasetConfig,
        *,
        desc: str,
        progress: bool,
        in_bytes: bool = True,
        rows: int | None = None,
    ) -> None:
        total = byte_total(path, config) if in_bytes else None
        self.in_bytes = total is not None
        units: dict[str, Any] = (
            {"unit": "B", "unit_divisor": 1024, "total": total}
            if self.in_bytes
            else {"unit": " rows", "total": rows if rows is not None else parquet_rows(path)}
        )
        self._position = self._rows = 0  # a disabled tqdm counts nothing: counted here
        self.bar = tqdm(
            desc=desc, unit_scale=True, disable=not show_bars(progress), leave=False, **units
        )

    @property
    def on_bytes(self) -> Callable[[int], None] | None:
        return self._at if self.in_bytes else None

    def _at(self, position: int) -> None:
        self.bar.update(position - self._position)
        self._position = position

    def rows_read(self, rows: int) -> None:
        self._rows += rows
        if not self.in_bytes:
            self.bar.update(rows)

    @property
    def rows(self) -> int:
        """Rows read so far."""
        return self._rows

    @property
    def position(self) -> int:
        """Bytes of the file read so far (0 for a bar in rows)."""
        return self._position

    def __enter__(self) -> ReadBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
