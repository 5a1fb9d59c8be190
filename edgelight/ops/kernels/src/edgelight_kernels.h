// Plain C++ cores of the edgelight kernels: raw pointers, contiguous NCHW, no runtime types.
// The ExecuTorch wrappers (edgelight_ops.cpp), the sanitizer test and the benchmark all call these.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace edgelight {

// Direction of channel c for a k x k shift with dilation d (shift.py): out[c,y,x] = in[c,y+dy,x+dx].
inline void shift_offset(int64_t c, int k, int d, int* dy, int* dx) {
  const int g = static_cast<int>(c % (k * k));
  *dx = d * (g % k - k / 2);
  *dy = d * ((g / k) % k - k / 2);
}

inline int64_t shifted_channels(int64_t C, int k) { return C / (k * k) * (k * k); }

// memcpy, except when dst is just ahead of src modulo 4 KiB (a shift by -1 column): a forward copy then
// stalls on 4K aliasing (loads falsely wait on the stores just issued; 10x slower on x86), so copy backward.
inline void shift_copy(const void* src, void* dst, size_t bytes) {
  const size_t delta = (reinterpret_cast<uintptr_t>(dst) - reinterpret_cast<uintptr_t>(src)) & 4095;
  if (delta == 0 || delta >= 256 || bytes < 512) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  size_t i = bytes;
  for (; i >= 64; i -= 64) std::memcpy(d + i - 64, s + i - 64, 64);  // fixed size: inlined vector moves
  std::memcpy(d, s, i);
}

template <typename T>
struct CopyMap {
  void operator()(const T* s, T* d, int64_t n) const { shift_copy(s, d, n * sizeof(T)); }
};

// One plane: dst[y, x] = src[y + dy, x + dx] inside the image, else fill. The in-image part of all rows is
// one contiguous run in both src and dst (row pitch W on both sides), so it is a single map/memcpy call;
// the |dx| columns it wraps into from the neighbouring row are then overwritten with the fill.
template <typename T, typename Map>
inline void shift_plane(const T* src, T* dst, int64_t H, int64_t W, int dy, int dx, T fill, Map map) {
  const int64_t y0 = std::max<int64_t>(0, -dy), y1 = std::min<int64_t>(H, H - dy);
  const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(W, W - dx);
  if (y1 <= y0 || x1 <= x0) {
    std::fill(dst, dst + H * W, fill);
    return;
  }
  std::fill(dst, dst + y0 * W, fill);
  std::fill(dst + y1 * W, dst + H * W, fill);
  const int64_t a = y0 * W + x0, b = (y1 - 1) * W + x1;  // first and one-past-last in-image element
  map(src + a + dy * W + dx, dst + a, b - a);
  // column-major on purpose: a row-wise loop here becomes one tiny memset call per row (loop idioms)
  for (int64_t x = 0; x < x0; ++x)
    for (int64_t y = y0; y < y1; ++y) dst[y * W + x] = fill;
  for (int64_t x = x1; x < W; ++x)
    for (int64_t y = y0; y < y1; ++y) dst[y * W + x] = fill;
}

// A 256-entry int8 -> int8 table: dequantize with (in_scale, in_zp), requantize with (out_scale, out_zp),
// exactly the float math of quantized_decomposed dequantize/quantize_per_tensor (round half to even).
struct Requant {
  int8_t lut[256];
  bool identity = true;
  Requant(double in_scale, int64_t in_zp, double out_scale, int64_t out_zp, int64_t qmin = -128, int64_t qmax = 127) {
    const float inv = 1.0f / static_cast<float>(out_scale);
    for (int q = -128; q < 128; ++q) {
      const float x = static_cast<float>(q - in_zp) * static_cast<float>(in_scale);
      float r = std::nearbyint(x * inv) + static_cast<float>(out_zp);
      r = std::min(std::max(r, static_cast<float>(qmin)), static_cast<float>(qmax));
      lut[q + 128] = static_cast<int8_t>(r);
      identity = identity && lut[q + 128] == q;
    }
  }
  void operator()(const int8_t* s, int8_t* d, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) d[i] = lut[s[i] + 128];
  }
};

