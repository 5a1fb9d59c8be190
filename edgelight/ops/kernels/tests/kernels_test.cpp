// Standalone kernel test: calls the ExecuTorch kernels directly on tensors it makes and checks them against
// naive per-element references written from the op definitions. Built with -fsanitize=address,undefined by
// tests/test_kernels.py (EDGELIGHT_SANITIZE=ON) so every out-of-bounds read at the image borders is caught.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <executorch/runtime/platform/runtime.h>

#include "edgelight_ops.h"

using executorch::aten::ScalarType;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;
using executorch::runtime::etensor::TensorImpl;

namespace {

int failures = 0;
#define EXPECT(cond, ...)                    \
  do {                                       \
    if (!(cond)) {                           \
      ++failures;                            \
      std::printf("FAIL %s:%d ", __FILE__, __LINE__); \
      std::printf(__VA_ARGS__);              \
      std::printf("\n");                     \
    }                                        \
  } while (0)

// Owns sizes/strides/data for a contiguous tensor; data is exactly sized so ASan sees any overrun.
template <typename T>
struct Owned {
  std::vector<TensorImpl::SizesType> sizes;
  std::vector<TensorImpl::DimOrderType> order;
  std::vector<TensorImpl::StridesType> strides;
  std::vector<T> data;
  TensorImpl impl;
  // channels_last: a 4-D tensor with dim order (0, 2, 3, 1), i.e. NHWC memory
  Owned(std::vector<int> shape, ScalarType dtype, bool channels_last = false)
      : sizes(shape.begin(), shape.end()), order(shape.size()), strides(shape.size()),
        data(numel(shape)), impl(dtype, shape.size(), sizes.data(), data.data(), set_order(channels_last), strides.data()) {
    int64_t s = 1;
    for (int i = int(shape.size()) - 1; i >= 0; --i) {
      strides[order[i]] = s;
      s *= shape[order[i]];
    }
  }
  TensorImpl::DimOrderType* set_order(bool channels_last) {
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (channels_last) order = {0, 2, 3, 1};
    return order.data();
  }
  static size_t numel(const std::vector<int>& shape) {
    size_t n = 1;
    for (int v : shape) n *= v;
    return n;
  }
  executorch::aten::Tensor t() { return executorch::aten::Tensor(&impl); }
};

std::mt19937 rng(1234);
void fill_random(std::vector<float>& v) {
  std::normal_distribution<float> dist;
  for (auto& x : v) x = dist(rng);
}
void fill_random(std::vector<int8_t>& v) {
  std::uniform_int_distribution<int> dist(-128, 127);
  for (auto& x : v) x = int8_t(dist(rng));
}

// reference: value of the shifted input (or `fill`) at [n, c, y, x]
template <typename T>
T shifted(const std::vector<T>& in, int C, int H, int W, int n, int c, int y, int x, int k, int d, T fill) {
  const int main = C / (k * k) * (k * k);
  int dy = 0, dx = 0;
  if (c < main) {
    dx = d * ((c % k) - k / 2);
    dy = d * (((c / k) % k) - k / 2);
  }
  const int sy = y + dy, sx = x + dx;
  if (sy < 0 || sy >= H || sx < 0 || sx >= W) return fill;
  return in[((size_t(n) * C + c) * H + sy) * W + sx];
}

int8_t requant(int8_t q, double s_in, int zp_in, double s_out, int zp_out) {
  const float x = float(q - zp_in) * float(s_in);
  const float r = std::nearbyint(x * (1.0f / float(s_out))) + float(zp_out);
  return int8_t(std::fmin(std::fmax(r, -128.f), 127.f));
}

struct Shape { int n, c, h, w, k, d, stride, o; };
const Shape kShapes[] = {
    {1, 9, 5, 5, 3, 1, 1, 4},   {2, 13, 7, 4, 3, 1, 2, 5},  {1, 20, 6, 9, 3, 2, 1, 8},  {3, 7, 3, 3, 3, 1, 1, 3},
    {1, 50, 4, 11, 5, 1, 2, 17}, {2, 18, 1, 1, 3, 1, 1, 9},  {1, 27, 8, 8, 3, -1, 1, 16}, {1, 10, 2, 3, 3, 3, 2, 1},
    {1, 531, 3, 4, 3, 1, 2, 5},  // C * 255 * 127 >= 2^24: the int8 fused kernel takes its int32 path
};

template <typename T>
int count_mismatch(const std::vector<T>& got, const std::vector<T>& want, double tol) {
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= tol)) ++bad;
  return bad;
}

