"""Core ML target: conversion with the registered converters, spec/op inventory read back, sizes, determinism.

Runs on Linux (no Core ML runtime): packages are checked by spec and op inventory, and the MIL
composites are checked numerically by a small numpy interpreter of the MIL ops they are built from.
Predict-parity tests run only on macOS.
"""

import functools
import json
import platform
from collections import Counter

import numpy as np
import pytest
import torch

ct = pytest.importorskip("coremltools")

import edgelight  # noqa: E402
from edgelight.errors import UsageError  # noqa: E402
from edgelight.models import create_model  # noqa: E402
from edgelight.ops import channel_shuffle_reference, shift2d_reference  # noqa: E402
from edgelight.targets import LoweringRequest, TargetError, get_target  # noqa: E402
from edgelight.targets.coreml import ops  # noqa: E402
from edgelight.targets.coreml.lowering import _export  # noqa: E402

TARGET = get_target("coreml")
CLASSES = [f"class_{i}" for i in range(10)]
ON_MAC = platform.system() == "Darwin"
NEEDS_MAC = "Core ML predictions need macOS (the Core ML framework); on Linux packages are checked by spec"
ALLOWED_OPS = {"conv", "batch_norm", "relu", "add", "reduce_mean", "reshape", "transpose", "slice_by_index", "concat",
               "max_pool", "linear", "cast", "classify", "constexpr_affine_dequantize"}


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name).eval()
    for m in model.modules():  # trained-like BatchNorm statistics: default ones fold to identical copies
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    return model


