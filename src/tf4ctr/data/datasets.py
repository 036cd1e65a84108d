"""Registry of the datasets the TF4CTR paper and the BARS benchmark use.

Why a registry: the split sizes, field lists, per-field preprocessing and
gAUC group column of each benchmark are facts a user should not have to copy
by hand into a YAML file, and a wrong one (a missing field, min count 1
instead of 2) silently changes every number. :func:`dataset_config` turns an
entry plus a folder of ``train/valid/test`` files into a checked
:class:`~tf4ctr.data.schema.DatasetConfig`.

Sources of the facts: split sizes of the paper's datasets from its Table I
(as restated in ``shared/reference/official-code.md``); Avazu_x1 and
Criteo_x1, which the paper does not use, from their BARS/RecZoo dataset
cards. Checksums are the md5 sums those cards publish; where none is known
the entry says so (``None``) rather than guessing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tf4ctr.data.csv_errors import first_line_bytes
from tf4ctr.data.formats import CRITEO_CATEGORICAL, CRITEO_NUMERIC, FRAPPE_FIELDS, ML1M_FIELDS
from tf4ctr.data.schema import DatasetConfig, load_dataset_config
from tf4ctr.errors import ConfigError

__all__ = [
    "CRITEO_BUCKETERS",
    "DATASETS",
    "DatasetInfo",
    "FieldGroup",
    "dataset_config",
    "download_folder_name",
    "get_dataset",
]

# The default reproduces the code the paper ran; the option follows its text.
CRITEO_BUCKETERS = ("criteo_log_bucket_fuxictr", "criteo_log_bucket")
_SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class FieldGroup:
    """Fields that share one preprocessing recipe (one ``feature_cols`` entry)."""

    names: tuple[str, ...]
    type: str = "categorical"
    dtype: str = "str"
    preprocess: str | None = None
    fill_na: str | float | None = None
    sequence: bool = False
    max_len: int = 3  # sequence fields: tokens kept per row
    note: str = ""

    def describe(self) -> str:
        """One line for ``tf4ctr data info``."""
        kind = "sequence" if self.sequence else self.type
        parts = [f"{kind} {self.dtype}"]
        if self.preprocess:
            parts.append(f"preprocess={self.preprocess}")
        if self.fill_na is not None:
            parts.append(f"fill_na={self.fill_na!r}")
        text = ", ".join(parts)
        return f"{text}; {self.note}" if self.note else text


@dataclass(frozen=True)
class DatasetInfo:
    """Everything tf4ctr knows about one benchmark dataset."""

    name: str
    title: str
    description: str
    splits: dict[str, int]
    fields: tuple[FieldGroup, ...]
    label: str
    group_col: str | None
    min_categr_count: int
    sources: dict[str, str]
    checksums: dict[str, str | None] = field(default_factory=dict)
    in_paper: bool = True
    notes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(n for g in self.fields for n in g.names)

    @property
    def total_rows(self) -> int:
        return sum(self.splits.values())


def _reczoo(name: str) -> str:
    """RecZoo's archive of a BARS dataset on the Hugging Face hub (one zip of the CSV splits)."""
    return f"https://huggingface.co/datasets/reczoo/{name}/resolve/main/{name}.zip?download=true"


_CRITEO_NOTE = (
    "I1-I13 are bucketed by floor(ln(x)^2) for x > 2. Default criteo_log_bucket_fuxictr is what "
    "the paper's code (FuxiCTR convert_to_bucket) ran: x <= 2 keeps int(x). Empty I-cells are "
    "filled with 0 first, so they share one token with true zeros, as in the code (which makes "
    "that shared value OOV). Option criteo_log_bucket is the paper's text: x <= 2 -> 1."
)

