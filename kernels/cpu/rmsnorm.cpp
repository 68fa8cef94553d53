// CPU RMSNorm: rows in parallel, SIMD along D. The dw reduction sums fixed blocks of rows into
// partials and then adds the partials in order, so the result does not depend on scheduling.
#include "kernels/rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/variant.h"

namespace MAMBADNA_CPU_NS {

namespace {

using simd::vf;
using simd::W;

// Σ_d a[d]·b[d]·c[d] (c may be nullptr for 1), in float lanes summed in double.
double dot3(const float* a, const float* b, const float* c, int64_t n) {
  vf acc0 = simd::zero(), acc1 = simd::zero();
  int64_t d = 0;
  for (; d + 2 * W <= n; d += 2 * W) {
    vf x0 = simd::loadu(a + d) * simd::loadu(b + d);
    vf x1 = simd::loadu(a + d + W) * simd::loadu(b + d + W);
    if (c) {
      x0 = x0 * simd::loadu(c + d);
      x1 = x1 * simd::loadu(c + d + W);
    }
    acc0 += x0;
    acc1 += x1;
  }
  for (; d < n; d += W) {
    const int k = int(std::min<int64_t>(W, n - d));
    vf x = simd::load_n(a + d, k) * simd::load_n(b + d, k);
    if (c) x = x * simd::load_n(c + d, k);
    acc0 += x;
  }
  return double(simd::hsum(acc0)) + double(simd::hsum(acc1));
}

constexpr int64_t kRowBlock = 64;  // rows per dw partial

}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w,
                     const RmsnormParams& p) {
  const char* fn = "rmsnorm_forward";
  rmsnorm_forward_check(fn, y, rstd, x, w, p);
  const int64_t D = p.D;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, p.M, 16), [&](const tbb::blocked_range<int64_t>& rg) {
        for (int64_t m = rg.begin(); m < rg.end(); ++m) {
          const float* xr = x + m * D;
          float* yr = y + m * D;
          const float r = float(1.0 / std::sqrt(dot3(xr, xr, nullptr, D) / double(D) + p.eps));
          rstd[m] = r;
          for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
        }
      });
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p) {
  const char* fn = "rmsnorm_backward";
  rmsnorm_backward_check(fn, dx, dw, dy, x, w, rstd, p);
  const int64_t D = p.D;
  const int64_t blocks = (p.M + kRowBlock - 1) / kRowBlock;
  std::vector<float> partial(blocks * D);
  tbb::parallel_for(int64_t(0), blocks, [&](int64_t blk) {
    float* pw = partial.data() + blk * D;
    for (int64_t d = 0; d < D; ++d) pw[d] = 0.0f;
    for (int64_t m = blk * kRowBlock; m < std::min(p.M, (blk + 1) * kRowBlock); ++m) {
      const float* xr = x + m * D;
      const float* dyr = dy + m * D;
      float* dxr = dx + m * D;
      const float r = rstd[m];
      const float c = float(double(r) * r * r * dot3(dyr, w, xr, D) / double(D));
      for (int64_t d = 0; d < D; ++d) {
        dxr[d] += r * dyr[d] * w[d] - c * xr[d];
        pw[d] += dyr[d] * xr[d] * r;
      }
    }
  });
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, D, 256),
                    [&](const tbb::blocked_range<int64_t>& rg) {
                      for (int64_t blk = 0; blk < blocks; ++blk)
                        for (int64_t d = rg.begin(); d < rg.end(); ++d)
                          dw[d] += partial[blk * D + d];
                    });
}

}  // namespace MAMBADNA_CPU_NS
