// Kernel benchmark: reference (plain loops, float) against the CPU backend, with 1 and 2 threads
// (TBB and OpenBLAS limited alike). Prints time per call and the rate: state updates (b,t,e,n)
// per second for the selective scan, GFLOP/s (2·M·K·N per product) for matmul.
//
// Usage: bench_kernels [--threads a,b,...]   (default 1,2)
#include <cblas.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <tbb/global_control.h>

#include "kernels/causal_conv1d.h"
#include "kernels/cpu_variant.h"
#include "kernels/matmul.h"
#include "kernels/selective_scan.h"

using namespace mambadna::kernels;

namespace {

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Seconds per call: the best of `reps` runs after one warm-up (none for reps == 0: one timed run).
double time_call(const std::function<void()>& f, int reps) {
  using clock = std::chrono::steady_clock;
  if (reps > 0) f();
  double best = 1e300;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto t0 = clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
  }
  return best;
}

struct Row {
  std::string op, size;
  double ref_s, work;  // reference seconds per call, work units per call
  const char* unit;
  double unit_scale;
};

void print_header() {
  std::printf("%-26s %-26s %3s %11s %11s %8s %13s %13s\n", "op", "size", "thr", "ref ms", "cpu ms",
              "speedup", "ref rate", "cpu rate");
}

void print_row(const Row& r, int threads, double cpu_s) {
  std::printf("%-26s %-26s %3d %11.2f %11.3f %7.1fx %10.3g %-2s %10.3g %-2s\n", r.op.c_str(),
              r.size.c_str(), threads, r.ref_s * 1e3, cpu_s * 1e3, r.ref_s / cpu_s,
              r.work / r.ref_s / r.unit_scale, r.unit, r.work / cpu_s / r.unit_scale, r.unit);
}

// Shapes as the model lays them out: Bm and Cm are column slices of x_proj's output
// (M, R + 2N) = dt | B | C, and z is the second half of in_proj's output (M, 2E) = x | z.
struct ScanBench {
  SelectiveScanParams p;
  int64_t R;
  std::vector<float> u, delta, A, xdbl, D, xz, bias, h0, dout, dh_last;
  std::vector<float> out, h_last, du, ddelta, dA, dxdbl, dD, dxz, dbias, dh0;
  std::vector<float> chunks;  // the CPU forward's states every 64 steps

  ScanBench(std::mt19937& rng, int64_t B, int64_t L, int64_t E, int64_t N) {
    R = (E + 15) / 16;
    p = {B, L, E, N, R + 2 * N, 2 * E, true};
    const size_t BLE = B * L * E, BEN = B * E * N;
    u = random_vec(rng, BLE, -1, 1);
    delta = random_vec(rng, BLE, -4, 0);
    A = random_vec(rng, E * N, -1, 2);
    for (auto& a : A) a = -std::exp(a);
    xdbl = random_vec(rng, B * L * p.ld_bc, -1, 1);
    D = random_vec(rng, E, -1, 1);
    xz = random_vec(rng, B * L * p.ld_z, -2, 2);
    bias = random_vec(rng, E, -1, 0);
    h0 = random_vec(rng, BEN, -1, 1);
    dout = random_vec(rng, BLE, -1, 1);
    dh_last = random_vec(rng, BEN, -1, 1);
    out.resize(BLE), h_last.resize(BEN), du.resize(BLE), ddelta.resize(BLE), dA.resize(E * N);
    dxdbl.resize(xdbl.size()), dD.resize(E), dxz.resize(xz.size());
    dbias.resize(E), dh0.resize(BEN);
    chunks.resize(size_t(cpu::selective_scan_chunk_states(p)));
  }
  // f(args..., extra...): extra is the CPU kernels' h_chunks where given.
  template <typename F, typename... X>
  void forward(F f, X... extra) {
    f(out.data(), h_last.data(), u.data(), delta.data(), A.data(), xdbl.data() + R,
      xdbl.data() + R + p.N, D.data(), xz.data() + p.E, bias.data(), h0.data(), p, extra...);
  }
  template <typename F, typename... X>
  void backward(F f, X... extra) {
    f(du.data(), ddelta.data(), dA.data(), dxdbl.data() + R, dxdbl.data() + R + p.N, dD.data(),
      dxz.data() + p.E, dbias.data(), dh0.data(), dout.data(), dh_last.data(), u.data(),
      delta.data(), A.data(), xdbl.data() + R, xdbl.data() + R + p.N, D.data(), xz.data() + p.E,
      bias.data(), h0.data(), p, extra...);
  }
};

