// The Catch2 test runner's main(). tests/CMakeLists.txt runs the kernel tests once per CPU
// kernel variant built, naming it in MAMBADNA_TESTS_CPU_KERNELS: this main makes it the one the
// kernels run (MAMBADNA_CPU_KERNELS, kernels/cpu_variant.h), or, where this processor cannot
// run it, reports every test skipped. (MAMBADNA_CPU_KERNELS set by the user is left to the
// kernels: one this processor cannot run makes the tests fail, not skip.)
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
  if (const char* want = std::getenv("MAMBADNA_TESTS_CPU_KERNELS")) {
    for (const auto& v : mambadna::kernels::cpu::variants())
      if (v.name == want && !v.supported) {
        std::printf("SKIPPED: no CPU support for the %s kernels (%s)\n", want, v.needs.c_str());
        return 0;
      }
    ::setenv("MAMBADNA_CPU_KERNELS", want, 1);
  }
#endif
  return Catch::Session().run(argc, argv);
}
