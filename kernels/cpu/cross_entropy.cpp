// CPU cross-entropy and log-softmax: rows in parallel, SIMD along V.
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/variant.h"

namespace MAMBADNA_CPU_NS {

namespace {

using simd::vf;
using simd::W;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// log Σ_v exp(row[v]): the max is subtracted first, the sum runs in float lanes.
float row_lse(const float* row, int64_t V) {
  vf mx = simd::set1(kNegInf);
  for (int64_t v = 0; v < V; v += W)
    mx = simd::max(mx, simd::load_n_or(row + v, int(std::min<int64_t>(W, V - v)), kNegInf));
  const float m = simd::hmax(mx);
  vf s = simd::zero();
  for (int64_t v = 0; v < V; v += W)  // lanes past the end read −inf and add exp(−inf) = 0
    s += simd::exp(simd::load_n_or(row + v, int(std::min<int64_t>(W, V - v)), kNegInf) -
                   simd::set1(m));
  return m + std::log(simd::hsum(s));
}

template <typename F>
void for_rows(int64_t M, F&& f) {
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, M, 16),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t m = r.begin(); m < r.end(); ++m) f(m);
                    });
}

}  // namespace

void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                           const CrossEntropyParams& p) {
  const char* fn = "cross_entropy_forward";
  cross_entropy_forward_check(fn, loss, lse, logits, p);
  cross_entropy_check_targets(fn, targets, p);
  for_rows(p.M, [&](int64_t m) {
    const float* row = logits + m * p.V;
    const float l = row_lse(row, p.V);
    lse[m] = l;
    loss[m] = targets[m] < 0 ? 0.0f : l - row[targets[m]];
  });
}

void log_softmax_forward(float* out, const float* logits, const CrossEntropyParams& p) {
  const char* fn = "log_softmax_forward";
  log_softmax_forward_check(fn, out, logits, p);
  for_rows(p.M, [&](int64_t m) {
    const float* row = logits + m * p.V;
    const float l = row_lse(row, p.V);
    for (int64_t v = 0; v < p.V; ++v) out[m * p.V + v] = row[v] - l;
  });
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p) {
  const char* fn = "cross_entropy_backward";
  cross_entropy_backward_check(fn, dlogits, logits, lse, dloss, p);
  cross_entropy_check_targets(fn, targets, p);
  for_rows(p.M, [&](int64_t m) {
    float* drow = dlogits + m * p.V;
    const float* row = logits + m * p.V;
    const int32_t tg = targets[m];
    const vf l = simd::set1(lse[m]), g = simd::set1(tg < 0 ? 0.0f : dloss[m]);
    for (int64_t v = 0; v < p.V; v += W) {
      const int k = int(std::min<int64_t>(W, p.V - v));
      simd::store_n(drow + v, g * simd::exp(simd::load_n(row + v, k) - l), k);
    }
    if (tg >= 0) drow[tg] -= dloss[m];
  });
}

}  // namespace MAMBADNA_CPU_NS
