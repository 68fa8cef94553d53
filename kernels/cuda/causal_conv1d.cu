// CUDA depthwise causal conv1d with a carried window, forward and backward (see
// kernels/causal_conv1d.h). The pre-activation is recomputed wherever it is needed (K reads from
// cache) rather than stored. K is at most kMaxK.
#include "kernels/causal_conv1d.h"

#include <type_traits>
#include "kernels/cuda/common.cuh"

namespace mambadna::kernels::cuda {

namespace {

constexpr int kMaxK = 16;

template <typename T>
struct ConvArgs {
  const T* x;              // (B, L, E) row stride ld_x
  const float* w;          // (E, K)
  const float* bias;       // (E) or nullptr
  const float* window_in;  // (B, E, K-1) or nullptr
  int64_t B, L, E, K, ld_x;
  bool silu;
};

// xx(b, j, e): the input at position j of the chunk, or of the carried window for j < 0.
template <typename T>
__device__ __forceinline__ float conv_input(const ConvArgs<T>& a, int64_t b, int64_t j, int64_t e) {
  if (j >= 0) return ld(a.x[(b * a.L + j) * a.ld_x + e]);
  if (!a.window_in) return 0.0f;
  return a.window_in[(b * a.E + e) * (a.K - 1) + (a.K - 1 + j)];
}

template <typename T>
__device__ __forceinline__ float conv_pre(const ConvArgs<T>& a, int64_t b, int64_t t, int64_t e) {
  float acc = a.bias ? a.bias[e] : 0.0f;
  for (int64_t k = 0; k < a.K; ++k) acc += a.w[e * a.K + k] * conv_input(a, b, t - (a.K - 1) + k, e);
  return acc;
}

// g = du · silu'(pre) (or du), the gradient of the pre-activation at (b, t, e).
template <typename T>
__device__ __forceinline__ float conv_grad(const ConvArgs<T>& a, const T* du, int64_t b,
                                           int64_t t, int64_t e) {
  const float d = ld(du[(b * a.L + t) * a.E + e]);
  return a.silu ? d * dev_silu_grad(conv_pre(a, b, t, e)) : d;
}

// ---- kernels ---------------------------------------------------------------------------------

// u (B, L, E): a thread per output.
template <typename T>
__global__ void conv_forward_kernel(T* u, ConvArgs<T> a) {
  // A block of channels of one row (b, t): no division per element (a 64-bit division costs
  // ~100 instructions on the GPU); rows past the grid's y extent in steps of it.
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.E) return;
  int64_t b = blockIdx.y / a.L, t = blockIdx.y - b * a.L;  // row bt = b·L + t
  for (int64_t bt = blockIdx.y; bt < a.B * a.L; bt += gridDim.y) {
    const float pre = conv_pre(a, b, t, e);
    u[bt * a.E + e] = st<T>(a.silu ? dev_silu(pre) : pre);
    for (t += gridDim.y; t >= a.L; t -= a.L) ++b;
  }
}

// Steps whose inputs the tiled kernels read together before writing their outputs.
constexpr int kStepGroup = 8;

// u (B, L, E) for a compile-time K: a thread per channel walks a tile of TILE steps of one
// stream with the last K inputs in registers, so each input is read once (plus a K − 1 halo)
// and each output costs K multiply-adds, against K reads and a block of 128 outputs per row in
// conv_forward_kernel (measured on an H200 at ~10× its traffic's time in a training step).
template <typename T, int KK, int TILE>
__global__ void conv_forward_tiled_kernel(T* u, ConvArgs<T> a) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.E) return;
  const int64_t b = blockIdx.z, t0 = int64_t(blockIdx.y) * TILE, t1 = min(a.L, t0 + TILE);
  float w[KK], xs[KK];
#pragma unroll
  for (int k = 0; k < KK; ++k) {
    w[k] = a.w[e * KK + k];
    xs[k] = k > 0 ? conv_input(a, b, t0 - KK + k, e) : 0.0f;  // xx(t0 − K + k): shifted first
  }
  const float bias = a.bias ? a.bias[e] : 0.0f;
  const T* x = a.x + b * a.L * a.ld_x + e;
  T* out = u + b * a.L * a.E + e;
  for (int64_t tg = t0; tg < t1; tg += kStepGroup) {
    // A group's inputs are all read before any output is written: for all the compiler knows
    // an output may alias a later input, and a read between writes would wait for the memory
    // at every step.
    T xg[kStepGroup];
#pragma unroll
    for (int j = 0; j < kStepGroup; ++j) xg[j] = tg + j < t1 ? x[(tg + j) * a.ld_x] : T{};
#pragma unroll
    for (int j = 0; j < kStepGroup; ++j) {
      if (tg + j >= t1) break;
#pragma unroll
      for (int k = 0; k + 1 < KK; ++k) xs[k] = xs[k + 1];
      xs[KK - 1] = ld(xg[j]);  // xs[k] = xx(t − K + 1 + k)
      float pre = bias;
#pragma unroll
      for (int k = 0; k < KK; ++k) pre += w[k] * xs[k];
      out[(tg + j) * a.E] = st<T>(a.silu ? dev_silu(pre) : pre);
    }
  }
}

