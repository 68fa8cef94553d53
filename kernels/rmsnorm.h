// RMSNorm over the last dimension: y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps) per row.
// Letters: M rows, D width.
// Parameter gradients accumulate (+=). dx also ACCUMULATES: x is the residual stream, whose
// gradient already holds the skip connection's part.
// Backward: with g = dy ⊙ w, dx = rstd · g − x · rstd³ · (g · x) / D;  dw += Σ_m dy ⊙ x · rstd.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/check.h"

namespace mambadna::kernels {

struct RmsnormParams {
  int64_t M = 0;
  int64_t D = 0;
  double eps = 1e-5;
};

inline void rmsnorm_check(const char* fn, const RmsnormParams& p) {
  check::positive(fn, "M", p.M);
  check::positive(fn, "D", p.D);
  if (!(p.eps >= 0)) check::fail(fn, "eps (" + std::to_string(p.eps) + ") must be >= 0");
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void rmsnorm_forward_check(const char* fn, const void* y, const void* rstd, const void* x, const void* w, const RmsnormParams& p) {
  rmsnorm_check(fn, p);
  check::not_null(fn, "y", y);
  check::not_null(fn, "rstd", rstd);
  check::not_null(fn, "x", x);
  check::not_null(fn, "w", w);
}
inline void rmsnorm_backward_check(const char* fn, const void* dx, const void* dw, const void* dy, const void* x, const void* w, const void* rstd, const RmsnormParams& p) {
  rmsnorm_check(fn, p);
  check::not_null(fn, "dx", dx);
  check::not_null(fn, "dw", dw);
  check::not_null(fn, "dy", dy);
  check::not_null(fn, "x", x);
  check::not_null(fn, "w", w);
  check::not_null(fn, "rstd", rstd);
}

namespace ref {
template <typename T>
void rmsnorm_forward(T* y,        // (M, D)
                     T* rstd,     // (M), kept for the backward pass
                     const T* x,  // (M, D)
                     const T* w,  // (D)
                     const RmsnormParams& p);
template <typename T>
void rmsnorm_backward(T* dx,          // (M, D) +=
                      T* dw,          // (D) +=
                      const T* dy,    // (M, D)
                      const T* x,     // (M, D)
                      const T* w,     // (D)
                      const T* rstd,  // (M) from the forward pass
                      const RmsnormParams& p);
}  // namespace ref

namespace cpu {
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, const RmsnormParams& p);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
// y and dy may be bf16 (kernels/bf16.h; the residual stream x, dx and w stay fp32); with a bf16
// dy, dx_rounded (or nullptr) also receives dx's new value rounded to bf16 (the operand of the
// next product back).
namespace cuda {
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, const RmsnormParams& p);
void rmsnorm_forward(bf16* y, float* rstd, const float* x, const float* w, const RmsnormParams& p);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p);
void rmsnorm_backward(float* dx, float* dw, const bf16* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p, bf16* dx_rounded = nullptr);
}  // namespace cuda

}  // namespace mambadna::kernels
