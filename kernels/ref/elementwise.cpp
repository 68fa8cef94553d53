// Reference elementwise ops: plain loops, the spec for the CUDA versions and what the CPU model
// runs (see kernels/elementwise.h).
#include "kernels/elementwise.h"

#include <cmath>

namespace mambadna::kernels::ref {

template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void neg_exp_forward(T* out, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = -std::exp(x[i]);
}

template <typename T>
void mul_accumulate(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += a[i] * b[i];
}

template <typename T>
void scale_inplace(T* x, T c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= c;
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

template <typename T>
void loss_weights(T* dloss, const int32_t* targets, T scale, int64_t M) {
  for (int64_t m = 0; m < M; ++m) dloss[m] = targets[m] >= 0 ? scale : T(0);
}

template <typename T>
void logprob_from_loss(T* out, const T* loss, const int32_t* targets, int64_t M) {
  for (int64_t m = 0; m < M; ++m) out[m] = targets[m] >= 0 ? -loss[m] : T(NAN);
}

template <typename T>
void entropy_forward(T* out, const T* logits, const T* lse, int64_t M, int64_t V) {
  for (int64_t m = 0; m < M; ++m) {
    const T* row = logits + m * V;
    T acc = 0;
    for (int64_t v = 0; v < V; ++v) acc += std::exp(row[v] - lse[m]) * row[v];
    out[m] = lse[m] - acc;
  }
}

#define MAMBADNA_ELEMENTWISE(T)                                                     \
  template void add_forward<T>(T*, const T*, const T*, int64_t);                    \
  template void neg_exp_forward<T>(T*, const T*, int64_t);                          \
  template void mul_accumulate<T>(T*, const T*, const T*, int64_t);                 \
  template void scale_inplace<T>(T*, T, int64_t);                                   \
  template double sum_squares<T>(const T*, int64_t);                                \
  template void loss_weights<T>(T*, const int32_t*, T, int64_t);                    \
  template void logprob_from_loss<T>(T*, const T*, const int32_t*, int64_t);        \
  template void entropy_forward<T>(T*, const T*, const T*, int64_t, int64_t);
MAMBADNA_ELEMENTWISE(float)
MAMBADNA_ELEMENTWISE(double)
#undef MAMBADNA_ELEMENTWISE

}  // namespace mambadna::kernels::ref
