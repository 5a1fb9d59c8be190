"""Lowering to an .onnx: the edgelight ops as builtins -> torch.onnx.export (dynamo) -> (static QDQ w8a8)."""

import tempfile
from pathlib import Path

import numpy as np
import torch

from edgelight.errors import converter_errors
from edgelight.ops.lowering import lowered
from edgelight.shared_weights import keep_shared_weights
from edgelight.targets.base import LoweringReport, LoweringRequest, TargetError
from edgelight.targets.onnx import OPTIONS
from edgelight.utils.logs import native_log

OPSET = 18
INPUT, OUTPUT = "input", "logits"


def _export(model: torch.nn.Module, example: torch.Tensor, shift: str, path: Path) -> None:
    # A BatchNorm after a conv that runs several times (LruNet) stays a separate op: folded, it would make
    # one weight copy per use; apart, the shared weight is one initializer.
    model, _ = keep_shared_weights(model, example)
    with torch.no_grad(), lowered(shift):
        program = torch.onnx.export(model, (example,), input_names=[INPUT], output_names=[OUTPUT], opset_version=OPSET, dynamo=True, optimize=True, verbose=False)
    program.save(str(path))
    _strip_debug_metadata(path)


def _strip_debug_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (stack traces, module paths of the exporting machine): it was
    45% of lrunet-14-1x's file and names files on the machine that exported it; runtimes never read it."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


class _Calibration:
    """onnxruntime's CalibrationDataReader over the pipeline's preprocessed calibration batches, one image at a time."""

    def __init__(self, batches: list, batch: int):
        x = torch.cat(list(batches)).numpy().astype(np.float32)
        self.items = iter([{INPUT: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch)])

    def get_next(self):
        return next(self.items, None)


def _quantize(fp32: Path, out: Path, calibration: list, batch: int, activations: str) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), _Calibration(calibration, batch), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def lower(request: LoweringRequest) -> LoweringReport:
    from edgelight.targets.onnx.inspect import inspect_onnx

    options = {key: request.options.get(key, values[0]) for key, values in OPTIONS.items()}
    out = Path(request.out_path)
    if request.precision == "w8a8" and not request.calibration:
        raise TargetError("w8a8 needs calibration data; pass calibration images (the pipeline uses the checkpoint's data)")
    example = torch.as_tensor(request.example, dtype=torch.float32)
    with native_log(), converter_errors("torch.onnx export", TargetError):
        if request.precision == "fp32":
            _export(request.model, example, options["shift"], out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = Path(tmp) / "fp32.onnx"
                _export(request.model, example, options["shift"], fp32)
                with converter_errors("onnxruntime quantization", TargetError):
                    _quantize(fp32, out, request.calibration, int(example.shape[0]), options["activations"])
    info = inspect_onnx(out)
    notes = [f"opset {OPSET}, {request.precision}" + (f" (QDQ, {options['activations']} activations)" if request.precision == "w8a8" else ""), f"shift lowered as '{options['shift']}'"]
    return LoweringReport(op_inventory=info["ops"], delegated_fraction=None, notes=notes)
