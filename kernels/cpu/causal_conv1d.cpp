// CPU depthwise causal conv1d: tasks over (stream b, block of EC channels), SIMD across channels
// (contiguous in memory), time in order inside a task. The window and the weights of a block are
// transposed into local (K, EC) tiles first, so that every tap reads EC contiguous floats.
#include "kernels/causal_conv1d.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include <tbb/parallel_for.h>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/variant.h"

namespace MAMBADNA_CPU_NS {

namespace {

using simd::vf;
using simd::W;
constexpr int64_t EC = 2 * W;  // channels per task

struct Block {
  int64_t b, e0, ne;  // stream, first channel, channels in this block (<= EC)
};

template <typename F>
void for_blocks(const CausalConv1dParams& p, F&& f) {
  const int64_t nblk = (p.E + EC - 1) / EC;
  tbb::parallel_for(int64_t(0), p.B * nblk, [&](int64_t i) {
    const int64_t b = i / nblk, e0 = (i % nblk) * EC;
    f(Block{b, e0, std::min(EC, p.E - e0)});
  });
}

// A (B, E, K−1) window of one block, transposed to a local (K−1, EC) tile (zeros for nullptr).
void load_window(std::vector<float>& tile, const float* window, const Block& bk,
                 const CausalConv1dParams& p) {
  const int64_t K = p.K;
  tile.assign((K - 1) * EC, 0.0f);
  if (window)
    for (int64_t c = 0; c < bk.ne; ++c)
      for (int64_t i = 0; i < K - 1; ++i)
        tile[i * EC + c] = window[(bk.b * p.E + bk.e0 + c) * (K - 1) + i];
}

// Local tiles of one block: wt (K, EC) = wᵀ, win (K−1, EC) = the window.
void load_tiles(std::vector<float>& wt, std::vector<float>& win, const float* w,
                const float* window_in, const Block& bk, const CausalConv1dParams& p) {
  wt.assign(p.K * EC, 0.0f);
  for (int64_t c = 0; c < bk.ne; ++c)
    for (int64_t k = 0; k < p.K; ++k) wt[k * EC + c] = w[(bk.e0 + c) * p.K + k];
  load_window(win, window_in, bk, p);
}

// Pointer to EC values of input position j of the block (x row, or the window tile for j < 0).
inline const float* input_row(const float* x, const std::vector<float>& win, const Block& bk,
                              int64_t j, const CausalConv1dParams& p) {
  return j >= 0 ? x + (bk.b * p.L + j) * p.ld_x + bk.e0 : win.data() + (p.K - 1 + j) * EC;
}

// pre-activation of one row of the block, vector v (channels e0 + v·W ...).
inline vf conv_pre(const float* x, const std::vector<float>& win, const std::vector<float>& wt,
                   const float* bias, const Block& bk, int64_t t, int64_t v,
                   const CausalConv1dParams& p) {
  const int n = int(std::min<int64_t>(W, bk.ne - v * W));
  vf acc = bias ? simd::load_n(bias + bk.e0 + v * W, n) : simd::zero();
  for (int64_t k = 0; k < p.K; ++k) {
    const int64_t j = t - (p.K - 1) + k;
    const vf xv = j >= 0 ? simd::load_n(input_row(x, win, bk, j, p) + v * W, n)
                         : simd::loadu(input_row(x, win, bk, j, p) + v * W);
    acc = simd::fma(simd::loadu(wt.data() + k * EC + v * W), xv, acc);
  }
  return acc;
}

// The backward of one block for any K: g for the whole chunk, then dx, then dw and dbias.
void backward_block_general(float* dx, std::vector<float>& dwin, std::vector<vf>& acc_w,
                            std::vector<vf>& acc_b, const float* du, const std::vector<float>& dwo,
                            const float* x, const std::vector<float>& wt,
                            const std::vector<float>& win, const float* bias, const Block& bk,
                            const CausalConv1dParams& p) {
  const int64_t K = p.K, L = p.L, E = p.E, nvec = EC / W;
  // g = dL/dpre at rows t + (K−1), with K−1 zero rows on either side.
  std::vector<float> g((L + 2 * (K - 1)) * EC, 0.0f);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t v = 0; v < nvec && v * W < bk.ne; ++v) {
      const int n = int(std::min<int64_t>(W, bk.ne - v * W));
      vf d = simd::load_n(du + (bk.b * L + t) * E + bk.e0 + v * W, n);
      if (p.silu) {
        const vf pre = conv_pre(x, win, wt, bias, bk, t, v, p);
        d = simd::silu_backward(d, pre);
      }
      simd::storeu(g.data() + (t + K - 1) * EC + v * W, d);
    }
  // d input at j in [−(K−1), L): Σ_k w[k] g[j + K−1−k].
  for (int64_t j = -(K - 1); j < L; ++j)
    for (int64_t v = 0; v < nvec && v * W < bk.ne; ++v) {
      const int64_t i = j - (L - (K - 1));  // position in the carried window
      vf acc = i >= 0 ? simd::loadu(dwo.data() + i * EC + v * W) : simd::zero();
      for (int64_t k = 0; k < K; ++k)
        acc = simd::fma(simd::loadu(wt.data() + k * EC + v * W),
                        simd::loadu(g.data() + (j + 2 * (K - 1) - k) * EC + v * W), acc);
      if (j >= 0)
        simd::store_n(dx + (bk.b * L + j) * p.ld_x + bk.e0 + v * W, acc,
                      int(std::min<int64_t>(W, bk.ne - v * W)));
      else
        simd::storeu(dwin.data() + (K - 1 + j) * EC + v * W, acc);
    }
  // dw[k] = Σ_t g[t] xx(t − (K−1) + k), dbias = Σ_t g[t].
  for (int64_t t = 0; t < L; ++t)
    for (int64_t v = 0; v < nvec && v * W < bk.ne; ++v) {
      const int n = int(std::min<int64_t>(W, bk.ne - v * W));
      const vf gv = simd::loadu(g.data() + (t + K - 1) * EC + v * W);
      acc_b[v] += gv;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t j = t - (K - 1) + k;
        const vf xv = j >= 0 ? simd::load_n(input_row(x, win, bk, j, p) + v * W, n)
                             : simd::loadu(input_row(x, win, bk, j, p) + v * W);
        acc_w[k * nvec + v] = simd::fma(gv, xv, acc_w[k * nvec + v]);
      }
    }
}

