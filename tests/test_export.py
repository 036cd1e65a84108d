"""Export for serving: ONNX Runtime and torch.export against eager PyTorch, raw rows encoded
without torch by tf4ctr.serving.RowEncoder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tf4ctr.cli import main  # noqa: E402
from tf4ctr.errors import UserError  # noqa: E402
from tf4ctr.export import export_model  # noqa: E402
from tf4ctr.models import available_models, build_model  # noqa: E402
from tf4ctr.serving import RowEncoder  # noqa: E402


def test_exported_run_scores_raw_rows_like_tf4ctr_predict(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    assert main(["train", "--config", "run.yaml", "train.epochs=2"]) == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    assert main(["predict", str(run_dir), "--input", "test.csv", "--output", "s.csv"]) == 0
    scores = (tiny_project / "s.csv").read_text().splitlines()
    expected = np.array([float(r["probability"]) for r in csv.DictReader(scores)])
    rows = list(csv.DictReader((tiny_project / "test.csv").read_text().splitlines()))
    assert main(["export", str(run_dir), "--format", "onnx", "--output", "m.onnx"]) == 0
    encoder = RowEncoder.from_file("m.onnx.preprocessor.json")
    categorical, numeric = encoder.encode(rows)
    session = ort.InferenceSession("m.onnx")
    got = session.run(None, {"categorical": categorical, "numeric": numeric})[0]
    assert np.abs(got - expected).max() <= 1e-5
    # unseen values go out-of-vocabulary, as in tf4ctr's own preprocessing
    cat, _ = encoder.encode([{"user": "nobody", "item": "", "ctx": None, "price": ""}])
    assert cat.tolist() == [[1, 1, 1]]

    assert main(["export", str(run_dir), "--format", "torch-export", "--output", "m.pt2"]) == 0
    program = torch.export.load("m.pt2").module()
    with torch.inference_mode():
        again = program(torch.from_numpy(categorical), torch.from_numpy(numeric)).numpy()
    assert np.abs(again - expected).max() <= 1e-5


def _schema(tiny_project: Path):
    from tf4ctr import run
    from tf4ctr.config import load_run_config

    return run.placeholder_schema(run.resolve_dataset(load_run_config(tiny_project / "run.yaml")))


@pytest.mark.parametrize("name", available_models())
def test_every_model_exports_to_onnx_with_eager_parity(name, tiny_project, tmp_path):
    """Every registered model, on 10,000 rows: ONNX Runtime within 1e-5 of eager PyTorch, or
    a one-line error that names the model."""
    from tf4ctr.data.encoded import FeatureSchema, FieldInfo

    base = _schema(tiny_project)
    schema = FeatureSchema(tuple(
        FieldInfo(f.name, f.kind, 50 if f.kind != "numeric" else 0, f.width, f.pooling)
        for f in base.fields
    ))  # fmt: skip
    torch.manual_seed(0)
    model = build_model(name, schema).eval()
    f, n = sum(schema.widths), len(schema.numeric)
    try:
        path = export_model(model, f, n, "onnx", tmp_path / f"{name}.onnx")
    except UserError as exc:
        assert "\n" not in str(exc) and "cannot be exported as onnx" in str(exc)
        pytest.xfail(f"{name}: {exc}")
    gen = torch.Generator().manual_seed(1)
    cat = torch.randint(0, 50, (10_000, f), generator=gen)
    num = torch.rand(10_000, n, generator=gen)
    with torch.inference_mode():
        from tf4ctr.export import Scorer

        eager = Scorer(model).eval()(cat, num).numpy()
    got = ort.InferenceSession(str(path)).run(
        None, {"categorical": cat.numpy(), "numeric": num.numpy()}
    )[0]
    assert np.abs(got - eager).max() <= 1e-5, (name, float(np.abs(got - eager).max()))


SEQUENCE_DATASET_YAML = """\
tiny:
  train_data: train.csv
  valid_data: valid.csv
  test_data: test.csv
  min_categr_count: 1
  feature_cols:
    - {name: [user, item, ctx], type: categorical, dtype: str}
    - {name: genres, type: sequence, dtype: str, splitter: "|", max_len: 2}
    - {name: price, type: numeric, dtype: float}
  label_col: {name: label, dtype: float}
  group_col: user
"""


def _add_genres(path: Path, seed: int) -> None:
    """A genres column as MovieLens has one: 0-3 tokens, some unseen in train, some empty."""
    rng = np.random.default_rng(seed)
    names = ["Action", "Comedy", "Drama", "Horror"] + (["Western"] if seed else [])
    lines = path.read_text().splitlines()
    out = [lines[0] + ",genres"]
    for line in lines[1:]:
        k = int(rng.integers(0, 4))
        out.append(line + "," + "|".join(rng.choice(names, k, replace=False)))
    path.write_text("\n".join(out) + "\n")


def test_a_run_with_a_sequence_field_is_served_like_tf4ctr_predict(tiny_project, monkeypatch):
    """MovieLens-shaped runs (a genres sequence) export and encode without torch, scoring as
    tf4ctr predict does; the server takes the field as text or as a list of tokens."""
    import json

    from tf4ctr.server.requests import Limits, RequestError, RequestSchema, parse_body

    monkeypatch.chdir(tiny_project)
    for i, name in enumerate(["train.csv", "valid.csv", "test.csv"]):
        _add_genres(tiny_project / name, i)
    (tiny_project / "dataset.yaml").write_text(SEQUENCE_DATASET_YAML)
    assert main(["train", "--config", "run.yaml", "train.epochs=1"]) == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    assert main(["predict", str(run_dir), "--input", "test.csv", "--output", "s.csv"]) == 0
    scores = (tiny_project / "s.csv").read_text().splitlines()
    expected = np.array([float(r["probability"]) for r in csv.DictReader(scores)])
    rows = list(csv.DictReader((tiny_project / "test.csv").read_text().splitlines()))
    assert main(["export", str(run_dir), "--format", "onnx", "--output", "m.onnx"]) == 0
    encoder = RowEncoder.from_file("m.onnx.preprocessor.json")
    categorical, numeric = encoder.encode(rows)
    assert categorical.shape == (len(rows), 5)
    session = ort.InferenceSession("m.onnx")
    got = session.run(None, {"categorical": categorical, "numeric": numeric})[0]
    assert np.abs(got - expected).max() <= 1e-6

    state = json.loads(Path("m.onnx.preprocessor.json").read_text())
    schema = RequestSchema(state)
    row = {k: v for k, v in rows[0].items() if k != "label"}
    listed = {**row, "genres": row["genres"].split("|") if row["genres"] else []}
    parsed, _ = parse_body(json.dumps({"instances": [row, listed]}).encode(), schema, Limits())
    both, _ = encoder.encode(parsed)
    assert both[0].tolist() == both[1].tolist() == categorical[0].tolist()
    with pytest.raises(RequestError) as caught:
        parse_body(json.dumps({"instances": [{**row, "genres": [3]}]}).encode(), schema, Limits())
    assert caught.value.status == 422 and "instances[0].genres" in caught.value.message
