"""LiteRT target: real conversions with litert-torch, run with the LiteRT interpreter (XNNPACK).

Conversions are cached per module (about two minutes on 2 cores in all): shiftresnet-20-e3 and
lrunet-4-1x, fp32 and full-int8, with random weights and non-trivial BatchNorm statistics.
"""

import functools

import numpy as np
import pytest
import torch

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("litert_torch")

from edgelight.data import load_digits  # noqa: E402
from edgelight.errors import UsageError  # noqa: E402
from edgelight.layers import Shift  # noqa: E402
from edgelight.models import create_model  # noqa: E402
from edgelight.ops import channel_shuffle  # noqa: E402
from edgelight.targets import LoweringRequest, TargetError, get_target  # noqa: E402
from edgelight.testing import trained_like_batchnorm  # noqa: E402

TARGET = get_target("tflite")
MODELS = ("shiftresnet-20-e3", "lrunet-4-1x")


@functools.cache
def model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return trained_like_batchnorm(create_model(name))


@functools.cache
def digits():
    d = load_digits()
    mean, std = torch.tensor(d.mean).view(1, -1, 1, 1), torch.tensor(d.std).view(1, -1, 1, 1)
    return (d.train_x[:16] - mean) / std, (d.test_x[:32] - mean) / std


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tflite")

    @functools.cache
    def make(name: str, precision: str = "fp32", tag: str = "", **options):
        path = out / f"{name}-{precision}{tag}-{'-'.join(f'{k}={v}' for k, v in sorted(options.items()))}.tflite"
        calib, _ = digits()
        request = LoweringRequest(model(name), calib[:1], precision, [calib] if precision == "w8a8" else [], path, {}, options)
        report = TARGET.lower(request)
        return path, report

    return make


def run(path, x: torch.Tensor) -> np.ndarray:
    runner = TARGET.make_runner()
    runner.load(path, threads=1)
    try:
        return runner.run(x.numpy())
    finally:
        runner.close()