// A block's taps in registers for a compile-time K (2-4): the weights, the bias and the last K
// inputs, xs[k] = xx(t − K + 1 + k) once step t is pushed (starting from the carried window).
template <int KK>
struct Taps {
  static constexpr int NV = int(EC / W);
  vf w[KK][NV], xs[KK][NV], bias[NV];
  int cnt[NV];  // channels of each vector in the block
  int nv;       // vectors in use
  Taps(const std::vector<float>& wt, const std::vector<float>& win, const float* b, const Block& bk)
      : nv(int((bk.ne + W - 1) / W)) {
    for (int v = 0; v < NV; ++v) {
      cnt[v] = int(std::clamp<int64_t>(bk.ne - v * W, 0, W));
      bias[v] = b && cnt[v] > 0 ? simd::load_n(b + bk.e0 + v * W, cnt[v]) : simd::zero();
      for (int k = 0; k < KK; ++k) {
        w[k][v] = simd::loadu(wt.data() + k * EC + v * W);
        xs[k][v] = k > 0 ? simd::loadu(win.data() + (k - 1) * EC + v * W) : simd::zero();
      }
    }
  }
  // Step t's input row (the block's channels) in, the oldest out.
  void push(int v, const float* row) {
    for (int k = 0; k + 1 < KK; ++k) xs[k][v] = xs[k + 1][v];
    xs[KK - 1][v] = simd::load_n(row + v * W, cnt[v]);
  }
  vf pre(int v) const {
    vf acc = bias[v];
    for (int k = 0; k < KK; ++k) acc = simd::fma(w[k][v], xs[k][v], acc);
    return acc;
  }
};

// f(std::integral_constant<int, K>()) for the K with a one-pass path (2-4); false for others.
template <typename F>
bool with_taps(int64_t K, F&& f) {
  if (K == 2) f(std::integral_constant<int, 2>());
  else if (K == 3) f(std::integral_constant<int, 3>());
  else if (K == 4) f(std::integral_constant<int, 4>());
  else return false;
  return true;
}

// The forward of one block for K 2-4: one walk over time, one load of x and one store of u per
// step and vector, and the block's window_out from the last K − 1 inputs at the end
// (window_out may alias window_in: the block's window was read into win first).
template <int KK>
void forward_block_fused(float* u, float* window_out, const float* x, const std::vector<float>& wt,
                         const std::vector<float>& win, const float* bias, const Block& bk,
                         const CausalConv1dParams& p) {
  const int64_t L = p.L, E = p.E;
  Taps<KK> tp(wt, win, bias, bk);
  for (int64_t t = 0; t < L; ++t)
    for (int v = 0; v < tp.nv; ++v) {
      tp.push(v, x + (bk.b * L + t) * p.ld_x + bk.e0);
      const vf acc = tp.pre(v);
      simd::store_n(u + (bk.b * L + t) * E + bk.e0 + v * W, p.silu ? simd::silu(acc) : acc, tp.cnt[v]);
    }
  if (window_out) {
    alignas(64) float tmp[W];
    for (int v = 0; v < tp.nv; ++v)
      for (int i = 0; i < KK - 1; ++i) {  // input L − (K − 1) + i
        simd::storeu(tmp, tp.xs[i + 1][v]);
        for (int c = 0; c < tp.cnt[v]; ++c)
          window_out[(bk.b * E + bk.e0 + v * W + c) * (KK - 1) + i] = tmp[c];
      }
  }
}

