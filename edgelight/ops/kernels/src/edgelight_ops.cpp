// ExecuTorch kernels for the edgelight ops. Schemas live in Python (edgelight/ops/shift.py, shuffle.py,
// fused.py); this file only registers out-variant kernels with the ExecuTorch operator registry.
#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>

#include "edgelight_kernels.h"
#include "edgelight_ops.h"

namespace edgelight {
namespace et {

using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

namespace {

bool check_nchw(KernelRuntimeContext& ctx, const Tensor& x, const char* op) {
  if (x.dim() != 4) {
    ET_LOG(Error, "%s expects an NCHW tensor, got %zd dims", op, static_cast<ssize_t>(x.dim()));
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  if (!executorch::runtime::tensor_is_default_dim_order(x)) {
    ET_LOG(Error, "%s expects contiguous NCHW (default dim order)", op);
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  return true;
}

bool resize_like(KernelRuntimeContext& ctx, Tensor& out, const Tensor& like, ScalarType dtype) {
  if (out.scalar_type() != dtype) {
    ET_LOG(Error, "edgelight: out dtype %d != expected %d", int(out.scalar_type()), int(dtype));
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  if (executorch::runtime::resize_tensor(out, like.sizes()) != Error::Ok) {
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  return true;
}

bool resize_to(KernelRuntimeContext& ctx, Tensor& out, std::initializer_list<SizesType> sizes) {
  executorch::aten::ArrayRef<SizesType> ref(sizes.begin(), sizes.size());
  if (executorch::runtime::resize_tensor(out, ref) != Error::Ok) {
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  return true;
}

bool check_shift_args(KernelRuntimeContext& ctx, int64_t k, int64_t d) {
  if (k < 1 || k % 2 == 0 || d == 0) {
    ET_LOG(Error, "shift2d: kernel_size must be odd and dilation non-zero (got %lld, %lld)", (long long)k, (long long)d);
    ctx.fail(Error::InvalidArgument);
    return false;
  }
  return true;
}

}  // namespace

// edgelight::shift2d.out: fp32 / int8 / uint8, raw zero fill (the fp32 semantics).
Tensor& shift2d_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t k, int64_t d, Tensor& out) {
  if (!check_nchw(ctx, x, "shift2d") || !check_shift_args(ctx, k, d) || !resize_like(ctx, out, x, x.scalar_type()))
    return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  switch (x.scalar_type()) {
    case ScalarType::Float:
      shift2d(x.const_data_ptr<float>(), out.mutable_data_ptr<float>(), N, C, H, W, int(k), int(d), 0.f, CopyMap<float>{});
      break;
    case ScalarType::Char:
      shift2d(x.const_data_ptr<int8_t>(), out.mutable_data_ptr<int8_t>(), N, C, H, W, int(k), int(d), int8_t(0), CopyMap<int8_t>{});
      break;
    case ScalarType::Byte:
      shift2d(x.const_data_ptr<uint8_t>(), out.mutable_data_ptr<uint8_t>(), N, C, H, W, int(k), int(d), uint8_t(0), CopyMap<uint8_t>{});
      break;
    default:
      ET_LOG(Error, "shift2d: unsupported dtype %d (float32, int8, uint8)", int(x.scalar_type()));
      ctx.fail(Error::InvalidArgument);
  }
  return out;
}

// edgelight::quantized_shift2d.out: int8 in the per-tensor quantized domain; the fill is the output zero
// point, and values are requantized when the output params differ (a table lookup, else a memcpy).
Tensor& quantized_shift2d_out(KernelRuntimeContext& ctx, const Tensor& x, double in_scale, int64_t in_zp,
                              double out_scale, int64_t out_zp, int64_t k, int64_t d, Tensor& out) {
  if (!check_nchw(ctx, x, "quantized_shift2d") || !check_shift_args(ctx, k, d)) return out;
  if (x.scalar_type() != ScalarType::Char || out_zp < -128 || out_zp > 127 || in_scale <= 0 || out_scale <= 0) {
    ET_LOG(Error, "quantized_shift2d: needs int8 input, positive scales and an int8 zero point");
    ctx.fail(Error::InvalidArgument);
    return out;
  }
  if (!resize_like(ctx, out, x, ScalarType::Char)) return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const Requant rq(in_scale, in_zp, out_scale, out_zp);
  const int8_t fill = static_cast<int8_t>(out_zp);
  if (rq.identity)
    shift2d(x.const_data_ptr<int8_t>(), out.mutable_data_ptr<int8_t>(), N, C, H, W, int(k), int(d), fill, CopyMap<int8_t>{});
  else
    shift2d(x.const_data_ptr<int8_t>(), out.mutable_data_ptr<int8_t>(), N, C, H, W, int(k), int(d), fill, rq);
  return out;
}

// edgelight::channel_shuffle.out: a plane permutation, so every dtype works.
Tensor& channel_shuffle_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t groups, Tensor& out) {
  if (!check_nchw(ctx, x, "channel_shuffle")) return out;
  if (groups < 1 || x.size(1) % groups != 0) {
    ET_LOG(Error, "channel_shuffle: %zd channels do not split into %lld groups", (ssize_t)x.size(1), (long long)groups);
    ctx.fail(Error::InvalidArgument);
    return out;
  }
  if (!resize_like(ctx, out, x, x.scalar_type())) return out;
  channel_shuffle(x.const_data_ptr(), out.mutable_data_ptr(), x.size(0), x.size(1),
                  x.size(2) * x.size(3) * static_cast<int64_t>(x.element_size()), groups);
  return out;
}

namespace {
bool check_conv(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                int64_t stride, ScalarType wtype) {
  const bool ok = w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 1 && w.size(3) == 1 &&
                  w.scalar_type() == wtype && stride >= 1 &&
                  (!bias.has_value() || (bias->numel() == w.size(0) && bias->scalar_type() == ScalarType::Float));
  if (!ok) {
    ET_LOG(Error, "shift_conv1x1: weight must be [O, C, 1, 1], bias fp32 [O], stride >= 1");
    ctx.fail(Error::InvalidArgument);
  }
  return ok;
}
}  // namespace

// edgelight::shift_conv1x1.out: fp32 shift -> 1x1 conv (stride, no padding) -> optional ReLU, fused.
Tensor& shift_conv1x1_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                          int64_t stride, int64_t k, int64_t d, bool relu, Tensor& out) {
  if (!check_nchw(ctx, x, "shift_conv1x1") || !check_shift_args(ctx, k, d) ||
      !check_conv(ctx, x, w, bias, stride, ScalarType::Float) || x.scalar_type() != ScalarType::Float)
    return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0);
  if (!resize_to(ctx, out, {SizesType(N), SizesType(O), SizesType((H - 1) / stride + 1), SizesType((W - 1) / stride + 1)}))
    return out;
  shift_conv1x1_f32(x.const_data_ptr<float>(), w.const_data_ptr<float>(),
                    bias.has_value() ? bias->const_data_ptr<float>() : nullptr, out.mutable_data_ptr<float>(), N, C, H,
                    W, O, int(stride), int(k), int(d), relu);
  return out;
}

// edgelight::quantized_shift_conv1x1.out: the int8 version (per-channel symmetric weights, fp32 bias).
Tensor& quantized_shift_conv1x1_out(KernelRuntimeContext& ctx, const Tensor& x, double in_scale, int64_t in_zp,
                                    double mid_scale, int64_t mid_zp, const Tensor& w, const Tensor& w_scales,
                                    const std::optional<Tensor>& bias, double out_scale, int64_t out_zp,
                                    int64_t stride, int64_t k, int64_t d, bool relu, Tensor& out) {
  if (!check_nchw(ctx, x, "quantized_shift_conv1x1") || !check_shift_args(ctx, k, d) ||
      !check_conv(ctx, x, w, bias, stride, ScalarType::Char))
    return out;
  if (x.scalar_type() != ScalarType::Char || w_scales.scalar_type() != ScalarType::Float ||
      w_scales.numel() != w.size(0) || out.scalar_type() != ScalarType::Char) {
    ET_LOG(Error, "quantized_shift_conv1x1: needs int8 x/out and fp32 weight_scales [O]");
    ctx.fail(Error::InvalidArgument);
    return out;
  }
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0);
  if (!resize_to(ctx, out, {SizesType(N), SizesType(O), SizesType((H - 1) / stride + 1), SizesType((W - 1) / stride + 1)}))
    return out;
  shift_conv1x1_q8(x.const_data_ptr<int8_t>(), in_scale, in_zp, mid_scale, mid_zp, w.const_data_ptr<int8_t>(),
                   w_scales.const_data_ptr<float>(), bias.has_value() ? bias->const_data_ptr<float>() : nullptr,
                   out_scale, out_zp, out.mutable_data_ptr<int8_t>(), N, C, H, W, O, int(stride), int(k), int(d), relu);
  return out;
}

}  // namespace et
}  // namespace edgelight

EXECUTORCH_LIBRARY(edgelight, "shift2d.out", edgelight::et::shift2d_out);
EXECUTORCH_LIBRARY(edgelight, "quantized_shift2d.out", edgelight::et::quantized_shift2d_out);
EXECUTORCH_LIBRARY(edgelight, "channel_shuffle.out", edgelight::et::channel_shuffle_out);
EXECUTORCH_LIBRARY(edgelight, "shift_conv1x1.out", edgelight::et::shift_conv1x1_out);
EXECUTORCH_LIBRARY(edgelight, "quantized_shift_conv1x1.out", edgelight::et::quantized_shift_conv1x1_out);
