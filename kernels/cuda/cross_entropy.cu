// CUDA cross-entropy and log-softmax (see kernels/cross_entropy.h): one block per row.
// Targets are device pointers: the caller checks them against V (the model does, on the host);
// a target >= V here gives a NaN loss rather than a read out of bounds.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"

namespace mambadna::kernels::cuda {

namespace {

constexpr int kXentThreads = 128;

// log Σ_v exp(row[v]) over the block, the max subtracted first.
__device__ float row_lse(const float* row, int64_t V, float* red) {
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, row[v]);
  mx = block_max(mx, red);
  float s = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += expf(row[v] - mx);
  s = block_sum(s, red);
  return mx + logf(s);
}

// ---- kernels ---------------------------------------------------------------------------------

// lse (M), loss (M) = lse − logits[m, targets[m]] (0 for a negative target)
__global__ void cross_entropy_forward_kernel(float* loss, float* lse, const float* logits,
                                             const int32_t* targets, int64_t V) {
  __shared__ float red[32];
  const int64_t m = blockIdx.x;
  const float* row = logits + m * V;
  const float l = row_lse(row, V, red);
  if (threadIdx.x == 0) {
    const int32_t t = targets[m];
    lse[m] = l;
    loss[m] = t < 0 ? 0.0f : (t < V ? l - row[t] : NAN);
  }
}

// out (M, V) = logits − lse
__global__ void log_softmax_forward_kernel(float* out, const float* logits, int64_t V) {
  __shared__ float red[32];
  const int64_t m = blockIdx.x;
  const float* row = logits + m * V;
  const float l = row_lse(row, V, red);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) out[m * V + v] = row[v] - l;
}

// dlogits (M, V) = dloss · (softmax − onehot(target)); 0 for a negative target
template <typename T>
__global__ void cross_entropy_backward_kernel(T* dlogits, const float* logits, const float* lse,
                                              const int32_t* targets, const float* dloss,
                                              int64_t M, int64_t V) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * V) return;
  const int64_t m = i / V, v = i - m * V;
  const int32_t t = targets[m];
  dlogits[i] = st<T>(t < 0 ? 0.0f : dloss[m] * (expf(logits[i] - lse[m]) - (v == t ? 1.0f : 0.0f)));
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                           const CrossEntropyParams& p) {
  const char* fn = "cuda::cross_entropy_forward";
  cross_entropy_forward_check(fn, loss, lse, logits, p);
  check::not_null(fn, "targets", targets);
  launch(cross_entropy_forward_kernel, unsigned(p.M), kXentThreads, 0, loss, lse, logits, targets, p.V);
  check_launch(fn);
}

void log_softmax_forward(float* out, const float* logits, const CrossEntropyParams& p) {
  const char* fn = "cuda::log_softmax_forward";
  log_softmax_forward_check(fn, out, logits, p);
  launch(log_softmax_forward_kernel, unsigned(p.M), kXentThreads, 0, out, logits, p.V);
  check_launch(fn);
}

namespace {
template <typename T>
void backward(T* dlogits, const float* logits, const float* lse, const int32_t* targets,
              const float* dloss, const CrossEntropyParams& p) {
  const char* fn = "cuda::cross_entropy_backward";
  cross_entropy_backward_check(fn, dlogits, logits, lse, dloss, p);
  check::not_null(fn, "targets", targets);
  launch(cross_entropy_backward_kernel<T>, grid_for(p.M * p.V, 256), 256, 0, dlogits, logits, lse,
         targets, dloss, p.M, p.V);
  check_launch(fn);
}
}  // namespace

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p) {
  backward(dlogits, logits, lse, targets, dloss, p);
}
void cross_entropy_backward(bf16* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p) {
  backward(dlogits, logits, lse, targets, dloss, p);
}

}  // namespace mambadna::kernels::cuda
