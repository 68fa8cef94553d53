// CPU selective scan. Channels are contiguous in memory, so a SIMD vector holds W channels of one
// stream and the N states of each channel live in N vectors (registers, for the N the kernel is
// specialised for); Bm[t,:] and Cm[t,:] are broadcasts shared by all lanes. Tasks are
// (stream b, block of W channels) in the forward pass and (stream b, group of blocks) in the
// backward pass, run in parallel with TBB.
//
// The backward pass recomputes the states: a first sweep stores h only every kSeg steps (or
// the forward kept them, h_chunks); then, from the last segment to the first, the segment's
// states and decays are recomputed from its checkpoint into an O(kSeg·N·W) scratch and the
// adjoint runs backwards through it. The sums of
// dBm[t,:], dCm[t,:] over the W lanes use a transposing reduction (simd::add_lane_sums). Reductions
// over channel blocks (dBm, dCm) go through per-group partials; reductions over streams (dA, dD,
// ddelta_bias) through per-stream partials; both are summed in a fixed order afterwards, so the
// result depends on the number of TBB threads (which sets the grouping) but not on scheduling.
#include "kernels/selective_scan.h"

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/variant.h"

namespace MAMBADNA_CPU_NS {

namespace {

using simd::vf;
using simd::W;

constexpr int kSeg = 64;  // backward checkpoint interval (steps); kept by the forward in h_chunks

// The forward sweeps unroll their loops over the N states, so that for a compile-time N the state
// vectors stay in registers. The adjoint loop is left rolled: unrolled, it spills (measured
// slower).
#define MAMBADNA_UNROLL_N _Pragma("GCC unroll 32")

struct ScanIn {
  const float *u, *delta, *A, *Bm, *Cm, *D, *z, *delta_bias, *h0;
  SelectiveScanParams p;
};

// N state vectors: an array (kept in registers) when N is known at compile time, else a vector.
template <int NT>
using Regs = std::conditional_t<(NT > 0), std::array<vf, (NT > 0 ? NT : 1)>, std::vector<vf>>;

template <int NT>
Regs<NT> make_regs(int N) {
  if constexpr (NT > 0) {
    Regs<NT> r;
    r.fill(simd::zero());
    return r;
  } else {
    return Regs<NT>(N, simd::zero());
  }
}

// dst[n] lane c = src[c·N + n] for c < ne (a (·, N) tile of W rows, transposed), 0 beyond.
inline void load_tile(vf* dst, const float* src, int N, int ne) {
  alignas(64) float tmp[W];
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < W; ++c) tmp[c] = c < ne ? src[c * N + n] : 0.0f;
    dst[n] = simd::loadu(tmp);
  }
}

inline void store_tile(float* dst, const vf* src, int N, int ne) {
  alignas(64) float tmp[W];
  for (int n = 0; n < N; ++n) {
    simd::storeu(tmp, src[n]);
    for (int c = 0; c < ne; ++c) dst[c * N + n] = tmp[c];
  }
}

inline vf scan_dt(vf raw, bool softplus) { return softplus ? simd::softplus(raw) : raw; }

// The block's states before segment seg in h_chunks (B, segments, E, N).
inline int64_t chunk_offset(const SelectiveScanParams& p, int64_t b, int64_t seg, int64_t e0) {
  const int64_t nseg = (p.L + kSeg - 1) / kSeg;
  return ((b * nseg + seg) * p.E + e0) * p.N;
}

template <int NT>
void forward_block(const ScanIn& in, float* out, float* h_last, float* h_chunks, int64_t b,
                   int64_t e0, int ne) {
  const SelectiveScanParams& p = in.p;
  const int64_t L = p.L, E = p.E;
  const int N = NT > 0 ? NT : int(p.N);
  Regs<NT> h = make_regs<NT>(N), At = make_regs<NT>(N);
  load_tile(At.data(), in.A + e0 * N, N, ne);
  if (in.h0) load_tile(h.data(), in.h0 + (b * E + e0) * N, N, ne);
  const vf Dv = in.D ? simd::load_n(in.D + e0, ne) : simd::zero();
  const vf bias = in.delta_bias ? simd::load_n(in.delta_bias + e0, ne) : simd::zero();
  for (int64_t t = 0; t < L; ++t) {
    if (h_chunks && t % kSeg == 0) store_tile(h_chunks + chunk_offset(p, b, t / kSeg, e0), h.data(), N, ne);
    const int64_t row = b * L + t;
    const vf uv = simd::load_n(in.u + row * E + e0, ne);
    const vf dt = scan_dt(simd::load_n(in.delta + row * E + e0, ne) + bias, p.delta_softplus);
    const vf dtu = dt * uv;
    const float* Bt = in.Bm + row * p.ld_bc;
    const float* Ct = in.Cm + row * p.ld_bc;
    vf y0 = Dv * uv, y1 = simd::zero();  // two partial sums shorten the dependency chain
    MAMBADNA_UNROLL_N
    for (int n = 0; n < N; ++n) {
      h[n] = simd::fma(simd::exp(dt * At[n]), h[n], dtu * simd::set1(Bt[n]));
      if (n & 1)
        y1 = simd::fma(h[n], simd::set1(Ct[n]), y1);
      else
        y0 = simd::fma(h[n], simd::set1(Ct[n]), y0);
    }
    vf y = y0 + y1;
    if (in.z) y = y * simd::silu(simd::load_n(in.z + row * p.ld_z + e0, ne));
    simd::store_n(out + row * E + e0, y, ne);
  }
  if (h_last) store_tile(h_last + (b * E + e0) * N, h.data(), N, ne);
}

