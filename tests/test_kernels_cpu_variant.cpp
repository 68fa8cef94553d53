// The choice of CPU kernels (kernels/cpu_variant.h). Each variant's kernels are tested against
// the reference by the kernel tests themselves, run once per variant (tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "io/error.h"
#include "kernels/cpu_variant.h"
#include "kernels/rmsnorm.h"

namespace cpu = mambadna::kernels::cpu;

TEST_CASE("cpu variants: the widest supported runs unless one is chosen", "[kernels][variant]") {
  const auto variants = cpu::variants();
  REQUIRE(!variants.empty());
  CHECK(variants.back().needs.empty());  // the last runs anywhere
  CHECK(variants.back().supported);
  const std::string initial = cpu::active_variant();
  for (const auto& v : variants) {
    INFO(v.name);
    if (!v.supported) {
      CHECK_THROWS_WITH(cpu::select_variant(v.name),
                        Catch::Contains("this processor lacks " + v.needs));
      continue;
    }
    cpu::select_variant(v.name);
    CHECK(cpu::active_variant() == v.name);
    // The chosen kernels run: one RMSNorm row of ones is ones.
    float x[5] = {1, 1, 1, 1, 1}, w[5] = {1, 1, 1, 1, 1}, y[5] = {}, rstd = 0;
    mambadna::kernels::RmsnormParams p;
    p.M = 1;
    p.D = 5;
    cpu::rmsnorm_forward(y, &rstd, x, w, p);
    for (float f : y) CHECK(f == Approx(1.0f).epsilon(1e-4));
  }
  CHECK_THROWS_AS(cpu::select_variant("sse9"), mambadna::UsageError);
  CHECK_THROWS_WITH(cpu::select_variant("sse9"), Catch::Contains("built: " + variants.front().name));
  cpu::select_variant(initial);
  CHECK(cpu::active_variant() == initial);
  // Without MAMBADNA_CPU_KERNELS the first supported is the one chosen at start-up; with it, the
  // one it names (tests/main.cpp sets it for the runs of each variant).
  if (const char* env = std::getenv("MAMBADNA_CPU_KERNELS"))
    CHECK(initial == env);
  else
    for (const auto& v : variants)
      if (v.supported) {
        CHECK(initial == v.name);
        break;
      }
}