// window_out (B, E, K-1) = the last K-1 inputs: a thread per (b, e). Runs after the forward
// kernel, which reads window_in; oldest first, so with window_out == window_in each element is
// read (at k + L) before it is overwritten.
template <typename T>
__global__ void conv_window_kernel(float* window_out, ConvArgs<T> a) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.B * a.E) return;
  const int64_t e = i % a.E, b = i / a.E;
  for (int64_t k = 0; k < a.K - 1; ++k)
    window_out[i * (a.K - 1) + k] = conv_input(a, b, a.L - (a.K - 1) + k, e);
}

// dx (B, L, E) row stride ld_x: a thread per input position j in [0, L).
template <typename T>
__global__ void conv_backward_dx_kernel(T* dx, const T* du, const float* dwindow_out,
                                        ConvArgs<T> a) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.B * a.L * a.E) return;
  const int64_t e = i % a.E, bj = i / a.E, j = bj % a.L, b = bj / a.L;
  float acc = 0.0f;
  for (int64_t k = 0; k < a.K; ++k) {
    const int64_t t = j + (a.K - 1) - k;
    if (t < a.L) acc += a.w[e * a.K + k] * conv_grad(a, du, b, t, e);
  }
  const int64_t k_out = j - (a.L - (a.K - 1));  // position in the carried-out window
  if (dwindow_out && k_out >= 0) acc += dwindow_out[(b * a.E + e) * (a.K - 1) + k_out];
  dx[(b * a.L + j) * a.ld_x + e] = st<T>(acc);
}

// dwindow_in (B, E, K-1): a thread per (b, e); all K-1 values are computed before any is
// written, since dwindow_out may alias dwindow_in.
template <typename T>
__global__ void conv_backward_dwindow_kernel(float* dwindow_in, const T* du,
                                             const float* dwindow_out, ConvArgs<T> a) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.B * a.E) return;
  const int64_t e = i % a.E, b = i / a.E;
  float vals[kMaxK];
  for (int64_t kw = 0; kw < a.K - 1; ++kw) {
    const int64_t j = kw - (a.K - 1);  // input position, < 0
    float acc = 0.0f;
    for (int64_t k = 0; k < a.K; ++k) {
      const int64_t t = j + (a.K - 1) - k;
      if (t >= 0 && t < a.L) acc += a.w[e * a.K + k] * conv_grad(a, du, b, t, e);
    }
    const int64_t k_out = j - (a.L - (a.K - 1));
    if (dwindow_out && k_out >= 0) acc += dwindow_out[i * (a.K - 1) + k_out];
    vals[kw] = acc;
  }
  for (int64_t kw = 0; kw < a.K - 1; ++kw) dwindow_in[i * (a.K - 1) + kw] = vals[kw];
}

// dw (E, K) += Σ g · xx,  dbias (E) += Σ g: a thread per channel, a block per range of rows.
template <typename T>
__global__ void conv_backward_dw_kernel(float* dw, float* dbias, const T* du, ConvArgs<T> a,
                                        int64_t rows_per_block) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.E) return;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_block;
  const int64_t r1 = min(a.B * a.L, r0 + rows_per_block);
  float acc_w[kMaxK], acc_b = 0.0f;
  for (int64_t k = 0; k < a.K; ++k) acc_w[k] = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / a.L, t = r % a.L;
    const float g = conv_grad(a, du, b, t, e);
    acc_b += g;
    for (int64_t k = 0; k < a.K; ++k) acc_w[k] += g * conv_input(a, b, t - (a.K - 1) + k, e);
  }
  for (int64_t k = 0; k < a.K; ++k) atomicAdd(&dw[e * a.K + k], acc_w[k]);
  if (dbias) atomicAdd(&dbias[e], acc_b);
}

