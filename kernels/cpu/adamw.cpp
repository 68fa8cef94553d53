// CPU AdamW step: blocks of parameters in parallel, SIMD within a block.
#include "kernels/adamw.h"

#include <algorithm>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/variant.h"

namespace MAMBADNA_CPU_NS {

void adamw_update(float* param, float* m, float* v, const float* grad, int64_t n,
                  const AdamwParams& p) {
  const char* fn = "adamw_update";
  adamw_update_check(fn, param, m, v, grad, n, p);
  using simd::vf;
  const double bc1 = 1 - std::pow(p.beta1, double(p.step));
  const double bc2 = 1 - std::pow(p.beta2, double(p.step));
  const vf decay = simd::set1(float(1 - p.lr * p.weight_decay));
  const vf b1 = simd::set1(float(p.beta1)), c1 = simd::set1(float(1 - p.beta1));
  const vf b2 = simd::set1(float(p.beta2)), c2 = simd::set1(float(1 - p.beta2));
  const vf step_size = simd::set1(float(p.lr / bc1));
  const vf inv_sqrt_bc2 = simd::set1(float(1 / std::sqrt(bc2)));
  const vf eps = simd::set1(float(p.eps));
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 1 << 14),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t i = r.begin(); i < r.end(); i += simd::W) {
                        const int k = int(std::min<int64_t>(simd::W, r.end() - i));
                        const vf g = simd::load_n(grad + i, k);
                        const vf mi = fma(b1, simd::load_n(m + i, k), c1 * g);
                        const vf vi = fma(b2, simd::load_n(v + i, k), c2 * g * g);
                        const vf denom = fma(simd::sqrt(vi), inv_sqrt_bc2, eps);
                        const vf x = simd::load_n(param + i, k) * decay - step_size * mi / denom;
                        simd::store_n(param + i, x, k);
                        simd::store_n(m + i, mi, k);
                        simd::store_n(v + i, vi, k);
                      }
                    });
}

}  // namespace MAMBADNA_CPU_NS
