// CUDA RMSNorm, forward and backward (see kernels/rmsnorm.h): one block per row.
#include "kernels/cuda/common.cuh"
#include "kernels/rmsnorm.h"

namespace mambadna::kernels::cuda {

namespace {

constexpr int kNormThreads = 256;

// ---- kernels ---------------------------------------------------------------------------------

// y (M, D) = x · rstd · w;  rstd (M)
template <typename T>
__global__ void rmsnorm_forward_kernel(T* y, float* rstd, const float* x, const float* w,
                                       int64_t D, float eps) {
  __shared__ float red[32];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * D;
  float ss = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = block_sum(ss, red);
  const float r = 1.0f / sqrtf(ss / float(D) + eps);
  if (threadIdx.x == 0) rstd[m] = r;
  T* yr = y + m * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = st<T>(xr[d] * r * w[d]);
}

// dx (M, D) += rstd · g − x · rstd³ · (g · x) / D with g = dy ⊙ w
template <typename T>
__global__ void rmsnorm_backward_dx_kernel(float* dx, const T* dy, const float* x,
                                           const float* w, const float* rstd, int64_t D) {
  __shared__ float red[32];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * D;
  const T* dyr = dy + m * D;
  float dot = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dot += ld(dyr[d]) * w[d] * xr[d];
  dot = block_sum(dot, red);
  const float r = rstd[m], c = r * r * r * dot / float(D);
  float* dxr = dx + m * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dxr[d] += r * ld(dyr[d]) * w[d] - xr[d] * c;
}

// dw (D) += Σ_m dy ⊙ x · rstd: a thread per column, a block per range of rows.
template <typename T>
__global__ void rmsnorm_backward_dw_kernel(float* dw, const T* dy, const float* x,
                                           const float* rstd, int64_t M, int64_t D,
                                           int64_t rows_per_block) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  const int64_t m0 = int64_t(blockIdx.y) * rows_per_block, m1 = min(M, m0 + rows_per_block);
  float acc = 0.0f;
  for (int64_t m = m0; m < m1; ++m) acc += ld(dy[m * D + d]) * x[m * D + d] * rstd[m];
  atomicAdd(&dw[d], acc);
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

namespace {

template <typename T>
void forward(T* y, float* rstd, const float* x, const float* w, const RmsnormParams& p) {
  const char* fn = "cuda::rmsnorm_forward";
  rmsnorm_forward_check(fn, y, rstd, x, w, p);
  launch(rmsnorm_forward_kernel<T>, unsigned(p.M), kNormThreads, 0, y, rstd, x, w, p.D, float(p.eps));
  check_launch(fn);
}

template <typename T>
void backward(float* dx, float* dw, const T* dy, const float* x, const float* w,
              const float* rstd, const RmsnormParams& p) {
  const char* fn = "cuda::rmsnorm_backward";
  rmsnorm_backward_check(fn, dx, dw, dy, x, w, rstd, p);
  launch(rmsnorm_backward_dx_kernel<T>, unsigned(p.M), kNormThreads, 0, dx, dy, x, w, rstd, p.D);
  check_launch(fn);
  const int64_t rows = 256;
  const dim3 grid(grid_for(p.D, 128), unsigned((p.M + rows - 1) / rows));
  launch(rmsnorm_backward_dw_kernel<T>, grid, 128, 0, dw, dy, x, rstd, p.M, p.D, rows);
  check_launch(fn);
}

}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w,
                     const RmsnormParams& p) {
  forward(y, rstd, x, w, p);
}
void rmsnorm_forward(bf16* y, float* rstd, const float* x, const float* w,
                     const RmsnormParams& p) {
  forward(y, rstd, x, w, p);
}
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p) {
  backward(dx, dw, dy, x, w, rstd, p);
}
void rmsnorm_backward(float* dx, float* dw, const bf16* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p) {
  backward(dx, dw, dy, x, w, rstd, p);
}

}  // namespace mambadna::kernels::cuda