struct ScanGrads {
  float *du, *ddelta, *dz, *dh0;
  const float *dout, *dh_last;
  const float* h_chunks;  // the forward's states every kSeg steps, or nullptr
};

struct Scratch {
  std::vector<vf> ckpt, ah, as, dt, dsp, dy;  // ah = a_t ⊙ h_{t−1}, as = a_t
};

// Where one task sums its results: dB/dC rows (L, ld) of stream b; dA (E, N), dD and
// ddelta_bias (E) of stream b.
struct Partials {
  float *dB, *dC;
  int64_t ld;
  float *dA, *dD, *dbias;
};

template <int NT>
void backward_block(const ScanIn& in, const ScanGrads& gr, const Partials& out, Scratch& s,
                    int64_t b, int64_t e0, int ne) {
  const SelectiveScanParams& p = in.p;
  const int64_t L = p.L, E = p.E;
  const int N = NT > 0 ? NT : int(p.N);
  const int64_t nseg = (L + kSeg - 1) / kSeg;
  s.ckpt.resize(nseg * N);
  s.ah.resize(kSeg * N);
  s.as.resize(kSeg * N);
  s.dt.resize(kSeg);
  s.dsp.resize(kSeg);
  s.dy.resize(kSeg);

  Regs<NT> h = make_regs<NT>(N), At = make_regs<NT>(N), g = make_regs<NT>(N),
           dA_acc = make_regs<NT>(N), sums = make_regs<NT>(N);
  load_tile(At.data(), in.A + e0 * N, N, ne);
  if (in.h0) load_tile(h.data(), in.h0 + (b * E + e0) * N, N, ne);
  const vf Dv = in.D ? simd::load_n(in.D + e0, ne) : simd::zero();
  const vf bias = in.delta_bias ? simd::load_n(in.delta_bias + e0, ne) : simd::zero();
  const vf one = simd::set1(1.0f);

  // Sweep 1: checkpoints h_{t0−1} at every segment start t0 (unless the forward kept them).
  if (gr.h_chunks) {
    for (int64_t seg = 0; seg < nseg; ++seg)
      load_tile(s.ckpt.data() + seg * N, gr.h_chunks + chunk_offset(p, b, seg, e0), N, ne);
  } else {
    for (int64_t t = 0; t < L; ++t) {
      if (t % kSeg == 0) std::copy(h.begin(), h.end(), s.ckpt.begin() + (t / kSeg) * N);
      const int64_t row = b * L + t;
      const vf uv = simd::load_n(in.u + row * E + e0, ne);
      const vf dt = scan_dt(simd::load_n(in.delta + row * E + e0, ne) + bias, p.delta_softplus);
      const vf dtu = dt * uv;
      const float* Bt = in.Bm + row * p.ld_bc;
      MAMBADNA_UNROLL_N
      for (int n = 0; n < N; ++n)
        h[n] = simd::fma(simd::exp(dt * At[n]), h[n], dtu * simd::set1(Bt[n]));
    }
  }

  if (gr.dh_last) load_tile(g.data(), gr.dh_last + (b * E + e0) * N, N, ne);
  vf dD_acc = simd::zero(), dbias_acc = simd::zero();
  for (int64_t seg = nseg - 1; seg >= 0; --seg) {
    const int64_t t0 = seg * kSeg;
    const int ns = int(std::min<int64_t>(kSeg, L - t0));
    std::copy(s.ckpt.begin() + seg * N, s.ckpt.begin() + (seg + 1) * N, h.begin());
    // Recompute the segment: decays a_t, a_t ⊙ h_{t−1}, dt, dy; dz and dCm need nothing more.
    for (int k = 0; k < ns; ++k) {
      const int64_t row = b * L + t0 + k;
      const vf uv = simd::load_n(in.u + row * E + e0, ne);
      const vf raw = simd::load_n(in.delta + row * E + e0, ne) + bias;
      const vf dt = scan_dt(raw, p.delta_softplus);
      const vf dtu = dt * uv;
      const float* Bt = in.Bm + row * p.ld_bc;
      const float* Ct = in.Cm + row * p.ld_bc;
      vf* ah = s.ah.data() + k * N;
      vf* as = s.as.data() + k * N;
      vf y0 = Dv * uv, y1 = simd::zero();
      MAMBADNA_UNROLL_N
      for (int n = 0; n < N; ++n) {
        const vf a = simd::exp(dt * At[n]);
        as[n] = a;
        ah[n] = a * h[n];
        h[n] = simd::fma(a, h[n], dtu * simd::set1(Bt[n]));
        if (n & 1)
          y1 = simd::fma(h[n], simd::set1(Ct[n]), y1);
        else
          y0 = simd::fma(h[n], simd::set1(Ct[n]), y0);
      }
      const vf y = y0 + y1;
      const vf dout = simd::load_n(gr.dout + row * E + e0, ne);
      vf dy = dout;
      if (in.z) {
        const vf zz = simd::load_n(in.z + row * p.ld_z + e0, ne);
        const vf sg = simd::sigmoid(zz);
        simd::store_n(gr.dz + row * p.ld_z + e0, dout * y * sg * simd::fma(zz, one - sg, one), ne);
        dy = dout * zz * sg;
      }
      s.dt[k] = dt;
      s.dsp[k] = p.delta_softplus ? simd::sigmoid(raw) : one;
      s.dy[k] = dy;
      for (int n = 0; n < N; ++n) sums[n] = dy * h[n];
      simd::add_lane_sums(out.dC + (t0 + k) * out.ld, sums.data(), N);
    }
    // Adjoint through the segment; g holds exp(dt_{t+1} A) ⊙ λ_{t+1}.
    for (int k = ns - 1; k >= 0; --k) {
      const int64_t row = b * L + t0 + k;
      const vf uv = simd::load_n(in.u + row * E + e0, ne);
      const vf dt = s.dt[k], dy = s.dy[k];
      const vf dtu = dt * uv;
      const float* Bt = in.Bm + row * p.ld_bc;
      const float* Ct = in.Cm + row * p.ld_bc;
      const vf* ah = s.ah.data() + k * N;
      const vf* as = s.as.data() + k * N;
      vf sB = simd::zero(), ddt = simd::zero();
      for (int n = 0; n < N; ++n) {
        const vf l = simd::fma(simd::set1(Ct[n]), dy, g[n]);  // λ_t
        sums[n] = l * dtu;
        sB = simd::fma(l, simd::set1(Bt[n]), sB);
        const vf q = l * ah[n];
        ddt = simd::fma(q, At[n], ddt);
        dA_acc[n] = simd::fma(q, dt, dA_acc[n]);
        g[n] = as[n] * l;
      }
      simd::add_lane_sums(out.dB + (t0 + k) * out.ld, sums.data(), N);
      simd::store_n(gr.du + row * E + e0, simd::fma(dt, sB, Dv * dy), ne);
      const vf dd = simd::fma(uv, sB, ddt) * s.dsp[k];
      simd::store_n(gr.ddelta + row * E + e0, dd, ne);
      dD_acc = simd::fma(dy, uv, dD_acc);
      dbias_acc += dd;
    }
  }
  if (gr.dh0) store_tile(gr.dh0 + (b * E + e0) * N, g.data(), N, ne);
  store_tile(out.dA + e0 * N, dA_acc.data(), N, ne);
  alignas(64) float tmp[W];
  simd::storeu(tmp, dD_acc);
  std::copy(tmp, tmp + ne, out.dD + e0);
  simd::storeu(tmp, dbias_acc);
  std::copy(tmp, tmp + ne, out.dbias + e0);
}

