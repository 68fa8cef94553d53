// CUDA versions of the model's small elementwise ops (see kernels/elementwise.h; the spec is
// kernels/ref/elementwise.cpp).
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace mambadna::kernels::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}
__global__ void to_bf16_kernel(bf16* out, const float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = st<bf16>(x[i]);
}
__global__ void neg_exp_kernel(float* out, const float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = -expf(x[i]);
}
__global__ void mul_accumulate_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] += a[i] * b[i];
}
__global__ void scale_kernel(float* x, float c, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= c;
}
// Grid-stride partial sums per block, then one double atomic per block.
__global__ void sum_squares_kernel(double* out, const float* x, int64_t n) {
  __shared__ float red[32];
  float acc = 0.0f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    acc += x[i] * x[i];
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) atomicAdd(out, double(acc));
}
__global__ void loss_weights_kernel(float* dloss, const int32_t* targets, float scale, int64_t M) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < M) dloss[m] = targets[m] >= 0 ? scale : 0.0f;
}
__global__ void logprob_kernel(float* out, const float* loss, const int32_t* targets, int64_t M) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < M) out[m] = targets[m] >= 0 ? -loss[m] : NAN;
}
__global__ void entropy_kernel(float* out, const float* logits, const float* lse, int64_t V) {
  __shared__ float red[32];
  const int64_t m = blockIdx.x;
  const float* row = logits + m * V;
  const float l = lse[m];
  float acc = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) acc += expf(row[v] - l) * row[v];
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) out[m] = l - acc;
}

}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t n) {
  launch(add_kernel, grid_for(n, kThreads), kThreads, 0, out, a, b, n);
  check_launch("cuda::add_forward");
}
void to_bf16(bf16* out, const float* x, int64_t n) {
  launch(to_bf16_kernel, grid_for(n, kThreads), kThreads, 0, out, x, n);
  check_launch("cuda::to_bf16");
}
void neg_exp_forward(float* out, const float* x, int64_t n) {
  launch(neg_exp_kernel, grid_for(n, kThreads), kThreads, 0, out, x, n);
  check_launch("cuda::neg_exp_forward");
}
void mul_accumulate(float* out, const float* a, const float* b, int64_t n) {
  launch(mul_accumulate_kernel, grid_for(n, kThreads), kThreads, 0, out, a, b, n);
  check_launch("cuda::mul_accumulate");
}
void scale_inplace(float* x, float c, int64_t n) {
  launch(scale_kernel, grid_for(n, kThreads), kThreads, 0, x, c, n);
  check_launch("cuda::scale_inplace");
}
double sum_squares(const float* x, int64_t n) {
  auto* acc = static_cast<double*>(workspace(sizeof(double)));
  MAMBADNA_CUDA_CHECK(cudaMemset(acc, 0, sizeof(double)));
  const unsigned blocks = std::min<unsigned>(grid_for(n, kThreads), 1024u);
  launch(sum_squares_kernel, blocks, kThreads, 0, acc, x, n);
  check_launch("cuda::sum_squares");
  double host = 0;
  MAMBADNA_CUDA_CHECK(cudaMemcpy(&host, acc, sizeof(double), cudaMemcpyDeviceToHost));
  return host;
}
void loss_weights(float* dloss, const int32_t* targets, float scale, int64_t M) {
  launch(loss_weights_kernel, grid_for(M, kThreads), kThreads, 0, dloss, targets, scale, M);
  check_launch("cuda::loss_weights");
}
void logprob_from_loss(float* out, const float* loss, const int32_t* targets, int64_t M) {
  launch(logprob_kernel, grid_for(M, kThreads), kThreads, 0, out, loss, targets, M);
  check_launch("cuda::logprob_from_loss");
}
void entropy_forward(float* out, const float* logits, const float* lse, int64_t M, int64_t V) {
  launch(entropy_kernel, unsigned(M), 128, 0, out, logits, lse, V);
  check_launch("cuda::entropy_forward");
}

}  // namespace mambadna::kernels::cuda
