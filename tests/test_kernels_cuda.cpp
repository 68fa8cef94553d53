// The CUDA kernels other than the scan (tests/test_kernels_selective_scan.cpp has that one)
// against the plain-loop references, in double, on fresh random inputs: embedding, RMSNorm,
// matmul (fp32 and bf16 products), causal conv1d, cross-entropy, log-softmax, AdamW and the
// model's small elementwise ops.
// Outputs that are assigned start NaN-poisoned, so an unwritten element fails the comparison.
// Each test reports itself skipped when no CUDA device is present.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/adamw.h"
#include "kernels/causal_conv1d.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "tests/cuda_testing.h"
#include "tests/kernels_testing.h"

using namespace mambadna::kernels;
using namespace mambadna::kernels::testing;

namespace {

// Float inputs: random values exactly representable in float, as float and as double.
struct Input {
  Vd d;
  Vf f;
  Input(std::mt19937& rng, size_t n, double lo = -1, double hi = 1)
      : d(float_exact(random_vec(rng, n, lo, hi))), f(cast<float>(d)) {}
};

std::vector<int32_t> random_tokens(std::mt19937& rng, size_t n, int V, bool some_negative) {
  std::uniform_int_distribution<int> dist(some_negative ? -1 : 0, V - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = dist(rng);
  return t;
}

}  // namespace

TEST_CASE("embedding cuda matches ref", "[kernels][embedding][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(11);
  for (const auto& [M, D, V] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {300, 70, 8},
                               {2048, 96, 256}, {50, 33, 2000}}) {
    INFO("M " << M << " D " << D << " V " << V);
    const EmbeddingParams p{M, D, V};
    const Input W(rng, V * D), dout(rng, M * D), dW0(rng, V * D);
    // DNA-like: most tokens from a handful of values, so the backward's sums collide.
    auto tok = random_tokens(rng, M, int(std::min<int64_t>(V, 5)), false);
    Vd out_ref(M * D), dW_ref = dW0.d;
    ref::embedding_forward(out_ref.data(), tok.data(), W.d.data(), p);
    ref::embedding_backward(dW_ref.data(), dout.d.data(), tok.data(), p);
    DeviceCopy<float> d_W(W.f), d_out(poisoned<float>(M * D)), d_dout(dout.f), d_dW(dW0.f);
    DeviceCopy<int32_t> d_tok(tok);
    cuda::embedding_forward(d_out.pointer(), d_tok.pointer(), d_W.pointer(), p);
    cuda::embedding_backward(d_dW.pointer(), d_dout.pointer(), d_tok.pointer(), p);
    Vf out(M * D), dW(V * D);
    d_out.to(out), d_dW.to(dW);
    CHECK(norm_err(out, out_ref) == 0);  // a copy
    // dW sums up to M/5 float terms in any order: sqrt(terms)·eps·|dout| well under 1e-5.
    CHECK(norm_err(dW, dW_ref) <= 1e-5);
  }
#endif
}

TEST_CASE("rmsnorm cuda matches ref", "[kernels][rmsnorm][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(12);
  for (const auto& [M, D] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {300, 256}, {64, 1000}}) {
    INFO("M " << M << " D " << D);
    const RmsnormParams p{M, D, 1e-5};
    const Input x(rng, M * D, -2, 2), w(rng, D), dy(rng, M * D), dx0(rng, M * D), dw0(rng, D);
    Vd y_ref(M * D), rstd_ref(M), dx_ref = dx0.d, dw_ref = dw0.d;
    ref::rmsnorm_forward(y_ref.data(), rstd_ref.data(), x.d.data(), w.d.data(), p);
    ref::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.d.data(), x.d.data(), w.d.data(),
                          rstd_ref.data(), p);
    DeviceCopy<float> d_x(x.f), d_w(w.f), d_dy(dy.f), d_y(poisoned<float>(M * D)),
        d_rstd(poisoned<float>(M)), d_dx(dx0.f), d_dw(dw0.f);
    cuda::rmsnorm_forward(d_y.pointer(), d_rstd.pointer(), d_x.pointer(), d_w.pointer(), p);
    cuda::rmsnorm_backward(d_dx.pointer(), d_dw.pointer(), d_dy.pointer(), d_x.pointer(),
                           d_w.pointer(), d_rstd.pointer(), p);
    Vf y(M * D), rstd(M), dx(M * D), dw(D);
    d_y.to(y), d_rstd.to(rstd), d_dx.to(dx), d_dw.to(dw);
    // Row sums of D float terms (tree order), then one rsqrt: a few eps of O(1) values.
    CHECK(norm_err(y, y_ref) <= 1e-5);
    CHECK(norm_err(rstd, rstd_ref) <= 1e-5);
    CHECK(norm_err(dx, dx_ref) <= 1e-5);
    // dw sums M rows: sqrt(M)·eps·|terms| stays under 1e-5 for M <= 300.
    CHECK(norm_err(dw, dw_ref) <= 1e-5);
  }
