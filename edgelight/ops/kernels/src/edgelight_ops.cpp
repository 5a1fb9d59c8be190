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

enum class Layout { kNone, kNCHW, kNHWC };

// The shift and shuffle take either contiguous NCHW or channels-last (what an XNNPACK partition hands over
// when the graph asks for it: no transpose at the boundary); out must have x's layout.
Layout layout_of(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& out, const char* op) {
  if (x.dim() != 4) {
    ET_LOG(Error, "%s expects a 4-D tensor, got %zd dims", op, static_cast<ssize_t>(x.dim()));
    ctx.fail(Error::InvalidArgument);
    return Layout::kNone;
  }
  // the dim_order_util checks, not tensor_is_*_dim_order: those log an error whenever the answer is no
  auto nchw_of = [](const Tensor& t) { return executorch::runtime::is_contiguous_dim_order(t.dim_order().data(), t.dim()); };
  auto nhwc_of = [](const Tensor& t) { return executorch::runtime::is_channels_last_dim_order(t.dim_order().data(), t.dim()); };
  const bool nchw = nchw_of(x), nhwc = !nchw && nhwc_of(x);
  const bool same = out.dim() == 4 && (nchw ? nchw_of(out) : nhwc_of(out));
  if ((!nchw && !nhwc) || !same) {
    ET_LOG(Error, "%s expects NCHW or channels-last input and output of the same dim order", op);
    ctx.fail(Error::InvalidArgument);
    return Layout::kNone;
  }
  return nchw ? Layout::kNCHW : Layout::kNHWC;
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

// edgelight::shift2d.out: fp32 / int8 / uint8, raw zero fill (the fp32 semantics); NCHW or channels-last.
Tensor& shift2d_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t k, int64_t d, Tensor& out) {
  const Layout layout = layout_of(ctx, x, out, "shift2d");
  if (layout == Layout::kNone || !check_shift_args(ctx, k, d) || !resize_like(ctx, out, x, x.scalar_type())) return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    if (layout == Layout::kNHWC)
      shift2d_nhwc_copy(x.const_data_ptr<T>(), out.mutable_data_ptr<T>(), N, C, H, W, int(k), int(d), zero);
    else
      shift2d(x.const_data_ptr<T>(), out.mutable_data_ptr<T>(), N, C, H, W, int(k), int(d), zero, CopyMap<T>{});
  };
  switch (x.scalar_type()) {
    case ScalarType::Float:
      run(0.f);
      break;
    case ScalarType::Char:
      run(int8_t(0));
      break;
    case ScalarType::Byte:
      run(uint8_t(0));
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
  const Layout layout = layout_of(ctx, x, out, "quantized_shift2d");
  if (layout == Layout::kNone || !check_shift_args(ctx, k, d)) return out;
  if (x.scalar_type() != ScalarType::Char || out_zp < -128 || out_zp > 127 || in_scale <= 0 || out_scale <= 0) {
    ET_LOG(Error, "quantized_shift2d: needs int8 input, positive scales and an int8 zero point");
    ctx.fail(Error::InvalidArgument);
    return out;
  }
  if (!resize_like(ctx, out, x, ScalarType::Char)) return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const Requant rq(in_scale, in_zp, out_scale, out_zp);
  const int8_t fill = static_cast<int8_t>(out_zp);
  const int8_t* in = x.const_data_ptr<int8_t>();
  int8_t* o = out.mutable_data_ptr<int8_t>();
  if (layout == Layout::kNHWC && rq.identity)
    shift2d_nhwc_copy(in, o, N, C, H, W, int(k), int(d), fill);
  else if (layout == Layout::kNHWC)
    shift2d_nhwc(in, o, N, C, H, W, int(k), int(d), fill, Lut1{rq.lut});
  else if (rq.identity)
    shift2d(in, o, N, C, H, W, int(k), int(d), fill, CopyMap<int8_t>{});
  else
    shift2d(in, o, N, C, H, W, int(k), int(d), fill, rq);
  return out;
}

// edgelight::channel_shuffle.out: a plane (NCHW) or per-pixel (channels-last) permutation, so every dtype works.
Tensor& channel_shuffle_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t groups, Tensor& out) {
  const Layout layout = layout_of(ctx, x, out, "channel_shuffle");
  if (layout == Layout::kNone) return out;
  if (groups < 1 || x.size(1) % groups != 0) {
    ET_LOG(Error, "channel_shuffle: %zd channels do not split into %lld groups", (ssize_t)x.size(1), (long long)groups);
    ctx.fail(Error::InvalidArgument);
    return out;
  }
  if (!resize_like(ctx, out, x, x.scalar_type())) return out;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (layout == Layout::kNCHW) {
    channel_shuffle(x.const_data_ptr(), out.mutable_data_ptr(), N, C, H * W * static_cast<int64_t>(x.element_size()), groups);
    return out;
  }
  switch (x.element_size()) {
    case 1:
      channel_shuffle_nhwc(static_cast<const uint8_t*>(x.const_data_ptr()), static_cast<uint8_t*>(out.mutable_data_ptr()), N * H * W, C, groups);
      break;
    case 4:
      channel_shuffle_nhwc(static_cast<const uint32_t*>(x.const_data_ptr()), static_cast<uint32_t*>(out.mutable_data_ptr()), N * H * W, C, groups);
      break;
    default:
      ET_LOG(Error, "channel_shuffle: channels-last needs 1- or 4-byte elements");
      ctx.fail(Error::InvalidArgument);
  }
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
