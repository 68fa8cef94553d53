// Depthwise causal convolution along t with a carried window (Mamba's conv1d, PyTorch weight
// (E, 1, K) flattened to (E, K)), bias and optional fused SiLU:
//   pre[b,t,e] = bias[e] + Σ_{k<K} w[e,k] · xx(b, t − (K−1) + k, e)
//   u[b,t,e]   = silu(pre) if p.silu else pre
// where xx(b, j, e) = x[b,j,e] for j >= 0 and window_in[b,e,K−1+j] for j < 0: the window holds
// the last K−1 inputs of the previous chunk, OLDEST FIRST (zeros when window_in is nullptr).
// window_out receives the last K−1 inputs after this chunk (partly from window_in when L < K−1);
// it may alias window_in. L may be 1 (recurrent step) or smaller than K−1.
// Letters: B streams, L chunk length, E channels, K kernel width.
// Parameter gradients accumulate (+=); activation gradients (dx, dwindow_in) assign (=).
// Backward (pre is recomputed from the inputs): with g = du · silu'(pre) (or du),
//   dx / dwindow_in at input position j  = Σ_k w[e,k] · g[j + (K−1) − k]  (over t in [0, L))
//                                          + dwindow_out at j (j >= L − (K−1): the carried window)
//   dw[e,k] += Σ_{b,t} g[b,t,e] · xx(b, t − (K−1) + k, e);   dbias[e] += Σ_{b,t} g[b,t,e].
// dwindow_out, the gradient flowing into window_out from the next chunk, may alias dwindow_in.
// No other buffers may alias: u not x, dx neither x nor du (the device kernels read a tile's
// neighbours' inputs, which other blocks would be overwriting).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/check.h"

namespace mambadna::kernels {

struct CausalConv1dParams {
  int64_t B = 0;
  int64_t L = 0;
  int64_t E = 0;
  int64_t K = 0;     // kernel width (d_conv)
  int64_t ld_x = 0;  // row stride of x / dx, >= E
  bool silu = true;  // apply SiLU to the output
};

inline void causal_conv1d_check(const char* fn, const CausalConv1dParams& p) {
  check::positive(fn, "B", p.B);
  check::positive(fn, "L", p.L);
  check::positive(fn, "E", p.E);
  check::positive(fn, "K", p.K);
  check::stride(fn, "ld_x", p.ld_x, "E", p.E);
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void causal_conv1d_forward_check(const char* fn, const void* u, const void* x, const void* w, const CausalConv1dParams& p) {
  causal_conv1d_check(fn, p);
  check::not_null(fn, "u", u);
  check::not_null(fn, "x", x);
  check::not_null(fn, "w", w);
}
inline void causal_conv1d_backward_check(const char* fn, const void* dx, const void* dw, const void* du, const void* x, const void* w, const CausalConv1dParams& p) {
  causal_conv1d_check(fn, p);
  check::not_null(fn, "dx", dx);
  check::not_null(fn, "dw", dw);
  check::not_null(fn, "du", du);
  check::not_null(fn, "x", x);
  check::not_null(fn, "w", w);
}

namespace ref {
template <typename T>
void causal_conv1d_forward(T* u,                // (B, L, E)
                           T* window_out,       // (B, E, K-1) or nullptr; may alias window_in
                           const T* x,          // (B, L, E) row stride ld_x
                           const T* w,          // (E, K)
                           const T* bias,       // (E) or nullptr
                           const T* window_in,  // (B, E, K-1) or nullptr for zeros
                           const CausalConv1dParams& p);
template <typename T>
void causal_conv1d_backward(T* dx,                 // (B, L, E) row stride ld_x
                            T* dwindow_in,         // (B, E, K-1) or nullptr
                            T* dw,                 // (E, K) +=
                            T* dbias,              // (E) += or nullptr
                            const T* du,           // (B, L, E)
                            const T* dwindow_out,  // (B, E, K-1) or nullptr for zeros
                            const T* x,            // (B, L, E) row stride ld_x
                            const T* w,            // (E, K)
                            const T* bias,         // (E) or nullptr
                            const T* window_in,    // (B, E, K-1) or nullptr for zeros
                            const CausalConv1dParams& p);
}  // namespace ref

namespace cpu {
void causal_conv1d_forward(float* u, float* window_out, const float* x, const float* w,
                           const float* bias, const float* window_in, const CausalConv1dParams& p);
void causal_conv1d_backward(float* dx, float* dwindow_in, float* dw, float* dbias, const float* du,
                            const float* dwindow_out, const float* x, const float* w,
                            const float* bias, const float* window_in, const CausalConv1dParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
// x, u, du and dx may be bf16 (kernels/bf16.h); the windows, w, bias and their gradients are fp32.
namespace cuda {
void causal_conv1d_forward(float* u, float* window_out, const float* x, const float* w,
                           const float* bias, const float* window_in, const CausalConv1dParams& p);
void causal_conv1d_forward(bf16* u, float* window_out, const bf16* x, const float* w,
                           const float* bias, const float* window_in, const CausalConv1dParams& p);
void causal_conv1d_backward(float* dx, float* dwindow_in, float* dw, float* dbias, const float* du,
                            const float* dwindow_out, const float* x, const float* w,
                            const float* bias, const float* window_in, const CausalConv1dParams& p);
void causal_conv1d_backward(bf16* dx, float* dwindow_in, float* dw, float* dbias, const bf16* du,
                            const float* dwindow_out, const bf16* x, const float* w,
                            const float* bias, const float* window_in, const CausalConv1dParams& p);
}  // namespace cuda

}  // namespace mambadna::kernels
