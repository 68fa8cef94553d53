// Matmul (Linear): cpu (BLAS) against ref, strided in/out, accumulate flags, and the ref backward
// against finite differences.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/matmul.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

namespace {

struct MatmulCase {
  int64_t M, K, N, ldi, ldo;
  bool accumulate, accumulate_din, has_bias;
};

}  // namespace

TEST_CASE("matmul cpu matches ref", "[kernels][matmul]") {
  std::mt19937 rng(41);
  const MatmulCase cases[] = {
      {1, 37, 5, 37, 5, false, false, true},
      {67, 37, 128, 80, 130, true, false, true},
      {3, 128, 37, 2 * 128, 40, false, true, false},
      {130, 64, 48, 64, 48, true, true, true},
  };
  for (const MatmulCase& c : cases) {
    INFO("M " << c.M << " K " << c.K << " N " << c.N << " ldi " << c.ldi << " ldo " << c.ldo
              << " accumulate " << c.accumulate << " accumulate_din " << c.accumulate_din);
    const MatmulParams p{c.M, c.K, c.N, c.ldi, c.ldo, c.accumulate, c.accumulate_din};
    const Vd in = float_exact(random_vec(rng, c.M * c.ldi)),
             W = float_exact(random_vec(rng, c.N * c.K));
    const Vd bias = c.has_bias ? float_exact(random_vec(rng, c.N)) : Vd{};
    const Vd dout = float_exact(random_vec(rng, c.M * c.ldo));
    // Starting values: NaN where the op assigns (padding stays NaN), known values where it adds.
    const auto start = [&](size_t n, bool adds) {
      return adds ? float_exact(random_vec(rng, n)) : to_d(poisoned<double>(n));
    };
    const Vd out0 = start(c.M * c.ldo, c.accumulate), din0 = start(c.M * c.ldi, c.accumulate_din);
    const Vd dW0 = float_exact(random_vec(rng, c.N * c.K)), db0 = float_exact(random_vec(rng, c.N));
    const auto bp = [](auto& v) { return v.empty() ? nullptr : v.data(); };

    Vd out_r = out0, din_r = din0, dW_r = dW0, db_r = c.has_bias ? db0 : Vd{};
    ref::matmul_forward<double>(out_r.data(), in.data(), W.data(), bp(bias), p);
    ref::matmul_backward<double>(din_r.data(), dW_r.data(), bp(db_r), dout.data(), in.data(),
                                 W.data(), p);
    const auto run = [&](auto fwd, auto bwd) {
      const auto inf = cast<float>(in), Wf = cast<float>(W), bf = cast<float>(bias),
                 doutf = cast<float>(dout);
      auto out = cast<float>(out0), din = cast<float>(din0), dW = cast<float>(dW0),
           db = c.has_bias ? cast<float>(db0) : std::vector<float>{};
      fwd(out.data(), inf.data(), Wf.data(), bp(bf), p);
      bwd(din.data(), dW.data(), bp(db), doutf.data(), inf.data(), Wf.data(), p);
      const auto in_o = [&](size_t i) { return int64_t(i % c.ldo) < c.N; };
      const auto in_i = [&](size_t i) { return int64_t(i % c.ldi) < c.K; };
      // Float sums of up to 130 products of O(1) values (K for out and din, M for dW and
      // dbias): errors grow like sqrt(terms)·eps relative to the O(sqrt(terms)) results.
      CHECK(norm_err(out, out_r, in_o) <= 1e-5);
      CHECK(padding_untouched(out, cast<float>(out0), c.ldo, c.N));
      CHECK(norm_err(din, din_r, in_i) <= 1e-5);
      CHECK(padding_untouched(din, cast<float>(din0), c.ldi, c.K));
      CHECK(norm_err(dW, dW_r) <= 1e-5);
      CHECK(norm_err(db, db_r) <= 1e-5);
    };
    run(ref::matmul_forward<float>, ref::matmul_backward<float>);
    run(cpu::matmul_forward, cpu::matmul_backward);
  }
}

TEST_CASE("matmul ref backward matches finite differences", "[kernels][matmul]") {
  std::mt19937 rng(42);
  const MatmulParams p{4, 3, 5, 4, 6};
  Vd in = random_vec(rng, p.M * p.ldi), W = random_vec(rng, p.N * p.K), bias = random_vec(rng, p.N);
  const Vd dout = random_vec(rng, p.M * p.ldo);
  Vd din(in.size(), 0.0), dW(W.size(), 0.0), db(p.N, 0.0);
  ref::matmul_backward<double>(din.data(), dW.data(), db.data(), dout.data(), in.data(), W.data(),
                               p);
  const auto J = [&]() {
    Vd out(p.M * p.ldo, 0.0);
    ref::matmul_forward<double>(out.data(), in.data(), W.data(), bias.data(), p);
    return dot(out, dout);
  };
  // J is bilinear: central differences are exact up to rounding.
  CHECK(fd_check(in, din, J, 1e-6, [&](size_t i) { return int64_t(i % p.ldi) < p.K; }) <= 1e-8);
  CHECK(fd_check(W, dW, J) <= 1e-8);
  CHECK(fd_check(bias, db, J) <= 1e-8);
}

TEST_CASE("matmul rejects bad arguments", "[kernels][matmul]") {
  std::vector<float> b(64, 0.0f);
  CHECK_THROWS_WITH(cpu::matmul_forward(b.data(), b.data(), b.data(), nullptr, {2, 4, 3, 3, 3}),
                    "matmul_forward: ldi (3) < K (4)");
  CHECK_THROWS_WITH(ref::matmul_backward<float>(nullptr, nullptr, nullptr, b.data(), b.data(),
                                                b.data(), {2, 4, 3, 4, 3}),
                    "matmul_backward: dW is null");
}
