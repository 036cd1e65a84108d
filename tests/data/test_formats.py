"""Raw-format readers: real samples from ../shared/data (skipped if absent) and generated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from tf4ctr.data.formats import (
    CRITEO_COLUMNS,
    FRAPPE_FIELDS,
    ML1M_FIELDS,
    read_criteo_tsv,
    read_frappe_raw,
    read_libfm,
    read_ml1m,
    read_ml1m_merged,
)
from tf4ctr.errors import DataError


def _sample(shared: Path, *parts: str) -> Path:
    path = shared.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# --------------------------------------------------------------------------- Criteo


@pytest.mark.parametrize(
    ("name", "rows"), [("deepctr_criteo_sample.txt", 200), ("torchrechub_criteo_sample.csv", 115)]
)
def test_criteo_header_csv_samples(shared_data: Path, name: str, rows: int) -> None:
    path = _sample(shared_data, "criteo_samples", name)
    table = read_criteo_tsv(path)
    assert table.num_rows == rows
    assert tuple(table.column_names) == CRITEO_COLUMNS
    assert table.schema.field("I5").type == pa.float64()
    assert table.schema.field("C1").type == pa.string()
    # Same cells as a plain CSV read, with empty meaning null.
    plain = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)
    )
    for col in ("label", "I1", "I12", "C20", "C26"):
        expected = plain[col].cast(table.schema.field(col).type)
        assert table[col].to_pylist() == expected.to_pylist()
    assert table["I1"].null_count > 0 and table["C20"].null_count > 0
    assert set(table["label"].to_pylist()) <= {0.0, 1.0}


def test_criteo_raw_tsv(tmp_path: Path) -> None:
    row1 = ["1", "5", "", "3"] + [""] * 10 + ["68fd1e64"] + [""] * 24 + ["abcd"]
    row2 = ["0", "", "-1", "0"] + ["2"] * 10 + [""] * 25 + ["ef01"]
    assert len(row1) == len(row2) == 40
    path = _write(tmp_path / "train.txt", "\t".join(row1) + "\n" + "\t".join(row2) + "\n")
    table = read_criteo_tsv(path)
    assert tuple(table.column_names) == CRITEO_COLUMNS
    assert table["label"].to_pylist() == [1.0, 0.0]
    assert table["I1"].to_pylist() == [5.0, None]
    assert table["I2"].to_pylist() == [None, -1.0]
    assert table["C1"].to_pylist() == ["68fd1e64", None]
    assert table["C26"].to_pylist() == ["abcd", "ef01"]
    # Kaggle test.txt: no label column.
    nolabel = _write(tmp_path / "test.txt", "\t".join(row1[1:]) + "\n")
    t2 = read_criteo_tsv(nolabel, with_label=False)
    assert tuple(t2.column_names) == CRITEO_COLUMNS[1:]
    assert t2["I1"].to_pylist() == [5.0]


def test_criteo_ragged_line_names_line(tmp_path: Path) -> None:
    good = "\t".join(["0"] + [""] * 39)
    path = _write(tmp_path / "bad.txt", f"{good}\n{good}\n0\t1\t2\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 3: expected 40 fields.*found 3"):
        read_criteo_tsv(path)


def test_criteo_bad_number_and_label(tmp_path: Path) -> None:
    good = ["0"] + [""] * 39
    bad = ["1", "x7"] + [""] * 38
    path = _write(tmp_path / "n.txt", "\t".join(good) + "\n" + "\t".join(bad) + "\n")
    with pytest.raises(DataError, match=r"n\.txt: line 2: column 'I1' expected a number.*'x7'"):
        read_criteo_tsv(path)
    # the same numbers as the CSV reader accepts (one pattern for both): inf and nan pass
    special = ["1", "inf", "-Infinity", "NaN"] + [""] * 36
    path = _write(tmp_path / "s.txt", "\t".join(special) + "\n")
    row = read_criteo_tsv(path).slice(0, 1).to_pylist()[0]
    assert row["I1"] == float("inf") and row["I2"] == float("-inf") and row["I3"] != row["I3"]
    path = _write(tmp_path / "l.txt", "\t".join(good) + "\n" + "\t".join(["2"] + [""] * 39))
    with pytest.raises(DataError, match=r"l\.txt: line 2: label expected 0 or 1, found 2"):
        read_criteo_tsv(path)


def test_criteo_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_criteo_tsv(tmp_path / "nope.txt")


# --------------------------------------------------------------------------- libfm

FIELDS = ["user", "item", "ctx"]


def test_libfm_generated_crlf_and_labels(tmp_path: Path) -> None:
    text = "-1 3:1 10:1 20:1\n1 4:1 11:1 21:1 \n0 3:1 12:1 22:1\n\n"
    path = _write(tmp_path / "a.libfm", text, newline="\r\n")
    table = read_libfm(path, FIELDS)
    assert table.column_names == ["label", *FIELDS]
    assert table["label"].to_pylist() == [0.0, 1.0, 0.0]
    assert table["user"].to_pylist() == ["3", "4", "3"]
    assert table["ctx"].to_pylist() == ["20", "21", "22"]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1 3:1 10:1", r"line 2: expected 4 fields"),
        ("2 3:1 10:1 20:1", r"line 2: label expected -1, 0 or 1, found 2"),
        ("1 3:1 10:0.5 20:1", r"line 2: field 'item' expected a one-hot value 1"),
        ("1 3:1 10 20:1", r"line 2: field 'item' expected idx:val"),
        ("1 a:1 10:1 20:1", r"line 2: field 'user' expected an integer index"),
    ],
)
def test_libfm_errors_name_the_line(tmp_path: Path, line: str, match: str) -> None:
    path = _write(tmp_path / "b.libfm", f"1 3:1 10:1 20:1\n{line}\n")
    with pytest.raises(DataError, match=match):
        read_libfm(path, FIELDS)


def test_libfm_round_trip_on_real_frappe_rows(shared_data: Path, tmp_path: Path) -> None:
    # Frappe_x1's CSV was converted from NFM's libfm file; writing it back as
    # libfm (labels -1/1, CRLF, as NFM shipped it) must read back the same.
    csv_path = _sample(shared_data, "Frappe_x1", "test.csv")
    table = pacsv.read_csv(
        csv_path,
        convert_options=pacsv.ConvertOptions(column_types={f: pa.string() for f in FRAPPE_FIELDS}),
    )
    label = pc.if_else(pc.equal(table["label"], 1), "1", "-1")
    pieces = [label] + [pc.binary_join_element_wise(table[f], "1", ":") for f in FRAPPE_FIELDS]
    lines = pc.binary_join_element_wise(*pieces, " ")
    text = "\r\n".join(lines.to_pylist()) + "\r\n"
    path = tmp_path / "frappe.test.libfm"
    path.write_text(text, encoding="utf-8", newline="")
    back = read_libfm(path, FRAPPE_FIELDS)
    assert back.num_rows == table.num_rows == 28_860
    assert back["label"].to_pylist() == table["label"].cast(pa.float64()).to_pylist()
    for f in FRAPPE_FIELDS:
        assert back[f].to_pylist() == table[f].to_pylist()


# --------------------------------------------------------------------------- ML-1M


@pytest.mark.parametrize(
    ("name", "rows"), [("deepctr_movielens_sample.txt", 200), ("torchrechub_ml-1m_sample.csv", 100)]
)
def test_ml1m_merged_samples(shared_data: Path, name: str, rows: int) -> None:
    path = _sample(shared_data, "ml-1m_samples", name)
    table = read_ml1m_merged(path)
    assert table.column_names == [*ML1M_FIELDS, "label"]
    assert table.num_rows == rows
    plain = pacsv.read_csv(path)
    rating = plain["rating"].to_numpy()
    assert np.array_equal(table["label"].to_numpy(), (rating > 3).astype(float))
    assert table["UserID"].to_pylist() == [str(v) for v in plain["user_id"].to_pylist()]
    assert set(table["Gender"].to_pylist()) <= {"F", "M"}
    assert set(table["Age"].to_pylist()) <= {"1", "18", "25", "35", "45", "50", "56"}


RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n2::3::1::978299000\n"
USERS = "1::F::1::10::48067\n2::M::56::16::70072\n"
MOVIES = (
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James (1996)::Animation\n"
    "3::Caf\u00e9 (1995)::Comedy\n"
)


def _ml1m_files(
    tmp_path: Path, ratings: str = RATINGS, users: str = USERS
) -> tuple[Path, Path, Path]:
    r = _write(tmp_path / "ratings.dat", ratings)
    u = _write(tmp_path / "users.dat", users)
    m = tmp_path / "movies.dat"
    m.write_bytes(MOVIES.encode("latin-1"))  # the real movies.dat is latin-1
    return r, u, m


def test_ml1m_three_files(tmp_path: Path) -> None:
    r, u, m = _ml1m_files(tmp_path)
    table = read_ml1m(r, u, m)
    assert table.column_names == [*ML1M_FIELDS, "label"]
    assert table.to_pylist() == [
        {
            "UserID": "1",
            "Gender": "F",
            "Age": "1",
            "Occupation": "10",
            "MovieID": "1193",
            "label": 1.0,
        },
        {
            "UserID": "1",
            "Gender": "F",
            "Age": "1",
            "Occupation": "10",
            "MovieID": "661",
            "label": 0.0,
        },
        {
            "UserID": "2",
            "Gender": "M",
            "Age": "56",
            "Occupation": "16",
            "MovieID": "1193",
            "label": 1.0,
        },
        {
            "UserID": "2",
            "Gender": "M",
            "Age": "56",
            "Occupation": "16",
            "MovieID": "3",
            "label": 0.0,
        },
    ]
    assert read_ml1m(r, u).equals(table)  # movies.dat is optional


def test_ml1m_errors(tmp_path: Path) -> None:
    r, u, m = _ml1m_files(tmp_path, ratings=RATINGS + "3::1193::5::1\n")
    with pytest.raises(DataError, match=r"ratings\.dat: line 5: UserID '3' is not in"):
        read_ml1m(r, u)
    r, u, m = _ml1m_files(tmp_path, ratings=RATINGS + "1::1193::5\n")
    with pytest.raises(DataError, match=r"ratings\.dat: line 5: expected 4 fields"):
        read_ml1m(r, u)
    r, u, m = _ml1m_files(tmp_path, ratings=RATINGS + "1::1193::6::1\n")
    with pytest.raises(DataError, match=r"ratings\.dat: line 5: rating expected 1\.\.5, found 6"):
        read_ml1m(r, u)
    r, u, m = _ml1m_files(tmp_path, ratings=RATINGS + "1::999::4::1\n")
    with pytest.raises(DataError, match=r"ratings\.dat: line 5: MovieID '999' is not in"):
        read_ml1m(r, u, m)
    r, u, m = _ml1m_files(tmp_path, users=USERS + "1::M::18::1::1\n")
    with pytest.raises(DataError, match=r"users\.dat: line 3: UserID '1' appears twice"):
        read_ml1m(r, u)


# --------------------------------------------------------------------------- Frappe


def test_frappe_raw_real_log(shared_data: Path) -> None:
    path = _sample(shared_data, "frappe_raw", "frappe.csv")
    table = read_frappe_raw(path)
    assert table.column_names == [*FRAPPE_FIELDS, "cnt"]
    assert table.num_rows == 96_203
    assert pc.count_distinct(table["user"]).as_py() == 957
    assert pc.count_distinct(table["item"]).as_py() == 4_082
    assert table.slice(0, 1).to_pylist()[0]["country"] == "United States"
    assert table["cnt"].type == pa.float64() and pc.min(table["cnt"]).as_py() >= 1


def test_frappe_raw_errors(tmp_path: Path) -> None:
    header = "user\titem\tcnt\t" + "\t".join(FRAPPE_FIELDS[2:])
    row = "0\t0\t1\tmorning\tsunday\tweekend\tunknown\tfree\tsunny\tSpain\t0"
    path = _write(tmp_path / "f.csv", f"{header}\n{row}\n0\t1\t2\n")
    with pytest.raises(DataError, match=r"f\.csv: line 3: expected 11 fields, found 3"):
        read_frappe_raw(path)
    path = _write(tmp_path / "g.csv", "user\titem\tcnt\n0\t0\t1\n")
    with pytest.raises(DataError, match=r"g\.csv: line 1: header lacks daytime"):
        read_frappe_raw(path)
    path = _write(
        tmp_path / "h.csv",
        f"{header}\n{row.replace(chr(9) + '1' + chr(9), chr(9) + 'x' + chr(9), 1)}\n",
    )
    with pytest.raises(DataError, match=r"h\.csv: line 2: column 'cnt' expected a number"):
        read_frappe_raw(path)