// dx (B, L, E) row stride ld_x, dw (E, K) +=, dbias (E) += in one pass for a compile-time K:
// a thread per channel walks a tile of TILE steps of one stream, with the last K inputs and the
// last K pre-activation gradients in registers, so du and x are read once (plus a K − 1 halo)
// instead of once by the dx kernel and again by the dw kernel. Step t's gradient g(t) feeds
// dw at once and dx(t − K + 1) when it completes; steps past L count as g = 0.
template <typename T, int KK, int TILE>
__global__ void conv_backward_fused_kernel(T* dx, float* dw, float* dbias, const T* du,
                                           const float* dwindow_out, ConvArgs<T> a) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.E) return;
  const int64_t b = blockIdx.z, t0 = int64_t(blockIdx.y) * TILE, t1 = min(a.L, t0 + TILE);
  float w[KK], xs[KK], gs[KK], acc_w[KK], acc_b = 0.0f;
#pragma unroll
  for (int k = 0; k < KK; ++k) {
    w[k] = a.w[e * KK + k];
    acc_w[k] = 0.0f;
    gs[k] = 0.0f;
    xs[k] = k > 0 ? conv_input(a, b, t0 - KK + k, e) : 0.0f;  // xx(t0 − K + k): shifted first
  }
  const float bias = a.bias ? a.bias[e] : 0.0f;
  const int64_t t_end = t1 + KK - 1;  // the tile's steps and the next K − 1 (for dx's halo)
  const T* xb = a.x + b * a.L * a.ld_x + e;
  const T* dub = du + b * a.L * a.E + e;
  for (int64_t tg = t0; tg < t_end; tg += kStepGroup) {
    // A group's x and du are all read before any dx is written (as in the forward).
    T xg[kStepGroup], dg[kStepGroup];
#pragma unroll
    for (int i = 0; i < kStepGroup; ++i) {
      const bool in = tg + i < t_end && tg + i < a.L;
      xg[i] = in ? xb[(tg + i) * a.ld_x] : T{};
      dg[i] = in ? dub[(tg + i) * a.E] : T{};
    }
#pragma unroll
    for (int i = 0; i < kStepGroup; ++i) {
      const int64_t t = tg + i;
      if (t >= t_end) break;
#pragma unroll
      for (int k = 0; k + 1 < KK; ++k) xs[k] = xs[k + 1], gs[k] = gs[k + 1];
      float g = 0.0f;
      if (t < a.L) {
        xs[KK - 1] = ld(xg[i]);
        float pre = bias;
#pragma unroll
        for (int k = 0; k < KK; ++k) pre += w[k] * xs[k];
        const float d = ld(dg[i]);
        g = a.silu ? d * dev_silu_grad(pre) : d;
        if (t < t1) {
#pragma unroll
          for (int k = 0; k < KK; ++k) acc_w[k] += g * xs[k];
          acc_b += g;
        }
      }
      gs[KK - 1] = g;  // gs[i] = g(t − K + 1 + i)
      const int64_t j = t - (KK - 1);
      if (j >= t0) {
        float v = 0.0f;
#pragma unroll
        for (int k = 0; k < KK; ++k) v += w[k] * gs[KK - 1 - k];
        const int64_t k_out = j - (a.L - (KK - 1));  // position in the carried-out window
        if (dwindow_out && k_out >= 0) v += dwindow_out[(b * a.E + e) * (KK - 1) + k_out];
        dx[(b * a.L + j) * a.ld_x + e] = st<T>(v);
      }
    }
  }
#pragma unroll
  for (int k = 0; k < KK; ++k) atomicAdd(&dw[e * KK + k], acc_w[k]);
  if (dbias) atomicAdd(&dbias[e], acc_b);
}

template <typename T>
ConvArgs<T> args_of(const T* x, const float* w, const float* bias, const float* window_in,
                    const CausalConv1dParams& p) {
  return ConvArgs<T>{x, w, bias, window_in, p.B, p.L, p.E, p.K, p.ld_x, p.silu};
}

