// Reference Linear layer: plain loops (accumulating in T), the spec for the other backends.
#include "kernels/matmul.h"

namespace mambadna::kernels::ref {

template <typename T>
void matmul_forward(T* out, const T* in, const T* W, const T* bias, const MatmulParams& p) {
  const char* fn = "matmul_forward";
  matmul_forward_check(fn, out, in, W, p);
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t n = 0; n < p.N; ++n) {
      T acc = bias ? bias[n] : T(0);
      for (int64_t k = 0; k < p.K; ++k) acc += in[m * p.ldi + k] * W[n * p.K + k];
      T& o = out[m * p.ldo + n];
      o = p.accumulate ? o + acc : acc;
    }
}

template <typename T>
void matmul_backward(T* din, T* dW, T* dbias, const T* dout, const T* in, const T* W,
                     const MatmulParams& p) {
  const char* fn = "matmul_backward";
  matmul_backward_check(fn, dW, dout, in, W, p);
  if (din)
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t k = 0; k < p.K; ++k) {
        T acc = 0;
        for (int64_t n = 0; n < p.N; ++n) acc += dout[m * p.ldo + n] * W[n * p.K + k];
        T& d = din[m * p.ldi + k];
        d = p.accumulate_din ? d + acc : acc;
      }
  for (int64_t n = 0; n < p.N; ++n) {
    for (int64_t k = 0; k < p.K; ++k) {
      T acc = 0;
      for (int64_t m = 0; m < p.M; ++m) acc += dout[m * p.ldo + n] * in[m * p.ldi + k];
      dW[n * p.K + k] += acc;
    }
    if (dbias) {
      T acc = 0;
      for (int64_t m = 0; m < p.M; ++m) acc += dout[m * p.ldo + n];
      dbias[n] += acc;
    }
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*,
                                    const MatmulParams&);
template void matmul_forward<double>(double*, const double*, const double*, const double*,
                                     const MatmulParams&);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const MatmulParams&);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const MatmulParams&);

}  // namespace mambadna::kernels::ref
