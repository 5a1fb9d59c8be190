"""shift2d and channel_shuffle as LiteRT custom ops ("tfl.custom"), for ``--option ops=custom``.

litert-torch converts an NCHW PyTorch graph to NHWC by moving transposes (its layout pass); an op it does not
know pins its tensors to NCHW, with a TRANSPOSE on each side. So each edgelight op gets an NHWC twin here
(``edgelight_litert::*_nhwc``), the layout pass is told to rewrite the NCHW op into it, and the twin lowers to
a custom op whose name carries its arguments (LiteRT's custom-op API gives a kernel no per-node options):
``EdgelightShift2d_k3_d1``, ``EdgelightChannelShuffle_g4``; in int8 (lowering.int8_custom_ops) the shift's name
also carries its zero point, ``EdgelightShift2d_k3_d1_z-128``. The kernels are ``native/edgelight_litert.cpp``.
Importing this module registers all of it.
"""

import torch

import edgelight.ops  # noqa: F401  (edgelight::shift2d / channel_shuffle)
from edgelight.targets.tflite.native import CUSTOM_PREFIX, SHIFT_PREFIX

_LIB = torch.library.Library("edgelight_litert", "DEF")
_LIB.define("shift2d_nhwc(Tensor x, int kernel_size=3, int dilation=1) -> Tensor")
_LIB.define("channel_shuffle_nhwc(Tensor x, int groups) -> Tensor")


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


@torch.library.impl(_LIB, "shift2d_nhwc", "CompositeExplicitAutograd")
def _shift2d_nhwc(x, kernel_size=3, dilation=1):
    return _nhwc(torch.ops.edgelight.shift2d(_nchw(x).contiguous(), kernel_size, dilation))


@torch.library.impl(_LIB, "channel_shuffle_nhwc", "CompositeExplicitAutograd")
def _channel_shuffle_nhwc(x, groups):
    return _nhwc(torch.ops.edgelight.channel_shuffle(_nchw(x).contiguous(), groups))


@torch.library.register_fake("edgelight_litert::shift2d_nhwc")
def _shift2d_nhwc_fake(x, kernel_size=3, dilation=1):
    return torch.empty_like(x)


@torch.library.register_fake("edgelight_litert::channel_shuffle_nhwc")
def _channel_shuffle_nhwc_fake(x, groups):
    return torch.empty_like(x)


def shift2d_code(kernel_size: int = 3, dilation: int = 1) -> str:
    return f"{SHIFT_PREFIX}_k{kernel_size}_d{dilation}"


def int8_shift_code(code: str, zero_point: int) -> str:
    """An int8 shift's name: its float name and its zero point, the border's fill."""
    return f"{code}_z{zero_point}"


def channel_shuffle_code(groups: int) -> str:
    return f"{CUSTOM_PREFIX}ChannelShuffle_g{groups}"


def _register() -> None:
    from litert_converter.mlir import ir
    from litert_torch._convert.fx_passes.optimize_layout_transposes_pass import layout_rewrite
    from litert_torch.backend import lowerings

    el, twins = torch.ops.edgelight, torch.ops.edgelight_litert
    nhwc_twin = {el.shift2d.default: twins.shift2d_nhwc.default, el.channel_shuffle.default: twins.channel_shuffle_nhwc.default}
    for op in nhwc_twin:
        # a registered rewriter is what lets the layout pass keep the op's tensors NHWC (layout_check's default)
        @layout_rewrite.rewriters.register(op)
        def _to_nhwc(node: torch.fx.Node) -> None:
            node.target = nhwc_twin[node.target]

    def custom(lctx, x, code: str):
        # the result has the operand's type (these ops only move values); int8 is made afterwards, in the flatbuffer
        op = ir.Operation.create("tfl.custom", results=[x.type], operands=[x],
                                 attributes={"custom_code": ir.StringAttr.get(code),
                                             "custom_option": ir.Attribute.parse('#tfl<const_bytes: "0x">')})
        return op.results[0]

    @lowerings.lower(torch.ops.edgelight_litert.shift2d_nhwc)
    def _lower_shift(lctx, x, kernel_size=3, dilation=1):
        return custom(lctx, x, shift2d_code(kernel_size, dilation))

    @lowerings.lower(torch.ops.edgelight_litert.channel_shuffle_nhwc)
    def _lower_shuffle(lctx, x, groups):
        return custom(lctx, x, channel_shuffle_code(groups))


_register()

__all__ = ["CUSTOM_PREFIX", "SHIFT_PREFIX", "channel_shuffle_code", "int8_shift_code", "shift2d_code"]