#endif
}

TEST_CASE("matmul cuda matches ref", "[kernels][matmul][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(13);
  struct Case {
    int64_t M, K, N, ldi, ldo;
    bool bias, accumulate, accumulate_din;
  };
  for (const auto precision : {cuda::MatmulPrecision::fp32, cuda::MatmulPrecision::bf16}) {
    cuda::set_matmul_precision(precision);
    // fp32: K-term dot products of O(1) values, relative to max(1, |ref|): ~sqrt(K)·eps.
    // bf16: inputs rounded to 8 significant bits (2^-8 relative each), fp32 accumulation:
    // ~2^-8·|x||w|·sqrt(K) relative to a sum of size ~sqrt(K), under the 1e-2.
    const double tol = precision == cuda::MatmulPrecision::fp32 ? 1e-5 : 1e-2;
    for (const Case c : {Case{1, 1, 1, 1, 1, false, false, false},
                         Case{37, 19, 23, 19, 23, true, false, false},
                         Case{200, 64, 130, 80, 131, true, true, true},
                         Case{513, 256, 512, 256, 1024, false, false, true}}) {
      INFO("M " << c.M << " K " << c.K << " N " << c.N << " bf16 "
                << (precision == cuda::MatmulPrecision::bf16));
      MatmulParams p{c.M, c.K, c.N, c.ldi, c.ldo, c.accumulate, c.accumulate_din};
      const Input in(rng, c.M * c.ldi), W(rng, c.N * c.K), bias(rng, c.N), out0(rng, c.M * c.ldo),
          dout(rng, c.M * c.ldo), din0(rng, c.M * c.ldi), dW0(rng, c.N * c.K), db0(rng, c.N);
      Vd out_ref = out0.d, din_ref = din0.d, dW_ref = dW0.d, db_ref = db0.d;
      ref::matmul_forward(out_ref.data(), in.d.data(), W.d.data(), c.bias ? bias.d.data() : nullptr,
                          p);
      ref::matmul_backward(din_ref.data(), dW_ref.data(), c.bias ? db_ref.data() : nullptr,
                           dout.d.data(), in.d.data(), W.d.data(), p);
      DeviceCopy<float> d_in(in.f), d_W(W.f), d_b(bias.f), d_out(out0.f), d_dout(dout.f),
          d_din(din0.f), d_dW(dW0.f), d_db(db0.f);
      cuda::matmul_forward(d_out.pointer(), d_in.pointer(), d_W.pointer(),
                           c.bias ? d_b.pointer() : nullptr, p);
      cuda::matmul_backward(d_din.pointer(), d_dW.pointer(), c.bias ? d_db.pointer() : nullptr,
                            d_dout.pointer(), d_in.pointer(), d_W.pointer(), p);
      Vf out(out0.f.size()), din(din0.f.size()), dW(dW0.f.size()), db(db0.f.size());
      d_out.to(out), d_din.to(din), d_dW.to(dW), d_db.to(db);
      const auto in_o = [&](size_t i) { return int64_t(i % c.ldo) < c.N; };
      const auto in_i = [&](size_t i) { return int64_t(i % c.ldi) < c.K; };
      CHECK(norm_err(out, out_ref, in_o) <= tol);
      CHECK(padding_untouched(out, out0.f, c.ldo, c.N));
      CHECK(norm_err(din, din_ref, in_i) <= tol);
      CHECK(padding_untouched(din, din0.f, c.ldi, c.K));
      CHECK(norm_err(dW, dW_ref) <= tol);  // M-term sums, same bound with K -> M
      if (c.bias) CHECK(norm_err(db, db_ref) <= tol);
    }
  }
  cuda::set_matmul_precision(cuda::MatmulPrecision::fp32);
  // cuBLAS takes int sizes: M past INT32_MAX is refused by name before anything runs (it would
  // wrap into a wrong product). The buffers are never touched.
  DeviceCopy<float> one(Vf(1, 0.0f));
  const MatmulParams big{int64_t(1) << 31, 1, 1, 1, 1};
  CHECK_THROWS_WITH(cuda::matmul_forward(one.pointer(), one.pointer(), one.pointer(), nullptr, big),
                    Catch::Contains("cuda::matmul") && Catch::Contains("(2147483648) > INT32_MAX"));
#endif
}