void check_k(const char* fn, const CausalConv1dParams& p) {
  check::at_most(fn, "K", p.K, kMaxK, std::to_string(kMaxK) + ", the widest kernel the CUDA backend supports");
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

namespace {

template <typename T>
void forward(T* u, float* window_out, const T* x, const float* w, const float* bias,
             const float* window_in, const CausalConv1dParams& p) {
  const char* fn = "cuda::causal_conv1d_forward";
  causal_conv1d_forward_check(fn, u, x, w, p);
  check_k(fn, p);
  const ConvArgs<T> a = args_of(x, w, bias, window_in, p);
  // Mamba's kernel widths (2 to 4): tiles of 64 steps per thread; other widths, or grids past
  // 65,535 tiles or streams: a block of channels per row.
  constexpr int kTile = 64;
  const int64_t tiles = (p.L + kTile - 1) / kTile;
  auto tiled = [&](auto kk) {
    constexpr int KK = decltype(kk)::value;
    const dim3 grid(grid_for(p.E, 128), unsigned(tiles), unsigned(p.B));
    launch(conv_forward_tiled_kernel<T, KK, kTile>, grid, 128, 0, u, a);
  };
  const bool fits = tiles <= 65535 && p.B <= 65535;
  if (fits && p.K == 2) tiled(std::integral_constant<int, 2>());
  else if (fits && p.K == 3) tiled(std::integral_constant<int, 3>());
  else if (fits && p.K == 4) tiled(std::integral_constant<int, 4>());
  else {
    const dim3 grid(grid_for(p.E, 128), unsigned(std::min<int64_t>(p.B * p.L, 16384)));
    launch(conv_forward_kernel<T>, grid, 128, 0, u, a);
  }
  check_launch(fn);
  if (window_out && p.K > 1) {
    launch(conv_window_kernel<T>, grid_for(p.B * p.E, 256), 256, 0, window_out, a);
    check_launch(fn);
  }
}

template <typename T>
void backward(T* dx, float* dwindow_in, float* dw, float* dbias, const T* du,
              const float* dwindow_out, const T* x, const float* w, const float* bias,
              const float* window_in, const CausalConv1dParams& p) {
  const char* fn = "cuda::causal_conv1d_backward";
  causal_conv1d_backward_check(fn, dx, dw, du, x, w, p);
  check_k(fn, p);
  const ConvArgs<T> a = args_of(x, w, bias, window_in, p);
  if (p.K == 1) dwindow_out = nullptr;
  // Mamba's kernel widths (2 to 4): dx, dw and dbias in one pass; other widths: two kernels.
  auto fused = [&](auto kk) {
    constexpr int KK = decltype(kk)::value, TILE = 256;
    const dim3 grid(grid_for(p.E, 128), unsigned((p.L + TILE - 1) / TILE), unsigned(p.B));
    launch(conv_backward_fused_kernel<T, KK, TILE>, grid, 128, 0, dx, dw, dbias, du, dwindow_out, a);
  };
  const bool fits = (p.L + 255) / 256 <= 65535 && p.B <= 65535;  // the fused grid's y and z
  if (fits && p.K == 2) fused(std::integral_constant<int, 2>());
  else if (fits && p.K == 3) fused(std::integral_constant<int, 3>());
  else if (fits && p.K == 4) fused(std::integral_constant<int, 4>());
  else {
    launch(conv_backward_dx_kernel<T>, grid_for(p.B * p.L * p.E, 256), 256, 0, dx, du, dwindow_out, a);
    check_launch(fn);
    const int64_t rows = rows_per_block(p.B * p.L, 256);
    const dim3 grid(grid_for(p.E, 128), unsigned((p.B * p.L + rows - 1) / rows));
    launch(conv_backward_dw_kernel<T>, grid, 128, 0, dw, dbias, du, a, rows);
  }
  check_launch(fn);
  // After dx, which reads dwindow_out: dwindow_in may alias it.
  if (dwindow_in && p.K > 1) {
    launch(conv_backward_dwindow_kernel<T>, grid_for(p.B * p.E, 256), 256, 0, dwindow_in, du,
           dwindow_out, a);
    check_launch(fn);
  }
}

}  // namespace

void causal_conv1d_forward(float* u, float* window_out, const float* x, const float* w,
                           const float* bias, const float* window_in,
                           const CausalConv1dParams& p) {
  forward(u, window_out, x, w, bias, window_in, p);
}
void causal_conv1d_forward(bf16* u, float* window_out, const bf16* x, const float* w,
                           const float* bias, const float* window_in,
                           const CausalConv1dParams& p) {
  forward(u, window_out, x, w, bias, window_in, p);
}

void causal_conv1d_backward(float* dx, float* dwindow_in, float* dw, float* dbias, const float* du,
                            const float* dwindow_out, const float* x, const float* w,
                            const float* bias, const float* window_in,
                            const CausalConv1dParams& p) {
  backward(dx, dwindow_in, dw, dbias, du, dwindow_out, x, w, bias, window_in, p);
}
void causal_conv1d_backward(bf16* dx, float* dwindow_in, float* dw, float* dbias, const bf16* du,
                            const float* dwindow_out, const bf16* x, const float* w,
                            const float* bias, const float* window_in,
                            const CausalConv1dParams& p) {
  backward(dx, dwindow_in, dw, dbias, du, dwindow_out, x, w, bias, window_in, p);
}

}  // namespace mambadna::kernels::cuda
