"""Ops that exist only for native-kernel deployment (ExecuTorch ``ops="native"``).

- ``edgelight::quantized_shift2d``: shift2d in the per-tensor int8 domain. The vacated border is filled
  with the output zero point (the quantized 0.0, not the integer 0), and values are requantized when
  the output parameters differ from the input's: exactly ``quantize(shift2d(dequantize(x)))``.
- ``edgelight::shift_conv1x1``: shift2d -> 1x1 conv (stride, no padding, bias) -> optional ReLU, one op,
  so the native kernel reads the conv input at shifted addresses instead of writing a shifted copy.
- ``edgelight::quantized_shift_conv1x1``: its int8 version (per-tensor activations, per-channel
  symmetric int8 weights, fp32 bias), equal to the unfused dq -> shift -> q -> dq -> conv -> q graph.

The native kernels are in edgelight/ops/kernels; the rewrites that produce these ops are in
edgelight/targets/executorch/native.py. Each op has a CPU kernel (the reference) and a fake kernel.
"""

import torch
from torch.nn import functional as F

from edgelight.ops._library import LIB, define_with_out, register_out_kernels
from edgelight.ops.shift import _shift2d_cpu

define_with_out(
    "quantized_shift2d",
    "Tensor x, float in_scale, int in_zero_point, float out_scale, int out_zero_point, int kernel_size=3, int dilation=1",
)
define_with_out(
    "shift_conv1x1",
    "Tensor x, Tensor weight, Tensor? bias, int stride=1, int kernel_size=3, int dilation=1, bool relu=False",
)
define_with_out(
    "quantized_shift_conv1x1",
    "Tensor x, float in_scale, int in_zero_point, float mid_scale, int mid_zero_point, Tensor weight, "
    "Tensor weight_scales, Tensor? bias, float out_scale, int out_zero_point, int stride=1, int kernel_size=3, "
    "int dilation=1, bool relu=False",
)


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return (q.to(torch.float32) - zero_point) * torch.tensor(scale, dtype=torch.float32)


def quantize(x: torch.Tensor, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127) -> torch.Tensor:
    """quantized_decomposed.quantize_per_tensor: round half to even of x * (1 / scale), in float32."""
    inv = 1.0 / torch.tensor(scale, dtype=torch.float32)  # 1.0f / float(scale), as the C++ kernels do
    return torch.clamp(torch.round(x * inv) + zero_point, qmin, qmax).to(torch.int8)


def _check_int8(x: torch.Tensor, name: str) -> None:
    torch._check(x.dtype == torch.int8, lambda: f"{name} expects an int8 tensor, got {x.dtype}")
    torch._check(x.dim() == 4, lambda: f"{name} expects an NCHW tensor, got {x.dim()} dims")


def _check_conv(x: torch.Tensor, weight: torch.Tensor, stride: int) -> None:
    torch._check(x.dim() == 4, lambda: f"shift_conv1x1 expects an NCHW tensor, got {x.dim()} dims")
    torch._check(
        weight.dim() == 4 and tuple(weight.shape[1:]) == (x.shape[1], 1, 1),
        lambda: f"shift_conv1x1 needs a [O, {x.shape[1]}, 1, 1] weight, got {list(weight.shape)}",
    )
    torch._check(stride >= 1, lambda: f"stride must be >= 1, got {stride}")


def _conv_shape(x: torch.Tensor, weight: torch.Tensor, stride: int) -> list[int]:
    n, _, h, w = x.shape
    return [n, weight.shape[0], (h - 1) // stride + 1, (w - 1) // stride + 1]


@torch.library.impl(LIB, "quantized_shift2d", "CPU")
def _quantized_shift2d_cpu(x, in_scale, in_zero_point, out_scale, out_zero_point, kernel_size=3, dilation=1):
    _check_int8(x, "quantized_shift2d")
    return quantize(_shift2d_cpu(dequantize(x, in_scale, in_zero_point), kernel_size, dilation), out_scale, out_zero_point)


@torch.library.register_fake("edgelight::quantized_shift2d")
def _quantized_shift2d_fake(x, in_scale, in_zero_point, out_scale, out_zero_point, kernel_size=3, dilation=1):
    _check_int8(x, "quantized_shift2d")
    return torch.empty_like(x)


@torch.library.impl(LIB, "shift_conv1x1", "CPU")
def _shift_conv1x1_cpu(x, weight, bias=None, stride=1, kernel_size=3, dilation=1, relu=False):
    _check_conv(x, weight, stride)
    out = F.conv2d(_shift2d_cpu(x, kernel_size, dilation), weight, bias, stride)
    return torch.relu(out) if relu else out


@torch.library.register_fake("edgelight::shift_conv1x1")
def _shift_conv1x1_fake(x, weight, bias=None, stride=1, kernel_size=3, dilation=1, relu=False):
    _check_conv(x, weight, stride)
    return x.new_empty(_conv_shape(x, weight, stride))


@torch.library.impl(LIB, "quantized_shift_conv1x1", "CPU")
def _quantized_shift_conv1x1_cpu(x, in_scale, in_zero_point, mid_scale, mid_zero_point, weight, weight_scales, bias,
                                 out_scale, out_zero_point, stride=1, kernel_size=3, dilation=1, relu=False):
    _check_int8(x, "quantized_shift_conv1x1")
    _check_conv(x, weight, stride)
    mid = _quantized_shift2d_cpu(x, in_scale, in_zero_point, mid_scale, mid_zero_point, kernel_size, dilation)
    w = weight.to(torch.float32) * weight_scales.to(torch.float32).reshape(-1, 1, 1, 1)
    out = F.conv2d(dequantize(mid, mid_scale, mid_zero_point), w, bias, stride)
    return quantize(torch.relu(out) if relu else out, out_scale, out_zero_point)


@torch.library.register_fake("edgelight::quantized_shift_conv1x1")
def _quantized_shift_conv1x1_fake(x, in_scale, in_zero_point, mid_scale, mid_zero_point, weight, weight_scales, bias,
                                  out_scale, out_zero_point, stride=1, kernel_size=3, dilation=1, relu=False):
    _check_int8(x, "quantized_shift_conv1x1")
    _check_conv(x, weight, stride)
    return x.new_empty(_conv_shape(x, weight, stride))


register_out_kernels("quantized_shift2d", _quantized_shift2d_cpu)
register_out_kernels("shift_conv1x1", _shift_conv1x1_cpu)
register_out_kernels("quantized_shift_conv1x1", _quantized_shift_conv1x1_cpu)
