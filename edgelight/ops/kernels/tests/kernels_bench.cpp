// Kernel micro-benchmark: the registered ExecuTorch kernels called directly (no interpreter overhead) vs
// memcpy of the same bytes, and the fused shift->1x1 kernel vs the same kernel with k=1 (a 1x1 conv alone).
// Prints one JSON object per case: {"case", "shape", "us": [per-run medians...]}. bench/kernels.py drives it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <executorch/runtime/platform/runtime.h>

#include "edgelight_kernels.h"
#include "edgelight_ops.h"

using executorch::aten::ScalarType;
using executorch::runtime::KernelRuntimeContext;
using executorch::runtime::etensor::TensorImpl;

namespace {

// Page-aligned storage: heap vectors placed back to back can sit a few bytes apart modulo 4 KiB, which
// makes a plain memcpy between them 5-10x slower (4K aliasing) and the memcpy baseline meaningless.
struct Buf {
  std::vector<TensorImpl::SizesType> sizes;
  std::vector<TensorImpl::DimOrderType> order;
  std::vector<TensorImpl::StridesType> strides;
  size_t nbytes;
  std::unique_ptr<char, decltype(&std::free)> data;
  TensorImpl impl;
  Buf(std::vector<int> shape, ScalarType dtype, size_t elsize)
      : sizes(shape.begin(), shape.end()), order(shape.size()), strides(shape.size()), nbytes(bytes(shape, elsize)),
        data(static_cast<char*>(std::aligned_alloc(4096, (nbytes + 4095) / 4096 * 4096)), &std::free),
        impl(dtype, shape.size(), sizes.data(), data.get(), order.data(), strides.data()) {
    int64_t s = 1;
    for (int i = int(shape.size()) - 1; i >= 0; --i) order[i] = i, strides[i] = s, s *= shape[i];
    std::mt19937 rng(7);
    for (size_t i = 0; i < nbytes; ++i) data.get()[i] = char(rng() % 64);  // finite floats, in-range int8
  }
  static size_t bytes(const std::vector<int>& shape, size_t elsize) {
    size_t n = elsize;
    for (int v : shape) n *= v;
    return n;
  }
  executorch::aten::Tensor t() { return executorch::aten::Tensor(&impl); }
};

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int iters_for(const std::function<void()>& fn) {  // enough calls for ~1 ms per batch
  fn();
  int iters = 0;
  const double t0 = now_us();
  while (now_us() - t0 < 1000.0) fn(), ++iters;
  return std::max(iters, 1);
}

// Each run times a batch of `base` then a batch of `cand` back to back, so machine noise hits both alike;
// prints the per-run mean microseconds per call of each.
void pair(const char* name, const char* base_name, const std::string& shape, const std::function<void()>& base,
          const std::function<void()>& cand, int runs) {
  const int nb = iters_for(base), nc = iters_for(cand);
  std::vector<double> b, c;
  for (int r = 0; r < runs; ++r) {
    double t = now_us();
    for (int i = 0; i < nb; ++i) base();
    b.push_back((now_us() - t) / nb);
    t = now_us();
    for (int i = 0; i < nc; ++i) cand();
    c.push_back((now_us() - t) / nc);
  }
  std::printf("{\"case\": \"%s\", \"baseline\": \"%s\", \"shape\": \"%s\", \"us\": [", name, base_name, shape.c_str());
  for (size_t i = 0; i < c.size(); ++i) std::printf("%s%.4f", i ? ", " : "", c[i]);
  std::printf("], \"baseline_us\": [");
  for (size_t i = 0; i < b.size(); ++i) std::printf("%s%.4f", i ? ", " : "", b[i]);
  std::printf("]}\n");
}

}  // namespace

