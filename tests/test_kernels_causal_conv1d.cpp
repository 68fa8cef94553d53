// Causal conv1d: ref backward against finite differences, cpu (float) against ref (double and
// float), chunked runs with the window carried, and aliased window buffers.
#include <catch2/catch.hpp>

#include <random>
#include <type_traits>

#include "kernels/causal_conv1d.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

namespace {

struct ConvCase {
  int64_t B, L, E, K, ld_x;
  bool silu = true, has_bias = true, has_window = true;
};

struct ConvData {
  CausalConv1dParams p;
  Vd x, w, bias, window_in;  // bias, window_in empty when absent
  Vd du, dwindow_out;
};

ConvData make_conv(std::mt19937& rng, const ConvCase& c) {
  ConvData d;
  d.p = {c.B, c.L, c.E, c.K, c.ld_x, c.silu};
  d.x = float_exact(random_vec(rng, c.B * c.L * c.ld_x, -2.0, 2.0));
  d.w = float_exact(random_vec(rng, c.E * c.K));
  if (c.has_bias) d.bias = float_exact(random_vec(rng, c.E));
  if (c.has_window) d.window_in = float_exact(random_vec(rng, c.B * c.E * (c.K - 1), -2.0, 2.0));
  d.du = float_exact(random_vec(rng, c.B * c.L * c.E));
  d.dwindow_out = float_exact(random_vec(rng, c.B * c.E * (c.K - 1)));
  return d;
}

template <typename T>
const T* ptr(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}
template <typename T>
T* ptr(std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

template <typename T>
struct ConvOut {
  std::vector<T> u, window_out, dx, dwindow_in, dw, dbias;
};

template <typename T, typename Fwd, typename Bwd = std::nullptr_t>
ConvOut<T> run_conv(const ConvData& d, const Vd& dw0, const Vd& dbias0, Fwd fwd,
                    Bwd bwd = nullptr) {
  const auto& p = d.p;
  const auto x = cast<T>(d.x), w = cast<T>(d.w), bias = cast<T>(d.bias), win = cast<T>(d.window_in),
             du = cast<T>(d.du), dwo = cast<T>(d.dwindow_out);
  ConvOut<T> o;
  o.u = poisoned<T>(p.B * p.L * p.E);
  o.window_out = poisoned<T>(p.B * p.E * (p.K - 1));
  fwd(o.u.data(), ptr(o.window_out), x.data(), w.data(), ptr(bias), ptr(win), p);
  if constexpr (!std::is_same_v<Bwd, std::nullptr_t>) {
    o.dx = poisoned<T>(x.size());
    o.dwindow_in = poisoned<T>(p.B * p.E * (p.K - 1));
    o.dw = cast<T>(dw0);
    if (!bias.empty()) o.dbias = cast<T>(dbias0);
    bwd(o.dx.data(), ptr(o.dwindow_in), o.dw.data(), ptr(o.dbias), du.data(), ptr(dwo), x.data(),
        w.data(), ptr(bias), ptr(win), p);
  }
  return o;
}

template <typename T>
ConvOut<T> run_ref(const ConvData& d, const Vd& dw0, const Vd& dbias0) {
  return run_conv<T>(d, dw0, dbias0, ref::causal_conv1d_forward<T>, ref::causal_conv1d_backward<T>);
}
ConvOut<float> run_cpu(const ConvData& d, const Vd& dw0, const Vd& dbias0) {
  return run_conv<float>(d, dw0, dbias0, cpu::causal_conv1d_forward, cpu::causal_conv1d_backward);
}

Vd rows(const Vd& x, int64_t B, int64_t L, int64_t ld, int64_t t0, int64_t t1) {
  Vd s;
  for (int64_t b = 0; b < B; ++b)
    s.insert(s.end(), x.begin() + (b * L + t0) * ld, x.begin() + (b * L + t1) * ld);
  return s;
}

}  // namespace

TEST_CASE("causal_conv1d ref backward matches finite differences", "[kernels][causal_conv1d]") {
  std::mt19937 rng(11);
  // L = 2 < K − 1 = 3: window_out takes part of window_in, and dwindow_out reaches dwindow_in.
  for (const ConvCase c : {ConvCase{2, 5, 3, 4, 5}, ConvCase{1, 2, 2, 4, 2, false},
                           ConvCase{2, 1, 3, 3, 4, true, false}}) {
    INFO("B " << c.B << " L " << c.L << " E " << c.E << " K " << c.K << " silu " << c.silu);
    ConvData d = make_conv(rng, c);
    const Vd zw(c.E * c.K, 0.0), zb(c.E, 0.0);
    const ConvOut<double> g = run_ref<double>(d, zw, zb);
    // J = Σ du·u + Σ dwindow_out·window_out.
    const auto J = [&]() {
      const ConvOut<double> o = run_conv<double>(d, zw, zb, ref::causal_conv1d_forward<double>);
      return dot(o.u, d.du) + dot(o.window_out, d.dwindow_out);
    };
    // Central differences, h = 1e-6 in double: errors ~1e-10 against a 1e-6 tolerance.
    const double tol = 1e-6;
    CHECK(fd_check(d.x, g.dx, J, 1e-6, [&](size_t i) { return int64_t(i % c.ld_x) < c.E; }) <= tol);
    CHECK(fd_check(d.w, g.dw, J) <= tol);
    if (c.has_bias) CHECK(fd_check(d.bias, g.dbias, J) <= tol);
    CHECK(fd_check(d.window_in, g.dwindow_in, J) <= tol);
  }
}

TEST_CASE("causal_conv1d cpu matches ref", "[kernels][causal_conv1d]") {
  std::mt19937 rng(12);
  const ConvCase cases[] = {
      {1, 1, 37, 4, 37},          {3, 67, 37, 4, 2 * 37 + 3},
      {3, 3, 128, 4, 128, false}, {2, 2, 40, 4, 80, true, true, false},
      {2, 9, 70, 1, 70},          {1, 17, 33, 5, 40, true, false, true},
      {2, 19, 21, 3, 21},         {1, 6, 24, 2, 30, true, false, true},  // the one-pass K 2-3
  };
  for (const ConvCase& c : cases) {
    INFO("B " << c.B << " L " << c.L << " E " << c.E << " K " << c.K << " ld_x " << c.ld_x
              << " silu " << c.silu);
    const ConvData d = make_conv(rng, c);
    const Vd dw0 = float_exact(random_vec(rng, c.E * c.K)), db0 = float_exact(random_vec(rng, c.E));
    const ConvOut<double> r = run_ref<double>(d, dw0, db0);
    const auto in_x = [&](size_t i) { return int64_t(i % c.ld_x) < c.E; };
    const auto check = [&](const auto& a) {
      // Forward: K products and a SiLU, a few ulp of O(K) values. Backward: dx sums K terms, dw
      // and dbias sum B·L terms (≤ 201 here): a sqrt(201)·eps-sized error on O(10) sums.
      CHECK(norm_err(a.u, r.u) <= 1e-6);
      CHECK(norm_err(a.window_out, r.window_out) == 0.0);  // copies
      CHECK(norm_err(a.dx, r.dx, in_x) <= 1e-6);
      CHECK(padding_untouched(a.dx, poisoned<float>(a.dx.size()), c.ld_x, c.E));
      CHECK(norm_err(a.dwindow_in, r.dwindow_in) <= 1e-6);
      CHECK(norm_err(a.dw, r.dw) <= 1e-5);
      CHECK(norm_err(a.dbias, r.dbias) <= 1e-5);
    };
    check(run_ref<float>(d, dw0, db0));
    check(run_cpu(d, dw0, db0));
  }
}

TEST_CASE("causal_conv1d in chunks equals one call", "[kernels][causal_conv1d]") {
  std::mt19937 rng(13);
  const ConvCase c{2, 30, 37, 4, 40};
  const ConvData d = make_conv(rng, c);
  const std::vector<int64_t> cuts{0, 1, 2, 3, 13, 30};  // chunks of 1 and 2 < K − 1 steps
  const Vd zw(c.E * c.K, 0.0), zb(c.E, 0.0);
  const auto check_backend = [&](auto run, double tol) {
    const auto whole = run(d, zw, zb);
    std::vector<ConvData> parts;
    Vd win = d.window_in;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      ConvData part = d;
      part.p.L = cuts[i + 1] - cuts[i];
      part.x = rows(d.x, c.B, c.L, c.ld_x, cuts[i], cuts[i + 1]);
      part.du = rows(d.du, c.B, c.L, c.E, cuts[i], cuts[i + 1]);
      part.window_in = win;
      parts.push_back(part);
      win = to_d(run(part, zw, zb).window_out);
    }
    CHECK(norm_err(win, to_d(whole.window_out)) == 0.0);
    // Backward from the last chunk: dwindow_in of a chunk is dwindow_out of the one before.
    Vd dwin = d.dwindow_out, dw(c.E * c.K, 0.0);
    for (size_t i = parts.size(); i-- > 0;) {
      INFO("chunk [" << cuts[i] << ", " << cuts[i + 1] << ")");
      parts[i].dwindow_out = dwin;
      const auto o = run(parts[i], zw, zb);
      CHECK(norm_err(o.u, rows(to_d(whole.u), c.B, c.L, c.E, cuts[i], cuts[i + 1])) <= tol);
      CHECK(norm_err(o.dx, rows(to_d(whole.dx), c.B, c.L, c.ld_x, cuts[i], cuts[i + 1]),
                     [&](size_t j) { return int64_t(j % c.ld_x) < c.E; }) <= tol);
      dwin = to_d(o.dwindow_in);
      for (size_t j = 0; j < dw.size(); ++j) dw[j] += o.dw[j];
    }
    CHECK(norm_err(dwin, to_d(whole.dwindow_in)) <= tol);
    CHECK(norm_err(dw, to_d(whole.dw)) <= tol);
  };
  // The same products, regrouped: exact for u and dx up to summation order (double ~1e-15,
  // float a few ulp of the O(10) dw sums).
  check_backend(
      [](const ConvData& x, const Vd& a, const Vd& b) { return run_ref<double>(x, a, b); }, 1e-12);
  check_backend([](const ConvData& x, const Vd& a, const Vd& b) { return run_cpu(x, a, b); }, 1e-5);
}

