// Scoring throughput of the CPU model for the small (D 256, 8 layers) and 130M (D 768,
// 24 layers) shapes, beside this machine's measured matrix-product rate, so that each figure
// comes with its fraction of the ceiling that rate sets.
//
//   bench_score GENOME.fa[.gz] [bases=65536] [threads=2] [chunk=4096]
//
// The first `bases` bases of the genome are scored as one sequence (B = 1, chunks of L with the
// state carried), as `mambadna score` does for a long record.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/sequence_reader.h"
#include "kernels/matmul.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "model/mamba.h"

using namespace mambadna;
using clk = std::chrono::steady_clock;

namespace {
double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

double gemm_gflops(int64_t M, int64_t K, int64_t N) {
  std::vector<float> a(size_t(M * K), 0.5f), w(size_t(N * K), 0.25f), o(size_t(M * N));
  kernels::MatmulParams p{M, K, N, K, N};
  kernels::cpu::matmul_forward(o.data(), a.data(), w.data(), nullptr, p);  // warm-up
  int reps = 0;
  auto t0 = clk::now();
  while (seconds_since(t0) < 1.0) {
    kernels::cpu::matmul_forward(o.data(), a.data(), w.data(), nullptr, p);
    ++reps;
  }
  return 2.0 * double(M) * double(K) * double(N) * reps / seconds_since(t0) / 1e9;
}

// Matrix-product FLOPs per token of a forward pass (in_proj, x_proj, dt_proj, out_proj per
// layer, and the LM head); the scan, conv and norms are left out of "model FLOPs".
double model_flops(const model::Config& c) {
  const double D = double(c.d_model), E = double(c.d_inner()), N = double(c.d_state), R = double(c.rank()),
               V = double(c.vocab_padded());
  return 2.0 * (double(c.n_layer) * (D * 2 * E + E * (R + 2 * N) + R * E + E * D) + D * V);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GENOME.fa[.gz] [bases=65536] [threads=2] [chunk=4096]\n", argv[0]);
    return 1;
  }
  const int64_t bases = argc > 2 ? std::atoll(argv[2]) : 65536;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  const int64_t L = argc > 4 ? std::atoll(argv[4]) : 4096;
  kernels::CpuThreads pool(threads);

  std::vector<int32_t> seq;
  io::SequenceReader reader(argv[1]);
  io::Chunk c;
  while (int64_t(seq.size()) < bases + 1 && reader.next(c, 1 << 16))
    for (uint8_t t : c.tokens) seq.push_back(t);
  if (int64_t(seq.size()) < bases + 1) {
    std::fprintf(stderr, "%s has fewer than %lld bases\n", argv[1], (long long)bases + 1);
    return 1;
  }

  std::printf("# bench_score: %lld bases of %s, B 1, L %lld, %d threads, float32\n", (long long)bases,
              argv[1], (long long)L, threads);
  std::printf("%-6s %12s %12s %14s %14s %10s %10s\n", "shape", "params", "bases/s", "MFLOP/base",
              "gemm GFLOP/s", "ceiling", "fraction");
  for (const char* shape : {"small", "130m"}) {
    model::Config cfg = model::preset(shape);
    auto table = model::ParamTable::build(cfg);
    model::Mamba<float> m(cfg, model::init_params(cfg, table, 1));
    // The ceiling: the rate of this shape's largest matrix product (in_proj) at M = L.
    const double gf = gemm_gflops(L, cfg.d_model, 2 * cfg.d_inner());
    model::State<float> st(cfg, 1);
    model::Activations<float> acts;
    std::vector<int32_t> tok(static_cast<size_t>(L)), tgt(static_cast<size_t>(L));
    std::vector<float> lp(static_cast<size_t>(L));
    auto run = [&](int64_t n_bases) {
      st.reset();
      for (int64_t s = 0; s < n_bases; s += L) {
        const int64_t n = std::min(L, n_bases - s);
        for (int64_t t = 0; t < L; ++t) {
          tok[size_t(t)] = t < n ? seq[size_t(s + t)] : 'N';
          tgt[size_t(t)] = t < n ? seq[size_t(s + t + 1)] : -1;
        }
        m.score(tok.data(), tgt.data(), 1, L, st, acts, lp.data());
      }
    };
    run(L);  // warm-up
    auto t0 = clk::now();
    run(bases);
    const double rate = double(bases) / seconds_since(t0);
    const double fl = model_flops(cfg);
    const double ceiling = gf * 1e9 / fl;
    std::printf("%-6s %12lld %12.0f %14.2f %14.1f %10.0f %9.0f%%\n", shape, (long long)table.total, rate,
                fl / 1e6, gf, ceiling, 100.0 * rate / ceiling);
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("# peak RSS %.3f GB\n", double(ru.ru_maxrss) / 1e6);
  return 0;
}
