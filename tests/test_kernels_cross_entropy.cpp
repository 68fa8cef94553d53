// Cross-entropy and log-softmax: cpu against ref, the backward against finite differences,
// ignored rows, bad targets rejected.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/cross_entropy.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

namespace {

std::vector<int32_t> random_targets(std::mt19937& rng, int64_t M, int64_t V) {
  std::uniform_int_distribution<int32_t> dist(-1, int32_t(V - 1));  // −1: ignored row
  std::vector<int32_t> t(M);
  for (auto& x : t) x = dist(rng);
  return t;
}

}  // namespace

TEST_CASE("cross_entropy cpu matches ref", "[kernels][cross_entropy]") {
  std::mt19937 rng(51);
  for (const auto [M, V] : {std::array<int64_t, 2>{1, 5}, {67, 16}, {130, 37}, {3, 1000}}) {
    INFO("M " << M << " V " << V);
    const CrossEntropyParams p{M, V};
    const Vd logits = float_exact(random_vec(rng, M * V, -8.0, 8.0));
    const Vd dloss = float_exact(random_vec(rng, M));
    const auto targets = random_targets(rng, M, V);
    Vd loss_r(M), lse_r(M), ls_r(M * V), dl_r(M * V);
    ref::cross_entropy_forward<double>(loss_r.data(), lse_r.data(), logits.data(), targets.data(),
                                       p);
    ref::log_softmax_forward<double>(ls_r.data(), logits.data(), p);
    ref::cross_entropy_backward<double>(dl_r.data(), logits.data(), lse_r.data(), targets.data(),
                                        dloss.data(), p);
    const auto run = [&](auto fwd, auto lsm, auto bwd) {
      const auto lf = cast<float>(logits), dlf = cast<float>(dloss);
      auto loss = poisoned<float>(M), lse = poisoned<float>(M), ls = poisoned<float>(M * V),
           dl = poisoned<float>(M * V);
      fwd(loss.data(), lse.data(), lf.data(), targets.data(), p);
      lsm(ls.data(), lf.data(), p);
      bwd(dl.data(), lf.data(), lse.data(), targets.data(), dlf.data(), p);
      // A V-term sum of exponentials (≤ 3 ulp each) and a log: a few eps relative to the O(10)
      // results; softmax probabilities inherit the error of lse times their size.
      CHECK(norm_err(loss, loss_r) <= 1e-6);
      CHECK(norm_err(lse, lse_r) <= 1e-6);
      CHECK(norm_err(ls, ls_r) <= 1e-6);
      CHECK(norm_err(dl, dl_r) <= 1e-6);
    };
    run(ref::cross_entropy_forward<float>, ref::log_softmax_forward<float>,
        ref::cross_entropy_backward<float>);
    run(cpu::cross_entropy_forward, cpu::log_softmax_forward, cpu::cross_entropy_backward);
    for (int64_t m = 0; m < M; ++m)
      if (targets[m] < 0) CHECK(loss_r[m] == 0.0);
  }
}

TEST_CASE("cross_entropy ref backward matches finite differences", "[kernels][cross_entropy]") {
  std::mt19937 rng(52);
  const CrossEntropyParams p{4, 6};
  Vd logits = random_vec(rng, p.M * p.V, -3.0, 3.0);
  const Vd dloss = random_vec(rng, p.M);
  const std::vector<int32_t> targets{2, -1, 0, 5};
  Vd loss(p.M), lse(p.M), dl(p.M * p.V);
  ref::cross_entropy_forward<double>(loss.data(), lse.data(), logits.data(), targets.data(), p);
  ref::cross_entropy_backward<double>(dl.data(), logits.data(), lse.data(), targets.data(),
                                      dloss.data(), p);
  const auto J = [&]() {
    Vd ls(p.M), ll(p.M);
    ref::cross_entropy_forward<double>(ll.data(), ls.data(), logits.data(), targets.data(), p);
    return dot(ll, dloss);
  };
  CHECK(fd_check(logits, dl, J) <= 1e-6);
  for (int64_t v = 0; v < p.V; ++v) CHECK(dl[1 * p.V + v] == 0.0);  // the ignored row
}

TEST_CASE("cross_entropy rejects bad targets", "[kernels][cross_entropy]") {
  std::vector<float> b(16, 0.0f);
  const std::vector<int32_t> targets{0, 4};
  CHECK_THROWS_WITH(
      cpu::cross_entropy_forward(b.data(), b.data(), b.data(), targets.data(), {2, 4}),
      "cross_entropy_forward: targets[1] (4) >= V (4)");
  CHECK_THROWS_AS(ref::cross_entropy_backward<float>(b.data(), b.data(), b.data(), targets.data(),
                                                     b.data(), {2, 4}),
                  mambadna::UsageError);
}