// Calls f.template operator()<NT>() with NT = N for the specialised sizes, 0 (runtime N) otherwise.
template <typename F>
void dispatch_n(int64_t N, F&& f) {
  switch (N) {
    case 4:
      return f.template operator()<4>();
    case 8:
      return f.template operator()<8>();
    case 16:
      return f.template operator()<16>();
    case 32:
      return f.template operator()<32>();
    default:
      return f.template operator()<0>();
  }
}


}  // namespace

int64_t selective_scan_chunk_states(const SelectiveScanParams& p) {
  return p.B * ((p.L + kSeg - 1) / kSeg) * p.E * p.N;
}

void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  const char* fn = "selective_scan_forward";
  const ScanIn in{u, delta, A, Bm, Cm, D, z, delta_bias, h0, p};
  selective_scan_forward_check(fn, out, in.u, in.delta, in.A, in.Bm, in.Cm, in.z != nullptr, in.p);
  const int64_t nblk = (p.E + W - 1) / W;
  dispatch_n(p.N, [&]<int NT>() {
    tbb::parallel_for(int64_t(0), p.B * nblk, [&](int64_t i) {
      const int64_t b = i / nblk, e0 = (i % nblk) * W;
      forward_block<NT>(in, out, h_last, h_chunks, b, e0, int(std::min<int64_t>(W, p.E - e0)));
    });
  });
}

