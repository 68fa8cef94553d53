// Token embedding: out[m] = W[tokens[m]].
// Letters: M rows (B·L tokens), D d_model, V vocabulary.
// Parameter gradients accumulate (+=); activation gradients assign (=).
#pragma once
#include <cstdint>

#include "kernels/check.h"

namespace mambadna::kernels {

struct EmbeddingParams {
  int64_t M = 0;  // rows (tokens)
  int64_t D = 0;  // embedding width
  int64_t V = 0;  // vocabulary size
};

// Sizes and pointers, in every backend: `out` is the table written, `in` the one read.
inline void embedding_sizes_check(const char* fn, const char* out_name, const void* out,
                                  const int32_t* tokens, const char* in_name, const void* in,
                                  const EmbeddingParams& p) {
  check::positive(fn, "M", p.M);
  check::positive(fn, "D", p.D);
  check::positive(fn, "V", p.V);
  check::not_null(fn, out_name, out);
  check::not_null(fn, "tokens", tokens);
  check::not_null(fn, in_name, in);
}

// Every token in [0, V), where the tokens are host memory (the CUDA caller checks them before
// they go to the device). Throws UsageError naming the first bad one.
inline void embedding_tokens_check(const char* fn, const int32_t* tokens, const EmbeddingParams& p) {
  for (int64_t m = 0; m < p.M; ++m)
    if (tokens[m] < 0 || tokens[m] >= p.V)
      check::fail(fn, "tokens[" + std::to_string(m) + "] (" + std::to_string(tokens[m]) +
                          ") outside [0, V) with V = " + std::to_string(p.V));
}

namespace ref {
template <typename T>
void embedding_forward(T* out,                 // (M, D)
                       const int32_t* tokens,  // (M) in [0, V)
                       const T* W,             // (V, D)
                       const EmbeddingParams& p);
template <typename T>
void embedding_backward(T* dW,                  // (V, D) +=
                        const T* dout,          // (M, D)
                        const int32_t* tokens,  // (M)
                        const EmbeddingParams& p);
}  // namespace ref

namespace cpu {
void embedding_forward(float* out, const int32_t* tokens, const float* W, const EmbeddingParams& p);
void embedding_backward(float* dW, const float* dout, const int32_t* tokens,
                        const EmbeddingParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
namespace cuda {
void embedding_forward(float* out, const int32_t* tokens, const float* W, const EmbeddingParams& p);
void embedding_backward(float* dW, const float* dout, const int32_t* tokens,
                        const EmbeddingParams& p);
}  // namespace cuda

}  // namespace mambadna::kernels