def reference(name: str, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(name)(x).numpy()


def test_runnable_here():
    assert TARGET.runnable_here() is None


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_fp32_matches_eager(artifact, name):
    path, report = artifact(name)
    _, x = digits()
    ref, out = reference(name, x), run(path, x)  # 32 images through a batch-1 artifact
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert np.abs(out - ref).max() <= 1e-3 * np.abs(ref).max()
    assert (out.argmax(1) == ref.argmax(1)).all()
    assert report.op_inventory == TARGET.inspect(path)["ops"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_fp32_only_builtins(artifact, name):
    ops = TARGET.inspect(artifact(name)[0])["ops"]
    assert not [op for op in ops if op.startswith("CUSTOM") or "edgelight" in op.lower()], ops
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops
    if name.startswith("shiftresnet"):
        # 9 shifts as one-hot depthwise convs, no pad/slice/cat left from a naive shift
        assert ops["DEPTHWISE_CONV_2D"] == 9 and not {"PAD", "PADV2", "SLICE", "STRIDED_SLICE", "CONCATENATION"} & set(ops)


class Tiny(torch.nn.Module):
    """Conv-BN, a shift, one 1x1 conv reused twice with a BN per use, a channel shuffle: converts in seconds."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 18, 3, padding=1, bias=False), torch.nn.BatchNorm2d(18), torch.nn.ReLU())
        self.shift = Shift()
        self.shared = torch.nn.Conv2d(18, 18, 1, bias=False)
        self.bns = torch.nn.ModuleList(torch.nn.BatchNorm2d(18) for _ in range(2))
        self.fc = torch.nn.Linear(18, 10)

    def forward(self, x):
        x = self.shift(self.stem(x))
        for bn in self.bns:
            x = torch.relu(bn(self.shared(channel_shuffle(x, 3)))) + x
        return self.fc(x.mean((2, 3)))


@functools.cache
def tiny_bytes(tmp, precision: str, attempt: int, **options) -> bytes:
    torch.manual_seed(0)
    calib, _ = digits()
    path = tmp / f"tiny-{precision}-{attempt}-{sorted(options.items())}.tflite"
    TARGET.lower(LoweringRequest(trained_like_batchnorm(Tiny()), calib[:1], precision, [calib], path, {}, options))
    return path.read_bytes()


@pytest.mark.slow
def test_shift_form_option(tmp_path):
    x = digits()[1][:4]
    torch.manual_seed(0)
    ref = trained_like_batchnorm(Tiny())
    for form, wanted in (("slices", "SLICE"), ("depthwise", "DEPTHWISE_CONV_2D")):
        path = tmp_path / f"{form}.tflite"
        TARGET.lower(LoweringRequest(ref, x[:1], "fp32", [], path, {}, {"shift": form}))
        ops = TARGET.inspect(path)["ops"]
        assert wanted in ops and not (form == "depthwise" and ("SLICE" in ops or "PAD" in ops)), ops
        with torch.no_grad():
            want = ref(x).numpy()
        assert np.abs(run(path, x) - want).max() <= 1e-3 * np.abs(want).max()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "w8a8"])
def test_deterministic(tmp_path_factory, precision):
    tmp = tmp_path_factory.mktemp("det")
    assert tiny_bytes(tmp, precision, 0) == tiny_bytes(tmp, precision, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name,io", [("shiftresnet-20-e3", "float"), ("lrunet-4-1x", "int8")])
def test_int8_full_integer(artifact, name, io):
    path, report = artifact(name, "w8a8", io=io)
    spec = TARGET.inspect(path)
    ops = spec["ops"]
    assert not [op for op in ops if op.startswith("CUSTOM")], ops
    # full integer: the only float<->int8 boundary is the model's own I/O
    assert ops.get("DEQUANTIZE", 0) == (1 if io == "float" else 0), ops
    want = "float32" if io == "float" else "int8"
    assert spec["inputs"][0]["dtype"] == want and spec["outputs"][0]["dtype"] == want
    if io == "int8":
        assert spec["inputs"][0]["scale"] > 0 and spec["outputs"][0]["scale"] > 0
    _, x = digits()
    ref, out = reference(name, x), run(path, x)  # the runner (de)quantizes int8 I/O itself
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() <= 0.1 * np.abs(ref).max()
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.9


@pytest.mark.slow
def test_shared_weights_stored_once(artifact):
    """lrunet-4-1x reuses each stage's (dw, pw) pair 4 times; folding per-use BNs would store 4 copies."""
    net = model("lrunet-4-1x")
    params = sum(p.numel() for p in net.parameters())
    shared = sum(p.numel() for stage in net.stages for conv in (stage.dw, stage.pw) for p in conv.parameters())
    reuses = len(net.stages[0].dw_bn)
    n_copies = 4 * (params + (reuses - 1) * shared)
    path, report = artifact("lrunet-4-1x")
    size = path.stat().st_size
    assert size <= 1.2 * 4 * params, (size, 4 * params)
    assert size < 0.5 * n_copies, (size, n_copies)
    assert any("stored once" in note for note in report.notes)


@pytest.mark.parametrize(
    "precision,options,message",
    [
        ("fp16", {}, "precision.*'fp16'"),
        ("fp32", {"io": "int8"}, "needs precision w8a8"),
        ("int8", {"io": "uint8"}, "io='uint8'"),  # int8: the alias of w8a8 here
        ("fp32", {"shift": "roll"}, "shift='roll'"),
        ("fp32", {"delegate": "gpu"}, "unknown tflite option"),
        ("w8a8", {"shared_bn": "fold"}, "fp32 only"),
    ],
)
def test_user_errors(precision, options, message):
    """Checked by the record before any work: the pipeline never reaches lower() with these."""
    with pytest.raises(UsageError, match=message):
        TARGET.resolve(precision, options)


def test_int8_needs_calibration(tmp_path):
    calib, _ = digits()
    request = LoweringRequest(model("shiftresnet-20-e3"), calib[:1], "w8a8", [], tmp_path / "m.tflite", {}, {})
    with pytest.raises(TargetError, match="calibration"):
        TARGET.lower(request)


@pytest.mark.slow
def test_runner_rejects_wrong_shape(artifact):
    runner = TARGET.make_runner()
    runner.load(artifact("shiftresnet-20-e3")[0], threads=1)
    with pytest.raises(TargetError, match="shape"):
        runner.run(np.zeros((1, 3, 16, 16), np.float32))
    runner.close()


def test_inspect_rejects_non_tflite(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(TargetError, match="TFL3"):
        TARGET.inspect(bad)


@pytest.mark.slow
def test_int8_files_write_each_quantization_vector_once(artifact, tmp_path):
    """lrunet-4-1x w8a8: its per-use weights and biases repeat all-zero int64 zero-point vectors; written once,
    the file is ~30% smaller than the same model packed the plain way, and runs to the same outputs."""
    import flatbuffers

    from edgelight.targets.tflite.lowering import _unpack

    path, _ = artifact("lrunet-4-1x", "w8a8")
    data = path.read_bytes()
    builder = flatbuffers.Builder(len(data))
    builder.Finish(_unpack(data).Pack(builder), file_identifier=b"TFL3")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(bytes(builder.Output()))
    assert len(data) < 0.8 * plain.stat().st_size, (len(data), plain.stat().st_size)
    x = digits()[1][:4]
    np.testing.assert_array_equal(run(path, x), run(plain, x))


# ---- ops=custom: edgelight's kernels as LiteRT custom ops on LiteRT's CompiledModel (targets/tflite/native)


class ShiftProbe(torch.nn.Module):
    """conv -> [relu] -> shift (odd channel count: a pass-through tail) -> 1x1 conv: the kernel's edge cases."""

    def __init__(self, channels: int, dilation: int, relu: bool):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, channels, 3, padding=1), torch.nn.Conv2d(channels, 4, 1)
        self.dilation, self.relu = dilation, relu

    def forward(self, x):
        x = self.a(x)
        return self.b(torch.ops.edgelight.shift2d(torch.relu(x) if self.relu else x, 3, self.dilation))


def custom_artifact(tmp_path, module, precision, batch=1, **options):
    calib, _ = digits()
    path = tmp_path / f"custom-{precision}-{'-'.join(f'{k}={v}' for k, v in sorted(options.items()))}.tflite"
    request = LoweringRequest(module, calib[:batch], precision, [calib] if precision == "w8a8" else [], path, {}, {"ops": "custom", **options})
    return path, TARGET.lower(request)


@pytest.mark.slow
@pytest.mark.parametrize("channels,dilation,batch,relu", [(13, 2, 2, False), (27, 1, 1, True)])
@pytest.mark.parametrize("precision", ["fp32", "w8a8"])
def test_custom_shift_matches_reference(tmp_path, precision, channels, dilation, batch, relu):
    """fp32: the custom op against PyTorch; int8 (zero point from an asymmetric range, or -128 after a ReLU):
    against the same model lowered to builtins (a one-hot depthwise conv is exact in int8), to the last bit."""
    from edgelight.targets.tflite.runner import LITERT_KERNELS

    torch.manual_seed(channels)
    module = ShiftProbe(channels, dilation, relu).eval()
    path, report = custom_artifact(tmp_path, module, precision, batch)
    x = digits()[1][:4]
    code = [op for op in report.op_inventory if op.startswith("CUSTOM:")]
    assert len(code) == 1 and code[0].startswith(f"CUSTOM:EdgelightShift2d_k3_d{dilation}"), report.op_inventory
    assert report.requires == [LITERT_KERNELS]
    assert "TRANSPOSE" not in report.op_inventory or report.op_inventory["TRANSPOSE"] <= 2  # the graph's NCHW I/O only
    if precision == "fp32":
        with torch.no_grad():
            want = module(x).numpy()
        assert np.abs(run(path, x) - want).max() <= 1e-5 * np.abs(want).max()
        return
    zero_point = int(code[0].rsplit("_z", 1)[1])
    assert (zero_point == -128) == relu, code
    assert report.op_inventory.get("DEQUANTIZE", 0) <= 1 and report.op_inventory.get("QUANTIZE", 0) <= 1  # float I/O only
    lowered = tmp_path / "lowered.tflite"
    calib, _ = digits()
    TARGET.lower(LoweringRequest(module, calib[:batch], precision, [calib], lowered, {}, {}))
    np.testing.assert_array_equal(run(path, x), run(lowered, x))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "w8a8"])