void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  const char* fn = "selective_scan_backward";
  const ScanIn in{u, delta, A, Bm, Cm, D, z, delta_bias, h0, p};
  selective_scan_backward_check(fn, du, ddelta, dA, dBm, dCm, dz, dout, in.u, in.delta, in.A, in.Bm,
                                in.Cm, in.z != nullptr, in.p);
  const ScanGrads gr{du, ddelta, dz, dh0, dout, dh_last, h_chunks};
  const int64_t B = p.B, L = p.L, E = p.E, N = p.N;

  // Tasks: (b, group of channel blocks). Enough groups to keep every thread busy.
  const int64_t nblk = (E + W - 1) / W;
  const int64_t want = 4 * tbb::this_task_arena::max_concurrency();
  const int64_t G = std::clamp<int64_t>((want + B - 1) / B, 1, nblk);
  std::vector<float> part_bc(G > 1 ? 2 * G * B * L * N : 0);
  std::vector<float> part_a(B * E * N), part_d(B * E), part_bias(B * E);
  tbb::enumerable_thread_specific<Scratch> scratch;

  dispatch_n(N, [&]<int NT>() {
    tbb::parallel_for(int64_t(0), B * G, [&](int64_t task) {
      const int64_t b = task / G, grp = task % G;
      Partials out;
      if (G > 1) {
        out.dB = part_bc.data() + (grp * B + b) * L * N;
        out.dC = part_bc.data() + ((G + grp) * B + b) * L * N;
        out.ld = N;
        std::fill(out.dB, out.dB + L * N, 0.0f);
        std::fill(out.dC, out.dC + L * N, 0.0f);
      } else {
        out.dB = dBm + b * L * p.ld_bc;
        out.dC = dCm + b * L * p.ld_bc;
        out.ld = p.ld_bc;
        for (int64_t t = 0; t < L; ++t)
          for (int64_t n = 0; n < N; ++n) out.dB[t * p.ld_bc + n] = out.dC[t * p.ld_bc + n] = 0.0f;
      }
      out.dA = part_a.data() + b * E * N;
      out.dD = part_d.data() + b * E;
      out.dbias = part_bias.data() + b * E;
      Scratch& s = scratch.local();
      for (int64_t blk = grp * nblk / G; blk < (grp + 1) * nblk / G; ++blk) {
        const int64_t e0 = blk * W;
        backward_block<NT>(in, gr, out, s, b, e0, int(std::min<int64_t>(W, E - e0)));
      }
    });
  });

  if (G > 1)
    tbb::parallel_for(int64_t(0), B * L, [&](int64_t row) {
      float* dB = dBm + row * p.ld_bc;
      float* dC = dCm + row * p.ld_bc;
      for (int64_t n = 0; n < N; ++n) dB[n] = dC[n] = 0.0f;
      for (int64_t grp = 0; grp < G; ++grp) {
        const float* pB = part_bc.data() + (grp * B * L + row) * N;
        const float* pC = part_bc.data() + ((G + grp) * B * L + row) * N;
        for (int64_t n = 0; n < N; ++n) {
          dB[n] += pB[n];
          dC[n] += pC[n];
        }
      }
    });
  tbb::parallel_for(int64_t(0), E, [&](int64_t e) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t n = 0; n < N; ++n) dA[e * N + n] += part_a[(b * E + e) * N + n];
      if (D && dD) dD[e] += part_d[b * E + e];
      if (delta_bias && ddelta_bias) ddelta_bias[e] += part_bias[b * E + e];
    }
  });
}

}  // namespace MAMBADNA_CPU_NS
