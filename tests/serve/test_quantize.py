"""int8 exports (``tf4ctr export --quantize int8``, ``tf4ctr serve --quantize int8``): the graph
really holds int8 matrix products, scores stay close to the float graph's, and asking for a
quantised model where a float one is given is one error line."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.serve.conftest import Trained
from tf4ctr.cli import main
from tf4ctr.errors import UserError
from tf4ctr.rundir import WEIGHTS_KEY
from tf4ctr.server.model import load_model


def test_an_int8_export_quantizes_every_matrix_product_and_scores_close(
    trained: Trained, tmp_path, capsys
):
    out = tmp_path / "m-int8.onnx"
    args = ["export", str(trained.run_dir), "--format", "onnx", "--quantize", "int8"]
    assert main([*args, "--output", str(out)]) == 0
    assert (tmp_path / "m-int8.onnx.preprocessor.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-int8.onnx", "m-int8.onnx.preprocessor.json"]  # fmt: skip
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    float_ops = [n.op_type for n in onnx.load(str(trained.onnx)).graph.node]
    products = sum(op in ("Gemm", "MatMul") for op in float_ops)
    assert products > 0 and ops.count("MatMulInteger") == products
    assert "Gemm" not in ops and "MatMul" not in ops
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props[WEIGHTS_KEY] == "int8 (dynamic quantisation, per output channel)"

    model = load_model(out, quantize="int8")
    assert model.weights.startswith("int8")
    scores = model.score(*model.encoder.encode(trained.rows))
    gap = np.abs(scores - trained.expected)
    # int8 moves scores, a little: not equal to tf4ctr predict's, and not far from them
    assert 0 < gap.max() < 2e-2 and gap.mean() < 5e-3
    assert np.corrcoef(scores, trained.expected)[0, 1] > 0.99


def test_serving_a_run_directory_quantized_and_the_errors(trained: Trained, tmp_path, capsys):
    model = load_model(trained.run_dir, quantize="int8")
    assert model.weights.startswith("int8") and model.name == trained.run_dir.name
    assert load_model(trained.onnx).weights == "float32"
    with pytest.raises(UserError, match="has float32 weights") as err:
        load_model(trained.onnx, quantize="int8")
    assert "\n" not in str(err.value) and str(trained.onnx) in str(err.value)

    out = tmp_path / "m.pt2"
    args = ["export", str(trained.run_dir), "--format", "torch-export", "--quantize", "int8"]
    assert main([*args, "--output", str(out)]) == 2
    assert "--quantize int8: only for --format onnx" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(trained.run_dir), "--format", "onnx", "--quantize", "int4", "--output", str(out)])  # fmt: skip
    assert exit_.value.code == 2