TEST_CASE("causal_conv1d window buffers may alias", "[kernels][causal_conv1d]") {
  std::mt19937 rng(14);
  for (const int64_t L : {1, 2, 9}) {  // L < K − 1 shifts the window within itself
    const ConvCase c{2, L, 37, 4, 37};
    const ConvData d = make_conv(rng, c);
    const Vd zw(c.E * c.K, 0.0), zb(c.E, 0.0);
    const ConvOut<float> sep = run_cpu(d, zw, zb);
    const auto x = cast<float>(d.x), w = cast<float>(d.w), bias = cast<float>(d.bias),
               du = cast<float>(d.du);
    std::vector<float> u(sep.u.size()), win = cast<float>(d.window_in);
    cpu::causal_conv1d_forward(u.data(), win.data(), x.data(), w.data(), bias.data(), win.data(),
                               d.p);
    CHECK(norm_err(win, to_d(sep.window_out)) == 0.0);
    CHECK(norm_err(u, to_d(sep.u)) == 0.0);
    std::vector<float> dx(x.size()), dw(w.size(), 0.0f), db(bias.size(), 0.0f),
        dwin = cast<float>(d.dwindow_out);
    const auto win_in = cast<float>(d.window_in);
    cpu::causal_conv1d_backward(dx.data(), dwin.data(), dw.data(), db.data(), du.data(),
                                dwin.data(), x.data(), w.data(), bias.data(), win_in.data(), d.p);
    CHECK(norm_err(dwin, to_d(sep.dwindow_in)) == 0.0);
    // The reference with the same aliasing.
    Vd wr = d.window_in, ur(u.size()), dxr(d.x.size()), dwr(w.size(), 0.0), dbr(bias.size(), 0.0),
       dwinr = d.dwindow_out;
    ref::causal_conv1d_forward<double>(ur.data(), wr.data(), d.x.data(), d.w.data(), d.bias.data(),
                                       wr.data(), d.p);
    CHECK(norm_err(wr, to_d(sep.window_out)) == 0.0);
    ref::causal_conv1d_backward<double>(dxr.data(), dwinr.data(), dwr.data(), dbr.data(),
                                        d.du.data(), dwinr.data(), d.x.data(), d.w.data(),
                                        d.bias.data(), d.window_in.data(), d.p);
    CHECK(norm_err(sep.dwindow_in, dwinr) <= 1e-6);
  }
}

TEST_CASE("causal_conv1d rejects bad arguments", "[kernels][causal_conv1d]") {
  std::vector<float> buf(256, 0.0f);
  float* f = buf.data();
  CHECK_THROWS_WITH(
      cpu::causal_conv1d_forward(f, f, f, f, f, f, CausalConv1dParams{1, 2, 8, 4, 6, true}),
      "causal_conv1d_forward: ld_x (6) < E (8)");
  CHECK_THROWS_WITH(
      ref::causal_conv1d_forward<float>(f, f, f, f, f, f, CausalConv1dParams{1, 2, 8, 0, 8, true}),
      "causal_conv1d_forward: K (0) must be > 0");
  CHECK_THROWS_WITH(cpu::causal_conv1d_backward(f, f, nullptr, f, f, f, f, f, f, f,
                                                CausalConv1dParams{1, 2, 8, 4, 8, true}),
                    "causal_conv1d_backward: dw is null");
}