DATASETS: dict[str, DatasetInfo] = {
    "frappe_x1": DatasetInfo(
        name="frappe_x1",
        title="Frappe_x1",
        description="Mobile app usage logs in context (Baltrunas et al. 2015): 96,203 logs as "
        "positives plus 2 sampled negatives each, split 7:2:1 (NFM/AFN/BARS).",
        splits={"train": 202_027, "valid": 57_722, "test": 28_860},
        fields=(FieldGroup(FRAPPE_FIELDS),),
        label="label",
        group_col="user",
        min_categr_count=2,
        sources={
            "bars": "https://github.com/reczoo/BARS/tree/main/datasets/Frappe",
            "download": _reczoo("Frappe_x1"),
            "libfm": "https://github.com/hexiangnan/neural_factorization_machine",
            "original": "https://arxiv.org/abs/1505.03014",
        },
        checksums={
            "train.csv": "ba7306e6c4fc19dd2cd84f2f0596d158",
            "valid.csv": "88d51bf2173505436d3a8f78f2a59da8",
            "test.csv": "3470f6d32713dc5f7715f198ca7c612a",
        },
        notes=("md5 sums as published in reczoo/BARS datasets/Frappe/README.md.",),
        aliases=("frappe",),
    ),
    "movielenslatest_x1": DatasetInfo(
        name="movielenslatest_x1",
        title="MovielensLatest_x1 (ML-tag)",
        description="MovieLens tagging records (user_id, item_id, tag_id) as personalised tag "
        "recommendation, random 7:2:1 split (AFN/BARS).",
        splits={"train": 1_404_801, "valid": 401_372, "test": 200_686},
        fields=(FieldGroup(("user_id", "item_id", "tag_id")),),
        label="label",
        group_col="user_id",
        min_categr_count=2,
        sources={
            "reczoo": "https://github.com/reczoo/Datasets/tree/main/MovieLens",
            "download": _reczoo("MovielensLatest_x1"),
            "original": "https://grouplens.org/datasets/movielens",
        },
        checksums={
            "train.csv": "efc8bceeaa0e895d566470fc99f3f271",
            "valid.csv": "e1930223a5026e910ed5a48687de8af1",
            "test.csv": "54e8c6baff2e059fe067fb9b69e692d0",
        },
        notes=(
            "md5 sums as published in the RecZoo MovielensLatest_x1 README; that README lists "
            "401,373 validation rows, but its own total (2,006,859) and the paper give 401,372.",
        ),
        aliases=("ml-tag", "ml_tag", "movielens_x1"),
    ),
    "ml_1m": DatasetInfo(
        name="ml_1m",
        title="MovieLens-1M",
        description="1,000,209 ratings of 3,706 movies by 6,040 users; a rating above 3 is a "
        "click. Random 8:1:1 split as in the paper.",
        splits={"train": 800_167, "valid": 100_021, "test": 100_021},
        fields=(FieldGroup(ML1M_FIELDS),),
        label="label",
        group_col="UserID",
        min_categr_count=2,
        sources={
            "original": "https://grouplens.org/datasets/movielens/1m/",
            "download": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        },
        checksums={"ratings.dat": None, "users.dat": None, "movies.dat": None},
        notes=(
            "No published checksum: the three .dat files are only checked to exist. "
            "The paper's split files are not published: build the table "
            "with tf4ctr.data.formats.read_ml1m, split it 8:1:1 and write train/valid/test.",
            "Label: rating > 3 -> 1 (4 and 5 stars), else 0; every rating is kept.",
        ),
        aliases=("ml-1m", "ml1m", "movielens1m"),
    ),
    "ml_100k": DatasetInfo(
        name="ml_100k",
        title="MovieLens-100K",
        description="100,000 ratings of 1,682 movies by 943 users as CTR data in the paper's "
        "ML-1M schema plus zip code and genres; a rating above 3 is a click. Two splits: "
        "random 8:1:1 (seed 2023) and temporal (by timestamp, 80/10/10). Not in the paper.",
        splits={"train": 80_000, "valid": 10_000, "test": 10_000},
        fields=(
            FieldGroup(("user_id", "item_id", "gender", "age", "occupation", "zip_code")),
            FieldGroup(
                ("genres",),
                sequence=True,
                max_len=6,
                note="the movie's genres, '|'-separated (at most 6), masked sum pooling",
            ),
        ),
        label="label",
        group_col="user_id",
        min_categr_count=2,
        sources={
            "original": "https://grouplens.org/datasets/movielens/100k/",
            "download": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            "fallback": "https://pypi.org/project/recbole/1.2.1/",
        },
        in_paper=False,
        notes=(
            "tf4ctr data download ml_100k --dir DIR writes DIR/ml-100k/: the table "
            "ml_100k.csv and the split folders random/ and temporal/ (give one of them to "
            "dataset_config or tf4ctr data prepare --dir). GroupLens's archive is tried "
            "first; offline of it, the recbole==1.2.1 wheel is fetched with pip download "
            "(not installed) and its ml-100k atomic files are used.",
            "Checked by SHA-256 (pinned in tf4ctr.data.ml100k): the wheel, its three atomic "
            "files, the table and the six split files.",
            "Label: rating > 3 -> 1, else 0, every rating kept (the paper's ML-1M rule). Age "
            "is bucketed into ML-1M's groups 1/18/25/35/45/50/56. timestamp is kept for the "
            "temporal split and is not a feature.",
            "MovieLens may not be redistributed: keep the files out of any repository.",
        ),
        aliases=("ml-100k", "ml100k", "movielens100k"),
    ),
    "kkbox_x1": DatasetInfo(
        name="kkbox_x1",
        title="KKBox_x1",
        description="WSDM 2018 KKBox music recommendation: will a user replay a song within a "
        "month (BARS split 8:1:1).",
        splits={"train": 5_901_932, "valid": 737_743, "test": 737_743},
        fields=(
            FieldGroup(
                (
                    "msno",
                    "song_id",
                    "source_system_tab",
                    "source_screen_name",
                    "source_type",
                    "city",
                    "gender",
                    "registered_via",
                    "language",
                )
            ),
            FieldGroup(
                ("genre_ids", "artist_name"),
                sequence=True,
                note="'|'-separated, max_len 3, masked sum pooling",
            ),
            FieldGroup(
                ("isrc",),
                preprocess="extract_country_code",
                note="country code: the ISRC's first two characters",
            ),
            FieldGroup(
                ("bd",),
                dtype="float",
                preprocess="bucketize_age",
                note="age buckets 1-10, 11-20, ..., 51-60, 61-95; other values OOV",
            ),
        ),
        label="label",
        group_col="msno",
        min_categr_count=2,
        sources={
            "bars": "https://github.com/reczoo/BARS/tree/main/datasets/KKBox",
            "download": _reczoo("KKBox_x1"),
            "reczoo": "https://github.com/reczoo/Datasets/tree/main/KKBox/KKBox_x1",
            "original": "https://www.kaggle.com/c/kkbox-music-recommendation-challenge",
        },
        checksums={
            "train.csv": "195b1ae8fc2d9267d7c8656c07ea1304",
            "valid.csv": "398e97ac139611a09bd61a58e4240a3e",
            "test.csv": "8c5f7add05a6f5258b6b3bcc00ba640b",
        },
        notes=(
            "md5 sums as published in reczoo/Datasets KKBox/KKBox_x1/README.md.",
            "Preprocessing as in BARS' KKBox_x1 config (FuxiCTR's kkbox processor); the "
            "paper's min count 2 rather than that config's 10.",
        ),
        aliases=("kkbox",),
    ),
    "criteo_x4": DatasetInfo(
        name="criteo_x4",
        title="Criteo_x4",
        description="Criteo display-ads clicks (Kaggle 2014): 13 numeric + 26 categorical "
        "fields, random 8:1:1 split (AutoInt/BARS).",
        splits={"train": 36_672_493, "valid": 4_584_062, "test": 4_584_062},
        fields=(
            FieldGroup(
                CRITEO_NUMERIC,
                dtype="float",
                preprocess=CRITEO_BUCKETERS[0],
                fill_na=0.0,
                note="log-bucketed, see notes",
            ),
            FieldGroup(CRITEO_CATEGORICAL),
        ),
        label="Label",
        group_col=None,
        min_categr_count=10,
        sources={
            "bars": "https://github.com/reczoo/BARS/tree/main/datasets/Criteo",
            "download": _reczoo("Criteo_x4"),
            "reczoo": "https://github.com/reczoo/Datasets/tree/main/Criteo/Criteo_x4",
            "raw": "https://s3-eu-west-1.amazonaws.com/"
            "kaggle-display-advertising-challenge-dataset/dac.tar.gz",
            "original": "https://www.kaggle.com/c/criteo-display-ad-challenge",
        },
        checksums={
            "train.csv": "4a53bb7cbc0e4ee25f9d6a73ed824b1a",
            "valid.csv": "fba5428b22895016e790e2dec623cb56",
            "test.csv": "cfc37da0d75c4d2d8778e76997df2976",
        },
        notes=(
            "md5 sums as published in reczoo/Datasets Criteo/Criteo_x4/README.md. BARS rebuilds "
            "the split from dac.tar.gz with AutoInt's script and seed 2018.",
            _CRITEO_NOTE,
            "Label column is 'Label' in the BARS files; dataset_config uses 'label' instead "
            "when that is what the train file's header has.",
        ),
        aliases=("criteo",),
    ),
    "avazu_x1": DatasetInfo(
        name="avazu_x1",
        title="Avazu_x1",
        description="Avazu mobile-ads clicks, 22 anonymised and index-encoded fields "
        "(feat_1..feat_22), random 7:1:2 split (AFN/BARS). Not used in the TF4CTR paper.",
        splits={"train": 28_300_276, "valid": 4_042_897, "test": 8_085_794},
        fields=(FieldGroup(tuple(f"feat_{i}" for i in range(1, 23))),),
        label="label",
        group_col=None,
        min_categr_count=2,
        sources={
            "bars": "https://github.com/reczoo/BARS/tree/main/datasets/Avazu#avazu_x1",
            "download": _reczoo("Avazu_x1"),
            "original": "https://www.kaggle.com/c/avazu-ctr-prediction",
        },
        checksums={
            "train.csv": "f1114a07aea9e996842c71648e0f6395",
            "valid.csv": "d9568f246357d156c4b8030fadb8b623",
            "test.csv": "9e2fe9c48705c9315ae7a0953eb57acf",
        },
        in_paper=False,
        notes=(
            "md5 sums as published on the reczoo/Avazu_x1 dataset card.",
            "Split sizes are the 7:1:2 split of 40,428,967 rows as listed by BARS; "
            "not checked against the files here.",
        ),
        aliases=("avazu",),
    ),
    "criteo_x1": DatasetInfo(
        name="criteo_x1",
        title="Criteo_x1",
        description="Criteo display-ads clicks as released by AFN, random 7:2:1 split (BARS). "
        "Not used in the TF4CTR paper.",
        splits={"train": 33_003_326, "valid": 8_250_124, "test": 4_587_167},
        fields=(
            FieldGroup(
                CRITEO_NUMERIC,
                type="numeric",
                dtype="float",
                note="fed as numbers, not bucketed (BARS ships them already normalised)",
            ),
            FieldGroup(CRITEO_CATEGORICAL),
        ),
        label="label",
        group_col=None,
        min_categr_count=10,
        sources={
            "bars": "https://github.com/reczoo/BARS/tree/main/datasets/Criteo",
            "download": _reczoo("Criteo_x1"),
            "original": "https://www.kaggle.com/c/criteo-display-ad-challenge",
        },
        checksums={"train.csv": None, "valid.csv": None, "test.csv": None},
        in_paper=False,
        notes=(
            "Checksum unknown.",
            "Split sizes as listed for BARS Criteo_x1; not checked against the files here.",
            "I1-I13 are taken as numeric inputs following the BARS Criteo_x1 config (values "
            "already normalised in the released files); not checked against the files here.",
        ),
    ),
}


