// Picks a kernel backend by element type: float runs kernels/cpu (TBB + SIMD + BLAS), double
// runs kernels/ref (the plain-loop spec). The model is written once against Ops<T>.
#pragma once
#include <utility>

#include "kernels/adamw.h"
#include "kernels/causal_conv1d.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/selective_scan.h"

namespace mambadna::model {

template <typename T>
struct Ops;

#define MAMBADNA_OP(ns, name)                                   \
  template <typename... Args>                                   \
  static void name(Args&&... args) {                            \
    kernels::ns::name(std::forward<Args>(args)...);             \
  }
#define MAMBADNA_OPS(ns)                            \
  MAMBADNA_OP(ns, embedding_forward)                \
  MAMBADNA_OP(ns, embedding_backward)               \
  MAMBADNA_OP(ns, rmsnorm_forward)                  \
  MAMBADNA_OP(ns, rmsnorm_backward)                 \
  MAMBADNA_OP(ns, matmul_forward)                   \
  MAMBADNA_OP(ns, matmul_backward)                  \
  MAMBADNA_OP(ns, causal_conv1d_forward)            \
  MAMBADNA_OP(ns, causal_conv1d_backward)           \
  MAMBADNA_OP(ns, selective_scan_forward)           \
  MAMBADNA_OP(ns, selective_scan_backward)          \
  MAMBADNA_OP(ns, cross_entropy_forward)            \
  MAMBADNA_OP(ns, cross_entropy_backward)           \
  MAMBADNA_OP(ns, log_softmax_forward)              \
  MAMBADNA_OP(ns, adamw_update)

template <>
struct Ops<float> {
  MAMBADNA_OPS(cpu)
};
template <>
struct Ops<double> {
  MAMBADNA_OPS(ref)
};
#undef MAMBADNA_OPS
#undef MAMBADNA_OP

}  // namespace mambadna::model