// (dy, dx) of the k*k direction groups, computed once per call: integer division per channel costs more
// than copying a small plane.
struct Offsets {
  std::vector<int> dy, dx;
  int64_t main, k2;
  Offsets(int64_t C, int k, int d) : dy(k * k), dx(k * k), main(shifted_channels(C, k)), k2(k * k) {
    for (int g = 0; g < k * k; ++g) shift_offset(g, k, d, &dy[g], &dx[g]);
  }
};

// shift2d over [N, C, H, W]; `map` copies (or requantizes) the in-image part of each plane.
template <typename T, typename Map>
void shift2d(const T* in, T* out, int64_t N, int64_t C, int64_t H, int64_t W, int k, int d, T fill, Map map) {
  const Offsets off(C, k, d);
  const int64_t plane = H * W;
  for (int64_t n = 0; n < N; ++n) {
    int64_t g = 0;
    for (int64_t c = 0; c < C; ++c, g = (g + 1 == off.k2) ? 0 : g + 1) {
      const T* src = in + (n * C + c) * plane;
      T* dst = out + (n * C + c) * plane;
      if (c < off.main)
        shift_plane(src, dst, H, W, off.dy[g], off.dx[g], fill, map);
      else
        map(src, dst, plane);
    }
  }
}

// ShuffleNet shuffle: out[:, j*g + i] = in[:, i*(C/g) + j]; a permutation of whole planes, any element size.
inline void channel_shuffle(const void* in, void* out, int64_t N, int64_t C, int64_t plane_bytes, int64_t groups) {
  const int64_t per = C / groups;
  const char* s = static_cast<const char*>(in);
  char* o = static_cast<char*>(out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < groups; ++i)
      for (int64_t j = 0; j < per; ++j)
        std::memcpy(o + ((n * C) + j * groups + i) * plane_bytes, s + ((n * C) + i * per + j) * plane_bytes, plane_bytes);
}

// ---- channels-last (NHWC) forms: what runs between XNNPACK partitions that hand over NHWC tensors, so the
// boundary needs no transpose. Per output pixel the C channels gather from their k*k neighbour pixels; an
// interior pixel (every neighbour in the image) reads through one table of source offsets, no bounds checks.

template <typename T>
struct Same {
  T operator()(T v) const { return v; }
};

struct Lut1 {
  const int8_t* lut;
  int8_t operator()(int8_t v) const { return lut[v + 128]; }
};

struct PixelOffsets {
  std::vector<int64_t> delta;  // channel c reads in_pixel + delta[c] (elements)
  std::vector<int> dy, dx;
  int reach;  // max |offset| in pixels
  PixelOffsets(int64_t C, int64_t W, int k, int d) : delta(C), dy(C), dx(C), reach(std::abs(d) * (k / 2)) {
    const Offsets off(C, k, d);
    for (int64_t c = 0; c < C; ++c) {
      dy[c] = c < off.main ? off.dy[c % off.k2] : 0;
      dx[c] = c < off.main ? off.dx[c % off.k2] : 0;
      delta[c] = (dy[c] * W + dx[c]) * C + c;
    }
  }
};

// shift2d on [N, H, W, C] memory, one gather per value; `map1` maps one value (identity, or the requantization
// table). The copy-only case takes shift2d_nhwc_copy below, which blends whole rows.
template <typename T, typename Map1>
void shift2d_nhwc(const T* in, T* out, int64_t N, int64_t C, int64_t H, int64_t W, int k, int d, T fill, Map1 map1) {
  const PixelOffsets off(C, W, k, d);
  const int64_t* delta = off.delta.data();
  const int r = off.reach;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t at = ((n * H + y) * W + x) * C;
        const T* p = in + at;
        T* o = out + at;
        if (y >= r && y < H - r && x >= r && x < W - r) {
          for (int64_t c = 0; c < C; ++c) o[c] = map1(p[delta[c]]);
        } else {
          for (int64_t c = 0; c < C; ++c) {
            const int64_t sy = y + off.dy[c], sx = x + off.dx[c];
            o[c] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? map1(p[delta[c]]) : fill;
          }
        }
      }
}