def download_folder_name(info: DatasetInfo) -> str:
    """The folder ``tf4ctr data download`` unpacks a dataset into (the archive's own name)."""
    url = info.sources["download"].split("?", 1)[0]
    return url.rsplit("/", 1)[-1].removesuffix(".zip")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get_dataset(name: str) -> DatasetInfo:
    """Look a dataset up by name or alias (case and '-'/'_' do not matter)."""
    key = _normalise(name)
    for info in DATASETS.values():
        if key == info.name or key in {_normalise(a) for a in info.aliases}:
            return info
        if key == _normalise(info.title.split(" ")[0]):
            return info
    raise ConfigError(f"unknown dataset '{name}' (expected one of: {', '.join(DATASETS)})")


def _split_file(data_dir: Path, split: str) -> Path:
    """train.csv unless only a parquet (or compressed CSV) version of the split is there."""
    for suffix in (".csv", ".parquet", ".csv.gz"):
        candidate = data_dir / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    return data_dir / f"{split}.csv"


def _header(path: Path) -> list[str] | None:
    """Column names of a split file, or None when it is absent or unreadable."""
    if not path.is_file():
        return None
    if path.suffix == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except Exception:  # an unreadable file is reported later by read_table
            return None
    text = first_line_bytes(path).decode("utf-8-sig", errors="replace")
    return [c.strip() for c in next(csv.reader([text]), [])]