void test_shift(const Shape& s) {
  Owned<float> x({s.n, s.c, s.h, s.w}, ScalarType::Float), out({s.n, s.c, s.h, s.w}, ScalarType::Float);
  fill_random(x.data);
  KernelRuntimeContext ctx;
  auto xt = x.t(), ot = out.t();
  edgelight::et::shift2d_out(ctx, xt, s.k, s.d, ot);
  EXPECT(ctx.failure_state() == Error::Ok, "shift2d failed");
  std::vector<float> want(out.data.size());
  size_t i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int y = 0; y < s.h; ++y)
        for (int xx = 0; xx < s.w; ++xx) want[i++] = shifted(x.data, s.c, s.h, s.w, n, c, y, xx, s.k, s.d, 0.f);
  EXPECT(count_mismatch(out.data, want, 0.0) == 0, "shift2d fp32 c=%d h=%d w=%d d=%d", s.c, s.h, s.w, s.d);
}

void test_quantized_shift(const Shape& s, double s_in, int zp_in, double s_out, int zp_out) {
  Owned<int8_t> x({s.n, s.c, s.h, s.w}, ScalarType::Char), out({s.n, s.c, s.h, s.w}, ScalarType::Char);
  fill_random(x.data);
  KernelRuntimeContext ctx;
  auto xt = x.t(), ot = out.t();
  edgelight::et::quantized_shift2d_out(ctx, xt, s_in, zp_in, s_out, zp_out, s.k, s.d, ot);
  EXPECT(ctx.failure_state() == Error::Ok, "quantized_shift2d failed");
  std::vector<int8_t> want(out.data.size());
  size_t i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int y = 0; y < s.h; ++y)
        for (int xx = 0; xx < s.w; ++xx) {
          // the fill is the fp32 zero (zp_in), i.e. zp_out after requantization
          int8_t v = shifted<int8_t>(x.data, s.c, s.h, s.w, n, c, y, xx, s.k, s.d, int8_t(zp_in));
          want[i++] = requant(v, s_in, zp_in, s_out, zp_out);
        }
  EXPECT(count_mismatch(out.data, want, 0.0) == 0, "quantized_shift2d c=%d zp %d->%d", s.c, zp_in, zp_out);
}

void test_shuffle(const Shape& s, int groups) {
  Owned<int8_t> x({s.n, s.c, s.h, s.w}, ScalarType::Char), out({s.n, s.c, s.h, s.w}, ScalarType::Char);
  fill_random(x.data);
  KernelRuntimeContext ctx;
  auto xt = x.t(), ot = out.t();
  edgelight::et::channel_shuffle_out(ctx, xt, groups, ot);
  EXPECT(ctx.failure_state() == Error::Ok, "channel_shuffle failed");
  const int per = s.c / groups, plane = s.h * s.w;
  int bad = 0;
  for (int n = 0; n < s.n; ++n)
    for (int i = 0; i < groups; ++i)
      for (int j = 0; j < per; ++j)
        for (int p = 0; p < plane; ++p)
          bad += out.data[(size_t(n) * s.c + j * groups + i) * plane + p] != x.data[(size_t(n) * s.c + i * per + j) * plane + p];
  EXPECT(bad == 0, "channel_shuffle c=%d g=%d", s.c, groups);
}

// NCHW [n, c, y, x] -> NHWC memory
template <typename T>
std::vector<T> to_nhwc(const std::vector<T>& v, int N, int C, int H, int W) {
  std::vector<T> out(v.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H * W; ++i) out[(size_t(n) * H * W + i) * C + c] = v[(size_t(n) * C + c) * H * W + i];
  return out;
}

// The channels-last forms (what runs between XNNPACK partitions that hand over NHWC) equal the NCHW kernels,
// which the tests above check against the references.
template <typename T, typename Run>
void check_channels_last(const Shape& s, ScalarType dtype, Run run, const char* what) {
  Owned<T> x({s.n, s.c, s.h, s.w}, dtype), out({s.n, s.c, s.h, s.w}, dtype);
  Owned<T> xl({s.n, s.c, s.h, s.w}, dtype, true), outl({s.n, s.c, s.h, s.w}, dtype, true);
  fill_random(x.data);
  const std::vector<T> nhwc = to_nhwc(x.data, s.n, s.c, s.h, s.w);
  std::copy(nhwc.begin(), nhwc.end(), xl.data.begin());  // in place: the TensorImpl points at this storage
  KernelRuntimeContext ctx, ctxl;
  auto xt = x.t(), ot = out.t(), xlt = xl.t(), olt = outl.t();
  run(ctx, xt, ot);
  run(ctxl, xlt, olt);
  EXPECT(ctx.failure_state() == Error::Ok && ctxl.failure_state() == Error::Ok, "%s failed", what);
  EXPECT(count_mismatch(outl.data, to_nhwc(out.data, s.n, s.c, s.h, s.w), 0.0) == 0, "%s channels-last c=%d h=%d w=%d d=%d",
         what, s.c, s.h, s.w, s.d);
}