def _request(model, out_path, precision="fp16", batch=1, **options) -> LoweringRequest:
    metadata = {"model": model.model_name, "classes": CLASSES, "edgelight_version": edgelight.__version__,
                "preprocessing": {"input_size": 32, "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616], "dataset": "cifar10"}}
    return LoweringRequest(model, torch.randn(batch, 3, 32, 32), precision, [], out_path, metadata, options)


def _lower(tmp_path_factory, name, precision="fp16", tag="a"):
    model = _model(name)
    path = tmp_path_factory.mktemp(f"{name}-{precision}-{tag}") / f"{name}.mlpackage"
    report = TARGET.lower(_request(model, path, precision))
    return model, path, report


@functools.cache
def _aten_counts(name: str) -> Counter:
    ep = _export(_model(name), torch.randn(1, 3, 32, 32))
    return Counter(str(n.target) for n in ep.graph.nodes if n.op == "call_function")


@pytest.fixture(scope="module")
def shiftresnet(tmp_path_factory):
    return _lower(tmp_path_factory, "shiftresnet-20-e3")


@pytest.fixture(scope="module")
def lrunet(tmp_path_factory):
    return _lower(tmp_path_factory, "lrunet-4-1x")


# ---- converters and the export they rely on -------------------------------------------------------


def test_converters_are_registered_under_the_frontend_lookup_names():
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY
    from coremltools.converters.mil.frontend.torch.utils import sanitize_op_kind

    for op, converter in ((torch.ops.edgelight.shift2d.default, ops.edgelight_shift2d),
                          (torch.ops.edgelight.channel_shuffle.default, ops.edgelight_channel_shuffle)):
        assert _TORCH_OPS_REGISTRY.get_func(sanitize_op_kind(op.name())) is converter


def test_export_keeps_custom_ops_as_single_nodes():
    shift = _aten_counts("shiftresnet-20-e3")
    assert shift["edgelight.shift2d.default"] == 9 and "aten.pad.default" not in shift
    lru = _aten_counts("lrunet-4-1x")
    # 4 stages x (4 - 1) shuffles between reuses + 4 x 4 repeats in front of the depthwise conv (RepeatedDepthwise)
    assert lru["edgelight.channel_shuffle.default"] == 28


# ---- MIL composites, checked numerically without the Core ML runtime ---------------------------------


def _run_mil(prog, x: np.ndarray) -> np.ndarray:
    """Evaluate a MIL program with numpy, op by op; an op the composites should not use fails the test."""
    fn = prog.functions["main"]
    env = {var.name: x for var in fn.inputs.values()}

    def get(var):
        return env[var.name] if var.name in env else var.val

    for op in fn.operations:
        kind = op.op_type
        if kind == "const":
            continue
        if kind == "conv":
            assert op.pad_type.val == "custom" and list(op.strides.val) == [1, 1] and list(op.dilations.val) == [1, 1]
            inp, w, groups = get(op.x), op.weight.val, int(op.groups.val)
            t, b, l, r = (int(p) for p in op.pad.val)
            padded = np.pad(inp, ((0, 0), (0, 0), (t, b), (l, r)))
            n, c, h, width = inp.shape
            out_h, out_w = h + t + b - w.shape[2] + 1, width + l + r - w.shape[3] + 1
            cin, cout = c // groups, w.shape[0] // groups
            out = np.zeros((n, w.shape[0], out_h, out_w), dtype=np.float64)
            for g in range(groups):
                for i in range(w.shape[2]):
                    for j in range(w.shape[3]):
                        window = padded[:, g * cin : (g + 1) * cin, i : i + out_h, j : j + out_w]
                        out[:, g * cout : (g + 1) * cout] += np.einsum("oc,nchw->nohw", w[g * cout : (g + 1) * cout, :, i, j], window)
            res = out
        elif kind == "pad":
            assert op.mode.val == "constant"
            p = [int(v) for v in op.pad.val]
            res = np.pad(get(op.x), list(zip(p[0::2], p[1::2])), constant_values=float(op.constant_val.val))
        elif kind == "slice_by_index":
            stride = op.stride.val if op.stride is not None else [1] * len(op.begin.val)
            res = get(op.x)[tuple(slice(int(b), int(e), int(s)) for b, e, s in zip(op.begin.val, op.end.val, stride))]
        elif kind == "concat":
            res = np.concatenate([get(v) for v in op.values], axis=int(op.axis.val))
        elif kind == "reshape":
            res = get(op.x).reshape([int(s) for s in op.shape.val])
        elif kind == "transpose":
            res = get(op.x).transpose([int(p) for p in op.perm.val])
        elif kind == "identity":
            res = get(op.x)
        else:
            raise AssertionError(f"unexpected MIL op '{kind}' in a composite")
        assert tuple(res.shape) == tuple(op.outputs[0].shape), f"{kind}: shape {res.shape} vs MIL {op.outputs[0].shape}"
        env[op.outputs[0].name] = res
    return env[fn.outputs[0].name]


def _mil_program(shape, build):
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.iOS17)
    def prog(x):
        return build(x)

    return prog


@pytest.mark.parametrize("form", ops.SHIFT_FORMS)
@pytest.mark.parametrize("channels,kernel_size,dilation", [(18, 3, 1), (20, 3, 2), (11, 3, -1), (27, 5, 1), (7, 3, 1)])
def test_shift_composite_matches_reference(form, channels, kernel_size, dilation):
    shape = (2, channels, 5, 6)
    prog = _mil_program(shape, lambda x: ops.shift_composite(x, kernel_size, dilation, "shift", form=form))
    x = torch.randn(shape)
    expected = shift2d_reference(x, kernel_size, dilation).numpy()
    np.testing.assert_array_equal(_run_mil(prog, x.numpy().astype(np.float64)), expected.astype(np.float64))
    kinds = Counter(op.op_type for op in prog.functions["main"].operations if op.op_type != "const")
    if form == "conv":  # one op per shift: the design point
        assert kinds == Counter({"conv": 1})


@pytest.mark.parametrize("channels,groups", [(12, 2), (12, 3), (8, 8), (6, 1)])
def test_channel_shuffle_composite_matches_reference(channels, groups):
    shape = (2, channels, 3, 4)
    prog = _mil_program(shape, lambda x: ops.channel_shuffle_composite(x, groups, "shuffle"))
    x = torch.randn(shape)
    np.testing.assert_array_equal(_run_mil(prog, x.numpy()), channel_shuffle_reference(x, groups).numpy())
    assert all(len(op.outputs[0].shape) <= 4 for op in prog.functions["main"].operations)  # rank 4 for the ANE


# ---- packages read back from disk ---------------------------------------------------------------------


def test_shiftresnet_converts_with_the_shift_as_one_depthwise_conv(shiftresnet):
    model, path, report = shiftresnet
    info = TARGET.inspect(path)
    assert set(info["ops"]) <= ALLOWED_OPS, f"unexpected ops: {set(info['ops']) - ALLOWED_OPS}"
    assert report.op_inventory == info["ops"]
    aten = _aten_counts(model.model_name)
    assert info["ops"]["conv"] == aten["aten.conv2d.default"] + aten["edgelight.shift2d.default"]
    assert "pad" not in info["ops"] and "slice_by_index" not in info["ops"]


def test_lrunet_converts_with_the_shuffle_as_reshape_transpose(lrunet):
    model, path, _ = lrunet
    info = TARGET.inspect(path)
    allowed = ALLOWED_OPS | {"pad"}  # LruNet's 3 max pools pad with zeros (their inputs are ReLU outputs)
    assert set(info["ops"]) <= allowed, f"unexpected ops: {set(info['ops']) - allowed}"
    assert info["ops"]["pad"] == 3
    assert info["ops"]["transpose"] == _aten_counts(model.model_name)["edgelight.channel_shuffle.default"]


def test_classifier_labels_and_metadata_are_in_the_spec(shiftresnet):
    _, path, _ = shiftresnet
    info = TARGET.inspect(path)
    assert info["classifier"] and info["labels"] == CLASSES
    assert info["specification_version"] == 8 and info["opset"] == "CoreML7"  # iOS 17
    assert info["inputs"] == [{"name": info["inputs"][0]["name"], "shape": [1, 3, 32, 32]}]
    meta = info["metadata"]
    assert meta["edgelight.model"] == "shiftresnet-20-e3" and meta["edgelight.version"] == edgelight.__version__
    assert json.loads(meta["edgelight.preprocessing"])["std"] == [0.247, 0.2435, 0.2616]
    assert "shiftresnet-20-e3" in info["short_description"] and "0.4914" in info["short_description"]
    assert json.loads(meta["edgelight.classes"]) == CLASSES
    assert "com.github.apple.coremltools.conversion_date" not in meta


def test_batch_n_package_outputs_logits_not_a_classifier(tmp_path):
    path = tmp_path / "b2.mlpackage"
    report = TARGET.lower(_request(_model("shiftresnet-20-e1"), path, batch=2))
    info = TARGET.inspect(path)
    assert not info["classifier"] and info["labels"] == [] and info["inputs"][0]["shape"] == [2, 3, 32, 32]
    assert any("batch 2" in note for note in report.notes)


def test_int8_weights_package_is_smaller(shiftresnet, tmp_path_factory):
    _, fp16_path, _ = shiftresnet
    _, path, report = _lower(tmp_path_factory, "shiftresnet-20-e3", "w8")
    fp16, int8 = TARGET.inspect(fp16_path), TARGET.inspect(path)
    assert int8["ops"].get("constexpr_affine_dequantize", 0) > 0
    assert int8["weights_bytes"] < 0.7 * fp16["weights_bytes"]
    assert int8["ops"]["conv"] == fp16["ops"]["conv"]


def test_shared_weights_are_stored_once(lrunet):
    model, path, report = lrunet
    shared = sum(blk.dw.weight.numel() + blk.pw.weight.numel() for blk in model.stages)  # reused conv parameters
    uses, params = len(model.stages[0].dw_bn), sum(p.numel() for p in model.parameters())
    once, copies = 2 * params, 2 * (params + (uses - 1) * shared)  # fp16 bytes: every parameter once vs a copy per use
    info = TARGET.inspect(path)
    assert info["weights_bytes"] < 1.1 * once < copies, (info["weights_bytes"], once, copies)
    assert info["conv_weights"]["reused"] == 2 * len(model.stages) and info["conv_weights"]["max_uses"] == uses
    assert any("stored once" in note for note in report.notes)


def test_batchnorm_statistics_move_into_scale_and_shift_exactly():
    from edgelight.targets.coreml.lowering import bn_statistics_in_affine

    model = _model("lrunet-1-1x")
    x = torch.randn(2, 3, 32, 32)
    moved = bn_statistics_in_affine(model)
    with torch.no_grad():
        torch.testing.assert_close(moved(x), model(x), rtol=1e-4, atol=1e-5)
    bn = moved.stages[0].dw_bn[0]
    assert torch.all(bn.running_mean == 0) and model.stages[0].dw_bn[0].running_mean.abs().sum() > 0  # a copy


def test_shared_weights_stay_shared_when_quantized(tmp_path_factory):
    model, path, _ = _lower(tmp_path_factory, "lrunet-4-1x", "w8")
    info = TARGET.inspect(path)
    # quantization re-runs coremltools' passes: a still-float shared weight would get a folded copy per BatchNorm
    assert info["conv_weights"]["reused"] == 2 * len(model.stages) and info["conv_weights"]["max_uses"] == 4


def test_package_bytes_are_deterministic(shiftresnet, tmp_path_factory):
    _, first, _ = shiftresnet
    _, second, _ = _lower(tmp_path_factory, "shiftresnet-20-e3", tag="b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files), "package bytes differ"
    assert "executorch_debug_handle_mapping.json" not in {f.name for f in files}


# ---- user mistakes and hosts ----------------------------------------------------------------------------


@pytest.mark.skipif(ON_MAC, reason="on macOS W8A8 calibrates instead of refusing")
def test_w8a8_on_linux_says_it_needs_macos():
    with pytest.raises(UsageError, match=r"W8A8 needs macOS.*'w8' \(int8 weights"):
        TARGET.resolve("w8a8", {})


@pytest.mark.parametrize(
    "precision,options,message",
    [("int4", {}, "not 'int4'"), ("int8", {}, "ambiguous here: w8 or w8a8"), ("fp16", {"shift": "roll"}, "coreml option shift=.roll. is not one of: conv, slices")],
)
def test_bad_requests_fail_with_one_line(precision, options, message):
    with pytest.raises(UsageError, match=message) as err:
        TARGET.resolve(precision, options)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(ON_MAC, reason="Core ML runs on macOS")
def test_runner_says_why_it_cannot_run_here(shiftresnet):
    assert TARGET.runnable_here() == "Core ML runs only on macOS; on this host the package is checked by spec and op inventory"
    with pytest.raises(TargetError, match="only on macOS"):
        TARGET.make_runner().load(shiftresnet[1])


@pytest.mark.skipif(not ON_MAC, reason=NEEDS_MAC)
@pytest.mark.parametrize("fixture", ["shiftresnet", "lrunet"])
def test_predict_matches_eager_on_macos(fixture, request):
    model, path, _ = request.getfixturevalue(fixture)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    runner = TARGET.make_runner()
    runner.load(path)
    got = runner.run(x.numpy())
    runner.close()
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() < 2e-2 * scale  # fp16 compute
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 2 / 3
