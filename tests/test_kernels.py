"""Native ExecuTorch kernels for the edgelight ops: built on first use, run through executorch.runtime.

Every comparison is against the plain-Python references (edgelight.ops.shift2d_reference, ...) or eager
PyTorch; the sanitizer test builds the standalone C++ kernel test with ASan+UBSan and runs it.
"""

import subprocess

import pytest
import torch

import edgelight.ops  # noqa: F401
from edgelight.ops import channel_shuffle_reference, shift2d_reference
from edgelight.ops.fused import dequantize, quantize
from edgelight.ops.kernels import NativeKernelsError, configure_and_build, load_native_kernels

torch.set_num_threads(1)
el = torch.ops.edgelight


@pytest.fixture(scope="module")
def runtime():
    try:
        load_native_kernels()
    except NativeKernelsError as err:  # a missing toolchain is an environment problem, reported plainly
        pytest.fail(str(err))
    from executorch.runtime import Runtime

    return Runtime.get()


def _run_pte(runtime, module, inputs, partition=False, delegate=False, channels_last=False):
    from executorch.exir import to_edge, to_edge_transform_and_lower

    from edgelight.targets.executorch.delegate import EdgelightPartitioner
    from edgelight.targets.executorch.native import channels_last_boundaries

    ep = torch.export.export(module, tuple(inputs))
    if channels_last:  # the fp32 shifts and shuffle and the two quantized shifts then run on NHWC memory
        import executorch.kernels.quantized  # noqa: F401 (out variants of the int8 copies' dq/q, run portable here)

        assert channels_last_boundaries(ep) == 6
    if delegate:  # every op one EdgelightBackend call: the delegate's blob carries its arguments and weights
        edge = to_edge_transform_and_lower(ep, partitioner=[EdgelightPartitioner()])
        assert _delegates(edge) == {"EdgelightBackend": 10}
    elif partition:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    else:
        edge = to_edge(ep)
    return _execute(runtime, edge.to_executorch().buffer, list(inputs))


def _delegates(edge) -> dict[str, int]:
    from collections import Counter

    gm = edge.exported_program().graph_module
    return dict(Counter(getattr(gm, n.args[0].target).backend_id for n in gm.graph.nodes
                        if n.op == "call_function" and "executorch_call_delegate" in str(n.target)))


def _execute(runtime, pte: bytes, inputs):
    # keep the Program alive while its Method runs: the Method reads the program's buffers
    program = runtime.load_program(pte)
    outputs = program.load_method("forward").execute(inputs)
    return [o.clone() for o in outputs]


class AllOps(torch.nn.Module):
    """One program exercising every kernel on awkward shapes (odd C, batch > 1, non-square, dilation 2)."""

    def __init__(self, w, b, wq, wscale, bq):
        super().__init__()
        self.w, self.b, self.wq, self.wscale, self.bq = w, b, wq, wscale, bq

    def forward(self, a, b, c, q, s):
        return (
            el.shift2d(a, 3, 1),
            el.shift2d(b, 3, 2),
            el.shift2d(c, 5, -1),
            el.shift2d(q, 3, 1),  # raw int8: fill 0, same as the fp32 semantics
            el.channel_shuffle(s, 3),
            el.channel_shuffle(q, 13) if q.shape[1] % 13 == 0 else el.channel_shuffle(q, 1),
            el.quantized_shift2d(q, 0.05, 7, 0.05, 7, 3, 1),  # same params: fill = zero point
            el.quantized_shift2d(q, 0.05, -128, 0.08, 3, 3, 2),  # requantizing
            el.shift_conv1x1(b, self.w, self.b, 2, 3, 2, True),
            el.quantized_shift_conv1x1(q, 0.05, -128, 0.06, -100, self.wq, self.wscale, self.bq, 0.3, 5, 1, 3, 1, False),
        )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("form", ["custom-ops", "delegate", "delegate-channels-last"])
