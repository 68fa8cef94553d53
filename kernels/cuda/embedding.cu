// CUDA token embedding, forward and backward (see kernels/embedding.h). Tokens are device
// pointers and are not read on the host: the caller checks them (the model does, before upload).
#include "kernels/cuda/common.cuh"
#include "kernels/embedding.h"

namespace mambadna::kernels::cuda {

namespace {

// ---- kernels ---------------------------------------------------------------------------------

// out (M, D) = W (V, D) [tokens (M)]
__global__ void embedding_forward_kernel(float* out, const int32_t* tokens, const float* W,
                                         int64_t M, int64_t D) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * D) return;
  const int64_t m = i / D, d = i - m * D;
  out[i] = W[int64_t(tokens[m]) * D + d];
}

// dW (V, D) += Σ_m onehot(tokens[m]) dout[m]. A block owns 32 columns and a range of rows, sums
// into a (V, 32) table in shared memory (DNA has few distinct tokens: global atomics would all
// land on the same few rows), then adds the non-zero sums to dW.
constexpr int kEmbCols = 32, kEmbRowsPerThread = 8, kEmbRowThreads = 8;
__global__ void embedding_backward_shared_kernel(float* dW, const float* dout,
                                                 const int32_t* tokens, int64_t M, int64_t D,
                                                 int64_t V, int64_t rows_per_block) {
  float* acc = dynamic_shared<float>();  // (V, kEmbCols)
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kEmbCols + tx;
  const int nthreads = kEmbCols * kEmbRowThreads;
  for (int64_t i = tid; i < V * kEmbCols; i += nthreads) acc[i] = 0.0f;
  __syncthreads();
  const int64_t col = int64_t(blockIdx.x) * kEmbCols + tx;
  const int64_t m0 = int64_t(blockIdx.y) * rows_per_block;
  const int64_t m1 = min(M, m0 + rows_per_block);
  if (col < D)
    for (int64_t m = m0 + ty; m < m1; m += kEmbRowThreads)
      atomicAdd(&acc[int64_t(tokens[m]) * kEmbCols + tx], dout[m * D + col]);
  __syncthreads();
  for (int64_t i = tid; i < V * kEmbCols; i += nthreads) {
    const int64_t v = i / kEmbCols, c = int64_t(blockIdx.x) * kEmbCols + (i % kEmbCols);
    if (c < D && acc[i] != 0.0f) atomicAdd(&dW[v * D + c], acc[i]);
  }
}

// The same with global atomics, for vocabularies too large for the shared table.
__global__ void embedding_backward_global_kernel(float* dW, const float* dout,
                                                 const int32_t* tokens, int64_t M, int64_t D) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * D) return;
  const int64_t m = i / D, d = i - m * D;
  atomicAdd(&dW[int64_t(tokens[m]) * D + d], dout[i]);
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

void embedding_forward(float* out, const int32_t* tokens, const float* W,
                       const EmbeddingParams& p) {
  const char* fn = "cuda::embedding_forward";
  embedding_sizes_check(fn, "out", out, tokens, "W", W, p);
  launch(embedding_forward_kernel, grid_for(p.M * p.D, 256), 256, 0, out, tokens, W, p.M, p.D);
  check_launch(fn);
}

void embedding_backward(float* dW, const float* dout, const int32_t* tokens,
                        const EmbeddingParams& p) {
  const char* fn = "cuda::embedding_backward";
  embedding_sizes_check(fn, "dW", dW, tokens, "dout", dout, p);
  const size_t shared = size_t(p.V) * kEmbCols * sizeof(float);
  if (shared <= 48 * 1024) {
    const int64_t rows = rows_per_block(p.M, kEmbRowThreads * kEmbRowsPerThread * 16);  // 1024+
    const dim3 grid(unsigned((p.D + kEmbCols - 1) / kEmbCols), unsigned((p.M + rows - 1) / rows));
    launch(embedding_backward_shared_kernel, grid, dim3(kEmbCols, kEmbRowThreads), shared, 
        dW, dout, tokens, p.M, p.D, p.V, rows);
  } else {
    launch(embedding_backward_global_kernel, grid_for(p.M * p.D, 256), 256, 0, dW, dout, tokens, p.M,
                                                                         p.D);
  }
  check_launch(fn);
}

}  // namespace mambadna::kernels::cuda
