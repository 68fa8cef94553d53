// A thin float SIMD layer for the CPU kernels: one vector type `vf` of W lanes (16 with AVX-512,
// 8 with AVX2+FMA, 4 with SSE2 (any x86-64), 1 otherwise), its arithmetic, masked partial loads/stores for row tails, and
// vectorised exp, log1p, softplus, sigmoid and silu built on those primitives.
//
// Accuracy (measured against double-precision std:: functions by tests/test_kernels_simd.cpp):
//   exp      <= 1.5 ulp for x in [-87.3, 88]; x < -87.33 gives 0 (no subnormals), x > 88 is clamped
//            to 88 (e^88 ~ 1.65e38). Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, and a
//            degree-7 minimax polynomial for e^r (Cephes' coefficients), scaled by 2^n.
//   log1p_unit  log(1 + a) for a in [0, 1], <= 3 ulp: 2 atanh(s), s = a / (2 + a), odd series
//               to s^15.
//   softplus    max(x, 0) + log1p(exp(-|x|)); x itself above 20 (PyTorch's threshold). <= 4 ulp.
//   sigmoid, silu  1 / (1 + exp(-x)) and x sigmoid(x): <= 3 ulp.
#pragma once
#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace mambadna::kernels::cpu::simd {

#if defined(__AVX512F__)

inline constexpr int W = 16;
struct vf {
  __m512 v;
};
struct vi {
  __m512i v;
};
using vm = __mmask16;
// Zero-masked forms with an all-ones mask are used where GCC 12's plain forms trip
// -Wmaybe-uninitialized (they pass _mm512_undefined_ps() as the merge source).
inline constexpr __mmask16 kAll = 0xffff;

