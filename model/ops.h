// Picks a kernel backend by element type: float runs kernels/cpu (TBB + SIMD + BLAS), double
// runs kernels/ref (the plain-loop spec). The model is written once against Ops<T>.
#pragma once
#include <cstdint>
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

// The scan whose forward keeps the state every 64 steps for its backward (h_chunks,
// scan_chunk_states(p) elements, (B, ceil(L / 64), E, N)) on the CPU; the reference keeps none
// and recomputes them (its h_chunks is null).
template <>
struct Ops<float> {
  MAMBADNA_OPS(cpu)
  static int64_t scan_chunk_states(const kernels::SelectiveScanParams& p) {
    return kernels::cpu::selective_scan_chunk_states(p);
  }
  template <typename... Args>
  static void selective_scan_forward_keeping(float* h_chunks, Args&&... args) {
    kernels::cpu::selective_scan_forward(std::forward<Args>(args)..., h_chunks);
  }
  template <typename... Args>
  static void selective_scan_backward_from(const float* h_chunks, Args&&... args) {
    kernels::cpu::selective_scan_backward(std::forward<Args>(args)..., h_chunks);
  }
};
template <>
struct Ops<double> {
  MAMBADNA_OPS(ref)
  static int64_t scan_chunk_states(const kernels::SelectiveScanParams&) { return 0; }
  template <typename... Args>
  static void selective_scan_forward_keeping(double*, Args&&... args) {
    kernels::ref::selective_scan_forward(std::forward<Args>(args)...);
  }
  template <typename... Args>
  static void selective_scan_backward_from(const double*, Args&&... args) {
    kernels::ref::selective_scan_backward(std::forward<Args>(args)...);
  }
};
#undef MAMBADNA_OPS
#undef MAMBADNA_OP

}  // namespace mambadna::model