int main(int argc, char** argv) {
  executorch::runtime::runtime_init();
  const int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  // ShiftResNet-20-e3 shift widths (mid = 3 x block width) at their resolutions, batch 1
  const int shapes[][4] = {{48, 32, 32, 16}, {96, 16, 16, 32}, {192, 8, 8, 64}};
  for (auto& s : shapes) {
    const int C = s[0], H = s[1], W = s[2], O = s[3];
    const std::string shape = std::to_string(C) + "x" + std::to_string(H) + "x" + std::to_string(W);
    for (int q = 0; q < 2; ++q) {
      const size_t el = q ? 1 : 4;
      const ScalarType dt = q ? ScalarType::Char : ScalarType::Float;
      Buf x({1, C, H, W}, dt, el), out({1, C, H, W}, dt, el);
      auto xt = x.t(), ot = out.t();
      KernelRuntimeContext ctx;
      auto copy = [&] { std::memcpy(out.data.get(), x.data.get(), x.nbytes); };
      if (q)
        pair("shift_int8", "memcpy", shape, copy, [&] { edgelight::et::quantized_shift2d_out(ctx, xt, 0.1, -128, 0.1, -128, 3, 1, ot); }, runs);
      else
        pair("shift_fp32", "memcpy", shape, copy, [&] { edgelight::et::shift2d_out(ctx, xt, 3, 1, ot); }, runs);
      // the same shift on NHWC memory (LiteRT's layout, ExecuTorch's boundary=channels-last): the int8 row blend
      // and the per-value gather it replaces (fp32 keeps the gather)
      auto nhwc = [&](auto zero) {
        using T = decltype(zero);
        edgelight::shift2d_nhwc_copy(reinterpret_cast<const T*>(x.data.get()), reinterpret_cast<T*>(out.data.get()), 1, C, H, W, 3, 1, zero);
      };
      auto gather = [&](auto zero) {
        using T = decltype(zero);
        edgelight::shift2d_nhwc(reinterpret_cast<const T*>(x.data.get()), reinterpret_cast<T*>(out.data.get()), 1, C, H, W, 3, 1, zero,
                                edgelight::Same<T>{});
      };
      if (q) {
        pair("shift_int8_nhwc", "memcpy", shape, copy, [&] { nhwc(int8_t(-128)); }, runs);
        pair("nhwc_blend_int8", "per-value gather", shape, [&] { gather(int8_t(-128)); }, [&] { nhwc(int8_t(-128)); }, runs);
      } else {
        pair("shift_fp32_nhwc", "memcpy", shape, copy, [&] { nhwc(0.f); }, runs);
      }
      // fused shift -> 1x1 (stride 1) vs the same GEMM without the shift (k = 1: every offset is 0)
      Buf w({O, C, 1, 1}, dt, el), b({O}, ScalarType::Float, 4), ws({O}, ScalarType::Float, 4), y({1, O, H, W}, dt, el);
      std::fill(reinterpret_cast<float*>(b.data.get()), reinterpret_cast<float*>(b.data.get()) + O, 0.01f);
      std::fill(reinterpret_cast<float*>(ws.data.get()), reinterpret_cast<float*>(ws.data.get()) + O, 0.01f);
      auto wt = w.t(), yt = y.t(), wst = ws.t();
      std::optional<executorch::aten::Tensor> bt(b.t());
      auto conv = [&](int k) {
        if (q)
          edgelight::et::quantized_shift_conv1x1_out(ctx, xt, 0.1, -128, 0.1, -128, wt, wst, bt, 0.2, 0, 1, k, 1, true, yt);
        else
          edgelight::et::shift_conv1x1_out(ctx, xt, wt, bt, 1, k, 1, true, yt);
      };
      pair(q ? "fused_shift_conv1x1_int8" : "fused_shift_conv1x1_fp32", "native conv1x1 (k=1, no shift)",
           shape + "->" + std::to_string(O), [&] { conv(1); }, [&] { conv(3); }, runs);
      if (ctx.failure_state() != executorch::runtime::Error::Ok) {
        std::fprintf(stderr, "kernel failed on %s\n", shape.c_str());
        return 1;
      }
    }
  }
  return 0;
}
