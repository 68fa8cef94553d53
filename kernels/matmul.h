// A PyTorch Linear: out = in · Wᵀ (+ bias), with row strides so that column slices of wider
// buffers can be read and written in place.
// Letters here: M rows, K input features, N output features.
// Parameter gradients accumulate (+=); din assigns (=), or accumulates when p.accumulate_din.
// Backward: din = dout · W;  dW += doutᵀ · in;  dbias += Σ_m dout[m].
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/check.h"

namespace mambadna::kernels {

struct MatmulParams {
  int64_t M = 0;
  int64_t K = 0;
  int64_t N = 0;
  int64_t ldi = 0;              // row stride of in / din, >= K
  int64_t ldo = 0;              // row stride of out / dout, >= N
  bool accumulate = false;      // forward: out += in · Wᵀ (+ bias) instead of out =
  bool accumulate_din = false;  // backward: din += instead of din =
};

inline void matmul_check(const char* fn, const MatmulParams& p) {
  check::positive(fn, "M", p.M);
  check::positive(fn, "K", p.K);
  check::positive(fn, "N", p.N);
  check::stride(fn, "ldi", p.ldi, "K", p.K);
  check::stride(fn, "ldo", p.ldo, "N", p.N);
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void matmul_forward_check(const char* fn, const void* out, const void* in, const void* W, const MatmulParams& p) {
  matmul_check(fn, p);
  check::not_null(fn, "out", out);
  check::not_null(fn, "in", in);
  check::not_null(fn, "W", W);
}
inline void matmul_backward_check(const char* fn, const void* dW, const void* dout, const void* in, const void* W, const MatmulParams& p) {
  matmul_check(fn, p);
  check::not_null(fn, "dW", dW);
  check::not_null(fn, "dout", dout);
  check::not_null(fn, "in", in);
  check::not_null(fn, "W", W);
}

namespace ref {
template <typename T>
void matmul_forward(T* out,         // (M, N) row stride ldo; = or += (p.accumulate)
                    const T* in,    // (M, K) row stride ldi
                    const T* W,     // (N, K)
                    const T* bias,  // (N) or nullptr
                    const MatmulParams& p);
template <typename T>
void matmul_backward(T* din,    // (M, K) row stride ldi; = or += (p.accumulate_din); or nullptr
                     T* dW,     // (N, K) +=
                     T* dbias,  // (N) += or nullptr
                     const T* dout,  // (M, N) row stride ldo
                     const T* in,    // (M, K) row stride ldi
                     const T* W,     // (N, K)
                     const MatmulParams& p);
}  // namespace ref

namespace cpu {
void matmul_forward(float* out, const float* in, const float* W, const float* bias,
                    const MatmulParams& p);
void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in,
                     const float* W, const MatmulParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
// fp32 operands multiply at set_matmul_precision's precision; bf16 operands (in, W, dout) on
// tensor cores with fp32 sums, the result (out, din) stored as fp32 or bf16. dW, dbias: fp32.
namespace cuda {
void matmul_forward(float* out, const float* in, const float* W, const float* bias,
                    const MatmulParams& p);
void matmul_forward(float* out, const bf16* in, const bf16* W, const float* bias,
                    const MatmulParams& p);
void matmul_forward(bf16* out, const bf16* in, const bf16* W, const float* bias,
                    const MatmulParams& p);
void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in,
                     const float* W, const MatmulParams& p);
void matmul_backward(float* din, float* dW, float* dbias, const bf16* dout, const bf16* in,
                     const bf16* W, const MatmulParams& p);
void matmul_backward(bf16* din, float* dW, float* dbias, const bf16* dout, const bf16* in,
                     const bf16* W, const MatmulParams& p);
// matmul_backward's two products apart, so that they can run on different streams:
// din = dout · W (+= with p.accumulate_din), and dW += doutᵀ · in, dbias += Σ_m dout[m].
void matmul_backward_input(float* din, const float* dout, const float* W, const MatmulParams& p);
void matmul_backward_input(float* din, const bf16* dout, const bf16* W, const MatmulParams& p);
void matmul_backward_input(bf16* din, const bf16* dout, const bf16* W, const MatmulParams& p);
void matmul_backward_weight(float* dW, float* dbias, const float* dout, const float* in,
                            const MatmulParams& p);
void matmul_backward_weight(float* dW, float* dbias, const bf16* dout, const bf16* in,
                            const MatmulParams& p);
}  // namespace cuda

}  // namespace mambadna::kernels