// The backward of one block in one pass over time for K 2-4: the taps and the last K
// pre-activation gradients in registers, so x and du are read once and each step's g feeds dw
// at once and dx(t − K + 1) when it completes (steps past L count as g = 0). The general path
// above keeps g for the whole chunk and walks it three times, reading x twice. Same operations
// in the same order as that path: the same bits.
template <int KK>
void backward_block_fused(float* dx, std::vector<float>& dwin, std::vector<vf>& acc_w,
                          std::vector<vf>& acc_b, const float* du, const std::vector<float>& dwo,
                          const float* x, const std::vector<float>& wt,
                          const std::vector<float>& win, const float* bias, const Block& bk,
                          const CausalConv1dParams& p) {
  constexpr int NV = Taps<KK>::NV;
  const int64_t L = p.L, E = p.E;
  Taps<KK> tp(wt, win, bias, bk);
  vf gs[KK][NV], aw[KK][NV], ab[NV];
  for (int v = 0; v < NV; ++v) {
    ab[v] = simd::zero();
    for (int k = 0; k < KK; ++k) gs[k][v] = aw[k][v] = simd::zero();
  }
  for (int64_t t = 0; t < L + KK - 1; ++t) {
    const int64_t j = t - (KK - 1);            // the input position whose dx completes
    const int64_t i = j - (L - (KK - 1));      // its place in the carried-out window
    for (int v = 0; v < tp.nv; ++v) {
      for (int k = 0; k + 1 < KK; ++k) gs[k][v] = gs[k + 1][v];
      vf g = simd::zero();
      if (t < L) {
        tp.push(v, x + (bk.b * L + t) * p.ld_x + bk.e0);
        g = simd::load_n(du + (bk.b * L + t) * E + bk.e0 + v * W, tp.cnt[v]);
        if (p.silu) g = simd::silu_backward(g, tp.pre(v));
        ab[v] += g;
        for (int k = 0; k < KK; ++k) aw[k][v] = simd::fma(g, tp.xs[k][v], aw[k][v]);
      }
      gs[KK - 1][v] = g;
      vf acc = i >= 0 ? simd::loadu(dwo.data() + i * EC + v * W) : simd::zero();
      for (int k = 0; k < KK; ++k) acc = simd::fma(tp.w[k][v], gs[KK - 1 - k][v], acc);
      if (j >= 0)
        simd::store_n(dx + (bk.b * L + j) * p.ld_x + bk.e0 + v * W, acc, tp.cnt[v]);
      else
        simd::storeu(dwin.data() + (KK - 1 + j) * EC + v * W, acc);
    }
  }
  for (int v = 0; v < tp.nv; ++v) {
    acc_b[v] = ab[v];
    for (int k = 0; k < KK; ++k) acc_w[k * NV + v] = aw[k][v];
  }
}

}  // namespace

