"""LruNet's reuse through the converters: one depthwise form, BatchNorms folded per use over shared int8 codes.

A small two-stage net with one LruBlock (2 reuses, a BatchNorm pair per reuse) stands in for LruNet: it
converts in seconds and has every pattern lrunet-14-1x has (multiplier-2 depthwise conv, grouped 1x1,
per-use BatchNorms, LruShuffle, residual add).
"""

import numpy as np
import pytest
import torch
from torch import nn

from edgelight.layers import LruBlock
from edgelight.layers.blocks import RepeatedDepthwise
from edgelight.ops.lowering import lowered
from edgelight.quantize import pt2e_quantize
from edgelight.shared_weights import keep_shared_weights
from edgelight.targets import LoweringRequest, get_runtime
from edgelight.targets.executorch.reuse_loop import LOOP_OPS
from edgelight.testing import trained_like_batchnorm

PLANES, REUSES = 16, 2


class TwoReuses(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, PLANES, 3, 2, 1, bias=False), nn.BatchNorm2d(PLANES), nn.ReLU())
        self.block = LruBlock(PLANES, REUSES)
        self.head = nn.Linear(PLANES, 10)

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))


def two_reuses(awkward: bool = False) -> nn.Module:
    """Trained-like BatchNorms; ``awkward``: the second use has a negative, a zero and a tiny BN scale."""
    torch.manual_seed(0)
    net = trained_like_batchnorm(TwoReuses())
    if awkward:
        with torch.no_grad():
            net.block.dw_bn[1].weight[3] = -0.7
            net.block.pw_bn[1].weight[2] = 0.0
            net.block.dw_bn[1].weight[5] = 1e-4  # its folded scale falls below the quantizers' 2**-12 floor
    return net.eval()


def images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("multiplier, stride", [(2, 1), (3, 2)])
def test_repeated_depthwise_is_the_grouped_conv_it_replaces(multiplier, stride):
    """Same weight, same outputs and gradients as nn.Conv2d(c, m * c, groups=c)."""
    torch.manual_seed(0)
    fast = RepeatedDepthwise(6, 6 * multiplier, 3, stride, 1, groups=6, bias=True)
    plain = nn.Conv2d(6, 6 * multiplier, 3, stride, 1, groups=6, bias=True)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, 6, 9, 9, requires_grad=True)
    a, b = fast(x), plain(x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ga = torch.autograd.grad(a.square().sum(), [x, fast.weight])
    gb = torch.autograd.grad(b.square().sum(), [x, plain.weight])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5)


def _quantizers():
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    from edgelight.targets.tflite.lowering import _quantizer

    return {"executorch": lambda: XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)), "tflite": _quantizer}


