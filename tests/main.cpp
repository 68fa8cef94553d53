// The Catch2 test runner's main(). With MAMBADNA_CPU_KERNELS naming CPU kernels this processor
// cannot run (tests/CMakeLists.txt runs the kernel tests once per variant built), every test
// reports itself skipped instead of failing.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#ifndef MAMBADNA_TESTS_WITHOUT_LIBRARY
#include "kernels/cpu_variant.h"
#endif

int main(int argc, char** argv) {
#ifndef MAMBADNA_TESTS_WITHOUT_LIBRARY
  if (const char* want = std::getenv("MAMBADNA_CPU_KERNELS"))
    for (const auto& v : mambadna::kernels::cpu::variants())
      if (v.name == want && !v.supported) {
        std::printf("SKIPPED: no CPU support for the %s kernels (%s)\n", want, v.needs.c_str());
        return 0;
      }
#endif
  return Catch::Session().run(argc, argv);
}