def test_kernels_match_references(runtime, seed, form):
    g = torch.Generator().manual_seed(seed)
    n = 2 + seed
    a = torch.randn(n, 9 + 4 * seed, 5, 7, generator=g)  # odd channel counts, pass-through channels
    b = torch.randn(1, 22, 9, 6, generator=g)
    c = torch.randn(n, 53, 6, 5, generator=g)  # k = 5: 25-channel groups + 3 pass-through
    q = torch.randint(-128, 128, (n, 26, 7, 4), generator=g, dtype=torch.int8)
    s = torch.randn(n, 12, 3, 5, generator=g)
    w, bias = torch.randn(10, 22, 1, 1, generator=g), torch.randn(10, generator=g)
    wq = torch.randint(-127, 128, (11, 26, 1, 1), generator=g, dtype=torch.int8)
    wscale, bq = torch.rand(11, generator=g) * 0.01 + 1e-3, torch.randn(11, generator=g)
    module = AllOps(w, bias, wq, wscale, bq)
    outs = _run_pte(runtime, module, [a, b, c, q, s], delegate=form != "custom-ops", channels_last=form.endswith("channels-last"))

    torch.testing.assert_close(outs[0], shift2d_reference(a, 3, 1), rtol=0, atol=0)
    torch.testing.assert_close(outs[1], shift2d_reference(b, 3, 2), rtol=0, atol=0)
    torch.testing.assert_close(outs[2], shift2d_reference(c, 5, -1), rtol=0, atol=0)
    assert torch.equal(outs[3], shift2d_reference(q, 3, 1))
    torch.testing.assert_close(outs[4], channel_shuffle_reference(s, 3), rtol=0, atol=0)
    assert torch.equal(outs[5], channel_shuffle_reference(q, 13))
    # quantized domain: the border is the zero point, never the integer 0
    expect6 = quantize(shift2d_reference(dequantize(q, 0.05, 7), 3, 1), 0.05, 7)
    assert torch.equal(outs[6], expect6) and (outs[6][:, 0, 0, :] == 7).all()
    expect7 = quantize(shift2d_reference(dequantize(q, 0.05, -128), 3, 2), 0.08, 3)
    assert torch.equal(outs[7], expect7) and (outs[7][:, 0, :2, :] == 3).all()
    expect8 = torch.relu(torch.nn.functional.conv2d(shift2d_reference(b, 3, 2), w, bias, 2))
    torch.testing.assert_close(outs[8], expect8, rtol=1e-5, atol=1e-5)
    mid = quantize(shift2d_reference(dequantize(q, 0.05, -128), 3, 1), 0.06, -100)
    conv = torch.nn.functional.conv2d(dequantize(mid, 0.06, -100), wq.float() * wscale.reshape(-1, 1, 1, 1), bq)
    expect9 = quantize(conv, 0.3, 5)
    diff = (outs[9].int() - expect9.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01  # fp32 accumulation order only
    assert outs[9].unique().numel() > 20  # not saturated: the check above is meaningful


def test_registered_and_python_schemas(runtime):
    names = set(runtime.operator_registry.operator_names)
    for op in ("shift2d", "channel_shuffle", "quantized_shift2d", "shift_conv1x1", "quantized_shift_conv1x1"):
        assert f"edgelight::{op}.out" in names
        assert hasattr(el, op)  # the schema torch.export needs


def _csc_model():
    from edgelight.models import create_model

    torch.manual_seed(0)
    model = create_model("shiftresnet-20-e3").eval()
    for mod in model.modules():  # non-trivial BN so the folding in the fused pass is exercised
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3), mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5), mod.bias.data.uniform_(-0.2, 0.2)
    return model


