"""The two custom ops (``edgelight::shift2d``, ``edgelight::channel_shuffle``) against their plain-Python
references, their autograd, ``.out`` and fake kernels, argument checks, LruShuffle, and the builtin lowerings."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from edgelight.layers import LruShuffle, Shift
from edgelight.ops import CUSTOM_OPS, channel_shuffle, channel_shuffle_reference, shift2d, shift2d_reference
from edgelight.ops.lowering import channel_shuffle_reshape, lowered, shift2d_depthwise, shift2d_slices
from edgelight.ops.shift import shifted_channels

# (batch, channels, height, width, kernel_size, dilation): odd channel counts, non-square images,
# dilation 2 and -1, k=5, fewer channels than k^2 (all pass through), remainders, shifts past the border.
SHIFT_CASES = [
    (2, 7, 5, 9, 3, 1),  # 7 < 9: every channel passes through
    (2, 11, 5, 9, 3, 1),  # 9 shifted, 2 pass through
    (3, 19, 5, 9, 3, 2),
    (2, 27, 9, 5, 3, -1),
    (2, 27, 5, 9, 5, 1),  # k=5: 25 shifted, 2 pass through
    (2, 11, 6, 7, 5, 1),  # 11 < 25: all pass through
    (2, 19, 5, 9, 3, 6),  # |dy| = 6 >= H = 5: those rows are all zeros
    (1, 9, 1, 1, 3, 1),  # a 1x1 image: only the centre direction keeps its value
]
SHIFT_IDS = [f"n{n}-c{c}-{h}x{w}-k{k}-d{d}" for n, c, h, w, k, d in SHIFT_CASES]
# (channels, groups)
SHUFFLE_CASES = [(6, 2), (6, 3), (12, 4), (15, 5), (21, 7), (27, 3), (27, 9), (11, 1), (11, 11), (2, 2)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _input(n, c, h, w, seed=0, dtype=torch.float32):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------- shift2d


@pytest.mark.parametrize("n,c,h,w,k,d", SHIFT_CASES, ids=SHIFT_IDS)
def test_shift2d_matches_reference(n, c, h, w, k, d):
    x = _input(n, c, h, w)
    out = torch.ops.edgelight.shift2d(x, k, d)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, shift2d_reference(x, k, d), rtol=0, atol=0)
    torch.testing.assert_close(shift2d(x, k, d), out, rtol=0, atol=0)  # the public wrapper
    torch.testing.assert_close(Shift(k, d)(x), out, rtol=0, atol=0)  # the module


@pytest.mark.parametrize("n,c,h,w,k,d", SHIFT_CASES, ids=SHIFT_IDS)
def test_shift2d_remainder_channels_pass_through(n, c, h, w, k, d):
    x = _input(n, c, h, w, seed=1)
    out = torch.ops.edgelight.shift2d(x, k, d)
    main = c // (k * k) * (k * k)
    assert shifted_channels(c, k) == main
    assert torch.equal(out[:, main:], x[:, main:])
    # the centre direction (g = k^2 // 2) never moves
    for ch in range(k * k // 2, main, k * k):
        assert torch.equal(out[:, ch], x[:, ch])


def test_shift2d_directions_follow_the_formula():
    """out[c, y, x] = in[c, y + dy, x + dx] with dx = c % 3 - 1, dy = (c // 3) % 3 - 1 (reference CUDA kernel)."""
    x = torch.arange(9 * 4 * 5, dtype=torch.float32).reshape(1, 9, 4, 5)
    out = torch.ops.edgelight.shift2d(x, 3, 1)
    # channel 5: dx = +1, dy = 0 -> each row reads its right neighbour, the last column is zero
    assert torch.equal(out[0, 5, :, :-1], x[0, 5, :, 1:]) and not out[0, 5, :, -1].any()
    # channel 0: dx = dy = -1 -> content moves down-right, first row and column zero
    assert torch.equal(out[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    assert not out[0, 0, 0].any() and not out[0, 0, :, 0].any()
    # channel 7: dx = 0, dy = +1 -> reads the row below
    assert torch.equal(out[0, 7, :-1], x[0, 7, 1:]) and not out[0, 7, -1].any()
    # dilation 2 on channel 5 reads two columns to the right; -1 reverses the direction
    assert torch.equal(torch.ops.edgelight.shift2d(x, 3, 2)[0, 5, :, :-2], x[0, 5, :, 2:])
    assert torch.equal(torch.ops.edgelight.shift2d(x, 3, -1)[0, 5, :, 1:], x[0, 5, :, :-1])
    # interleaving: channel 9 + 5 = 14 of an 18-channel input shifts like channel 5
    y = torch.ops.edgelight.shift2d(torch.arange(18 * 20, dtype=torch.float32).reshape(1, 18, 4, 5), 3, 1)
    assert not y[0, 14, :, -1].any() and y[0, 14, :, :-1].all()


@pytest.mark.parametrize("n,c,h,w,k,d", [(2, 11, 4, 5, 3, 1), (2, 11, 4, 5, 3, 2), (2, 11, 4, 5, 3, -1), (1, 27, 3, 4, 5, 1)])
def test_shift2d_gradcheck(n, c, h, w, k, d):
    x = _input(n, c, h, w, seed=2, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: torch.ops.edgelight.shift2d(t, k, d), (x,))
    assert torch.autograd.gradgradcheck(lambda t: torch.ops.edgelight.shift2d(t, k, d), (x,))


def test_shift2d_backward_is_the_opposite_shift():
    x = _input(2, 19, 5, 9, seed=3).requires_grad_()
    g = _input(2, 19, 5, 9, seed=4)
    (torch.ops.edgelight.shift2d(x, 3, 2) * g).sum().backward()
    torch.testing.assert_close(x.grad, shift2d_reference(g, 3, -2), rtol=0, atol=0)


# ---------------------------------------------------------------- channel_shuffle


@pytest.mark.parametrize("c,g", SHUFFLE_CASES)
def test_channel_shuffle_matches_reference(c, g):
    x = _input(3, c, 5, 9)
    out = torch.ops.edgelight.channel_shuffle(x, g)
    assert out.shape == x.shape and out.is_contiguous()
    torch.testing.assert_close(out, channel_shuffle_reference(x, g), rtol=0, atol=0)
    torch.testing.assert_close(channel_shuffle(x, g), out, rtol=0, atol=0)
    # out[:, j * g + i] = in[:, i * (C / g) + j]
    per = c // g
    for i in range(g):
        for j in range(per):
            assert torch.equal(out[:, j * g + i], x[:, i * per + j])


@pytest.mark.parametrize("c,g", [(6, 2), (15, 5), (27, 3), (12, 4)])
def test_channel_shuffle_gradcheck_and_inverse(c, g):
    x = _input(2, c, 3, 4, seed=5, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: torch.ops.edgelight.channel_shuffle(t, g), (x,))
    assert torch.autograd.gradgradcheck(lambda t: torch.ops.edgelight.channel_shuffle(t, g), (x,))
    # the shuffle with C/g groups undoes the shuffle with g groups, and is the backward pass
    y = torch.ops.edgelight.channel_shuffle(x.detach(), g)
    assert torch.equal(torch.ops.edgelight.channel_shuffle(y, c // g), x.detach())
    grad = _input(2, c, 3, 4, seed=6, dtype=torch.float64)
    (torch.ops.edgelight.channel_shuffle(x, g) * grad).sum().backward()
    assert torch.equal(x.grad, channel_shuffle_reference(grad, c // g))


# ---------------------------------------------------------------- .out, fake / meta kernels, export


def test_out_overloads_write_into_out():
    x = _input(2, 11, 5, 9)
    out = torch.full_like(x, 7.0)
    ret = torch.ops.edgelight.shift2d.out(x, 3, 2, out=out)
    assert ret is out
    assert torch.equal(out, shift2d_reference(x, 3, 2))
    empty = torch.empty(0)  # a mis-sized out is resized, like ATen's out= ops
    assert torch.ops.edgelight.shift2d.out(x, out=empty) is empty and torch.equal(empty, shift2d_reference(x))

    x = _input(2, 12, 5, 9)
    out = torch.zeros_like(x)
    ret = torch.ops.edgelight.channel_shuffle.out(x, 4, out=out)
    assert ret is out
    assert torch.equal(out, channel_shuffle_reference(x, 4))


def test_fake_and_meta_kernels_give_the_shape():
    with FakeTensorMode():
        x = torch.empty(3, 11, 5, 9)
        for y in (torch.ops.edgelight.shift2d(x, 5, -1), torch.ops.edgelight.channel_shuffle(torch.empty(3, 12, 5, 9), 4)):
            assert type(y).__name__ == "FakeTensor"
            assert y.shape[0] == 3 and tuple(y.shape[2:]) == (5, 9)
        assert torch.ops.edgelight.shift2d(x, 5, -1).shape == x.shape
        out = torch.empty(0)
        assert torch.ops.edgelight.shift2d.out(x, 3, 1, out=out).shape == x.shape
        out = torch.empty(0)
        assert torch.ops.edgelight.channel_shuffle.out(torch.empty(3, 12, 5, 9), 3, out=out).shape == (3, 12, 5, 9)
    meta = torch.empty(2, 19, 4, 7, device="meta")
    assert torch.ops.edgelight.shift2d(meta, 3, 2).shape == meta.shape
    assert torch.ops.edgelight.shift2d(meta, 3, 2).device.type == "meta"
    out = torch.empty(0, device="meta")
    assert torch.ops.edgelight.shift2d.out(meta, out=out).shape == meta.shape
    assert torch.ops.edgelight.channel_shuffle(torch.empty(2, 18, 4, 7, device="meta"), 6).shape == (2, 18, 4, 7)


class _ShiftShuffle(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(12, 12, 1)
        self.shift = Shift(3, 1)

    def forward(self, x):
        return channel_shuffle(self.shift(self.conv(x)), 3) + shift2d(x, 5, -1)


def _custom_nodes(ep) -> list:
    return [n for n in ep.graph.nodes if n.op == "call_function" and str(n.target).startswith("edgelight.")]


def test_export_keeps_one_node_per_op_with_the_fake_shape():
    module = _ShiftShuffle().eval()
    x = _input(2, 12, 5, 9)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(module, (x,), dynamic_shapes=({0: batch},))
    nodes = _custom_nodes(ep)
    assert sorted(str(n.target) for n in nodes) == ["edgelight.channel_shuffle.default", "edgelight.shift2d.default", "edgelight.shift2d.default"]
    for node in nodes:
        shape = node.meta["val"].shape
        assert tuple(shape[1:]) == (12, 5, 9) and not isinstance(shape[0], int)  # the batch stays symbolic
    for n in (2, 5):
        xn = _input(n, 12, 5, 9, seed=n)
        with torch.no_grad():
            torch.testing.assert_close(ep.module()(xn), module(xn), rtol=0, atol=0)


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: torch.ops.edgelight.shift2d(x, 2, 1), "kernel_size must be odd"),
        (lambda x: torch.ops.edgelight.shift2d(x, 4, 1), "kernel_size must be odd"),
        (lambda x: torch.ops.edgelight.shift2d(x, -3, 1), "kernel_size must be odd"),
        (lambda x: torch.ops.edgelight.shift2d(x, 3, 0), "dilation must be non-zero"),
        (lambda x: torch.ops.edgelight.shift2d(x[0], 3, 1), "NCHW"),
        (lambda x: torch.ops.edgelight.shift2d(x[None], 3, 1), "NCHW"),
        (lambda x: torch.ops.edgelight.channel_shuffle(x, 2), "11 channels do not split into 2 groups"),
        (lambda x: torch.ops.edgelight.channel_shuffle(x, 0), "do not split into 0 groups"),
        (lambda x: torch.ops.edgelight.channel_shuffle(x[0], 11), "NCHW"),
        (lambda x: torch.ops.edgelight.shift2d.out(x, 2, 1, out=torch.empty_like(x)), "kernel_size must be odd"),
        (lambda x: torch.ops.edgelight.channel_shuffle.out(x, 3, out=torch.empty_like(x)), "do not split"),
    ],
)
@pytest.mark.parametrize("device", ["cpu", "fake", "meta"])
def test_bad_arguments_raise(call, message, device):
    if device == "fake":
        with FakeTensorMode(), pytest.raises(RuntimeError, match=message):
            call(torch.empty(2, 11, 5, 9))
    else:
        x = _input(2, 11, 5, 9) if device == "cpu" else torch.empty(2, 11, 5, 9, device="meta")
        with pytest.raises(RuntimeError, match=message):
            call(x)


def test_custom_ops_are_registered():
    assert CUSTOM_OPS == ("edgelight::shift2d", "edgelight::channel_shuffle")
    for qualified in CUSTOM_OPS:
        name = qualified.split("::")[1]
        packet = getattr(torch.ops.edgelight, name)
        assert set(packet.overloads()) >= {"default", "out"}


# ---------------------------------------------------------------- LruShuffle


@pytest.mark.parametrize("c", [2, 6, 10, 22, 64])
def test_lru_shuffle_definition(c):
    x = _input(2, c, 3, 5)
    out = LruShuffle()(x)
    half = c // 2
    expected = torch.empty_like(x)
    for i in range(half):
        expected[:, 2 * i] = x[:, half + i]
        expected[:, 2 * i + 1] = x[:, i]
    assert torch.equal(out, expected)


# ---------------------------------------------------------------- builtin lowerings


@pytest.mark.parametrize("lowering", [shift2d_depthwise, shift2d_slices], ids=["depthwise", "slices"])
@pytest.mark.parametrize("n,c,h,w,k,d", SHIFT_CASES, ids=SHIFT_IDS)
def test_shift_lowerings_equal_the_op(lowering, n, c, h, w, k, d):
    x = _input(n, c, h, w, seed=7)
    expected = torch.ops.edgelight.shift2d(x, k, d)
    torch.testing.assert_close(lowering(x, k, d), expected, rtol=0, atol=0)
    x64 = x.double()
    torch.testing.assert_close(lowering(x64, k, d), torch.ops.edgelight.shift2d(x64, k, d), rtol=0, atol=0)


@pytest.mark.parametrize("n,c,h,w,k,d", SHIFT_CASES, ids=SHIFT_IDS)
def test_grouped_shift_is_the_shift_of_direction_sorted_channels(n, c, h, w, k, d):
    from edgelight.layers.blocks import GroupedShift, direction_order

    x = _input(n, c, h, w, seed=11)
    order = direction_order(c, k)
    assert sorted(order) == list(range(c))
    torch.testing.assert_close(GroupedShift(c, k, d)(x[:, order]), torch.ops.edgelight.shift2d(x, k, d)[:, order], rtol=0, atol=0)


def test_group_shift_directions_keeps_what_each_block_computes():
    """CSC blocks regrouped (conv1 rows, its BatchNorm, conv2 columns permuted): same outputs; a bare Shift
    outside a block is left alone; the original model is untouched."""
    from torch import nn

    from edgelight.layers import ConvBnAct, CSCBlock
    from edgelight.layers.blocks import GroupedShift, group_shift_directions

    torch.manual_seed(3)
    net = nn.Sequential(ConvBnAct(3, 16, 3), CSCBlock(16, 16, expansion=3), CSCBlock(16, 32, stride=2, expansion=1), Shift(3)).eval()
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):  # trained-like statistics, not the identity
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.normal_()
        bn.bias.data.normal_()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grouped, count = group_shift_directions(net)
    assert count == 2 and [type(m) for m in grouped.modules() if isinstance(m, (Shift, GroupedShift))] == [GroupedShift, GroupedShift, Shift]
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(grouped(x), net(x), rtol=1e-5, atol=1e-5)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("c,g", SHUFFLE_CASES)
def test_shuffle_lowering_equals_the_op(c, g):
    x = _input(2, c, 5, 9, seed=8)
    torch.testing.assert_close(channel_shuffle_reshape(x, g), torch.ops.edgelight.channel_shuffle(x, g), rtol=0, atol=0)


@pytest.mark.parametrize("form", ["depthwise", "slices"])
def test_lowered_export_has_no_edgelight_node(form):
    module = _ShiftShuffle().eval()
    x = _input(2, 12, 5, 9, seed=9)
    with torch.no_grad():
        expected = module(x)
    with lowered(shift=form):
        ep = torch.export.export(module, (x,))
        with torch.no_grad():
            torch.testing.assert_close(module(x), expected, rtol=0, atol=0)  # the eager wrappers lower too
    assert _custom_nodes(ep) == []
    assert not any("edgelight" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), expected, rtol=1e-5, atol=1e-5)
    # leaving the context restores the custom nodes
    assert len(_custom_nodes(torch.export.export(module, (x,)))) == 3


def test_lowered_rejects_an_unknown_form():
    with pytest.raises(ValueError, match="unknown shift lowering 'im2col'"):
        with lowered(shift="im2col"):
            pass
