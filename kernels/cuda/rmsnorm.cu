// CUDA RMSNorm, forward and backward (see kernels/rmsnorm.h): forward one block per row,
// backward one block per range of rows.
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

// dx (M, D) += rstd · g − x · rstd³ · (g · x) / D with g = dy ⊙ w, and dw (D) += Σ_m dy ⊙ x ·
// rstd, in one pass over dy and x: a block per range of rows; each thread owns the columns
// d ≡ threadIdx.x (mod blockDim.x) of the block's dw partial sums in shared memory (D floats),
// added to dw once at the end. dx_rounded, when given, receives dx's new value in bf16.
template <typename T>
__global__ void rmsnorm_backward_kernel(float* dx, float* dw, bf16* dx_rounded, const T* dy,
                                        const float* x, const float* w, const float* rstd,
                                        int64_t M, int64_t D, int64_t rows_per_block) {
  __shared__ float red[32];
  float* sdw = dynamic_shared<float>();  // (D)
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) sdw[d] = 0.0f;
  const int64_t m0 = int64_t(blockIdx.x) * rows_per_block, m1 = min(M, m0 + rows_per_block);
  for (int64_t m = m0; m < m1; ++m) {
    const float* xr = x + m * D;
    const T* dyr = dy + m * D;
    float dot = 0.0f;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dot += ld(dyr[d]) * w[d] * xr[d];
    dot = block_sum(dot, red);
    const float r = rstd[m], c = r * r * r * dot / float(D);
    float* dxr = dx + m * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const float g = ld(dyr[d]), xv = xr[d];
      const float v = dxr[d] + r * g * w[d] - xv * c;
      dxr[d] = v;
      if (dx_rounded) dx_rounded[m * D + d] = st<bf16>(v);
      sdw[d] += g * xv * r;
    }
  }
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) atomicAdd(&dw[d], sdw[d]);
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

// Rows per block of the backward: enough blocks for about four per multiprocessor, at most 32
// rows (the blocks' dw additions stay a small part of the work).
int64_t norm_rows_per_block(int64_t M) {
  return std::clamp<int64_t>(M / (4 * int64_t(multiprocessor_count())), 1, 32);
}

template <typename T>
void backward(float* dx, float* dw, const T* dy, const float* x, const float* w,
              const float* rstd, const RmsnormParams& p, bf16* dx_rounded) {
  const char* fn = "cuda::rmsnorm_backward";
  rmsnorm_backward_check(fn, dx, dw, dy, x, w, rstd, p);
  const size_t shared = size_t(p.D) * sizeof(float);
  auto kernel = rmsnorm_backward_kernel<T>;
  if (shared > 48 * 1024)
    MAMBADNA_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
  const int64_t rows = norm_rows_per_block(p.M);
  launch(kernel, grid_for(p.M, int(rows)), kNormThreads, shared, dx, dw, dx_rounded, dy, x, w,
         rstd, p.M, p.D, rows);
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
  backward(dx, dw, dy, x, w, rstd, p, nullptr);
}
void rmsnorm_backward(float* dx, float* dw, const bf16* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p, bf16* dx_rounded) {
  backward(dx, dw, dy, x, w, rstd, p, dx_rounded);
}

}  // namespace mambadna::kernels::cuda
