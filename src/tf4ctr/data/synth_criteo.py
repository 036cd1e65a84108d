"""SYNTHETIC Criteo-shaped click logs, for throughput and memory benchmarks only.

Nothing here is real user behaviour. What is real is the shape:

* the layout of Kaggle's ``train.txt`` (label, I1-I13, C1-C26, tab-separated,
  no header, empty cells for missing values, categories as 8-hex-digit ids);
* each categorical field's number of possible values, set to the distinct
  counts of the real Kaggle ``train.txt`` (the list DLRM's data loader and
  most Criteo write-ups print); values are drawn with Zipf-like frequencies
  (rank r has weight r^-s), so, as in the real file, a few ids are everywhere
  and most are rare — in 45.8M draws the largest fields show only part of
  their possible ids, and min count 10 keeps a few hundred thousand;
* missing-value rates per field close to those reported for the real file.

The click label comes from a small logistic model over three fields and two
counts (overall CTR about 0.25, like Criteo's 0.256), so a model can learn
something, but the numbers it reaches mean nothing about Criteo.
Generation is vectorised per block of rows and written with Arrow's CSV
writer, so 45.8M rows (about 11 GB) take minutes, and a seed fixes every byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from tqdm import tqdm

from tf4ctr.data.datasets import CRITEO_BUCKETERS
from tf4ctr.data.formats import CRITEO_CATEGORICAL, CRITEO_NUMERIC, criteo_feature_cols
from tf4ctr.errors import ConfigError
from tf4ctr.progress import show_bars

__all__ = [
    "CRITEO_CARDINALITIES",
    "CRITEO_KAGGLE_ROWS",
    "CriteoSynthSpec",
    "write_synthetic_criteo",
]

#: rows of the real Kaggle train.txt
CRITEO_KAGGLE_ROWS = 45_840_617

#: distinct values of C1..C26 in the real Kaggle train.txt
CRITEO_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip

# Approximate shares of empty cells per field in the real file.
_NUMERIC_MISSING = (0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.77, 0.22)
_CATEGORICAL_MISSING = (
    0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0,
    0.0, 0.0, 0.03, 0.0, 0.0, 0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44,
)  # fmt: skip
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class CriteoSynthSpec:
    """How many rows, how they are split, and the shape of the frequency law."""

    rows: int = CRITEO_KAGGLE_ROWS
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    zipf_s: float = 1.1
    seed: int = 2023
    block_rows: int = 1 << 20

    def __post_init__(self) -> None:
        if self.rows < 3:
            raise ConfigError(f"--rows: expected at least 3, got {self.rows}")
        if len(self.split) != 3 or any(p <= 0 for p in self.split):
            raise ConfigError(f"--split: expected three positive shares, got {self.split}")
        if self.zipf_s <= 1.0:
            raise ConfigError(f"--zipf: expected an exponent above 1, got {self.zipf_s}")

    def split_rows(self) -> dict[str, int]:
        shares = np.asarray(self.split) / sum(self.split)
        valid = max(1, int(round(self.rows * shares[1])))
        test = max(1, int(round(self.rows * shares[2])))
        return {"train": self.rows - valid - test, "valid": valid, "test": test}


def _zipf_ranks(rng: np.random.Generator, n: int, cardinality: int, s: float) -> np.ndarray:
    """Ranks 0..cardinality-1 from the continuous power law x^-s on [1, cardinality + 1),
    binned: P(r) is proportional to (r + 1)^(1-s) - (r + 2)^(1-s), about (s-1)(r + 1)^-s.
    Drawn by inverting its CDF, so a 10M-value field needs no table."""
    u = rng.random(n)
    top = float(cardinality + 1) ** (1.0 - s)
    x = (1.0 + u * (top - 1.0)) ** (1.0 / (1.0 - s))
    return np.minimum(x.astype(np.int64) - 1, cardinality - 1)


def _hex_ids(ranks: np.ndarray, field: int) -> np.ndarray:
    """8-hex-digit ids like Criteo's, one per rank, different per field (a bijection on 32 bits)."""
    mixed = (
        ranks.astype(np.uint64) * np.uint64(2654435761) + np.uint64((field + 1) * 0x9E3779B1)
    ) & np.uint64(0xFFFFFFFF)
    nibbles = (
        mixed[:, None] >> (np.arange(7, -1, -1, dtype=np.uint64) * np.uint64(4))
    ) & np.uint64(15)
    return _HEX[nibbles.astype(np.intp)].view("S8").ravel()


