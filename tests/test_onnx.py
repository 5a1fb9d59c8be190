"""ONNX Runtime target: what the exporter writes, how onnxruntime's CPU provider runs it, its errors.

Every artifact is a real .onnx written by torch.onnx's exporter and run by the onnxruntime wheel (the
CPU execution provider onnxruntime-android runs too). The export matrix in test_export.py covers every
family; this file checks what is particular to ONNX.
"""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgelight.errors import UsageError  # noqa: E402
from edgelight.targets import TargetError, get_target  # noqa: E402

TARGET = get_target("onnx")


def test_shift_is_one_depthwise_conv_and_the_shuffle_a_reshape_transpose(exported, random_checkpoints):
    shift = exported("shiftresnet-20-e3", "onnx", "fp32").op_inventory
    assert "Slice" not in shift and "Pad" not in shift and shift["Conv"] == 30, shift  # 21 convs + 9 one-hot shifts
    lru = exported(str(random_checkpoints("lrunet-4-1x")), "onnx", "fp32").op_inventory
    assert lru["Transpose"] > 0 and lru["Reshape"] >= 2 * lru["Transpose"] and not any(op.startswith("edgelight") for op in lru), lru


def test_w8a8_is_qdq_calibrated_on_the_checkpoints_data(exported):
    result = exported("shiftresnet-20-e3", "onnx", "w8a8")
    assert result.op_inventory["QuantizeLinear"] > 0 and result.op_inventory["DequantizeLinear"] > 0
    fp32 = exported("shiftresnet-20-e3", "onnx", "fp32")
    assert result.bytes < 0.6 * fp32.bytes  # int8 weights
    v = result.verification
    assert v["status"] == "passed" and v["accuracy"] >= v["reference_accuracy"] - 0.01
    assert json.loads(result.sidecar.read_text())["precision"] == "w8a8"


def test_inspection_counts_weights_once(exported):
    info = TARGET.inspect(exported("shiftresnet-20-e3", "onnx", "fp32").artifact)
    assert info["opset"] == 18 and info["inputs"][0]["shape"] == [1, 3, 32, 32] and info["outputs"][0]["shape"] == [1, 10]
    assert 95_642 * 4 * 0.9 < info["weights_bytes"] < 95_642 * 4 * 1.6  # the one-hot shift weights are extra


def test_the_runner_rejects_a_wrong_shape_and_a_truncated_file(exported, tmp_path):
    artifact = exported("shiftresnet-20-e3", "onnx", "fp32").artifact
    runner = TARGET.make_runner()
    runner.load(artifact, threads=1)
    try:
        assert runner.run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
        with pytest.raises(TargetError, match=r"shape \[1, 3, 32, 32\], got \[1, 3, 16, 16\]"):
            runner.run(np.zeros((1, 3, 16, 16), np.float32))
    finally:
        runner.close()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(artifact.read_bytes()[:1000])
    with pytest.raises(TargetError) as err:
        TARGET.make_runner().load(broken)
    assert "broken.onnx" in str(err.value) and "\n" not in str(err.value)


def test_onnxruntimes_profiler_gives_per_op_rows(exported):
    rows = TARGET.profiler(exported("shiftresnet-20-e3", "onnx", "fp32").artifact, np.zeros((1, 3, 32, 32), np.float32), 3)
    ops = {r["op"] for r in rows}
    assert "Conv" in ops and all(r["mean_ms"] >= 0 and r["count"] >= 3 for r in rows)


@pytest.mark.parametrize("precision, options, message", [("fp16", {}, "not 'fp16'"), ("w8a8", {"activations": "int4"}, "activations='int4'"), ("fp32", {"io": "int8"}, "unknown onnx option")])
def test_bad_requests_are_usage_errors(precision, options, message):
    with pytest.raises(UsageError, match=message):
        TARGET.resolve(precision, options)
