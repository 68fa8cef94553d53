// CUDA AdamW step (see kernels/adamw.h): one thread per parameter, fp32 master weights and
// moments; the bias corrections are computed once on the host in double.
#include <cmath>

#include "kernels/adamw.h"
#include "kernels/cuda/common.cuh"

namespace mambadna::kernels::cuda {

namespace {

__global__ void adamw_update_kernel(float* param, float* m, float* v, const float* grad, int64_t n,
                                    float lr, float beta1, float beta2, float eps, float decay,
                                    float inv_bc1, float inv_sqrt_bc2) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = grad[i];
  const float mi = beta1 * m[i] + (1.0f - beta1) * g;
  const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
  float x = param[i] * decay;
  x -= lr * (mi * inv_bc1) / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  param[i] = x;
  m[i] = mi;
  v[i] = vi;
}

}  // namespace

void adamw_update(float* param, float* m, float* v, const float* grad, int64_t n,
                  const AdamwParams& p) {
  const char* fn = "cuda::adamw_update";
  adamw_update_check(fn, param, m, v, grad, n, p);
  const double bc1 = 1 - std::pow(p.beta1, double(p.step));
  const double bc2 = 1 - std::pow(p.beta2, double(p.step));
  launch(adamw_update_kernel, grid_for(n, 256), 256, 0, 
      param, m, v, grad, n, float(p.lr), float(p.beta1), float(p.beta2), float(p.eps),
      float(1 - p.lr * p.weight_decay), float(1 / bc1), float(1 / std::sqrt(bc2)));
  check_launch(fn);
}

}  // namespace mambadna::kernels::cuda
