"""coremltools converters for ``edgelight::shift2d`` and ``edgelight::channel_shuffle``.

Importing this module registers both with coremltools' torch frontend, so a model exported
with the custom ops intact (one node each) converts to composite MIL ops. The frontend
looks nodes up by ``sanitize_op_kind(OpOverload.name())``, which keeps a non-aten namespace
and drops ``.default``: ``edgelight.shift2d.default`` is looked up as ``edgelight::shift2d``.

shift2d composite forms (``SHIFT_FORM``, picked per conversion by the target):
- ``conv`` (default): one depthwise ``conv`` with a constant one-hot weight (``shift_weight``).
  One op per shift, and a depthwise 3x3 conv is a first-class Neural Engine op, so the shift
  stays on the ANE next to the 1x1 convs around it; 0/1 weights are exact in fp16. Costs
  C*K*K weights per distinct channel count (const_deduplication shares equal ones).
- ``slices``: pad + one strided ``slice_by_index`` per direction + concat + a rank-4
  reshape/transpose/reshape to re-interleave: ~15 memory-bound ops per shift (kept for comparison).
channel_shuffle: rank-4 reshape -> transpose -> reshape (3 ops; no rank-5 tensors for the ANE).
"""

from contextvars import ContextVar

import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.frontend.torch.ops import _get_inputs, _get_kwinputs
from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op

from edgelight.ops.lowering import shift_weight
from edgelight.ops.shift import shift_offsets, shifted_channels

SHIFT_FORMS = ("conv", "slices")
SHIFT_FORM: ContextVar[str] = ContextVar("edgelight_coreml_shift_form", default="conv")


def _static_shape(x, what: str) -> tuple[int, ...]:
    shape = tuple(x.shape)
    if len(shape) != 4 or not all(isinstance(s, (int, np.integer)) for s in shape):
        raise ValueError(f"{what} needs a static NCHW input on Core ML, got shape {shape}")
    return tuple(int(s) for s in shape)


def channel_shuffle_composite(x, groups: int, name: str):
    """out[:, j * g + i] = in[:, i * (C / g) + j] as reshape -> transpose -> reshape, all rank 4."""
    n, c, h, w = _static_shape(x, "channel_shuffle")
    if groups < 1 or c % groups:
        raise ValueError(f"{c} channels do not split into {groups} groups")
    x = mb.reshape(x=x, shape=[n, groups, c // groups, h * w], name=f"{name}_split")
    x = mb.transpose(x=x, perm=[0, 2, 1, 3], name=f"{name}_swap")
    return mb.reshape(x=x, shape=[n, c, h, w], name=name)


def shift_composite(x, kernel_size: int, dilation: int, name: str, form: str | None = None):
    """Build shift2d from MIL ops in the chosen form (``SHIFT_FORM`` when ``form`` is None)."""
    form = form or SHIFT_FORM.get()
    n, c, h, w = _static_shape(x, "shift2d")
    if kernel_size < 1 or kernel_size % 2 == 0 or dilation == 0:
        raise ValueError(f"shift2d needs an odd kernel_size and a non-zero dilation, got {kernel_size}, {dilation}")
    if form == "conv":
        weight = shift_weight(c, kernel_size, dilation)  # [C, 1, K, K], identity for pass-through channels
        pad = weight.shape[-1] // 2
        return mb.conv(
            x=x, weight=weight, strides=[1, 1], pad_type="custom", pad=[pad] * 4, dilations=[1, 1], groups=c, name=name
        )
    if form != "slices":
        raise ValueError(f"unknown shift form '{form}'; choose one of: {', '.join(SHIFT_FORMS)}")
    k2, main = kernel_size * kernel_size, shifted_channels(c, kernel_size)
    if main == 0:  # fewer channels than directions: everything passes through
        return mb.identity(x=x, name=name)
    pad = (kernel_size // 2) * abs(dilation)
    head = x if main == c else mb.slice_by_index(x=x, begin=[0, 0, 0, 0], end=[n, main, h, w], name=f"{name}_head")
    padded = mb.pad(x=head, pad=[0, 0, 0, 0, pad, pad, pad, pad], mode="constant", constant_val=0.0, name=f"{name}_pad")
    windows = [
        mb.slice_by_index(
            x=padded, begin=[0, g, pad + dy, pad + dx], end=[n, main, pad + dy + h, pad + dx + w],
            stride=[1, k2, 1, 1], name=f"{name}_dir{g}",
        )
        for g, (dy, dx) in enumerate(shift_offsets(c, kernel_size, dilation))
    ]
    # Concatenated, channel g * (main / k2) + j holds input channel j * k2 + g: a shuffle with k2 groups puts it back.
    grouped = mb.concat(values=windows, axis=1, name=f"{name}_cat")
    if main == c:
        return channel_shuffle_composite(grouped, k2, name)
    shifted = channel_shuffle_composite(grouped, k2, f"{name}_main")
    tail = mb.slice_by_index(x=x, begin=[0, main, 0, 0], end=[n, c, h, w], name=f"{name}_tail")
    return mb.concat(values=[shifted, tail], axis=1, name=name)


def _int_arg(context, node, inputs, index: int, keyword: str, default: int) -> int:
    """An int argument given by position, by keyword, or left to the schema default (torch.export drops defaults)."""
    if len(inputs) > index:
        var = inputs[index]
    else:
        var = (_get_kwinputs(context, node, keyword) or [None])[0]
    if var is None:
        return default
    if var.val is None:
        raise ValueError(f"{node.kind}: '{keyword}' must be a constant")
    return int(var.val)


@register_torch_op(torch_alias=["edgelight::shift2d"], override=True)
def edgelight_shift2d(context, node):
    inputs = _get_inputs(context, node, min_expected=1)
    kernel_size = _int_arg(context, node, inputs, 1, "kernel_size", 3)
    dilation = _int_arg(context, node, inputs, 2, "dilation", 1)
    context.add(shift_composite(inputs[0], kernel_size, dilation, node.name))


@register_torch_op(torch_alias=["edgelight::channel_shuffle"], override=True)
def edgelight_channel_shuffle(context, node):
    inputs = _get_inputs(context, node, min_expected=1)
    groups = _int_arg(context, node, inputs, 1, "groups", -1)
    context.add(channel_shuffle_composite(inputs[0], groups, node.name))