// ---- the copy-only int8 NHWC shift as row blends. Output row y (W*C bytes) takes each byte from one of k*k
// source rows: row y+dy shifted by dx pixels, picked by the byte's channel (c mod k^2; pass-through channels read
// the centre). One pass over the row, 32 bytes at a time: the group of each byte (a row pattern built once per
// shape), k*k loads, k*k - 1 compare-and-blends, one store. Border pixels (|dx| columns each side) keep the
// per-value form; rows past the image read a row of fill values. Measured (bench/kernels.py): 2-2.5x the
// per-value gather in int8, but slower in fp32 (four times the vectors for the same pixels), and only where
// the target has a byte blend (AVX2, NEON; SSE2 alone would scalarize it), so elsewhere the gather stays.

// GCC/Clang vectors: AVX2, or two SSE2 / NEON registers. Signed bytes, so that `m < 0 ? a : b` is one
// byte blend on the mask's sign bit (vpblendvb, pblendvb, bsl).
using Bytes32 = int8_t __attribute__((vector_size(32)));

inline Bytes32 load32(const uint8_t* p) {
  Bytes32 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct RowMasks {
  int64_t C, W, es;
  int k;
  std::vector<uint8_t> bytes;  // W*C*es bytes: the direction group of each byte of a row
};

// Masks depend on the shape only; a model has a handful of shapes, so a small per-thread cache holds them.
inline const RowMasks& row_masks(int64_t C, int64_t W, int64_t es, int k) {
  thread_local std::vector<RowMasks> cache;
  for (const RowMasks& m : cache)
    if (m.C == C && m.W == W && m.es == es && m.k == k) return m;
  if (cache.size() >= 32) cache.erase(cache.begin());
  const int64_t k2 = int64_t(k) * k, main = shifted_channels(C, k), row = W * C * es;
  RowMasks m{C, W, es, k, std::vector<uint8_t>(row, 0)};
  for (int64_t x = 0; x < W; ++x)
    for (int64_t c = 0; c < C; ++c)  // k2 / 2: the centre, (dy, dx) = (0, 0)
      std::memset(&m.bytes[(x * C + c) * es], int(c < main ? c % k2 : k2 / 2), es);
  cache.push_back(std::move(m));
  return cache.back();
}

template <typename T>
void shift2d_nhwc_copy(const T* in, T* out, int64_t N, int64_t C, int64_t H, int64_t W, int k, int d, T fill) {
  const int r = std::abs(d) * (k / 2);
  const int64_t es = sizeof(T), px = C * es, row = W * px, lo = r * px, hi = (W - r) * px;
#if defined(__AVX2__) || defined(__ARM_NEON)
  constexpr bool kByteBlend = sizeof(T) == 1;
#else
  constexpr bool kByteBlend = false;
#endif
  if (!kByteBlend || W <= 2 * r || hi - lo < 32 || k * k > 64) {
    shift2d_nhwc(in, out, N, C, H, W, k, d, fill, Same<T>{});
    return;
  }
  const Offsets off(C, k, d);
  const int k2 = off.k2, centre = k2 / 2;
  const uint8_t* masks = row_masks(C, W, es, k).bytes.data();
  std::vector<T> fill_row(W * C, fill);
  const PixelOffsets pix(C, W, k, d);
  const uint8_t* src[64];  // k*k <= 64 (larger kernels took the per-value form above)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y) {
      for (int g = 0; g < k2; ++g) {
        const int64_t sy = y + off.dy[g];
        src[g] = sy >= 0 && sy < H ? reinterpret_cast<const uint8_t*>(in + (n * H + sy) * W * C) + off.dx[g] * px
                                   : reinterpret_cast<const uint8_t*>(fill_row.data());
      }
      uint8_t* o = reinterpret_cast<uint8_t*>(out + (n * H + y) * W * C);
      int64_t i = lo;
      for (; i + 32 <= hi; i += 32) {
        const Bytes32 group = load32(masks + i);
        Bytes32 v = load32(src[centre] + i);
        for (int g = 0; g < k2; ++g)
          if (g != centre) v = group == int8_t(g) ? load32(src[g] + i) : v;
        std::memcpy(o + i, &v, sizeof v);
      }
      for (; i < hi; ++i) o[i] = src[masks[i]][i];  // the row's last bytes
      // the border columns: per value, with bounds checks
      const T* base = in + (n * H + y) * W * C;
      T* orow = out + (n * H + y) * W * C;
      for (int64_t x = 0; r > 0 && x < W; x = (x + 1 == r) ? W - r : x + 1)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t sy = y + pix.dy[c], sx = x + pix.dx[c];
          orow[x * C + c] = sy >= 0 && sy < H && sx >= 0 && sx < W ? base[x * C + pix.delta[c]] : fill;
        }
    }
}

