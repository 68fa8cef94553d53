// The processor's instruction sets against the ones this build's code was compiled for. The
// default build compiles for its build machine (-march=native): copied to an older processor
// (a cluster's compute nodes, built on its login node), it would die of SIGILL at its first
// AVX-512 instruction. Instead it stops before main with a message that says how to build it
// for that processor (app/isa_check.cpp, compiled for plain x86-64).
#pragma once
#include <string>

namespace mambadna::app {

struct IsaFeature {
  const char* name;  // as __builtin_cpu_supports spells it: "avx2", "avx512f", ...
  bool built;        // the build's code may use it
};

// The features the rest of the build was compiled for (app/isa_built.cpp, compiled with the
// build's flags: data only, no code that could fault).
extern const IsaFeature kIsaBuilt[];
extern const int kIsaBuiltCount;

// The features of built[0..n) that are built but that `supports` says the processor lacks,
// comma-separated ("" when none).
std::string missing_isa(const IsaFeature* built, int n, bool (*supports)(const char* name));

// Whether this processor has the feature (__builtin_cpu_supports; false for a name it does not
// know, and everywhere but x86-64).
bool cpu_supports(const char* name);

}  // namespace mambadna::app
