// Small elementwise and reduction ops the model needs between the named kernels. On the CPU the
// model writes them as plain loops (model/mamba.cpp, the spec); these are their CUDA versions,
// tested through the model: the golden log-probs and gradients on the device
// (tests/test_model_golden.cpp) and training against the CPU (tests/test_pipelines_train.cpp).
// Letters: n elements, M rows, V vocabulary.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace mambadna::kernels::cuda {

void add_forward(float* out, const float* a, const float* b, int64_t n);  // out = a + b
void to_bf16(bf16* out, const float* x, int64_t n);  // out = x rounded to nearest even
void neg_exp_forward(float* out, const float* x, int64_t n);           // out = −exp(x): A from A_log
void mul_accumulate(float* out, const float* a, const float* b, int64_t n);  // out += a ⊙ b
void scale_inplace(float* x, float c, int64_t n);                              // x *= c
double sum_squares(const float* x, int64_t n);  // Σ x², accumulated in double; waits for the result
// dloss (M) = targets[m] >= 0 ? scale : 0
void loss_weights(float* dloss, const int32_t* targets, float scale, int64_t M);
// out (M) = targets[m] >= 0 ? −loss[m] : NaN
void logprob_from_loss(float* out, const float* loss, const int32_t* targets, int64_t M);
// out (M) = lse[m] − Σ_v softmax(logits[m])_v · logits[m, v]: the entropy of each row (nats)
void entropy_forward(float* out, const float* logits, const float* lse, int64_t M, int64_t V);

}  // namespace mambadna::kernels::cuda
