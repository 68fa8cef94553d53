// AdamW: cpu against ref over several steps, against a hand-computed first step.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernels/adamw.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

TEST_CASE("adamw cpu matches ref", "[kernels][adamw]") {
  std::mt19937 rng(61);
  for (const int64_t n : {1, 37, 100003}) {
    INFO("n " << n);
    Vd param = float_exact(random_vec(rng, n)), m(n, 0.0), v(n, 0.0);
    auto pf = cast<float>(param), mf = cast<float>(m), vf = cast<float>(v);
    auto pc = pf, mc = mf, vc = vf;
    AdamwParams p{1e-2, 0.9, 0.95, 1e-8, 0.1, 1};
    for (int step = 1; step <= 3; ++step) {
      p.step = step;
      const Vd g = float_exact(random_vec(rng, n));
      const auto gf = cast<float>(g);
      ref::adamw_update<double>(param.data(), m.data(), v.data(), g.data(), n, p);
      ref::adamw_update<float>(pf.data(), mf.data(), vf.data(), gf.data(), n, p);
      cpu::adamw_update(pc.data(), mc.data(), vc.data(), gf.data(), n, p);
    }
    // A handful of float operations per element and step: a few eps of O(1) values.
    for (const auto* x : {&pf, &pc}) CHECK(norm_err(*x, param) <= 1e-6);
    for (const auto* x : {&mf, &mc}) CHECK(norm_err(*x, m) <= 1e-6);
    for (const auto* x : {&vf, &vc}) CHECK(norm_err(*x, v) <= 1e-6);
  }
}

TEST_CASE("adamw first step by hand", "[kernels][adamw]") {
  // Step 1 from zero moments: m̂ = g, v̂ = g², so param' = param (1 − lr wd) − lr g / (|g| + eps).
  const AdamwParams p{0.1, 0.9, 0.999, 1e-8, 0.5, 1};
  float param[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
  const float g[2] = {0.5f, -4.0f};
  cpu::adamw_update(param, m, v, g, 2, p);
  CHECK(param[0] == Approx(1.0 * 0.95 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-6));
  CHECK(param[1] == Approx(-2.0 * 0.95 + 0.1 * 4.0 / (4.0 + 1e-8)).epsilon(1e-6));
  CHECK(m[0] == Approx(0.05).epsilon(1e-6));
  CHECK(v[1] == Approx(0.001 * 16).epsilon(1e-6));
  CHECK_THROWS_WITH(cpu::adamw_update(param, m, v, g, 2, AdamwParams{0.1, 0.9, 0.999, 1e-8, 0, 0}),
                    "adamw_update: step (0) must be > 0");
}