def test_custom_ops_in_a_model(tmp_path, precision):
    """Tiny (shift, two channel shuffles, shared conv): every edgelight op is a custom op between XNNPACK's,
    int8 stays int8 across them, and the program agrees with PyTorch / the builtin lowering."""
    torch.manual_seed(0)
    module = trained_like_batchnorm(Tiny()).eval()
    path, report = custom_artifact(tmp_path, module, precision)
    ops = report.op_inventory
    assert ops["CUSTOM:EdgelightChannelShuffle_g3"] == 2 and sum(v for k, v in ops.items() if k.startswith("CUSTOM:EdgelightShift2d")) == 1, ops
    # no shuffle reshapes / transposes and no layout transposes around the custom ops: the input's and the head's
    # remain (the builtin lowering has 8 TRANSPOSE and 4 RESHAPE)
    assert "RESHAPE" not in ops and ops.get("TRANSPOSE", 0) <= 2, ops
    x = digits()[1][:8]
    if precision == "fp32":
        with torch.no_grad():
            want = module(x).numpy()
        assert np.abs(run(path, x) - want).max() <= 1e-4 * np.abs(want).max()
    else:
        assert ops.get("DEQUANTIZE", 0) <= 1, ops
        calib, _ = digits()
        lowered = tmp_path / "lowered.tflite"
        TARGET.lower(LoweringRequest(module, calib[:1], precision, [calib], lowered, {}, {}))
        got, want = run(path, x), run(lowered, x)
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max() and (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.slow
def test_custom_op_errors(tmp_path):
    """A name edgelight does not know fails the load with the name; a kernel whose name says int8 on a float
    tensor fails the forward pass (LiteRT 2.3 drops a kernel's own status: the runner checks)."""
    from ai_edge_litert import schema_py_generated as fb

    from edgelight.targets.tflite.lowering import _pack, _unpack

    torch.manual_seed(1)
    path, _ = custom_artifact(tmp_path, ShiftProbe(9, 1, True).eval(), "fp32")
    for code, where, message in ((b"EdgelightShift2d_k4_d1", "load", "not an edgelight custom op: EdgelightShift2d_k4_d1"),
                                 (b"EdgelightShift2d_k3_d1_z0", "run", "refused its tensors")):
        model = _unpack(path.read_bytes())
        (custom,) = [c for c in model.operatorCodes if c.builtinCode == fb.BuiltinOperator.CUSTOM]
        custom.customCode = code
        bad = tmp_path / f"{where}.tflite"
        bad.write_bytes(_pack(model, path.stat().st_size))
        runner = TARGET.make_runner()
        with pytest.raises(TargetError, match=message):
            runner.load(bad, threads=1)
            runner.run(digits()[1][:1].numpy())
        runner.close()