TEST_CASE("causal_conv1d cuda matches ref", "[kernels][causal_conv1d][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(14);
  struct Case {
    int64_t B, L, E, K, ld_x;
    bool silu, bias, window;
  };
  // L = 1 and L < K-1 (the carried window shifts), K = 1 (no window), strided x; K 2 to 4 take
  // the tiled forward (64-step tiles) and the one-pass backward (256-step tiles: halos between
  // tiles), K 1 and 5 the row-per-block forward (rows past its grid of 16,384) and the
  // two-kernel backward.
  for (const Case c : {Case{1, 1, 5, 4, 5, true, true, true}, Case{2, 2, 7, 4, 14, true, true, true},
                       Case{3, 50, 37, 4, 80, true, true, true},
                       Case{2, 20, 16, 1, 16, false, false, false},
                       Case{2, 300, 130, 3, 260, false, true, false},
                       Case{2, 600, 33, 4, 70, true, true, true},
                       Case{1, 10, 8, 2, 8, true, false, true},
                       Case{2, 40, 9, 5, 9, true, true, true},
                       Case{2, 9000, 3, 4, 3, true, true, true},
                       Case{1, 17000, 3, 5, 3, true, true, true}}) {
    INFO("B " << c.B << " L " << c.L << " E " << c.E << " K " << c.K);
    const CausalConv1dParams p{c.B, c.L, c.E, c.K, c.ld_x, c.silu};
    const int64_t BLE = c.B * c.L * c.E, W = c.B * c.E * (c.K - 1);
    const Input x(rng, c.B * c.L * c.ld_x), w(rng, c.E * c.K), bias(rng, c.E), win(rng, W),
        du(rng, BLE), dwin_out(rng, W), dw0(rng, c.E * c.K), db0(rng, c.E), dx0(rng, c.B * c.L * c.ld_x);
    const double* bias_d = c.bias ? bias.d.data() : nullptr;
    const double* win_d = c.window ? win.d.data() : nullptr;
    Vd u_ref(BLE), wout_ref(W), dx_ref = dx0.d, dwin_ref(W), dw_ref = dw0.d, db_ref = db0.d;
    ref::causal_conv1d_forward(u_ref.data(), W ? wout_ref.data() : nullptr, x.d.data(), w.d.data(),
                               bias_d, win_d, p);
    ref::causal_conv1d_backward(dx_ref.data(), W ? dwin_ref.data() : nullptr, dw_ref.data(),
                                c.bias ? db_ref.data() : nullptr, du.d.data(),
                                W ? dwin_out.d.data() : nullptr, x.d.data(), w.d.data(), bias_d,
                                win_d, p);
    DeviceCopy<float> d_x(x.f), d_w(w.f), d_bias(c.bias ? bias.f : Vf()),
        d_win(c.window ? win.f : Vf()), d_u(poisoned<float>(BLE)), d_wout(poisoned<float>(W)),
        d_du(du.f), d_dwo(dwin_out.f), d_dx(dx0.f), d_dwin(poisoned<float>(W)), d_dw(dw0.f),
        d_db(db0.f);
    // Poison the dx columns the kernel must write; the padding keeps dx0's values.
    {
      Vf dx_start = dx0.f;
      for (size_t i = 0; i < dx_start.size(); ++i)
        if (int64_t(i % c.ld_x) < c.E) dx_start[i] = NAN;
      d_dx.buf.upload(dx_start);
    }
    cuda::causal_conv1d_forward(d_u.pointer(), d_wout.pointer(), d_x.pointer(), d_w.pointer(),
                                d_bias.pointer(), d_win.pointer(), p);
    cuda::causal_conv1d_backward(d_dx.pointer(), d_dwin.pointer(), d_dw.pointer(),
                                 c.bias ? d_db.pointer() : nullptr, d_du.pointer(), d_dwo.pointer(),
                                 d_x.pointer(), d_w.pointer(), d_bias.pointer(), d_win.pointer(), p);
    Vf u(BLE), wout(W), dx(dx0.f.size()), dwin(W), dw(dw0.f.size()), db(db0.f.size());
    d_u.to(u), d_wout.to(wout), d_dx.to(dx), d_dwin.to(dwin), d_dw.to(dw), d_db.to(db);
    // K-term sums and one SiLU: a few eps. dw, dbias sum B·L terms: sqrt(B·L)·eps < 1e-5.
    CHECK(norm_err(u, u_ref) <= 1e-5);
    CHECK(norm_err(wout, wout_ref) == 0);  // a copy of inputs
    CHECK(norm_err(dx, dx_ref, [&](size_t i) { return int64_t(i % c.ld_x) < c.E; }) <= 1e-5);
    CHECK(padding_untouched(dx, dx0.f, c.ld_x, c.E));
    CHECK(norm_err(dwin, dwin_ref) <= 1e-5);
    CHECK(norm_err(dw, dw_ref) <= 1e-5);
    if (c.bias) CHECK(norm_err(db, db_ref) <= 1e-5);
  }
#endif
}

