"""Export a finished run for serving: ONNX or torch.export, plus its preprocessing as JSON.

The exported graph takes the encoded inputs (``categorical`` int64 ``[B, F]`` of field-local
ids, ``numeric`` float32 ``[B, N]``) and returns click probabilities ``[B]``; the batch size
is dynamic. Beside it goes ``<output>.preprocessor.json`` (the run's vocabularies and field
specs), which :class:`tf4ctr.serving.RowEncoder` turns raw rows into those inputs with numpy
alone, so a service scores raw rows without torch (ONNX Runtime) or without tf4ctr.

``quantize="int8"`` (ONNX only) stores every Gemm's weights as int8, one scale per output
channel, and quantises activations per call (ONNX Runtime's dynamic quantisation): nearly all
of a CTR model's inference time is its MLPs' matrix products, and on a CPU with VNNI these run
about three times faster in int8. Scores move (on Frappe_x1's test split, TF4CTR: by 6e-4 on
average, at most 0.04; test AUC by -6e-6, benchmarks/quantize_accuracy.py) and are no longer
equal to ``tf4ctr predict``'s; the graph says so in its metadata (``tf4ctr.weights``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from tf4ctr.errors import UserError, first_message_line
from tf4ctr.fileio import write_atomic
from tf4ctr.nn import FeatureInput
from tf4ctr.nn.fold import layer_by_layer
from tf4ctr.rundir import PREPROCESSOR_FILE, WEIGHTS_KEY

__all__ = ["FORMATS", "QUANTIZATIONS", "WEIGHTS_KEY", "Scorer", "export_model", "export_run"]

FORMATS = ("onnx", "torch-export")
QUANTIZATIONS = ("int8",)


class Scorer(nn.Module):
    """A model as a function of plain tensors: (categorical, numeric) -> probability."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(FeatureInput(categorical, numeric)).logit)


def _example(num_categorical: int, num_numeric: int, rows: int = 64) -> tuple[torch.Tensor, ...]:
    return (
        torch.ones(rows, num_categorical, dtype=torch.long),
        torch.zeros(rows, num_numeric, dtype=torch.float32),
    )


def _check_options(fmt: str, quantize: str | None) -> None:
    if fmt not in FORMATS:
        raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise UserError(f"--quantize: expected one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize is not None and fmt != "onnx":
        raise UserError(f"--quantize {quantize}: only for --format onnx")


def export_model(
    model: nn.Module,
    num_categorical: int,
    num_numeric: int,
    fmt: str,
    output: Path,
    quantize: str | None = None,
) -> Path:
    """Write ``model`` (in eval mode) in ``fmt`` to ``output``; a failure is one UserError line."""
    _check_options(fmt, quantize)
    scorer = Scorer(model).eval()
    args = _example(num_categorical, num_numeric)
    batch = torch.export.Dim("batch", min=1)
    shapes = ({0: batch}, {0: batch})
    try:
        with layer_by_layer(model):  # an exported graph must not rebuild a folded table per call
            if fmt == "torch-export":
                program = torch.export.export(scorer, args, dynamic_shapes=shapes)
                return write_atomic(
                    output, lambda tmp: torch.export.save(program, tmp), suffix=".pt2"
                )
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                # the exporter narrates its steps and warns about the shared batch axis name,
                # and logs a line for each torchvision operator it cannot register
                warnings.simplefilter("ignore")
                logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(
                    logging.ERROR
                )
                onnx_program = torch.onnx.export(
                    scorer,
                    args,
                    dynamo=True,
                    dynamic_shapes=shapes,
                    input_names=["categorical", "numeric"],
                    output_names=["probability"],
                    verbose=False,
                )
            if quantize is None:
                return write_atomic(output, lambda tmp: onnx_program.save(str(tmp)), suffix=".onnx")
            return write_atomic(
                output, lambda tmp: _quantized(onnx_program, tmp, quantize), suffix=".onnx"
            )
    except ImportError as exc:
        raise UserError(
            f"--format {fmt}: needs the optional packages of tf4ctr[serve] ({exc.name} is missing)"
        ) from None
    except Exception as exc:  # the exporter's message, first line: what did not trace
        what = first_message_line(str(exc), type(exc).__name__)[:200]
        raise UserError(f"{type(model).__name__} cannot be exported as {fmt}: {what}") from None


def _quantized(onnx_program: object, output: Path, quantize: str) -> None:
    """Save ``onnx_program`` with int8 weights to ``output`` (intermediates in a temp folder)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="tf4ctr-quantize-") as work:
        plain, folded, quantized = (Path(work) / f"{n}.onnx" for n in ("plain", "folded", "int8"))
        onnx_program.save(str(plain))  # type: ignore[attr-defined]
        # the exporter feeds each weight through a Transpose node; the quantiser only sees a
        # weight that is an initializer, so fold those first (ORT's own pre-processing step)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(plain), str(folded))
            quantize_dynamic(
                str(folded), str(quantized), weight_type=QuantType.QInt8, per_channel=True
            )
        graph = onnx.load(str(quantized))
        props = {p.key: p.value for p in graph.metadata_props}
        props[WEIGHTS_KEY] = f"{quantize} (dynamic quantisation, per output channel)"
        onnx.helper.set_model_props(graph, props)
        onnx.save(graph, str(output))


def export_run(
    run_dir: str | Path, fmt: str, output: str | Path, quantize: str | None = None
) -> tuple[Path, Path]:
    """Export a finished run; returns (model file, preprocessing JSON beside it)."""
    from tf4ctr import run

    _check_options(fmt, quantize)
    loaded = run.load_run(run_dir)
    output = Path(output)
    if not output.parent.is_dir():
        raise UserError(f"{output.parent}: output directory does not exist")
    schema = loaded.preprocessor.schema
    model_file = export_model(
        loaded.model.eval(), sum(schema.widths), len(schema.numeric), fmt, output, quantize
    )
    sidecar = output.with_name(output.name + ".preprocessor.json")
    write_atomic(sidecar, lambda tmp: shutil.copyfile(Path(run_dir) / PREPROCESSOR_FILE, tmp))
    return model_file, sidecar
