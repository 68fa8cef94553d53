// Which build of the CPU kernels runs (kernels/cpu/variant.h): on x86-64 the kernels are compiled
// for AVX-512 (x86-64-v4), AVX2 with FMA (x86-64-v3) and plain x86-64, and the first one the
// processor supports is chosen at the first kernel call, so that one binary runs at full width on
// any x86-64 machine. The environment variable MAMBADNA_CPU_KERNELS names another (to compare
// them, or to rule one out); naming one this build lacks or this processor cannot run is an error.
#pragma once
#include <string>
#include <vector>

namespace mambadna::kernels::cpu {

struct VariantInfo {
  std::string name;      // "avx512", "avx2", "generic"; "native" off x86-64
  std::string needs;     // the processor level it needs ("x86-64-v4"), "" for none
  bool supported = false;  // this processor runs it
};

// The variants built, widest first.
std::vector<VariantInfo> variants();

// The variant the kernels run (chosen at the first call: MAMBADNA_CPU_KERNELS, or the widest
// supported). Throws UsageError when MAMBADNA_CPU_KERNELS names one that cannot run.
std::string active_variant();

// Runs the kernels of `name` from now on. Throws UsageError when this build lacks it or this
// processor cannot run it, naming the ones that can.
void select_variant(const std::string& name);

}  // namespace mambadna::kernels::cpu