TEST_CASE("causal_conv1d cuda windows may alias", "[kernels][causal_conv1d][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(15);
  const CausalConv1dParams p{2, 2, 9, 4, 9, true};  // L < K-1: the window shifts in place
  const int64_t W = p.B * p.E * (p.K - 1);
  const Input x(rng, p.B * p.L * p.E), w(rng, p.E * p.K), win(rng, W), du(rng, p.B * p.L * p.E),
      dwo(rng, W);
  Vd u_ref(p.B * p.L * p.E), wout_ref(W), dx_ref(p.B * p.L * p.E), dwin_ref(W), dw_ref(p.E * p.K);
  const double* no_bias = nullptr;
  ref::causal_conv1d_forward(u_ref.data(), wout_ref.data(), x.d.data(), w.d.data(), no_bias,
                             win.d.data(), p);
  ref::causal_conv1d_backward(dx_ref.data(), dwin_ref.data(), dw_ref.data(), (double*)nullptr,
                              du.d.data(), dwo.d.data(), x.d.data(), w.d.data(), no_bias,
                              win.d.data(), p);
  DeviceCopy<float> d_x(x.f), d_w(w.f), d_win(win.f), d_u(poisoned<float>(u_ref.size())),
      d_du(du.f), d_dwin(dwo.f), d_dx(poisoned<float>(dx_ref.size())), d_dw(Vf(p.E * p.K, 0.0f));
  cuda::causal_conv1d_forward(d_u.pointer(), d_win.pointer(), d_x.pointer(), d_w.pointer(),
                              nullptr, d_win.pointer(), p);
  Vf wout(W);
  d_win.to(wout);
  CHECK(norm_err(wout, wout_ref) == 0);
  // Backward reads the original window: restore it, then alias dwindow_in with dwindow_out.
  d_win.buf.upload(win.f);
  cuda::causal_conv1d_backward(d_dx.pointer(), d_dwin.pointer(), d_dw.pointer(), nullptr,
                               d_du.pointer(), d_dwin.pointer(), d_x.pointer(), d_w.pointer(),
                               nullptr, d_win.pointer(), p);
  Vf dwin(W), dx(dx_ref.size());
  d_dwin.to(dwin), d_dx.to(dx);
  CHECK(norm_err(dwin, dwin_ref) <= 1e-5);
  CHECK(norm_err(dx, dx_ref) <= 1e-5);
#endif
}

TEST_CASE("cross_entropy and log_softmax cuda match ref", "[kernels][cross_entropy][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(16);
  for (const auto& [M, V] : {std::pair<int64_t, int64_t>{1, 1}, {33, 8}, {500, 256}, {9, 1000}}) {
    INFO("M " << M << " V " << V);
    const CrossEntropyParams p{M, V};
    const Input logits(rng, M * V, -8, 8), dloss(rng, M);
    const auto tgt = random_tokens(rng, M, int(V), true);  // some rows ignored (-1)
    Vd loss_ref(M), lse_ref(M), ls_ref(M * V), dl_ref(M * V);
    ref::cross_entropy_forward(loss_ref.data(), lse_ref.data(), logits.d.data(), tgt.data(), p);
    ref::log_softmax_forward(ls_ref.data(), logits.d.data(), p);
    ref::cross_entropy_backward(dl_ref.data(), logits.d.data(), lse_ref.data(), tgt.data(),
                                dloss.d.data(), p);
    DeviceCopy<float> d_logits(logits.f), d_dloss(dloss.f), d_loss(poisoned<float>(M)),
        d_lse(poisoned<float>(M)), d_ls(poisoned<float>(M * V)), d_dl(poisoned<float>(M * V));
    DeviceCopy<int32_t> d_t(tgt);
    cuda::cross_entropy_forward(d_loss.pointer(), d_lse.pointer(), d_logits.pointer(),
                                d_t.pointer(), p);
    cuda::log_softmax_forward(d_ls.pointer(), d_logits.pointer(), p);
    cuda::cross_entropy_backward(d_dl.pointer(), d_logits.pointer(), d_lse.pointer(),
                                 d_t.pointer(), d_dloss.pointer(), p);
    Vf loss(M), lse(M), ls(M * V), dl(M * V);
    d_loss.to(loss), d_lse.to(lse), d_ls.to(ls), d_dl.to(dl);
    // |logits| <= 8: lse is O(10), a V-term sum of exp in float then one log: a few eps of it.
    CHECK(norm_err(loss, loss_ref) <= 1e-5);
    CHECK(norm_err(lse, lse_ref) <= 1e-5);
    CHECK(norm_err(ls, ls_ref) <= 1e-5);
    CHECK(norm_err(dl, dl_ref) <= 1e-5);
  }
#endif
}