@pytest.mark.parametrize("quantizer", ["executorch", "tflite"])
def test_folded_uses_share_one_set_of_int8_codes(quantizer):
    """Every reuse's BatchNorm is folded; the uses' int8 codes are equal, except the channels whose BN
    scale is <= 0 (negated or zero codes: correct, not shared); a tiny positive scale still shares."""
    net, x = two_reuses(awkward=True), images(1)
    with lowered(), torch.no_grad():
        kept, bns = keep_shared_weights(net, x)
        quantized, (folded, own) = pt2e_quantize(kept, x, [images(64, seed=2)], _quantizers()[quantizer](), fold_quantize=True)
    assert bns == folded == 2 * REUSES and own == 2  # the second use of dw and of pw
    codes = {}
    for value in quantized.state_dict().values():
        if value.dtype == torch.int8:
            codes.setdefault(tuple(value.shape), []).append(value)
    dw, pw = codes[(2 * PLANES, 1, 3, 3)], codes[(PLANES, 2 * PLANES // 8, 1, 1)]
    assert len(dw) == len(pw) == REUSES  # no per-use BatchNorm op is left (it would add [C, 1, 1, 1] codes)
    assert not [shape for shape in codes if shape[1:] == (1, 1, 1)]
    others = [c for c in range(2 * PLANES) if c != 3]
    assert torch.equal(dw[0][others], dw[1][others]) and torch.equal(dw[1][3], -dw[0][3])
    assert torch.equal(pw[0][[c for c in range(PLANES) if c != 2]], pw[1][[c for c in range(PLANES) if c != 2]])
    assert not pw[1][2].any()
    with torch.no_grad():
        want, got = net(images(8)), quantized(images(8))
    assert (got - want).abs().max() <= 0.1 * want.abs().max()


def _stored(target: str, path) -> list[int]:
    if target == "executorch":
        from executorch.exir._serialize._program import deserialize_pte_binary

        return [len(b) for b in deserialize_pte_binary(path.read_bytes()).named_data.buffers]
    from ai_edge_litert import schema_py_generated as fb

    return [len(b.data) for b in fb.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0).buffers if b.data is not None]


@pytest.mark.slow
@pytest.mark.parametrize("target, precision, options", [
    ("executorch", "fp32", {}),  # reuse=auto: the loop
    ("executorch", "fp32", {"reuse": "unrolled"}),
    ("executorch", "w8a8", {}),
    ("tflite", "fp32", {}),
    ("tflite", "w8a8", {}),
])
def test_two_reuses_with_two_batchnorms_match_pytorch(target, precision, options, tmp_path):
    """Parity with PyTorch through the real converter and runtime, and the shared depthwise weight
    (32 x 9 values) stored once: fp32 keeps the BatchNorms apart (or, as a loop, as rows of scales and
    shifts), w8a8 folds them into each use. The loop gets the awkward BatchNorms (gamma < 0, = 0, tiny)."""
    loop = target == "executorch" and precision == "fp32" and not options
    net, x = two_reuses(awkward=loop), images(16)
    runtime = get_runtime(target)
    path = tmp_path / f"two{runtime.suffixes[0]}"
    report = runtime.lower(LoweringRequest(net, x[:1], precision, [images(64, seed=2)], path, {}, options))
    assert any(("as loops" if loop else "BatchNorms") in note for note in report.notes), report.notes
    if loop:  # outside XNNPACK: the loop's own ops and the head's mean (not delegated in this net); no weights cache needed
        assert set(report.op_inventory) - LOOP_OPS == {"delegate:XnnpackBackend", "aten::mean.out"} and not report.runtime_options, report.op_inventory
    runner = runtime.make_runner()
    runner.load(path, 1, {"requires": [], "runtime_options": {}})
    try:
        got = np.concatenate([runner.run(x[i : i + 1].numpy()) for i in range(len(x))])
    finally:
        runner.close()
    with torch.no_grad():
        want = net(x).numpy()
    tolerance = 1e-4 if precision == "fp32" else 0.1
    assert np.abs(got - want).max() <= tolerance * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).mean() >= (1.0 if precision == "fp32" else 0.8)
    assert _stored(target, path).count(2 * PLANES * 9 * (4 if precision == "fp32" else 1)) == 1


def test_a_looped_block_computes_the_block_it_replaces():
    """The loop's parts in eager PyTorch: ReuseStep over the affine rows, then the inverse shuffle, is the
    LruBlock (awkward BatchNorms included); unshuffle undoes LruShuffle."""
    from edgelight.layers import LruShuffle
    from edgelight.targets.executorch.reuse_loop import ReuseStep, affine_rows, unshuffle

    block, x = two_reuses(awkward=True).block, torch.randn(2, PLANES, 8, 8)
    step, rows = ReuseStep(block).eval(), affine_rows(block)
    assert rows.shape == (REUSES, 6 * PLANES)
    with torch.no_grad():
        out = x
        for row in rows:
            out = step(out, row)
        assert torch.allclose(unshuffle(out), block(x), atol=1e-5)
    assert torch.equal(unshuffle(LruShuffle()(x)), x)


def test_reuse_loop_is_fp32_only():
    from edgelight.targets.base import OptionError
    from edgelight.targets.executorch.lowering import validate

    with pytest.raises(OptionError, match="reuse=loop is for fp32"):
        validate("w8a8", {"ops": "lowered", "shift": "depthwise", "fuse": "off", "reuse": "loop", "boundary": "transpose"})
    validate("w8a8", {"ops": "lowered", "shift": "depthwise", "fuse": "off", "reuse": "auto", "boundary": "transpose"})  # auto: unrolled in int8
