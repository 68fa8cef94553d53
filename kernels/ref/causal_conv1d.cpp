// Reference depthwise causal conv1d with a carried window: plain loops, the spec for the other
// backends.
#include "kernels/causal_conv1d.h"

#include <algorithm>
#include <vector>

#include "kernels/activations.h"

namespace mambadna::kernels::ref {

namespace {

// xx(b, j, e): the input at position j of stream b, j in [−(K−1), L); negative j reads the window.
template <typename T>
T conv_input(const T* x, const T* window_in, int64_t b, int64_t j, int64_t e,
             const CausalConv1dParams& p) {
  if (j >= 0) return x[(b * p.L + j) * p.ld_x + e];
  if (!window_in) return T(0);
  return window_in[(b * p.E + e) * (p.K - 1) + (p.K - 1 + j)];
}

template <typename T>
T conv_pre(const T* x, const T* w, const T* bias, const T* window_in, int64_t b, int64_t t,
           int64_t e, const CausalConv1dParams& p) {
  T acc = bias ? bias[e] : T(0);
  for (int64_t k = 0; k < p.K; ++k)
    acc += w[e * p.K + k] * conv_input(x, window_in, b, t - (p.K - 1) + k, e, p);
  return acc;
}

}  // namespace

template <typename T>
void causal_conv1d_forward(T* u, T* window_out, const T* x, const T* w, const T* bias,
                           const T* window_in, const CausalConv1dParams& p) {
  const char* fn = "causal_conv1d_forward";
  causal_conv1d_forward_check(fn, u, x, w, p);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.L; ++t)
      for (int64_t e = 0; e < p.E; ++e) {
        const T pre = conv_pre(x, w, bias, window_in, b, t, e, p);
        u[(b * p.L + t) * p.E + e] = p.silu ? silu(pre) : pre;
      }
  if (window_out && p.K > 1) {
    std::vector<T> tmp(p.K - 1);  // window_out may alias window_in
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t e = 0; e < p.E; ++e) {
        for (int64_t i = 0; i < p.K - 1; ++i)
          tmp[i] = conv_input(x, window_in, b, p.L - (p.K - 1) + i, e, p);
        for (int64_t i = 0; i < p.K - 1; ++i) window_out[(b * p.E + e) * (p.K - 1) + i] = tmp[i];
      }
  }
}

template <typename T>
void causal_conv1d_backward(T* dx, T* dwindow_in, T* dw, T* dbias, const T* du,
                            const T* dwindow_out, const T* x, const T* w, const T* bias,
                            const T* window_in, const CausalConv1dParams& p) {
  const char* fn = "causal_conv1d_backward";
  causal_conv1d_backward_check(fn, dx, dw, du, x, w, p);
  std::vector<T> g(p.L);                  // dL/dpre for one (b, e)
  std::vector<T> carried(p.L + p.K - 1);  // dwindow_out at input positions j + (K−1)
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t e = 0; e < p.E; ++e) {
      std::fill(carried.begin(), carried.end(), T(0));
      if (dwindow_out)  // read before dwindow_in (which it may alias) is written
        for (int64_t i = 0; i < p.K - 1; ++i)
          carried[p.L + i] = dwindow_out[(b * p.E + e) * (p.K - 1) + i];
      for (int64_t t = 0; t < p.L; ++t) {
        const T d = du[(b * p.L + t) * p.E + e];
        g[t] = p.silu ? d * silu_grad(conv_pre(x, w, bias, window_in, b, t, e, p)) : d;
      }
      // Input position j in [−(K−1), L) feeds outputs t = j + (K−1) − k.
      for (int64_t j = -(p.K - 1); j < p.L; ++j) {
        T acc = carried[j + p.K - 1];
        for (int64_t k = 0; k < p.K; ++k) {
          const int64_t t = j + (p.K - 1) - k;
          if (t >= 0 && t < p.L) acc += w[e * p.K + k] * g[t];
        }
        if (j >= 0)
          dx[(b * p.L + j) * p.ld_x + e] = acc;
        else if (dwindow_in)
          dwindow_in[(b * p.E + e) * (p.K - 1) + (p.K - 1 + j)] = acc;
      }
      for (int64_t k = 0; k < p.K; ++k) {
        T acc = 0;
        for (int64_t t = 0; t < p.L; ++t)
          acc += g[t] * conv_input(x, window_in, b, t - (p.K - 1) + k, e, p);
        dw[e * p.K + k] += acc;
      }
      if (dbias) {
        T acc = 0;
        for (int64_t t = 0; t < p.L; ++t) acc += g[t];
        dbias[e] += acc;
      }
    }
}

template void causal_conv1d_forward<float>(float*, float*, const float*, const float*, const float*,
                                           const float*, const CausalConv1dParams&);
template void causal_conv1d_forward<double>(double*, double*, const double*, const double*,
                                            const double*, const double*,
                                            const CausalConv1dParams&);
template void causal_conv1d_backward<float>(float*, float*, float*, float*, const float*,
                                            const float*, const float*, const float*, const float*,
                                            const float*, const CausalConv1dParams&);
template void causal_conv1d_backward<double>(double*, double*, double*, double*, const double*,
                                             const double*, const double*, const double*,
                                             const double*, const double*,
                                             const CausalConv1dParams&);

}  // namespace mambadna::kernels::ref
