// Reference cross-entropy and log-softmax: plain loops with double reductions, the spec for the
// other backends.
#include "kernels/cross_entropy.h"

#include <cmath>

namespace mambadna::kernels::ref {

namespace {

template <typename T>
double row_lse(const T* row, int64_t V) {
  double mx = row[0];
  for (int64_t v = 1; v < V; ++v) mx = std::fmax(mx, double(row[v]));
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(row[v]) - mx);
  return mx + std::log(s);
}

}  // namespace

template <typename T>
void cross_entropy_forward(T* loss, T* lse, const T* logits, const int32_t* targets,
                           const CrossEntropyParams& p) {
  const char* fn = "cross_entropy_forward";
  cross_entropy_forward_check(fn, loss, lse, logits, p);
  cross_entropy_check_targets(fn, targets, p);
  for (int64_t m = 0; m < p.M; ++m) {
    const T* row = logits + m * p.V;
    const double l = row_lse(row, p.V);
    lse[m] = T(l);
    loss[m] = targets[m] < 0 ? T(0) : T(l - double(row[targets[m]]));
  }
}

template <typename T>
void log_softmax_forward(T* out, const T* logits, const CrossEntropyParams& p) {
  const char* fn = "log_softmax_forward";
  log_softmax_forward_check(fn, out, logits, p);
  for (int64_t m = 0; m < p.M; ++m) {
    const T* row = logits + m * p.V;
    const double l = row_lse(row, p.V);
    for (int64_t v = 0; v < p.V; ++v) out[m * p.V + v] = T(double(row[v]) - l);
  }
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            const T* dloss, const CrossEntropyParams& p) {
  const char* fn = "cross_entropy_backward";
  cross_entropy_backward_check(fn, dlogits, logits, lse, dloss, p);
  cross_entropy_check_targets(fn, targets, p);
  for (int64_t m = 0; m < p.M; ++m) {
    T* drow = dlogits + m * p.V;
    const T* row = logits + m * p.V;
    const int32_t tg = targets[m];
    for (int64_t v = 0; v < p.V; ++v) {
      const double sm = std::exp(double(row[v]) - double(lse[m]));
      drow[v] = tg < 0 ? T(0) : T(double(dloss[m]) * (sm - (v == tg ? 1.0 : 0.0)));
    }
  }
}

template void cross_entropy_forward<float>(float*, float*, const float*, const int32_t*,
                                           const CrossEntropyParams&);
template void cross_entropy_forward<double>(double*, double*, const double*, const int32_t*,
                                            const CrossEntropyParams&);
template void log_softmax_forward<float>(float*, const float*, const CrossEntropyParams&);
template void log_softmax_forward<double>(double*, const double*, const CrossEntropyParams&);
template void cross_entropy_backward<float>(float*, const float*, const float*, const int32_t*,
                                            const float*, const CrossEntropyParams&);
template void cross_entropy_backward<double>(double*, const double*, const double*, const int32_t*,
                                             const double*, const CrossEntropyParams&);

}  // namespace mambadna::kernels::ref
