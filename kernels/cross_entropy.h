// Cross-entropy over V logits per row, and the full log-softmax.
//   lse[m]  = log Σ_v exp(logits[m,v]);   loss[m] = lse[m] − logits[m, targets[m]]
// A negative target means "ignore this row": its loss is 0 and its gradient row is 0.
// Letters: M rows, V vocabulary.
// Backward: dlogits[m] = dloss[m] · (softmax(logits[m]) − onehot(targets[m])), assigned (=).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/check.h"

namespace mambadna::kernels {

struct CrossEntropyParams {
  int64_t M = 0;
  int64_t V = 0;
};

inline void cross_entropy_check(const char* fn, const CrossEntropyParams& p) {
  check::positive(fn, "M", p.M);
  check::positive(fn, "V", p.V);
}

// Throws UsageError for a target >= V.
inline void cross_entropy_check_targets(const char* fn, const int32_t* targets,
                                        const CrossEntropyParams& p) {
  check::not_null(fn, "targets", targets);
  for (int64_t m = 0; m < p.M; ++m)
    if (targets[m] >= p.V)
      check::fail(fn, "targets[" + std::to_string(m) + "] (" + std::to_string(targets[m]) +
                          ") >= V (" + std::to_string(p.V) + ")");
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void cross_entropy_forward_check(const char* fn, const void* loss, const void* lse, const void* logits, const CrossEntropyParams& p) {
  cross_entropy_check(fn, p);
  check::not_null(fn, "loss", loss);
  check::not_null(fn, "lse", lse);
  check::not_null(fn, "logits", logits);
}
inline void log_softmax_forward_check(const char* fn, const void* out, const void* logits, const CrossEntropyParams& p) {
  cross_entropy_check(fn, p);
  check::not_null(fn, "out", out);
  check::not_null(fn, "logits", logits);
}
inline void cross_entropy_backward_check(const char* fn, const void* dlogits, const void* logits, const void* lse, const void* dloss, const CrossEntropyParams& p) {
  cross_entropy_check(fn, p);
  check::not_null(fn, "dlogits", dlogits);
  check::not_null(fn, "logits", logits);
  check::not_null(fn, "lse", lse);
  check::not_null(fn, "dloss", dloss);
}

namespace ref {
template <typename T>
void cross_entropy_forward(T* loss,                 // (M)
                           T* lse,                  // (M)
                           const T* logits,         // (M, V)
                           const int32_t* targets,  // (M), < 0 to ignore a row
                           const CrossEntropyParams& p);
template <typename T>
void log_softmax_forward(T* out,           // (M, V)
                         const T* logits,  // (M, V)
                         const CrossEntropyParams& p);
template <typename T>
void cross_entropy_backward(T* dlogits,              // (M, V)
                            const T* logits,         // (M, V)
                            const T* lse,            // (M) from the forward pass
                            const int32_t* targets,  // (M)
                            const T* dloss,          // (M)
                            const CrossEntropyParams& p);
}  // namespace ref

namespace cpu {
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                           const CrossEntropyParams& p);
void log_softmax_forward(float* out, const float* logits, const CrossEntropyParams& p);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
namespace cuda {
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                           const CrossEntropyParams& p);
void log_softmax_forward(float* out, const float* logits, const CrossEntropyParams& p);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p);
// dlogits in bf16 (kernels/bf16.h), for the LM head's bf16 products.
void cross_entropy_backward(bf16* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p);
}  // namespace cuda

}  // namespace mambadna::kernels
