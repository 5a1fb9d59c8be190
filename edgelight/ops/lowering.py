"""Lowerings of the edgelight ops into builtin ATen ops, shared by every target that needs them.

A target picks a form and traces the model inside ``with lowered(shift=...)``: the op
wrappers then emit builtin ops instead of the custom node, so whatever traces the
module (torch.export, litert-torch, coremltools) sees only ops its runtime has.

shift2d forms:
- ``depthwise``: a frozen one-hot 3x3 depthwise conv (zero padding). Every delegate takes
  it, it stays NHWC inside XNNPACK, and it quantizes exactly (weights in {0, 1}).
- ``slices``: zero pad + one slice per direction group + cat (the "usual" way).
- ``grouped``: each CSC block's channels sorted by direction first (``shift_model``, exact), so the
  shift is zero pad + one stride-1 slice per contiguous block + cat: copies, no multiply-adds. Shifts
  outside CSC blocks take the depthwise form.
channel_shuffle form: rank-4 reshape -> transpose -> reshape (GPU delegates cap rank at 4).
"""

from contextlib import contextmanager

import numpy as np
import torch
from torch.nn import functional as F

from edgelight.errors import UsageError
from edgelight.ops._library import ACTIVE_LOWERING
from edgelight.ops.shift import shift_offsets, shifted_channels


def shift_weight(channels: int, kernel_size: int = 3, dilation: int = 1) -> np.ndarray:
    """One-hot depthwise weight [C, 1, K, K] with K = (k - 1) * |d| + 1, identity for pass-through channels.

    Built in numpy so that, inside a traced decomposition, it enters the graph as one constant.
    """
    span = (kernel_size - 1) * abs(dilation) + 1
    centre = span // 2
    weight = np.zeros((channels, 1, span, span), dtype=np.float32)
    k2 = kernel_size * kernel_size
    offsets = shift_offsets(channels, kernel_size, dilation)
    main = shifted_channels(channels, kernel_size)
    for c in range(channels):
        dy, dx = offsets[c % k2] if c < main else (0, 0)
        weight[c, 0, centre + dy, centre + dx] = 1.0  # out[y, x] = in[y + dy, x + dx]
    return weight


def shift2d_depthwise(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    weight = torch.from_numpy(shift_weight(x.shape[1], kernel_size, dilation))
    weight = weight if x.dtype == torch.float32 else weight.to(x.dtype)
    return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=x.shape[1])


def shift2d_slices(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    """Pad once, then each channel reads its window: a strided slice per direction group, re-interleaved."""
    c, h, w = x.shape[1:]
    k2 = kernel_size * kernel_size
    main = shifted_channels(c, kernel_size)
    pad = (kernel_size // 2) * abs(dilation)
    padded = F.pad(x[:, :main], (pad, pad, pad, pad))
    groups = [padded[:, g::k2, pad + dy : pad + dy + h, pad + dx : pad + dx + w] for g, (dy, dx) in enumerate(shift_offsets(c, kernel_size, dilation))]
    # stack on a new axis after the group index so channel g + k2 * j lands at position j * k2 + g
    interleaved = torch.stack(groups, dim=2).reshape(x.shape[0], main, h, w)
    return torch.cat([interleaved, x[:, main:]], dim=1) if main < c else interleaved


def channel_shuffle_reshape(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h * w).transpose(1, 2).reshape(n, c, h, w)


SHIFT_FORMS = {"depthwise": shift2d_depthwise, "slices": shift2d_slices, "grouped": shift2d_depthwise}


def shift_model(model: torch.nn.Module, shift: str) -> torch.nn.Module:
    """The model a target traces for a shift form: ``grouped`` regroups the CSC blocks' channels (a copy)."""
    if shift != "grouped":
        return model
    from edgelight.layers.blocks import group_shift_directions

    return group_shift_directions(model)[0]


@contextmanager
def lowered(shift: str = "depthwise"):
    """Trace models with the edgelight ops expressed as builtin ops (``shift`` picks the shift form)."""
    if shift not in SHIFT_FORMS:
        raise UsageError(f"unknown shift lowering '{shift}'; choose one of: {', '.join(SHIFT_FORMS)}")
    token = ACTIVE_LOWERING.set({"shift2d": SHIFT_FORMS[shift], "channel_shuffle": channel_shuffle_reshape})
    try:
        yield
    finally:
        ACTIVE_LOWERING.reset(token)