// channel_shuffle on [N*H*W pixels, C] memory: each pixel's channels permuted (out[j*g + i] = in[i*(C/g) + j]).
// For the small group counts models use, the group loop has a compile-time trip count: the compiler turns it
// into interleaving stores (zip / vst2-4) instead of one indexed load per value.
template <int G, typename T>
void channel_shuffle_pixels(const T* in, T* out, int64_t pixels, int64_t C) {
  const int64_t per = C / G;
  for (int64_t p = 0; p < pixels; ++p, in += C, out += C)
    for (int64_t j = 0; j < per; ++j)
      for (int i = 0; i < G; ++i) out[j * G + i] = in[i * per + j];
}

template <typename T>
void channel_shuffle_nhwc(const T* in, T* out, int64_t pixels, int64_t C, int64_t groups) {
  switch (groups) {
    case 2: return channel_shuffle_pixels<2>(in, out, pixels, C);
    case 3: return channel_shuffle_pixels<3>(in, out, pixels, C);
    case 4: return channel_shuffle_pixels<4>(in, out, pixels, C);
    case 8: return channel_shuffle_pixels<8>(in, out, pixels, C);
    default: break;
  }
  const int64_t per = C / groups;
  std::vector<int64_t> src(C);
  for (int64_t i = 0; i < groups; ++i)
    for (int64_t j = 0; j < per; ++j) src[j * groups + i] = i * per + j;
  for (int64_t p = 0; p < pixels; ++p, in += C, out += C)
    for (int64_t c = 0; c < C; ++c) out[c] = in[src[c]];
}

// ---- fused shift -> 1x1 conv (stride s, no padding) ------------------------------------------------
// For each output row the shifted inputs of that row are gathered into a small panel [C][Wp] (L1-sized,
// never a shifted copy of the tensor), then a register-blocked 8x8 micro-GEMM consumes it.

constexpr int kTile = 8;
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Gathers row yo of the shifted input at stride s into panel[c * Wp + xo]; `conv` maps T -> accumulator type.
template <typename T, typename P, typename Conv>
void gather_panel(const T* img, P* panel, int64_t C, int64_t H, int64_t W, int64_t Wo, int64_t Wp, int64_t y, int s,
                  const Offsets& off, P fill, Conv conv) {
  int64_t g = 0;
  for (int64_t c = 0; c < C; ++c, g = (g + 1 == off.k2) ? 0 : g + 1) {
    const int dy = c < off.main ? off.dy[g] : 0, dx = c < off.main ? off.dx[g] : 0;
    P* row = panel + c * Wp;
    const int64_t sy = y + dy;
    std::fill(row + Wo, row + Wp, P(0));
    if (sy < 0 || sy >= H) {
      std::fill(row, row + Wo, fill);
      continue;
    }
    const T* src = img + (c * H + sy) * W;
    for (int64_t xo = 0; xo < Wo; ++xo) {
      const int64_t sx = xo * s + dx;
      row[xo] = (sx >= 0 && sx < W) ? conv(src[sx]) : fill;
    }
  }
}

