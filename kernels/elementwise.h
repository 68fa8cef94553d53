// Small elementwise and reduction ops the model needs between the named kernels: the residual
// add, A from A_log and its gradient, the gradient's norm and scale, the loss weights, log-probs
// from losses, the entropy of each prediction. ref:: is the plain-loop spec (the CPU model runs
// it: each is one pass over memory, which the compiler vectorises); cuda:: runs on the device and
// is tested against it (tests/test_kernels_cuda.cpp).
// Letters: n elements, M rows, V vocabulary.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace mambadna::kernels {

namespace ref {
template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t n);  // out (n) = a + b
template <typename T>
void neg_exp_forward(T* out, const T* x, int64_t n);  // out (n) = −exp(x): A from A_log
template <typename T>
void mul_accumulate(T* out, const T* a, const T* b, int64_t n);  // out (n) += a ⊙ b
template <typename T>
void scale_inplace(T* x, T c, int64_t n);  // x (n) *= c
template <typename T>
double sum_squares(const T* x, int64_t n);  // Σ x², accumulated in double
// dloss (M) = targets[m] >= 0 ? scale : 0
template <typename T>
void loss_weights(T* dloss, const int32_t* targets, T scale, int64_t M);
// out (M) = targets[m] >= 0 ? −loss[m] : NaN
template <typename T>
void logprob_from_loss(T* out, const T* loss, const int32_t* targets, int64_t M);
// out (M) = lse[m] − Σ_v softmax(logits[m])_v · logits[m, v]: the entropy of each row (nats);
// logits (M, V), lse (M) their log-sum-exp
template <typename T>
void entropy_forward(T* out, const T* logits, const T* lse, int64_t M, int64_t V);
}  // namespace ref

namespace cuda {
void add_forward(float* out, const float* a, const float* b, int64_t n);
void to_bf16(bf16* out, const float* x, int64_t n);  // out = x rounded to nearest even
void neg_exp_forward(float* out, const float* x, int64_t n);
void mul_accumulate(float* out, const float* a, const float* b, int64_t n);
void scale_inplace(float* x, float c, int64_t n);
double sum_squares(const float* x, int64_t n);  // waits for the result
void loss_weights(float* dloss, const int32_t* targets, float scale, int64_t M);
void logprob_from_loss(float* out, const float* loss, const int32_t* targets, int64_t M);
void entropy_forward(float* out, const float* logits, const float* lse, int64_t M, int64_t V);
}  // namespace cuda

}  // namespace mambadna::kernels