def dataset_config(
    name: str,
    data_dir: str | Path,
    *,
    criteo_bucketer: str | None = None,
    min_categr_count: int | None = None,
) -> DatasetConfig:
    """Build the checked config of a registry dataset whose split files are in ``data_dir``.

    Files are ``train``/``valid``/``test`` with ``.csv`` (the BARS layout),
    ``.parquet`` or ``.csv.gz``; they need not exist yet (the config only
    names them; reading reports a missing file). ``criteo_bucketer`` picks the
    Criteo numeric bucketing (default ``criteo_log_bucket_fuxictr``, the
    code's; ``criteo_log_bucket`` is the paper's text). ``min_categr_count``
    overrides the registry's (e.g. 1 for the BARS protocol).
    """
    info = get_dataset(name)
    if criteo_bucketer is not None and criteo_bucketer not in CRITEO_BUCKETERS:
        raise ConfigError(
            f"key 'criteo_bucketer': expected one of {', '.join(CRITEO_BUCKETERS)}, "
            f"found {criteo_bucketer!r}"
        )
    data_dir = Path(data_dir)
    paths = {split: _split_file(data_dir, split) for split in _SPLITS}
    label = info.label
    header = _header(paths["train"])
    if header is not None and label not in header:
        # BARS spells Criteo_x4's label 'Label'; a re-export may use 'label'.
        for alt in (label.lower(), label.capitalize()):
            if alt in header:
                label = alt
                break
    features: list[dict[str, Any]] = []
    for group in info.fields:
        entry: dict[str, Any] = {
            "name": list(group.names),
            "active": True,
            "type": group.type,
            "dtype": group.dtype,
        }
        if group.sequence:
            entry.update(
                type="sequence", splitter="|", max_len=group.max_len, encoder="MaskedSumPooling"
            )
        if group.preprocess in CRITEO_BUCKETERS:
            entry["preprocess"] = criteo_bucketer or group.preprocess
        elif group.preprocess is not None:
            entry["preprocess"] = group.preprocess
        if group.fill_na is not None:
            entry["fill_na"] = group.fill_na
        features.append(entry)
    raw: dict[str, Any] = {
        "name": info.name,
        "data_format": "auto",
        # names only: load_dataset_config resolves them against base_dir (a relative
        # data_dir joined twice pointed at data_dir/data_dir/train.csv)
        "train_data": paths["train"].name,
        "valid_data": paths["valid"].name,
        "test_data": paths["test"].name,
        "min_categr_count": min_categr_count or info.min_categr_count,
        "feature_cols": features,
        "label_col": {"name": label, "dtype": "float"},
        "group_col": info.group_col,
    }
    return load_dataset_config(raw, base_dir=data_dir)