inline vf set1(float x) { return {_mm512_set1_ps(x)}; }
inline vf zero() { return {_mm512_setzero_ps()}; }
inline vf loadu(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void storeu(float* p, vf a) { _mm512_storeu_ps(p, a.v); }
inline __mmask16 lane_mask(int n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
}
// The first n lanes from p (others 0); touches no memory beyond p[n-1].
inline vf load_n(const float* p, int n) {
  return n >= W ? loadu(p) : vf{_mm512_maskz_loadu_ps(lane_mask(n), p)};
}
// The first n lanes from p, the others `fill`.
inline vf load_n_or(const float* p, int n, float fill) {
  return n >= W ? loadu(p) : vf{_mm512_mask_loadu_ps(_mm512_set1_ps(fill), lane_mask(n), p)};
}
inline void store_n(float* p, vf a, int n) {
  if (n >= W)
    storeu(p, a);
  else
    _mm512_mask_storeu_ps(p, lane_mask(n), a.v);
}
inline vf operator+(vf a, vf b) { return {_mm512_add_ps(a.v, b.v)}; }
inline vf operator-(vf a, vf b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline vf operator*(vf a, vf b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline vf operator/(vf a, vf b) { return {_mm512_div_ps(a.v, b.v)}; }
inline vf fma(vf a, vf b, vf c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }    // a b + c
inline vf fnma(vf a, vf b, vf c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }  // c - a b
inline vf min(vf a, vf b) { return {_mm512_maskz_min_ps(kAll, a.v, b.v)}; }
inline vf max(vf a, vf b) { return {_mm512_maskz_max_ps(kAll, a.v, b.v)}; }
inline vf abs(vf a) { return {_mm512_abs_ps(a.v)}; }
inline vf sqrt(vf a) { return {_mm512_maskz_sqrt_ps(kAll, a.v)}; }
inline vm lt(vf a, vf b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
inline vm gt(vf a, vf b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
inline vf select(vm m, vf a, vf b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }  // m ? a : b
template <int I>
inline __m256 half(vf a) {
  return _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(__mmask8(0xf), _mm512_castps_pd(a.v), I));
}
inline float hsum(vf a) {
  const __m256 h = _mm256_add_ps(half<0>(a), half<1>(a));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(vf a) {
  const __m256 h = _mm256_max_ps(half<0>(a), half<1>(a));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// Lane n of the result = hsum(v[n]), for 16 vectors: a transposing tree of 15 adds and 30
// shuffles instead of 16 separate reductions.
inline vf lane_sums16(const vf* v) {
  // Feed the tree in the order that makes its output come out in natural order: the last level
  // leaves the sum of input m in lane 4·(m % 4) + m / 4.
  __m512 a[8], c[4], e[2];
  for (int i = 0; i < 8; ++i) {
    const int m0 = 2 * i, m1 = 2 * i + 1;
    const __m512 x = v[4 * (m0 % 4) + m0 / 4].v, y = v[4 * (m1 % 4) + m1 / 4].v;
    a[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_maskz_shuffle_f32x4(kAll, x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  for (int i = 0; i < 4; ++i)
    c[i] = _mm512_add_ps(
        _mm512_maskz_shuffle_f32x4(kAll, a[2 * i], a[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
        _mm512_maskz_shuffle_f32x4(kAll, a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int i = 0; i < 2; ++i)
    e[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return {_mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(2, 0, 2, 0)),
                        _mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(3, 1, 3, 1)))};
}
#define MAMBADNA_SIMD_LANE_SUMS16 1
// 2^n for integer-valued n in [-126, 127], given as float.
inline vf pow2i(vf n) {
  const __m512i e = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAll, n.v), _mm512_set1_epi32(127));
  return {_mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, e, 23))};
}

#elif defined(__AVX2__) && defined(__FMA__)

inline constexpr int W = 8;
struct vf {
  __m256 v;
};
using vm = __m256;

inline vf set1(float x) { return {_mm256_set1_ps(x)}; }
inline vf zero() { return {_mm256_setzero_ps()}; }
inline vf loadu(const float* p) { return {_mm256_loadu_ps(p)}; }
inline void storeu(float* p, vf a) { _mm256_storeu_ps(p, a.v); }
inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vf load_n(const float* p, int n) {
  return n >= W ? loadu(p) : vf{_mm256_maskload_ps(p, lane_mask(n))};
}
inline vf load_n_or(const float* p, int n, float fill) {
  if (n >= W) return loadu(p);
  const __m256i m = lane_mask(n);
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
}
inline void store_n(float* p, vf a, int n) {
  if (n >= W)
    storeu(p, a);
  else
    _mm256_maskstore_ps(p, lane_mask(n), a.v);
}
inline vf operator+(vf a, vf b) { return {_mm256_add_ps(a.v, b.v)}; }
inline vf operator-(vf a, vf b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline vf operator*(vf a, vf b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline vf operator/(vf a, vf b) { return {_mm256_div_ps(a.v, b.v)}; }
inline vf fma(vf a, vf b, vf c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline vf fnma(vf a, vf b, vf c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
inline vf min(vf a, vf b) { return {_mm256_min_ps(a.v, b.v)}; }
inline vf max(vf a, vf b) { return {_mm256_max_ps(a.v, b.v)}; }
inline vf abs(vf a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline vf sqrt(vf a) { return {_mm256_sqrt_ps(a.v)}; }
inline vm lt(vf a, vf b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
inline vm gt(vf a, vf b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
inline vf select(vm m, vf a, vf b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
inline float hsum(vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline vf pow2i(vf n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}

#elif defined(__SSE2__)

// Plain x86-64 (the `generic` CPU kernels): 4 lanes, and no fused multiply-add in hardware, so
// fma is a multiply then an add (two roundings; __builtin_fmaf would call libm's software fma).
inline constexpr int W = 4;
struct vf {
  __m128 v;
};
using vm = __m128;

inline vf set1(float x) { return {_mm_set1_ps(x)}; }
inline vf zero() { return {_mm_setzero_ps()}; }
inline vf loadu(const float* p) { return {_mm_loadu_ps(p)}; }
inline void storeu(float* p, vf a) { _mm_storeu_ps(p, a.v); }
inline vf load_n_or(const float* p, int n, float fill) {
  if (n >= W) return loadu(p);
  alignas(16) float t[4] = {fill, fill, fill, fill};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return {_mm_load_ps(t)};
}
inline vf load_n(const float* p, int n) { return load_n_or(p, n, 0.0f); }
inline void store_n(float* p, vf a, int n) {
  if (n >= W) return storeu(p, a);
  alignas(16) float t[4];
  _mm_store_ps(t, a.v);
  for (int i = 0; i < n; ++i) p[i] = t[i];
}
inline vf operator+(vf a, vf b) { return {_mm_add_ps(a.v, b.v)}; }
inline vf operator-(vf a, vf b) { return {_mm_sub_ps(a.v, b.v)}; }
inline vf operator*(vf a, vf b) { return {_mm_mul_ps(a.v, b.v)}; }
inline vf operator/(vf a, vf b) { return {_mm_div_ps(a.v, b.v)}; }
inline vf fma(vf a, vf b, vf c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
inline vf fnma(vf a, vf b, vf c) { return {_mm_sub_ps(c.v, _mm_mul_ps(a.v, b.v))}; }
inline vf min(vf a, vf b) { return {_mm_min_ps(a.v, b.v)}; }
inline vf max(vf a, vf b) { return {_mm_max_ps(a.v, b.v)}; }
inline vf abs(vf a) { return {_mm_andnot_ps(_mm_set1_ps(-0.0f), a.v)}; }
inline vf sqrt(vf a) { return {_mm_sqrt_ps(a.v)}; }
inline vm lt(vf a, vf b) { return _mm_cmplt_ps(a.v, b.v); }
inline vm gt(vf a, vf b) { return _mm_cmpgt_ps(a.v, b.v); }
inline vf select(vm m, vf a, vf b) { return {_mm_or_ps(_mm_and_ps(m, a.v), _mm_andnot_ps(m, b.v))}; }
inline float hsum(vf a) {
  const __m128 s = _mm_add_ps(a.v, _mm_movehl_ps(a.v, a.v));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(1, 1, 1, 1))));
}
inline float hmax(vf a) {
  const __m128 s = _mm_max_ps(a.v, _mm_movehl_ps(a.v, a.v));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(1, 1, 1, 1))));
}
inline vf pow2i(vf n) {
  const __m128i e = _mm_add_epi32(_mm_cvtps_epi32(n.v), _mm_set1_epi32(127));
  return {_mm_castsi128_ps(_mm_slli_epi32(e, 23))};
}

#else

inline constexpr int W = 1;
struct vf {
  float v;
};
using vm = bool;

inline vf set1(float x) { return {x}; }
inline vf zero() { return {0.0f}; }
inline vf loadu(const float* p) { return {*p}; }
inline void storeu(float* p, vf a) { *p = a.v; }
inline vf load_n(const float* p, int n) { return {n > 0 ? *p : 0.0f}; }
inline vf load_n_or(const float* p, int n, float fill) { return {n > 0 ? *p : fill}; }
inline void store_n(float* p, vf a, int n) {
  if (n > 0) *p = a.v;
}
inline vf operator+(vf a, vf b) { return {a.v + b.v}; }
inline vf operator-(vf a, vf b) { return {a.v - b.v}; }
inline vf operator*(vf a, vf b) { return {a.v * b.v}; }
inline vf operator/(vf a, vf b) { return {a.v / b.v}; }
inline vf fma(vf a, vf b, vf c) { return {__builtin_fmaf(a.v, b.v, c.v)}; }
inline vf fnma(vf a, vf b, vf c) { return {__builtin_fmaf(-a.v, b.v, c.v)}; }
inline vf min(vf a, vf b) { return {b.v < a.v ? b.v : a.v}; }
inline vf max(vf a, vf b) { return {b.v > a.v ? b.v : a.v}; }
inline vf abs(vf a) { return {__builtin_fabsf(a.v)}; }
inline vf sqrt(vf a) { return {__builtin_sqrtf(a.v)}; }
inline vm lt(vf a, vf b) { return a.v < b.v; }
inline vm gt(vf a, vf b) { return a.v > b.v; }
inline vf select(vm m, vf a, vf b) { return m ? a : b; }
inline float hsum(vf a) { return a.v; }
inline float hmax(vf a) { return a.v; }
inline vf pow2i(vf n) {
  const uint32_t bits = uint32_t(int32_t(n.v) + 127) << 23;
  return {__builtin_bit_cast(float, bits)};
}

#endif

inline vf& operator+=(vf& a, vf b) { return a = a + b; }

// dst[n] += hsum(v[n]) for n < N.
inline void add_lane_sums(float* dst, const vf* v, int N) {
  int n = 0;
#ifdef MAMBADNA_SIMD_LANE_SUMS16
  for (; n + 16 <= N; n += 16) storeu(dst + n, loadu(dst + n) + lane_sums16(v + n));
#endif
  for (; n < N; ++n) dst[n] += hsum(v[n]);
}
inline vf operator-(vf a) { return zero() - a; }

// e^x; see the accuracy note at the top of the file.
inline vf exp(vf x) {
  const vf lo = set1(-87.33654f);  // log(FLT_MIN): below it the result would be subnormal
  const vf xc = max(min(x, set1(88.0f)), lo);
  const vf magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = fma(xc, set1(1.44269504088896341f), magic) - magic;
  vf r = fnma(n, set1(0.693359375f), xc);  // ln2 = 0.693359375 - 2.12194440e-4, split for exactness
  r = fnma(n, set1(-2.12194440e-4f), r);
  vf p = set1(1.9875691500e-4f);
  p = fma(p, r, set1(1.3981999507e-3f));
  p = fma(p, r, set1(8.3334519073e-3f));
  p = fma(p, r, set1(4.1665795894e-2f));
  p = fma(p, r, set1(1.6666665459e-1f));
  p = fma(p, r, set1(5.0000001201e-1f));
  p = fma(p, r * r, r) + set1(1.0f);
  return select(lt(x, lo), zero(), p * pow2i(n));
}

// log(1 + a) for a in [0, 1].
inline vf log1p_unit(vf a) {
  const vf s = a / (set1(2.0f) + a);
  const vf s2 = s * s;
  vf p = set1(1.0f / 15);
  p = fma(p, s2, set1(1.0f / 13));
  p = fma(p, s2, set1(1.0f / 11));
  p = fma(p, s2, set1(1.0f / 9));
  p = fma(p, s2, set1(1.0f / 7));
  p = fma(p, s2, set1(1.0f / 5));
  p = fma(p, s2, set1(1.0f / 3));
  p = fma(p, s2, set1(1.0f));
  return (s + s) * p;
}

inline vf softplus(vf x) {
  const vf sp = max(x, zero()) + log1p_unit(exp(-abs(x)));
  return select(gt(x, set1(20.0f)), x, sp);
}

inline vf sigmoid(vf x) { return set1(1.0f) / (set1(1.0f) + exp(-x)); }
inline vf silu(vf x) { return x * sigmoid(x); }
// d · silu'(x) = d · s (1 + x (1 − s)), s = sigmoid(x): the gradient through a SiLU.
inline vf silu_backward(vf d, vf x) {
  const vf s = sigmoid(x);
  return d * s * fma(x, set1(1.0f) - s, set1(1.0f));
}

}  // namespace mambadna::kernels::cpu::simd