void causal_conv1d_forward(float* u, float* window_out, const float* x, const float* w,
                           const float* bias, const float* window_in, const CausalConv1dParams& p) {
  const char* fn = "causal_conv1d_forward";
  causal_conv1d_forward_check(fn, u, x, w, p);
  const int64_t B = p.B, L = p.L, E = p.E, K = p.K;
  const bool one_pass = with_taps(K, [&](auto k_taps) {  // per (stream, block of channels)
    for_blocks(p, [&](const Block& bk) {
      std::vector<float> wt, win;
      load_tiles(wt, win, w, window_in, bk, p);
      forward_block_fused<decltype(k_taps)::value>(u, window_out, x, wt, win, bias, bk, p);
    });
  });
  if (one_pass) return;
  // Tasks over (stream, block of TB rows), channels innermost: every tap reads whole contiguous
  // rows of x, so the (L, E) input streams through the cache once. Weights are transposed to
  // (K, E) and the carried window to (B, K-1, E) first.
  std::vector<float> wt(size_t(K * E));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t k = 0; k < K; ++k) wt[size_t(k * E + e)] = w[e * K + k];
  std::vector<float> win(size_t(B * std::max<int64_t>(K - 1, 0) * E), 0.0f);  // (B, K-1, E)
  if (window_in)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e)
        for (int64_t i = 0; i < K - 1; ++i)
          win[size_t((b * (K - 1) + i) * E + e)] = window_in[(b * E + e) * (K - 1) + i];
  constexpr int64_t TB = 32;
  const int64_t nt = (L + TB - 1) / TB;
  tbb::parallel_for(int64_t(0), B * nt, [&](int64_t task) {
    const int64_t b = task / nt, t0 = (task % nt) * TB, t1 = std::min(L, t0 + TB);
    for (int64_t t = t0; t < t1; ++t) {
      float* out = u + (b * L + t) * E;
      for (int64_t e = 0; e < E; e += W) {
        const int n = int(std::min<int64_t>(W, E - e));
        vf acc = bias ? simd::load_n(bias + e, n) : simd::zero();
        for (int64_t k = 0; k < K; ++k) {
          const int64_t j = t - (K - 1) + k;
          const float* row = j >= 0 ? x + (b * L + j) * p.ld_x : win.data() + (b * (K - 1) + (K - 1 + j)) * E;
          acc = simd::fma(simd::load_n(wt.data() + k * E + e, n), simd::load_n(row + e, n), acc);
        }
        simd::store_n(out + e, p.silu ? simd::silu(acc) : acc, n);
      }
    }
  });
  // The last K-1 inputs after this chunk (window_out may alias window_in: win is a copy).
  if (window_out)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < K - 1; ++i) {
        const int64_t j = L - (K - 1) + i;
        const float* row = j >= 0 ? x + (b * L + j) * p.ld_x : win.data() + (b * (K - 1) + (K - 1 + j)) * E;
        for (int64_t e = 0; e < E; ++e) window_out[(b * E + e) * (K - 1) + i] = row[e];
      }
}

void causal_conv1d_backward(float* dx, float* dwindow_in, float* dw, float* dbias, const float* du,
                            const float* dwindow_out, const float* x, const float* w,
                            const float* bias, const float* window_in,
                            const CausalConv1dParams& p) {
  const char* fn = "causal_conv1d_backward";
  causal_conv1d_backward_check(fn, dx, dw, du, x, w, p);
  const int64_t K = p.K, E = p.E, nvec = EC / W;
  // dw and dbias are reduced over streams: per-stream partials, summed in order afterwards.
  std::vector<float> part_w(p.B * E * K), part_b(p.B * E);
  for_blocks(p, [&](const Block& bk) {
    std::vector<float> wt, win, dwo;
    load_tiles(wt, win, w, window_in, bk, p);
    // The gradient carried into window_out, read before dwindow_in (may alias it) is written.
    load_window(dwo, dwindow_out, bk, p);
    std::vector<float> dwin((K - 1) * EC);
    std::vector<vf> acc_w(K * nvec, simd::zero());
    std::vector<vf> acc_b(nvec, simd::zero());
    const bool one_pass = with_taps(K, [&](auto k_taps) {
      backward_block_fused<decltype(k_taps)::value>(dx, dwin, acc_w, acc_b, du, dwo, x, wt, win,
                                                     bias, bk, p);
    });
    if (!one_pass) backward_block_general(dx, dwin, acc_w, acc_b, du, dwo, x, wt, win, bias, bk, p);
    float tmp[W];
    for (int64_t v = 0; v < nvec && v * W < bk.ne; ++v) {
      const int64_t n = std::min<int64_t>(W, bk.ne - v * W), e = bk.e0 + v * W;
      for (int64_t k = 0; k < K; ++k) {
        simd::storeu(tmp, acc_w[k * nvec + v]);
        for (int64_t c = 0; c < n; ++c) part_w[(bk.b * E + e + c) * K + k] = tmp[c];
      }
      simd::storeu(tmp, acc_b[v]);
      for (int64_t c = 0; c < n; ++c) part_b[bk.b * E + e + c] = tmp[c];
    }
    if (dwindow_in)
      for (int64_t c = 0; c < bk.ne; ++c)
        for (int64_t i = 0; i < K - 1; ++i)
          dwindow_in[(bk.b * E + bk.e0 + c) * (K - 1) + i] = dwin[i * EC + c];
  });
  tbb::parallel_for(int64_t(0), E, [&](int64_t e) {
    for (int64_t b = 0; b < p.B; ++b) {
      for (int64_t k = 0; k < K; ++k) dw[e * K + k] += part_w[(b * E + e) * K + k];
      if (dbias) dbias[e] += part_b[b * E + e];
    }
  });
}

}  // namespace MAMBADNA_CPU_NS
