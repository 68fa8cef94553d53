// RMSNorm: cpu against ref, the backward against finite differences, dx and dw accumulate.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/rmsnorm.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

TEST_CASE("rmsnorm cpu matches ref", "[kernels][rmsnorm]") {
  std::mt19937 rng(31);
  for (const auto [M, D] : {std::array<int64_t, 2>{1, 37}, {3, 128}, {201, 37}, {130, 515}}) {
    INFO("M " << M << " D " << D);
    const RmsnormParams p{M, D, 1e-5};
    const Vd x = float_exact(random_vec(rng, M * D, -2.0, 2.0)),
             w = float_exact(random_vec(rng, D));
    const Vd dy = float_exact(random_vec(rng, M * D));
    const Vd dx0 = float_exact(random_vec(rng, M * D)), dw0 = float_exact(random_vec(rng, D));
    Vd y_r(M * D), rstd_r(M), dx_r = dx0, dw_r = dw0;
    ref::rmsnorm_forward<double>(y_r.data(), rstd_r.data(), x.data(), w.data(), p);
    ref::rmsnorm_backward<double>(dx_r.data(), dw_r.data(), dy.data(), x.data(), w.data(),
                                  rstd_r.data(), p);
    const auto run = [&](auto fwd, auto bwd, auto tag) {
      using T = decltype(tag);
      const auto xf = cast<T>(x), wf = cast<T>(w), dyf = cast<T>(dy);
      auto y = poisoned<T>(M * D), rstd = poisoned<T>(M);
      auto dx = cast<T>(dx0), dw = cast<T>(dw0);
      fwd(y.data(), rstd.data(), xf.data(), wf.data(), p);
      bwd(dx.data(), dw.data(), dyf.data(), xf.data(), wf.data(), rstd.data(), p);
      // Forward: a D-term sum of squares and a few products, relative error ~ a few eps.
      CHECK(norm_err(y, y_r) <= 1e-6);
      CHECK(norm_err(rstd, rstd_r) <= 1e-6);
      // Backward: a D-term dot product (dx) and M-term sums of O(1) values (dw, M ≤ 201): the
      // normalised error stays below ~sqrt(terms)·eps; 1e-5 is a wide bound.
      CHECK(norm_err(dx, dx_r) <= 1e-5);
      CHECK(norm_err(dw, dw_r) <= 1e-5);
    };
    run(ref::rmsnorm_forward<float>, ref::rmsnorm_backward<float>, float{});
    run(cpu::rmsnorm_forward, cpu::rmsnorm_backward, float{});
  }
}

TEST_CASE("rmsnorm ref backward matches finite differences", "[kernels][rmsnorm]") {
  std::mt19937 rng(32);
  const RmsnormParams p{3, 5, 1e-5};
  Vd x = random_vec(rng, p.M * p.D), w = random_vec(rng, p.D);
  const Vd dy = random_vec(rng, p.M * p.D);
  Vd y(p.M * p.D), rstd(p.M), dx(p.M * p.D, 0.0), dw(p.D, 0.0);
  ref::rmsnorm_forward<double>(y.data(), rstd.data(), x.data(), w.data(), p);
  ref::rmsnorm_backward<double>(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(),
                                p);
  const auto J = [&]() {
    Vd yy(p.M * p.D), rr(p.M);
    ref::rmsnorm_forward<double>(yy.data(), rr.data(), x.data(), w.data(), p);
    return dot(yy, dy);
  };
  CHECK(fd_check(x, dx, J) <= 1e-6);
  CHECK(fd_check(w, dw, J) <= 1e-6);
}

TEST_CASE("rmsnorm rejects bad arguments", "[kernels][rmsnorm]") {
  std::vector<float> b(16, 1.0f);
  CHECK_THROWS_WITH(cpu::rmsnorm_forward(b.data(), b.data(), b.data(), b.data(), {0, 4, 1e-5}),
                    "rmsnorm_forward: M (0) must be > 0");
  CHECK_THROWS_WITH(ref::rmsnorm_backward<float>(b.data(), nullptr, b.data(), b.data(), b.data(),
                                                 b.data(), {2, 4, 1e-5}),
                    "rmsnorm_backward: dw is null");
}
