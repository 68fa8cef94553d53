// The instruction-set check of app/isa.h. This file is compiled for plain x86-64 (CMakeLists.txt),
// whatever the build's flags: it runs before main, before any code that may use AVX-512.
#include "app/isa.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace mambadna::app {

std::string missing_isa(const IsaFeature* built, int n, bool (*supports)(const char*)) {
  std::string missing;
  for (int i = 0; i < n; ++i)
    if (built[i].built && !supports(built[i].name)) {
      if (!missing.empty()) missing += ',';
      missing += built[i].name;
    }
  return missing;
}

bool cpu_supports(const char* name) {
#if defined(__x86_64__) && defined(__GNUC__)
  // __builtin_cpu_supports takes a literal: one line a name of kIsaBuilt.
#define MAMBADNA_FEATURE(f) \
  if (std::strcmp(name, f) == 0) return __builtin_cpu_supports(f);
  MAMBADNA_FEATURE("sse4.2") MAMBADNA_FEATURE("popcnt") MAMBADNA_FEATURE("avx") MAMBADNA_FEATURE("avx2")
  MAMBADNA_FEATURE("fma") MAMBADNA_FEATURE("bmi") MAMBADNA_FEATURE("bmi2") MAMBADNA_FEATURE("avx512f")
  MAMBADNA_FEATURE("avx512cd") MAMBADNA_FEATURE("avx512vl") MAMBADNA_FEATURE("avx512bw")
  MAMBADNA_FEATURE("avx512dq") MAMBADNA_FEATURE("avx512ifma") MAMBADNA_FEATURE("avx512vbmi")
  MAMBADNA_FEATURE("avx512vbmi2") MAMBADNA_FEATURE("avx512vnni") MAMBADNA_FEATURE("avx512bitalg")
  MAMBADNA_FEATURE("avx512vpopcntdq") MAMBADNA_FEATURE("avx512bf16")
#undef MAMBADNA_FEATURE
#else
  (void)name;
#endif
  return false;
}

namespace {

// Before the program's other static constructors (priority 101), which may already run code
// compiled for the build machine.
__attribute__((constructor(101))) void check_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const std::string missing = missing_isa(kIsaBuilt, kIsaBuiltCount, cpu_supports);
  if (missing.empty()) return;
  std::fprintf(stderr,
               "mambadna: this processor lacks instructions this build was compiled for (%s): it was "
               "built for another machine (-march=native, the default, compiles for the build "
               "machine); build it on this one, or with -DMAMBADNA_PORTABLE=ON for any x86-64 processor (its "
               "CPU kernels still run at the width of the processor's SIMD)\n",
               missing.c_str());
  _exit(1);
#endif
}

}  // namespace

}  // namespace mambadna::app
