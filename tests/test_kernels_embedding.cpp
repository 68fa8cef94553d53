// Embedding: cpu against ref, the backward against finite differences, bad tokens rejected.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/embedding.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

namespace {

std::vector<int32_t> random_tokens(std::mt19937& rng, int64_t M, int64_t V) {
  std::uniform_int_distribution<int32_t> dist(0, int32_t(V - 1));
  std::vector<int32_t> t(M);
  for (auto& x : t) x = dist(rng);
  return t;
}

}  // namespace

TEST_CASE("embedding cpu matches ref", "[kernels][embedding]") {
  std::mt19937 rng(21);
  for (const auto [M, D, V] : {std::array<int64_t, 3>{1, 37, 5}, {201, 128, 16}, {67, 3, 300}}) {
    INFO("M " << M << " D " << D << " V " << V);
    const EmbeddingParams p{M, D, V};
    const auto tokens = random_tokens(rng, M, V);
    const Vd W = float_exact(random_vec(rng, V * D)), dout = float_exact(random_vec(rng, M * D));
    const Vd dW0 = float_exact(random_vec(rng, V * D));
    Vd out_r(M * D), dW_r = dW0;
    ref::embedding_forward<double>(out_r.data(), tokens.data(), W.data(), p);
    ref::embedding_backward<double>(dW_r.data(), dout.data(), tokens.data(), p);
    auto out = poisoned<float>(M * D), dW = cast<float>(dW0);
    const auto Wf = cast<float>(W), doutf = cast<float>(dout);
    cpu::embedding_forward(out.data(), tokens.data(), Wf.data(), p);
    cpu::embedding_backward(dW.data(), doutf.data(), tokens.data(), p);
    CHECK(norm_err(out, out_r) == 0.0);  // a copy
    // dW: float sums of up to M rows of O(1) values onto an O(1) start: ~M·eps at most.
    CHECK(norm_err(dW, dW_r) <= 200 * kFloatEps);
  }
}

TEST_CASE("embedding ref backward matches finite differences", "[kernels][embedding]") {
  std::mt19937 rng(22);
  const EmbeddingParams p{7, 3, 4};
  const auto tokens = random_tokens(rng, p.M, p.V);
  Vd W = random_vec(rng, p.V * p.D);
  const Vd dout = random_vec(rng, p.M * p.D);
  Vd dW(W.size(), 0.0);
  ref::embedding_backward<double>(dW.data(), dout.data(), tokens.data(), p);
  const auto J = [&]() {
    Vd out(p.M * p.D);
    ref::embedding_forward<double>(out.data(), tokens.data(), W.data(), p);
    return dot(out, dout);
  };
  CHECK(fd_check(W, dW, J) <= 1e-8);  // J is linear in W: FD is exact up to rounding
}

TEST_CASE("embedding rejects bad tokens", "[kernels][embedding]") {
  std::vector<float> W(8, 0.0f), out(4, 0.0f);
  const std::vector<int32_t> tokens{1, 4};
  CHECK_THROWS_WITH(cpu::embedding_forward(out.data(), tokens.data(), W.data(), {2, 2, 4}),
                    "embedding_forward: tokens[1] (4) outside [0, V) with V = 4");
  const std::vector<int32_t> neg{-1, 0};
  CHECK_THROWS_AS(ref::embedding_backward<float>(W.data(), out.data(), neg.data(), {2, 2, 4}),
                  mambadna::UsageError);
}