void test_channels_last(const Shape& s) {
  using executorch::aten::Tensor;
  check_channels_last<float>(s, ScalarType::Float, [&](KernelRuntimeContext& c, Tensor& x, Tensor& o) {
    edgelight::et::shift2d_out(c, x, s.k, s.d, o); }, "shift2d");
  check_channels_last<int8_t>(s, ScalarType::Char, [&](KernelRuntimeContext& c, Tensor& x, Tensor& o) {
    edgelight::et::quantized_shift2d_out(c, x, 0.02, 5, 0.02, 5, s.k, s.d, o); }, "quantized_shift2d");
  check_channels_last<int8_t>(s, ScalarType::Char, [&](KernelRuntimeContext& c, Tensor& x, Tensor& o) {
    edgelight::et::quantized_shift2d_out(c, x, 0.02, -128, 0.03, 7, s.k, s.d, o); }, "quantized_shift2d requant");
  for (int g : {1, 3}) {
    if (s.c % g) continue;
    check_channels_last<float>(s, ScalarType::Float, [&](KernelRuntimeContext& c, Tensor& x, Tensor& o) {
      edgelight::et::channel_shuffle_out(c, x, g, o); }, "channel_shuffle fp32");
    check_channels_last<int8_t>(s, ScalarType::Char, [&](KernelRuntimeContext& c, Tensor& x, Tensor& o) {
      edgelight::et::channel_shuffle_out(c, x, g, o); }, "channel_shuffle int8");
  }
}

void test_fused(const Shape& s, bool relu) {
  const int ho = (s.h - 1) / s.stride + 1, wo = (s.w - 1) / s.stride + 1;
  Owned<float> x({s.n, s.c, s.h, s.w}, ScalarType::Float), w({s.o, s.c, 1, 1}, ScalarType::Float),
      b({s.o}, ScalarType::Float), out({s.n, s.o, ho, wo}, ScalarType::Float);
  fill_random(x.data), fill_random(w.data), fill_random(b.data);
  KernelRuntimeContext ctx;
  auto xt = x.t(), wt = w.t(), ot = out.t();
  std::optional<executorch::aten::Tensor> bt(b.t());
  edgelight::et::shift_conv1x1_out(ctx, xt, wt, bt, s.stride, s.k, s.d, relu, ot);
  EXPECT(ctx.failure_state() == Error::Ok, "shift_conv1x1 failed");
  std::vector<float> want(out.data.size());
  size_t i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.o; ++o)
      for (int y = 0; y < ho; ++y)
        for (int xx = 0; xx < wo; ++xx) {
          double acc = b.data[o];
          for (int c = 0; c < s.c; ++c)
            acc += double(w.data[o * s.c + c]) * shifted(x.data, s.c, s.h, s.w, n, c, y * s.stride, xx * s.stride, s.k, s.d, 0.f);
          want[i++] = float(relu ? std::fmax(acc, 0.0) : acc);
        }
  EXPECT(count_mismatch(out.data, want, 1e-4 * s.c) == 0, "shift_conv1x1 c=%d o=%d stride=%d", s.c, s.o, s.stride);
}

