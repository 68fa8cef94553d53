// The vectorised math of the CPU kernels against double-precision std:: functions, in ulp.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>

#include "kernels/cpu/simd.h"

namespace simd = mambadna::kernels::cpu::simd;

namespace {

// |got − want| in units of the float ulp at want.
double ulp_error(float got, double want) {
  int e = 0;
  std::frexp(want, &e);
  const double ulp = std::fabs(want) < FLT_MIN ? std::ldexp(1.0, -149) : std::ldexp(1.0, e - 24);
  return std::fabs(double(got) - want) / ulp;
}

template <typename F, typename G>
double max_ulp(float lo, float hi, F f, G g) {
  double worst = 0;
  const int n = 200003;
  for (int i = 0; i <= n; ++i) {
    const float x = float(lo + (double(hi) - lo) * i / n);
    float in[simd::W], out[simd::W];
    for (auto& v : in) v = x;
    simd::storeu(out, f(simd::loadu(in)));
    worst = std::max(worst, ulp_error(out[0], g(double(x))));
  }
  return worst;
}

}  // namespace

TEST_CASE("simd math is accurate to a few ulp", "[kernels][simd]") {
  // The bounds documented in kernels/cpu/simd.h.
  CHECK(max_ulp(
            -87.3f, 88.0f, [](simd::vf x) { return simd::exp(x); },
            [](double x) { return std::exp(x); }) <= 1.5);
  CHECK(max_ulp(
            0.0f, 1.0f, [](simd::vf x) { return simd::log1p_unit(x); },
            [](double x) { return std::log1p(x); }) <= 3.0);
  CHECK(max_ulp(
            -80.0f, 30.0f, [](simd::vf x) { return simd::softplus(x); },
            [](double x) { return x > 20 ? x : std::log1p(std::exp(x)); }) <= 4.0);
  CHECK(max_ulp(
            -80.0f, 80.0f, [](simd::vf x) { return simd::sigmoid(x); },
            [](double x) { return 1 / (1 + std::exp(-x)); }) <= 3.0);
  CHECK(max_ulp(
            -80.0f, 80.0f, [](simd::vf x) { return simd::silu(x); },
            [](double x) { return x / (1 + std::exp(-x)); }) <= 3.0);
  // Out of range: 0 below log(FLT_MIN), finite and huge above 88.
  float in[simd::W], out[simd::W];
  for (auto& v : in) v = -100.0f;
  simd::storeu(out, simd::exp(simd::loadu(in)));
  CHECK(out[0] == 0.0f);
  for (auto& v : in) v = -INFINITY;
  simd::storeu(out, simd::exp(simd::loadu(in)));
  CHECK(out[0] == 0.0f);
}

TEST_CASE("simd lane sums and partial loads", "[kernels][simd]") {
  simd::vf v[32];
  float buf[simd::W];
  for (int n = 0; n < 32; ++n) {
    for (int c = 0; c < simd::W; ++c) buf[c] = float(n * 100 + c);
    v[n] = simd::loadu(buf);
  }
  for (const int N : {1, 5, 16, 21, 32}) {
    float dst[32];
    for (int n = 0; n < 32; ++n) dst[n] = 1.0f;
    simd::add_lane_sums(dst, v, N);
    for (int n = 0; n < 32; ++n) {
      const float want =
          n < N ? 1.0f + float(n * 100 * simd::W + simd::W * (simd::W - 1) / 2) : 1.0f;
      CHECK(dst[n] == want);
    }
  }
  float src[simd::W], dst[simd::W];
  for (int c = 0; c < simd::W; ++c) src[c] = float(c + 1);
  for (int k = 0; k <= simd::W; ++k) {
    for (auto& d : dst) d = -1.0f;
    simd::store_n(dst, simd::load_n(src, k), k);
    for (int c = 0; c < simd::W; ++c) CHECK(dst[c] == (c < k ? src[c] : -1.0f));
  }
}