// GCC/Clang vector extensions: 8 lanes = one AVX register or two NEON registers, no intrinsics per ISA.
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef int16_t i16x8 __attribute__((vector_size(16)));

// acc[o][x] for 8 output channels x 8 columns: wt is the packed weight [C][Op], panel [C][Wp].
// The 8 accumulators stay in registers across the C loop (a plain array did not: 2-8x slower).
inline void micro_gemm(const float* wt, const float* panel, int64_t C, int64_t Op, int64_t Wp, int64_t o0, int64_t x0,
                       float (*out)[kTile]) {
  f32x8 acc[kTile] = {};
  for (int64_t c = 0; c < C; ++c) {
    f32x8 p;
    std::memcpy(&p, panel + c * Wp + x0, sizeof(p));
    const float* w = wt + c * Op + o0;
    for (int i = 0; i < kTile; ++i) acc[i] += w[i] * p;
  }
  std::memcpy(out, acc, sizeof(acc));
}

inline void micro_gemm(const int16_t* wt, const int16_t* panel, int64_t C, int64_t Op, int64_t Wp, int64_t o0,
                       int64_t x0, int32_t (*out)[kTile]) {
  i32x8 acc[kTile] = {};
  for (int64_t c = 0; c < C; ++c) {
    i16x8 p16;
    std::memcpy(&p16, panel + c * Wp + x0, sizeof(p16));
    const i32x8 p = __builtin_convertvector(p16, i32x8);
    const int16_t* w = wt + c * Op + o0;
    for (int i = 0; i < kTile; ++i) acc[i] += static_cast<int32_t>(w[i]) * p;
  }
  std::memcpy(out, acc, sizeof(acc));
}

// fp32: out[n,o,yo,xo] = act(bias[o] + sum_c w[o,c] * shifted(x)[n,c,yo*s,xo*s]).
inline void shift_conv1x1_f32(const float* x, const float* w, const float* bias, float* out, int64_t N, int64_t C,
                              int64_t H, int64_t W, int64_t O, int s, int k, int d, bool relu) {
  const int64_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1, Wp = round_up(Wo, kTile), Op = round_up(O, kTile);
  std::vector<float> wt(C * Op, 0.f), panel(C * Wp);
  const Offsets off(C, k, d);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) wt[c * Op + o] = w[o * C + c];
  alignas(32) float acc[kTile][kTile];
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t yo = 0; yo < Ho; ++yo) {
      gather_panel(x + n * C * H * W, panel.data(), C, H, W, Wo, Wp, yo * s, s, off, 0.f, [](float v) { return v; });
      for (int64_t o0 = 0; o0 < Op; o0 += kTile) {
        for (int64_t x0 = 0; x0 < Wp; x0 += kTile) {
          micro_gemm(wt.data(), panel.data(), C, Op, Wp, o0, x0, acc);
          for (int i = 0; i < kTile && o0 + i < O; ++i) {
            float* dst = out + ((n * O + o0 + i) * Ho + yo) * Wo;
            const float b = bias ? bias[o0 + i] : 0.f;
            for (int j = 0; j < kTile && x0 + j < Wo; ++j) {
              const float v = acc[i][j] + b;
              dst[x0 + j] = relu ? std::max(v, 0.f) : v;
            }
          }
        }
      }
    }
  }
}

