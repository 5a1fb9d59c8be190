"""``edgelight::shift2d``: the zero-FLOP, zero-parameter shift of Wu et al. (CVPR 2018).

Semantics follow the reference CUDA kernel (shiftnet_cuda_v2, ``moduloshiftgeneric_nchw``):
channel ``c`` reads its input displaced by

    dx = d * ((c mod k) - k//2),   dy = d * (((c // k) mod k) - k//2)

so ``out[c, y, x] = in[c, y + dy, x + dx]`` with zeros outside the image. Directions are
interleaved by ``c mod k^2`` and channels at index >= floor(C / k^2) * k^2 pass through.
A negative dilation reverses every direction; the backward pass is exactly that.
"""

import torch

from edgelight.ops._library import ACTIVE_LOWERING, LIB, define_with_out, register_out_kernels

define_with_out("shift2d", "Tensor x, int kernel_size=3, int dilation=1")


def shift_offsets(channels: int, kernel_size: int = 3, dilation: int = 1) -> list[tuple[int, int]]:
    """(dy, dx) for each of the k^2 direction groups; group g holds channels g, g + k^2, ..."""
    k, half = kernel_size, kernel_size // 2
    return [(dilation * ((g // k) % k - half), dilation * (g % k - half)) for g in range(k * k)]


def shifted_channels(channels: int, kernel_size: int = 3) -> int:
    """How many leading channels are shifted; the rest pass through unchanged."""
    return channels // (kernel_size * kernel_size) * kernel_size * kernel_size


def _check(x: torch.Tensor, kernel_size: int, dilation: int) -> None:
    torch._check(x.dim() == 4, lambda: f"shift2d expects an NCHW tensor, got {x.dim()} dims")
    torch._check(kernel_size >= 1 and kernel_size % 2 == 1, lambda: f"kernel_size must be odd, got {kernel_size}")
    torch._check(dilation != 0, lambda: "dilation must be non-zero")


def _copy_window(src: torch.Tensor, dst: torch.Tensor, dy: int, dx: int) -> None:
    """dst[..., y, x] = src[..., y + dy, x + dx] where that lies inside the image."""
    h, w = src.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return
    dst[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = src[
        ..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]


@torch.library.impl(LIB, "shift2d", "CPU")
def _shift2d_cpu(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    _check(x, kernel_size, dilation)
    k2 = kernel_size * kernel_size
    main = shifted_channels(x.shape[1], kernel_size)
    out = torch.zeros_like(x)
    out[:, main:] = x[:, main:]
    for g, (dy, dx) in enumerate(shift_offsets(x.shape[1], kernel_size, dilation)):
        _copy_window(x[:, g:main:k2], out[:, g:main:k2], dy, dx)
    return out


@torch.library.register_fake("edgelight::shift2d")
def _shift2d_fake(x, kernel_size=3, dilation=1):
    _check(x, kernel_size, dilation)
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    _, ctx.kernel_size, ctx.dilation = inputs


def _backward(ctx, grad):
    # The adjoint of a zero-filled shift is the opposite shift.
    return torch.ops.edgelight.shift2d(grad, ctx.kernel_size, -ctx.dilation), None, None


torch.library.register_autograd("edgelight::shift2d", _backward, setup_context=_setup)
register_out_kernels("shift2d", _shift2d_cpu)


def shift2d(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    """Shift each channel by its interleaved direction (one node under torch.export, unless lowered)."""
    lowering = ACTIVE_LOWERING.get()
    if lowering is not None:
        return lowering["shift2d"](x, kernel_size, dilation)
    return torch.ops.edgelight.shift2d(x, kernel_size, dilation)


def shift2d_reference(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    """Plain per-channel reference, written straight from the formula (slow, obvious)."""
    n, c, h, w = x.shape
    k, half = kernel_size, kernel_size // 2
    out = x.clone()
    for ch in range(shifted_channels(c, k)):
        dx = dilation * (ch % k - half)
        dy = dilation * ((ch // k) % k - half)
        for y in range(h):
            for xx in range(w):
                sy, sx = y + dy, xx + dx
                out[:, ch, y, xx] = x[:, ch, sy, sx] if 0 <= sy < h and 0 <= sx < w else 0
    return out
