// One AdamW step over n parameters (PyTorch torch.optim.AdamW semantics):
//   param −= lr · weight_decay · param
//   m = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
//   param −= lr · (m / (1 − β1^step)) / (sqrt(v / (1 − β2^step)) + eps)
// param, m and v are updated in place.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/check.h"

namespace mambadna::kernels {

struct AdamwParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  int64_t step = 1;  // 1-based, for the bias corrections
};

inline void adamw_check(const char* fn, int64_t n, const AdamwParams& p) {
  check::positive(fn, "n", n);
  check::positive(fn, "step", p.step);
  if (!(p.beta1 >= 0 && p.beta1 < 1))
    check::fail(fn, "beta1 (" + std::to_string(p.beta1) + ") outside [0, 1)");
  if (!(p.beta2 >= 0 && p.beta2 < 1))
    check::fail(fn, "beta2 (" + std::to_string(p.beta2) + ") outside [0, 1)");
  if (!(p.lr >= 0)) check::fail(fn, "lr (" + std::to_string(p.lr) + ") must be >= 0");
  if (!(p.eps > 0)) check::fail(fn, "eps (" + std::to_string(p.eps) + ") must be > 0");
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void adamw_update_check(const char* fn, const void* param, const void* m, const void* v, const void* grad, int64_t n, const AdamwParams& p) {
  adamw_check(fn, n, p);
  check::not_null(fn, "param", param);
  check::not_null(fn, "m", m);
  check::not_null(fn, "v", v);
  check::not_null(fn, "grad", grad);
}

namespace ref {
template <typename T>
void adamw_update(T* param,       // (n) updated in place
                  T* m,           // (n) first moment, in place
                  T* v,           // (n) second moment, in place
                  const T* grad,  // (n)
                  int64_t n, const AdamwParams& p);
}  // namespace ref

namespace cpu {
void adamw_update(float* param, float* m, float* v, const float* grad, int64_t n,
                  const AdamwParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
namespace cuda {
void adamw_update(float* param, float* m, float* v, const float* grad, int64_t n,
                  const AdamwParams& p);
}  // namespace cuda

}  // namespace mambadna::kernels