// int8: x quantized (in_scale, in_zp), requantized to the conv's input params (mid) exactly as the unfused
// dq -> shift -> q graph does; weight int8 symmetric per output channel; bias fp32; out (out_scale, out_zp).
// P/A: int16 panel with int32 accumulators, or float for both: the products (q - zp) * w are integers
// below 255 * 127, so float sums stay exact while C * 255 * 127 < 2^24, and the fp32 FMA path is faster.
template <typename P, typename A>
void shift_conv1x1_q8_impl(const int8_t* x, double in_scale, int64_t in_zp, double mid_scale, int64_t mid_zp,
                           const int8_t* w, const float* w_scales, const float* bias, double out_scale,
                           int64_t out_zp, int8_t* out, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int s,
                           int k, int d, bool relu) {
  const int64_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1, Wp = round_up(Wo, kTile), Op = round_up(O, kTile);
  const Requant rq(in_scale, in_zp, mid_scale, mid_zp);
  std::vector<P> wt(C * Op, P(0)), panel(C * Wp);
  const Offsets off(C, k, d);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) wt[c * Op + o] = w[o * C + c];
  std::vector<float> mult(Op, 0.f), badd(Op, 0.f);
  const float inv_out = 1.0f / static_cast<float>(out_scale);
  for (int64_t o = 0; o < O; ++o) {
    mult[o] = static_cast<float>(mid_scale) * w_scales[o];
    badd[o] = bias ? bias[o] : 0.f;
  }
  const float lo = relu ? static_cast<float>(std::max<int64_t>(out_zp, -128)) : -128.f;
  // zero in the fp32 domain is mid_zp, i.e. 0 after subtracting the zero point
  auto conv = [&](int8_t q) { return static_cast<P>(rq.lut[q + 128] - mid_zp); };
  alignas(32) A acc[kTile][kTile];
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t yo = 0; yo < Ho; ++yo) {
      gather_panel(x + n * C * H * W, panel.data(), C, H, W, Wo, Wp, yo * s, s, off, P(0), conv);
      for (int64_t o0 = 0; o0 < Op; o0 += kTile) {
        for (int64_t x0 = 0; x0 < Wp; x0 += kTile) {
          micro_gemm(wt.data(), panel.data(), C, Op, Wp, o0, x0, acc);
          for (int i = 0; i < kTile && o0 + i < O; ++i) {
            int8_t* dst = out + ((n * O + o0 + i) * Ho + yo) * Wo;
            for (int j = 0; j < kTile && x0 + j < Wo; ++j) {
              // same float steps as dq(acc) + bias -> (relu) -> quantize_per_tensor
              const float v = static_cast<float>(acc[i][j]) * mult[o0 + i] + badd[o0 + i];
              float r = std::nearbyint(v * inv_out) + static_cast<float>(out_zp);
              r = std::min(std::max(r, lo), 127.f);
              dst[x0 + j] = static_cast<int8_t>(r);
            }
          }
        }
      }
    }
  }
}

inline void shift_conv1x1_q8(const int8_t* x, double in_scale, int64_t in_zp, double mid_scale, int64_t mid_zp,
                             const int8_t* w, const float* w_scales, const float* bias, double out_scale,
                             int64_t out_zp, int8_t* out, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int s,
                             int k, int d, bool relu) {
  if (C * 255 * 127 < (int64_t(1) << 24))
    shift_conv1x1_q8_impl<float, float>(x, in_scale, in_zp, mid_scale, mid_zp, w, w_scales, bias, out_scale, out_zp,
                                        out, N, C, H, W, O, s, k, d, relu);
  else
    shift_conv1x1_q8_impl<int16_t, int32_t>(x, in_scale, in_zp, mid_scale, mid_zp, w, w_scales, bias, out_scale,
                                            out_zp, out, N, C, H, W, O, s, k, d, relu);
}

}  // namespace edgelight
