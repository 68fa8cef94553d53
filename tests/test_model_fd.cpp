// The whole model's gradient against central finite differences in float64, on a tiny random
// configuration, for a chunk that starts from a carried (non-zero) state: every parameter
// tensor is probed at a few entries.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "model/checkpoint.h"
#include "model/mamba.h"

using namespace mambadna;

TEST_CASE("model: gradient of the loss equals central finite differences (float64)", "[model][grad]") {
  model::Config c;
  c.d_model = 8, c.n_layer = 2, c.d_state = 4, c.d_conv = 3, c.expand = 2, c.dt_rank = 2;
  auto table = model::ParamTable::build(c);
  auto init = model::init_params(c, table, 11);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<double> params(init.begin(), init.end());
  for (auto& p : params) p += noise(rng);  // away from the initial values (D = 1, norms = 1)
  model::Mamba<double> m(c, params);

  const int64_t B = 2, L = 6;
  std::uniform_int_distribution<int> base(0, 3);
  auto draw = [&] {
    std::vector<int32_t> t(size_t(B * L));
    for (auto& x : t) x = "ACGT"[base(rng)];
    return t;
  };
  const auto warm = draw(), tok = draw();
  auto tgt = draw();
  tgt[3] = -1;  // an ignored position
  // The carried state: what a first chunk leaves behind.
  model::State<double> carried(c, B);
  {
    model::Activations<double> a;
    m.forward(warm.data(), B, L, carried, a);
  }
  auto loss_at = [&](model::Mamba<double>& mm) {
    model::State<double> st = carried;
    model::Activations<double> a;
    a.plan(c, B, L, true);
    return mm.forward_loss(tok.data(), tgt.data(), B, L, st, a);
  };
  model::State<double> st = carried;
  model::Activations<double> a;
  a.plan(c, B, L, true);
  m.forward_loss(tok.data(), tgt.data(), B, L, st, a);
  model::ActivationGrads<double> g;
  std::vector<double> grad(params.size(), 0.0);
  m.backward(tok.data(), tgt.data(), a, g, 1.0, grad.data());

  const double h = 1e-6;
  for (const auto& spec : table.specs) {
    std::uniform_int_distribution<int64_t> pick(0, spec.size - 1);
    for (int k = 0; k < 4; ++k) {
      const int64_t i = spec.offset + pick(rng);
      const double keep = m.params()[size_t(i)];
      m.params()[size_t(i)] = keep + h;
      const double up = loss_at(m);
      m.params()[size_t(i)] = keep - h;
      const double down = loss_at(m);
      m.params()[size_t(i)] = keep;
      const double fd = (up - down) / (2 * h);
      INFO(spec.name << " [" << i - spec.offset << "] analytic " << grad[size_t(i)] << " fd " << fd);
      // central differences in float64 with h = 1e-6: truncation ~h^2, rounding ~1e-16/h
      CHECK(std::fabs(grad[size_t(i)] - fd) <= 1e-6 * std::max(1.0, std::fabs(fd)));
    }
  }
}
