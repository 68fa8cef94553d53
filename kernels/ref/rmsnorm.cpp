// Reference RMSNorm: plain loops with double reductions, the spec for the other backends.
#include "kernels/rmsnorm.h"

#include <cmath>

namespace mambadna::kernels::ref {

template <typename T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, const RmsnormParams& p) {
  const char* fn = "rmsnorm_forward";
  rmsnorm_forward_check(fn, y, rstd, x, w, p);
  for (int64_t m = 0; m < p.M; ++m) {
    const T* xr = x + m * p.D;
    double ss = 0;
    for (int64_t d = 0; d < p.D; ++d) ss += double(xr[d]) * double(xr[d]);
    const double r = 1.0 / std::sqrt(ss / double(p.D) + p.eps);
    rstd[m] = T(r);
    for (int64_t d = 0; d < p.D; ++d) y[m * p.D + d] = T(double(xr[d]) * r * double(w[d]));
  }
}

template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd,
                      const RmsnormParams& p) {
  const char* fn = "rmsnorm_backward";
  rmsnorm_backward_check(fn, dx, dw, dy, x, w, rstd, p);
  for (int64_t m = 0; m < p.M; ++m) {
    const T* xr = x + m * p.D;
    const T* dyr = dy + m * p.D;
    const double r = rstd[m];
    double gx = 0;  // Σ_d dy·w·x
    for (int64_t d = 0; d < p.D; ++d) gx += double(dyr[d]) * double(w[d]) * double(xr[d]);
    const double c = r * r * r * gx / double(p.D);
    for (int64_t d = 0; d < p.D; ++d) {
      dx[m * p.D + d] += T(r * double(dyr[d]) * double(w[d]) - c * double(xr[d]));
      dw[d] += T(double(dyr[d]) * double(xr[d]) * r);
    }
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*,
                                     const RmsnormParams&);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*,
                                      const RmsnormParams&);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*,
                                      const float*, const RmsnormParams&);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*,
                                       const double*, const double*, const RmsnormParams&);

}  // namespace mambadna::kernels::ref