def _block(rng: np.random.Generator, n: int, spec: CriteoSynthSpec) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    counts = []
    for j, name in enumerate(CRITEO_NUMERIC):
        values = np.floor(rng.lognormal(mean=1.5, sigma=1.6, size=n)).astype(np.int64)
        if name == "I2":  # the one count that goes below zero in the real file
            values -= rng.integers(0, 2, n)
        counts.append(values)
        missing = rng.random(n) < _NUMERIC_MISSING[j]
        columns[name] = pa.array(values, mask=missing)
    ranks = []
    for j, (name, card) in enumerate(zip(CRITEO_CATEGORICAL, CRITEO_CARDINALITIES, strict=True)):
        r = _zipf_ranks(rng, n, card, spec.zipf_s)
        ranks.append(r)
        missing = rng.random(n) < _CATEGORICAL_MISSING[j]
        columns[name] = pa.array(_hex_ids(r, j), type=pa.binary(), mask=missing).cast(pa.string())
    # A small known model: popular values of C1, C6 and C14 and two counts move the click rate.
    logit = -1.25 + 0.6 * np.cos(ranks[0] * 0.7) + 0.5 * np.sin(ranks[5] * 1.3)
    logit += (
        0.4 * np.cos(ranks[13] * 0.31)
        + 0.15 * np.log1p(np.abs(counts[1]))
        - 0.1 * np.log1p(np.abs(counts[4]))
    )
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return pa.table({"label": pa.array(label), **columns})


def write_synthetic_criteo(
    directory: str | Path, spec: CriteoSynthSpec | None = None, *, progress: bool = True
) -> dict[str, Path]:
    """Write ``train.txt``, ``valid.txt``, ``test.txt`` (Kaggle layout) and ``dataset.yaml``.

    ``dataset.yaml`` is a tf4ctr dataset config with the paper's Criteo
    preprocessing (log bucketing of I1-I13 as the paper's code does it, min count 10), ready for
    ``tf4ctr data prepare``. Each file is written under a temporary name and
    renamed when complete.
    """
    spec = spec or CriteoSynthSpec()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    paths: dict[str, Path] = {}
    with tqdm(
        total=spec.rows,
        unit=" rows",
        unit_scale=True,
        desc="synth criteo",
        disable=not show_bars(progress),
    ) as bar:
        for split, rows in spec.split_rows().items():
            path = directory / f"{split}.txt"
            tmp = directory / f".{split}.txt.partial-{os.getpid()}"
            try:
                with pacsv.CSVWriter(tmp, _block(rng, 1, spec).schema, write_options=options) as w:
                    done = 0
                    while done < rows:
                        n = min(spec.block_rows, rows - done)
                        w.write_table(_block(rng, n, spec))
                        done += n
                        bar.update(n)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            paths[split] = path
    config = {
        "criteo_synthetic": {
            "data_format": "criteo_tsv",
            "train_data": "train.txt",
            "valid_data": "valid.txt",
            "test_data": "test.txt",
            "min_categr_count": 10,
            # as the registry: the bucketing of the paper's code
            "feature_cols": criteo_feature_cols(CRITEO_BUCKETERS[0]),
            "label_col": {"name": "label", "dtype": "float"},
        }
    }
    header = (
        f"# SYNTHETIC Criteo-shaped data (tf4ctr data synth criteo --rows {spec.rows} "
        f"--seed {spec.seed}); not real clicks.\n"
    )
    (directory / "dataset.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    paths["config"] = directory / "dataset.yaml"
    return paths