// The conv as the model runs it: x is the first half of in_proj's output (M, 2E), SiLU after.
struct ConvBench {
  CausalConv1dParams p;
  std::vector<float> x, w, bias, win, u, wout, du, dx, dwin, dw, dbias;
  ConvBench(std::mt19937& rng, int64_t B, int64_t L, int64_t E, int64_t K) {
    p = {B, L, E, K, 2 * E, true};
    x = random_vec(rng, B * L * 2 * E, -1, 1);
    w = random_vec(rng, E * K, -0.5, 0.5);
    bias = random_vec(rng, E, -0.5, 0.5);
    win = random_vec(rng, B * E * (K - 1), -1, 1);
    du = random_vec(rng, B * L * E, -1, 1);
    u.resize(B * L * E), wout.resize(win.size()), dx.resize(x.size()), dwin.resize(win.size());
    dw.resize(E * K), dbias.resize(E);
  }
  template <typename F>
  void forward(F f) {
    f(u.data(), wout.data(), x.data(), w.data(), bias.data(), win.data(), p);
  }
  template <typename F>
  void backward(F f) {
    f(dx.data(), dwin.data(), dw.data(), dbias.data(), du.data(), wout.data(), x.data(), w.data(),
      bias.data(), win.data(), p);
  }
};

struct MatmulBench {
  MatmulParams p;
  std::vector<float> in, W, bias, out, din, dW, dbias, dout;
  MatmulBench(std::mt19937& rng, int64_t M, int64_t K, int64_t N) {
    p = {M, K, N, K, N};
    in = random_vec(rng, M * K, -1, 1);
    W = random_vec(rng, N * K, -1, 1);
    bias = random_vec(rng, N, -1, 1);
    dout = random_vec(rng, M * N, -1, 1);
    out.resize(M * N), din.resize(M * K), dW.resize(N * K), dbias.resize(N);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts{1, 2};
  if (argc == 3 && std::strcmp(argv[1], "--threads") == 0) {
    thread_counts.clear();
    for (const char* s = argv[2]; *s;) {
      thread_counts.push_back(std::atoi(s));
      s = std::strchr(s, ',');
      if (!s) break;
      ++s;
    }
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_kernels [--threads 1,2,...]\n");
    return 2;
  }
  std::mt19937 rng(7);
  std::vector<std::pair<Row, std::function<void()>>> rows;

  // Selective scan: forward and backward, rate in state updates per second.
  std::vector<std::unique_ptr<ScanBench>> scans;
  for (const int64_t B : {1, 8}) {
    scans.push_back(std::make_unique<ScanBench>(rng, B, 2048, 512, 16));
    ScanBench& s = *scans.back();
    const double work = double(B) * 2048 * 512 * 16;
    char size[64];
    std::snprintf(size, sizeof size, "B%d L2048 E512 N16", int(B));
    Row fwd{"scan fwd", size, 0, work, "/s", 1.0};
    fwd.ref_s = time_call([&] { s.forward(ref::selective_scan_forward<float>); }, 0);
    rows.push_back({fwd, [&s] { s.forward(cpu::selective_scan_forward, nullptr); }});
    Row fwd_kept{"scan fwd, keeping states", size, 0, work, "/s", 1.0};
    fwd_kept.ref_s = fwd.ref_s;
    rows.push_back({fwd_kept, [&s] { s.forward(cpu::selective_scan_forward, s.chunks.data()); }});
    Row bwd{"scan bwd", size, 0, work, "/s", 1.0};
    bwd.ref_s = time_call([&] { s.backward(ref::selective_scan_backward<float>); }, 0);
    rows.push_back({bwd, [&s] { s.backward(cpu::selective_scan_backward, nullptr); }});
    // From the states the forward kept (the training path): the first sweep is skipped.
    s.forward(cpu::selective_scan_forward, s.chunks.data());
    Row bwd_kept{"scan bwd, from kept states", size, 0, work, "/s", 1.0};
    bwd_kept.ref_s = bwd.ref_s;
    rows.push_back({bwd_kept, [&s] {
                      s.backward(cpu::selective_scan_backward,
                                 static_cast<const float*>(s.chunks.data()));
                    }});
  }

  // Causal conv (K 4, with SiLU): rate in outputs per second.
  std::vector<std::unique_ptr<ConvBench>> convs;
  for (const int64_t B : {8}) {
    convs.push_back(std::make_unique<ConvBench>(rng, B, 2048, 512, 4));
    ConvBench& c = *convs.back();
    char size[64];
    std::snprintf(size, sizeof size, "B%d L2048 E512 K4", int(B));
    const double work = double(B) * 2048 * 512;
    Row fwd{"conv fwd", size, 0, work, "/s", 1.0};
    fwd.ref_s = time_call([&] { c.forward(ref::causal_conv1d_forward<float>); }, 0);
    rows.push_back({fwd, [&c] { c.forward(cpu::causal_conv1d_forward); }});
    Row bwd{"conv bwd", size, 0, work, "/s", 1.0};
    bwd.ref_s = time_call([&] { c.backward(ref::causal_conv1d_backward<float>); }, 0);
    rows.push_back({bwd, [&c] { c.backward(cpu::causal_conv1d_backward); }});
  }

  // Matmul: the reference runs on the first 128 rows and its time is scaled to M rows (it is
  // linear in M); the CPU backend runs the full size.
  std::vector<std::unique_ptr<MatmulBench>> mms;
  for (const auto [M, K, N] : {std::array<int64_t, 3>{4096, 256, 1024}, {4096, 768, 3072}}) {
    mms.push_back(std::make_unique<MatmulBench>(rng, M, K, N));
    MatmulBench& m = *mms.back();
    char size[64];
    std::snprintf(size, sizeof size, "M%d K%d N%d", int(M), int(K), int(N));
    const int64_t Ms = 128;
    MatmulParams ps = m.p;
    ps.M = Ms;
    const double scale = double(M) / double(Ms);
    Row fwd{"matmul fwd", size, 0, 2.0 * M * K * N, "GF", 1e9};
    fwd.ref_s = scale * time_call(
                            [&] {
                              ref::matmul_forward<float>(m.out.data(), m.in.data(), m.W.data(),
                                                         m.bias.data(), ps);
                            },
                            0);
    rows.push_back(
        {fwd,
         [&m] { cpu::matmul_forward(m.out.data(), m.in.data(), m.W.data(), m.bias.data(), m.p); }});
    Row bwd{"matmul bwd", size, 0, 4.0 * M * K * N, "GF", 1e9};  // din and dW products
    bwd.ref_s =
        scale * time_call(
                    [&] {
                      ref::matmul_backward<float>(m.din.data(), m.dW.data(), m.dbias.data(),
                                                  m.dout.data(), m.in.data(), m.W.data(), ps);
                    },
                    0);
    rows.push_back({bwd, [&m] {
                      cpu::matmul_backward(m.din.data(), m.dW.data(), m.dbias.data(), m.dout.data(),
                                           m.in.data(), m.W.data(), m.p);
                    }});
  }

  std::printf("reference: plain loops, one thread (matmul timed on 128 rows, scaled to M); cpu: the %s "
              "kernels (MAMBADNA_CPU_KERNELS chooses)\n",
              cpu::active_variant().c_str());
  print_header();
  for (const int threads : thread_counts) {
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);
    openblas_set_num_threads(threads);
    for (auto& [row, f] : rows) print_row(row, threads, time_call(f, 3));
  }
  return 0;
}
