// The ExecuTorch kernel entry points (registered in edgelight_ops.cpp), for direct calls from tests/benches.
#pragma once

#include <executorch/runtime/kernel/kernel_includes.h>

#include <optional>

namespace edgelight {
namespace et {

using executorch::aten::Tensor;
using executorch::runtime::KernelRuntimeContext;

Tensor& shift2d_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t k, int64_t d, Tensor& out);
Tensor& quantized_shift2d_out(KernelRuntimeContext& ctx, const Tensor& x, double in_scale, int64_t in_zp,
                              double out_scale, int64_t out_zp, int64_t k, int64_t d, Tensor& out);
Tensor& channel_shuffle_out(KernelRuntimeContext& ctx, const Tensor& x, int64_t groups, Tensor& out);
Tensor& shift_conv1x1_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                          int64_t stride, int64_t k, int64_t d, bool relu, Tensor& out);
Tensor& quantized_shift_conv1x1_out(KernelRuntimeContext& ctx, const Tensor& x, double in_scale, int64_t in_zp,
                                    double mid_scale, int64_t mid_zp, const Tensor& w, const Tensor& w_scales,
                                    const std::optional<Tensor>& bias, double out_scale, int64_t out_zp,
                                    int64_t stride, int64_t k, int64_t d, bool relu, Tensor& out);

}  // namespace et
}  // namespace edgelight