def test_fused_graph_matches_unfused():
    from edgelight.targets.executorch.native import edgelight_op_counts, prepare_native

    model, x = _csc_model(), torch.randn(2, 3, 32, 32)
    fused = prepare_native(torch.export.export(model, (x,)), "fp32", fuse=True)
    unfused = prepare_native(torch.export.export(model, (x,)), "fp32", fuse=False)
    assert edgelight_op_counts(fused) == {"shift_conv1x1": 9}
    assert edgelight_op_counts(unfused) == {"shift2d": 9}
    torch.testing.assert_close(fused.module()(x), unfused.module()(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.module()(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["custom-ops", "delegate"])
def test_shiftresnet_fp32_pte_native_end_to_end(runtime, form):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgelight.targets.executorch.delegate import EdgelightPartitioner
    from edgelight.targets.executorch.native import edgelight_op_counts, prepare_native

    model, x = _csc_model(), torch.randn(2, 3, 32, 32)
    ep = prepare_native(torch.export.export(model, (x,)), "fp32", fuse=True)
    partitioners = [EdgelightPartitioner(), XnnpackPartitioner()] if form == "delegate" else [XnnpackPartitioner()]
    edge = to_edge_transform_and_lower(ep, partitioner=partitioners)
    if form == "delegate":  # the 9 fused CSC tails are EdgelightBackend calls between XNNPACK partitions
        assert edgelight_op_counts(edge) == {} and _delegates(edge) == {"EdgelightBackend": 9, "XnnpackBackend": 10}
    else:
        assert edgelight_op_counts(edge) == {"shift_conv1x1": 9} and _delegates(edge) == {"XnnpackBackend": 10}
    out = _execute(runtime, edge.to_executorch().buffer, [x])[0]
    torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["custom-ops", "delegate"])
def test_shiftresnet_int8_pte_native_end_to_end(runtime, form, tmp_path):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgelight.targets.executorch.lowering import inspect_program
    from edgelight.targets.executorch.native import edgelight_op_counts, prepare_native, to_native_pte

    model, x = _csc_model(), torch.randn(2, 3, 32, 32)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    for _ in range(2):
        prepared(torch.randn(2, 3, 32, 32))
    qmodel = convert_pt2e(prepared)
    ep = prepare_native(torch.export.export(qmodel, (x,)), "w8a8", fuse=True)
    assert edgelight_op_counts(ep) == {"quantized_shift_conv1x1": 9}
    # the rewritten graph equals the PT2E graph it replaced (same float steps, on the Python kernels)
    expected = qmodel(x)
    torch.testing.assert_close(ep.module()(x), expected, rtol=0, atol=1e-6)
    pte = to_native_pte(ep, "w8a8", delegate=form == "delegate")
    if form == "delegate":  # int8 stays int8 between the partitions: no quantize/dequantize op outside them
        (tmp_path / "mixed.pte").write_bytes(pte)
        inventory = inspect_program(tmp_path / "mixed.pte")
        assert inventory["operators"] == {} and inventory["delegates"]["EdgelightBackend"] == 9, inventory
    out = _execute(runtime, pte, [x])[0]
    # XNNPACK's int8 requantization rounds differently from the reference ops: a few output steps over
    # 20 layers, never a different class
    span = expected.abs().max().item()
    assert (out - expected).abs().max().item() <= 0.03 * span
    assert (out - expected).abs().mean().item() <= 0.01 * span
    assert torch.equal(out.argmax(1), expected.argmax(1))


@pytest.mark.slow
def test_sanitizers_on_kernel_test(tmp_path):
    """The C++ kernel test under -fsanitize=address,undefined: any OOB read at a border aborts it."""
    build = tmp_path / "asan"
    configure_and_build(build, {"EDGELIGHT_KERNELS_TESTS": "ON", "EDGELIGHT_SANITIZE": "ON",
                                "CMAKE_BUILD_TYPE": "Debug"}, ["edgelight_kernels_test"])
    proc = subprocess.run([str(build / "edgelight_kernels_test")], capture_output=True, text=True, timeout=120,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "OK: 0 failures" in proc.stdout
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr


def test_build_failure_is_a_one_line_error(tmp_path):
    # a real configure that CMakeLists.txt rejects (test executables need the host runtime, not STATIC)
    with pytest.raises(NativeKernelsError) as err:
        configure_and_build(tmp_path / "bad", {"EDGELIGHT_KERNELS_STATIC": "ON", "EDGELIGHT_KERNELS_TESTS": "ON",
                                               "EDGELIGHT_EXECUTORCH_INCLUDE_DIR": str(tmp_path)})
    message = str(err.value)
    assert "\n" not in message and "configure failed" in message and "build.log" in message


def test_the_delegate_refuses_a_blob_it_cannot_read(runtime):
    """A program whose EdgelightBackend blob is not ours (or is damaged) fails at load, not at run time."""
    from executorch.exir import to_edge_transform_and_lower

    from edgelight.targets.executorch.delegate import MAGIC, EdgelightPartitioner

    class Shift(torch.nn.Module):
        def forward(self, x):
            return el.shift2d(x, 3, 1)

    x = torch.randn(1, 9, 4, 4)
    pte = to_edge_transform_and_lower(torch.export.export(Shift(), (x,)), partitioner=[EdgelightPartitioner()]).to_executorch().buffer
    assert pte.count(MAGIC) == 1
    torch.testing.assert_close(_execute(runtime, pte, [x])[0], shift2d_reference(x, 3, 1), rtol=0, atol=0)
    with pytest.raises(RuntimeError):
        runtime.load_program(pte.replace(MAGIC, b"ELB0")).load_method("forward")