TEST_CASE("adamw cuda matches ref", "[kernels][adamw][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(17);
  const int64_t n = 10007;
  const Input param(rng, n), m(rng, n, -0.1, 0.1), g(rng, n), v0(rng, n, 0, 0.01);
  for (const int64_t step : {int64_t(1), int64_t(7), int64_t(1000)}) {
    INFO("step " << step);
    const AdamwParams p{1e-3, 0.9, 0.95, 1e-8, 0.1, step};
    Vd param_ref = param.d, m_ref = m.d, v_ref = v0.d;
    ref::adamw_update(param_ref.data(), m_ref.data(), v_ref.data(), g.d.data(), n, p);
    DeviceCopy<float> d_p(param.f), d_m(m.f), d_v(v0.f), d_g(g.f);
    cuda::adamw_update(d_p.pointer(), d_m.pointer(), d_v.pointer(), d_g.pointer(), n, p);
    Vf out_p(n), out_m(n), out_v(n);
    d_p.to(out_p), d_m.to(out_m), d_v.to(out_v);
    // A handful of float operations per element against double: a few eps.
    CHECK(norm_err(out_p, param_ref) <= 1e-6);
    CHECK(norm_err(out_m, m_ref) <= 1e-6);
    CHECK(norm_err(out_v, v_ref) <= 1e-6);
  }
#endif
}

