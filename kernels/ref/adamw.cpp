// Reference AdamW step: a plain loop, the spec for the other backends.
#include "kernels/adamw.h"

#include <cmath>

namespace mambadna::kernels::ref {

template <typename T>
void adamw_update(T* param, T* m, T* v, const T* grad, int64_t n, const AdamwParams& p) {
  const char* fn = "adamw_update";
  adamw_update_check(fn, param, m, v, grad, n, p);
  const double bc1 = 1 - std::pow(p.beta1, double(p.step));
  const double bc2 = 1 - std::pow(p.beta2, double(p.step));
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad[i];
    double x = double(param[i]) * (1 - p.lr * p.weight_decay);
    const double mi = p.beta1 * double(m[i]) + (1 - p.beta1) * g;
    const double vi = p.beta2 * double(v[i]) + (1 - p.beta2) * g * g;
    x -= p.lr * (mi / bc1) / (std::sqrt(vi / bc2) + p.eps);
    param[i] = T(x);
    m[i] = T(mi);
    v[i] = T(vi);
  }
}

template void adamw_update<float>(float*, float*, float*, const float*, int64_t,
                                  const AdamwParams&);
template void adamw_update<double>(double*, double*, double*, const double*, int64_t,
                                   const AdamwParams&);

}  // namespace mambadna::kernels::ref
