// The CPU kernels that use the SIMD layer (kernels/cpu/simd.h) are compiled once per instruction
// set, each build a *variant* (CMakeLists.txt: on x86-64 `avx512` for x86-64-v4, `avx2` for
// x86-64-v3 and `generic` for plain x86-64; elsewhere one, `native`). A variant's translation
// units define the functions in namespace cpu::<variant> (MAMBADNA_CPU_NS) and its table below;
// the build links each variant into one object whose only global symbol is its table, so that
// no code compiled for one instruction set (an inline function, a template) can stand in for
// another's. kernels/cpu/dispatch.cpp defines the cpu:: functions of the op headers: each calls
// the chosen variant's (kernels/cpu_variant.h).
#pragma once

#include "kernels/adamw.h"
#include "kernels/causal_conv1d.h"
#include "kernels/cross_entropy.h"
#include "kernels/rmsnorm.h"
#include "kernels/selective_scan.h"

// X(name) for each function of a variant, in the order of its table.
#define MAMBADNA_CPU_KERNELS(X) \
  X(adamw_update)               \
  X(causal_conv1d_forward)      \
  X(causal_conv1d_backward)     \
  X(cross_entropy_forward)      \
  X(log_softmax_forward)        \
  X(cross_entropy_backward)     \
  X(rmsnorm_forward)            \
  X(rmsnorm_backward)           \
  X(selective_scan_chunk_states) \
  X(selective_scan_forward)     \
  X(selective_scan_backward)

namespace mambadna::kernels::cpu {

// A variant's functions, each of the type of the cpu:: function of the same name.
struct KernelTable {
  const char* name;
#define MAMBADNA_CPU_TABLE_MEMBER(f) decltype(&cpu::f) f;
  MAMBADNA_CPU_KERNELS(MAMBADNA_CPU_TABLE_MEMBER)
#undef MAMBADNA_CPU_TABLE_MEMBER
};

}  // namespace mambadna::kernels::cpu

// The name of a variant's table: extern "C", the one global symbol of its object.
#define MAMBADNA_CPU_TABLE_NAME_(v) mambadna_cpu_kernels_##v
#define MAMBADNA_CPU_TABLE_NAME(v) MAMBADNA_CPU_TABLE_NAME_(v)

#ifdef MAMBADNA_CPU_VARIANT
#define MAMBADNA_CPU_NS mambadna::kernels::cpu::MAMBADNA_CPU_VARIANT
// This variant's functions: declared with the types of the cpu:: ones, so that a definition that
// strays from its op header's declaration fails to link.
namespace MAMBADNA_CPU_NS {
#define MAMBADNA_CPU_DECLARE(f) decltype(cpu::f) f;
MAMBADNA_CPU_KERNELS(MAMBADNA_CPU_DECLARE)
#undef MAMBADNA_CPU_DECLARE
}  // namespace MAMBADNA_CPU_NS
#endif