void test_quantized_fused(const Shape& s, bool relu) {
  const int ho = (s.h - 1) / s.stride + 1, wo = (s.w - 1) / s.stride + 1;
  const double s_in = 0.05, s_mid = 0.06, s_out = 0.4;
  const int zp_in = -128, zp_mid = -100, zp_out = 3;
  Owned<int8_t> x({s.n, s.c, s.h, s.w}, ScalarType::Char), w({s.o, s.c, 1, 1}, ScalarType::Char),
      out({s.n, s.o, ho, wo}, ScalarType::Char);
  Owned<float> ws({s.o}, ScalarType::Float), b({s.o}, ScalarType::Float);
  fill_random(x.data), fill_random(w.data), fill_random(b.data);
  for (auto& v : w.data) v = v == -128 ? -127 : v;  // symmetric weights
  for (int o = 0; o < s.o; ++o) ws.data[o] = 0.002f * float(o + 1);
  KernelRuntimeContext ctx;
  auto xt = x.t(), wt = w.t(), wst = ws.t(), ot = out.t();
  std::optional<executorch::aten::Tensor> bt(b.t());
  edgelight::et::quantized_shift_conv1x1_out(ctx, xt, s_in, zp_in, s_mid, zp_mid, wt, wst, bt, s_out, zp_out, s.stride,
                                             s.k, s.d, relu, ot);
  EXPECT(ctx.failure_state() == Error::Ok, "quantized_shift_conv1x1 failed");
  std::vector<int8_t> want(out.data.size());
  size_t i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.o; ++o)
      for (int y = 0; y < ho; ++y)
        for (int xx = 0; xx < wo; ++xx) {
          int32_t acc = 0;
          for (int c = 0; c < s.c; ++c) {
            int8_t v = shifted<int8_t>(x.data, s.c, s.h, s.w, n, c, y * s.stride, xx * s.stride, s.k, s.d, int8_t(zp_in));
            acc += int32_t(w.data[o * s.c + c]) * (requant(v, s_in, zp_in, s_mid, zp_mid) - zp_mid);
          }
          float v = float(acc) * (float(s_mid) * ws.data[o]) + b.data[o];
          if (relu) v = std::fmax(v, 0.f);
          float r = std::nearbyint(v * (1.0f / float(s_out))) + float(zp_out);
          want[i++] = int8_t(std::fmin(std::fmax(r, -128.f), 127.f));
        }
  // float rounding of the requant multiplier may move a value exactly on a .5 boundary by one step
  const int off = count_mismatch(out.data, want, 0.0), far = count_mismatch(out.data, want, 1.0);
  EXPECT(far == 0 && off <= int(want.size() / 100), "quantized_shift_conv1x1 c=%d o=%d: %d off, %d by >1", s.c, s.o,
         off, far);
}

void test_errors() {
  Owned<float> x({1, 9, 4, 4}, ScalarType::Float), out({1, 9, 4, 4}, ScalarType::Float);
  Owned<float> x3({9, 4, 4}, ScalarType::Float);
  Owned<int8_t> out8({1, 9, 4, 4}, ScalarType::Char);
  auto xt = x.t(), ot = out.t(), x3t = x3.t(), o8 = out8.t();
  {
    KernelRuntimeContext ctx;
    edgelight::et::shift2d_out(ctx, xt, 2, 1, ot);
    EXPECT(ctx.failure_state() == Error::InvalidArgument, "even kernel_size accepted");
  }
  {
    KernelRuntimeContext ctx;
    edgelight::et::shift2d_out(ctx, x3t, 3, 1, ot);
    EXPECT(ctx.failure_state() == Error::InvalidArgument, "3-d input accepted");
  }
  {
    KernelRuntimeContext ctx;
    edgelight::et::shift2d_out(ctx, xt, 3, 1, o8);
    EXPECT(ctx.failure_state() == Error::InvalidArgument, "dtype mismatch accepted");
  }
  {
    KernelRuntimeContext ctx;
    edgelight::et::channel_shuffle_out(ctx, xt, 2, ot);
    EXPECT(ctx.failure_state() == Error::InvalidArgument, "9 channels into 2 groups accepted");
  }
  {
    Owned<float> out_cl({1, 9, 4, 4}, ScalarType::Float, true);
    auto oct = out_cl.t();
    KernelRuntimeContext ctx;
    edgelight::et::shift2d_out(ctx, xt, 3, 1, oct);
    EXPECT(ctx.failure_state() == Error::InvalidArgument, "NCHW input into a channels-last output accepted");
  }
}

}  // namespace

int main() {
  executorch::runtime::runtime_init();
  for (const Shape& s : kShapes) {
    test_shift(s);
    test_quantized_shift(s, 0.02, 5, 0.02, 5);     // same params: memcpy path, fill = zero point
    test_quantized_shift(s, 0.02, -128, 0.03, 7);  // requantizing path
    test_fused(s, false);
    test_fused(s, true);
    test_quantized_fused(s, s.stride == 1);
    test_channels_last(s);
  }
  test_shuffle({2, 12, 3, 5, 3, 1, 1, 1}, 3);
  test_shuffle({1, 10, 1, 7, 3, 1, 1, 1}, 5);
  test_shuffle({3, 7, 2, 2, 3, 1, 1, 1}, 1);
  test_errors();
  std::printf("%s: %d failures\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