TEST_CASE("elementwise cuda matches ref", "[kernels][elementwise][cuda]") {
  if (cuda_unavailable()) return;
#ifdef MAMBADNA_HAVE_CUDA
  std::mt19937 rng(18);
  // One float operation per element against double on float-exact inputs (nvcc may fuse
  // out += a·b into one FMA): within an eps of float (1.2e-7) of the larger operand: 1e-6.
  for (const int64_t n : {int64_t(1), int64_t(1000), int64_t(70001)}) {
    INFO("n " << n);
    const Input a(rng, n, -3, 3), b(rng, n, -3, 3), acc0(rng, n, -3, 3);
    Vd add_ref(n), exp_ref(n), mul_ref = acc0.d, scale_ref = a.d;
    ref::add_forward(add_ref.data(), a.d.data(), b.d.data(), n);
    ref::neg_exp_forward(exp_ref.data(), a.d.data(), n);
    ref::mul_accumulate(mul_ref.data(), a.d.data(), b.d.data(), n);
    ref::scale_inplace(scale_ref.data(), 0.375, n);
    const double ss_ref = ref::sum_squares(a.d.data(), n);
    DeviceCopy<float> d_a(a.f), d_b(b.f), d_add(poisoned<float>(n)), d_exp(poisoned<float>(n)),
        d_mul(acc0.f), d_scale(a.f);
    cuda::add_forward(d_add.pointer(), d_a.pointer(), d_b.pointer(), n);
    cuda::neg_exp_forward(d_exp.pointer(), d_a.pointer(), n);
    cuda::mul_accumulate(d_mul.pointer(), d_a.pointer(), d_b.pointer(), n);
    cuda::scale_inplace(d_scale.pointer(), 0.375f, n);
    const double ss = cuda::sum_squares(d_a.pointer(), n);
    Vf add(n), ex(n), mul(n), scale(n);
    d_add.to(add), d_exp.to(ex), d_mul.to(mul), d_scale.to(scale);
    CHECK(norm_err(add, add_ref) <= 1e-6);
    CHECK(norm_err(ex, exp_ref) <= 1e-6);  // expf: within 2 ulp of exp
    CHECK(norm_err(mul, mul_ref) <= 1e-6);
    CHECK(norm_err(scale, scale_ref) <= 1e-6);
    // float partial sums per block (up to 273 terms of <= 9), then double: ~sqrt(terms)·eps relative
    CHECK(std::fabs(ss - ss_ref) <= 1e-6 * ss_ref);
  }
  for (const auto& [M, V] : {std::pair<int64_t, int64_t>{1, 1}, {300, 256}, {7, 2000}}) {
    INFO("M " << M << " V " << V);
    const Input logits(rng, M * V, -8, 8), loss(rng, M, 0, 6);
    const auto tgt = random_tokens(rng, M, int(V), true);  // some rows ignored (-1)
    Vd lse_ref(M), ent_ref(M), w_ref(M), lp_ref(M), unused(M);
    ref::cross_entropy_forward(unused.data(), lse_ref.data(), logits.d.data(), tgt.data(), CrossEntropyParams{M, V});
    const Vf lse_f = cast<float>(lse_ref);  // the device reads the float lse
    const Vd lse_d(lse_f.begin(), lse_f.end());
    ref::entropy_forward(ent_ref.data(), logits.d.data(), lse_d.data(), M, V);
    ref::loss_weights(w_ref.data(), tgt.data(), 0.25, M);
    ref::logprob_from_loss(lp_ref.data(), loss.d.data(), tgt.data(), M);
    DeviceCopy<float> d_logits(logits.f), d_lse(lse_f), d_loss(loss.f), d_ent(poisoned<float>(M)),
        d_w(poisoned<float>(M)), d_lp(poisoned<float>(M));
    DeviceCopy<int32_t> d_t(tgt);
    cuda::entropy_forward(d_ent.pointer(), d_logits.pointer(), d_lse.pointer(), M, V);
    cuda::loss_weights(d_w.pointer(), d_t.pointer(), 0.25f, M);
    cuda::logprob_from_loss(d_lp.pointer(), d_loss.pointer(), d_t.pointer(), M);
    Vf ent(M), w(M), lp(M);
    d_ent.to(ent), d_w.to(w), d_lp.to(lp);
    // A V-term float sum of p·logit (|logit| <= 8, Σp = 1) beside lse: a few eps of 8.
    CHECK(norm_err(ent, ent_ref) <= 1e-5);
    CHECK(norm_err(w, w_ref) == 0);
    const auto scored = [&](size_t m) { return tgt[m] >= 0; };
    CHECK(norm_err(lp, lp_ref, scored) == 0);  // a sign flip
    for (int64_t m = 0; m < M; ++m)
      if (tgt[size_t(m)] < 0) CHECK(std::isnan(lp[size_t(m)]));
  }
#endif
}

TEST_CASE("cuda device queries work with or without a device", "[kernels][cuda]") {
  // Runs everywhere: a build without the backend or a machine without a device reports none
  // and refuses allocations with a clear message.
  if (!cuda::built() || cuda::device_count() == 0) {
    CHECK(cuda::device_count() == 0);
    CHECK_THROWS_AS(cuda::set_device(0), mambadna::Error);
  } else {
    CHECK_THROWS_WITH(cuda::set_device(cuda::device_count()),
                      Catch::Contains("no such device"));
    CHECK(!cuda::device_name(0).empty());
  }
  CHECK(cuda::parse_matmul_precision("bf16") == cuda::MatmulPrecision::bf16);
  CHECK_THROWS_WITH(cuda::parse_matmul_precision("fp8"), Catch::Contains("fp32, tf32, bf16"));
#ifdef MAMBADNA_HAVE_CUDA
  if (cuda::device_count() > 0) {
    // Copies, fills and the workspace are ordered with the main stream only: with the side
    // stream current they refuse rather than race with its kernels.
    DeviceCopy<float> x(Vf(4, 1.0f));
    Vf back(4);
    cuda::set_stream(cuda::Stream::side);
    CHECK_THROWS_WITH(x.to(back), Catch::Contains("copy_to_host") && Catch::Contains("main stream only"));
    CHECK_THROWS_WITH(cuda::workspace(16), Catch::Contains("workspace"));
    cuda::set_stream(cuda::Stream::main);
    x.to(back);
    CHECK(back == Vf(4, 1.0f));
  }
#endif
}
