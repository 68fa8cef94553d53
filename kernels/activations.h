// Scalar activation functions shared by the reference and CPU kernels (templated on float/double).
// softplus follows PyTorch (beta 1, threshold 20): x itself above 20, log1p(exp(x)) otherwise.
#pragma once
#include <cmath>

namespace mambadna::kernels {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}

// d softplus / dx (1 above the threshold, as PyTorch's backward).
template <typename T>
inline T softplus_grad(T x) {
  return x > T(20) ? T(1) : sigmoid(x);
}

template <typename T>
inline T silu(T x) {
  return x * sigmoid(x);
}

// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x).
template <typename T>
inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

}  // namespace mambadna::kernels
