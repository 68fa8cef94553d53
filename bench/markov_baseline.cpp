// The baseline a DNA language model must beat: an order-k Markov chain fitted on the training
// part of each record (all but the last `holdout` fraction) and evaluated, in bits per base, on
// the held-out tail, for k = 0..kmax and a few additive-smoothing constants.
//
//   markov_baseline GENOME.fa[.gz] [holdout=0.1] [kmax=12]
//
// Only A/C/G/T count: a position is scored when it and its k predecessors are all A/C/G/T.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/sequence_reader.h"

using namespace mambadna;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GENOME.fa[.gz] [holdout=0.1] [kmax=12]\n", argv[0]);
    return 1;
  }
  const double holdout = argc > 2 ? std::atof(argv[2]) : 0.1;
  const int kmax = argc > 3 ? std::atoi(argv[3]) : 12;
  // Records as 2-bit codes (4 = not ACGT). A baseline program may hold the genome in memory.
  std::vector<std::vector<uint8_t>> records;
  io::SequenceReader reader(argv[1]);
  io::Chunk c;
  while (reader.next(c, 1 << 20)) {
    if (c.begin_of_record) records.emplace_back();
    for (uint8_t t : c.tokens) {
      uint8_t v = 4;
      switch (t) { case 'A': v = 0; break; case 'C': v = 1; break; case 'G': v = 2; break; case 'T': v = 3; break; }
      records.back().push_back(v);
    }
  }
  int64_t train_n = 0, test_n = 0;
  for (auto& r : records) {
    int64_t cut = int64_t(r.size()) - int64_t(double(r.size()) * holdout);
    train_n += cut, test_n += int64_t(r.size()) - cut;
  }
  std::printf("# %s: %zu records, %lld training and %lld held-out bases (holdout %.2f)\n", argv[1],
              records.size(), (long long)train_n, (long long)test_n, holdout);
  std::printf("#k\talpha\theld_out_bits_per_base\ttrain_bits_per_base\n");
  const double alphas[] = {0.01, 0.1, 0.5, 1.0};
  double best = 1e9;
  int best_k = -1;
  double best_alpha = 0;
  for (int k = 0; k <= kmax; ++k) {
    const size_t contexts = size_t(1) << (2 * k);
    std::vector<uint32_t> counts(contexts * 4, 0);
    auto walk = [&](bool train, auto&& fn) {
      for (auto& r : records) {
        const int64_t n = int64_t(r.size());
        const int64_t cut = n - int64_t(double(n) * holdout);
        const int64_t b = train ? 0 : cut, e = train ? cut : n;
        uint64_t ctx = 0;
        int valid = 0;  // consecutive ACGT bases before position i
        // Warm the context with the k bases before b (they are training bases for the test part).
        for (int64_t i = std::max<int64_t>(0, b - k); i < e; ++i) {
          const uint8_t v = r[size_t(i)];
          if (i >= b && v < 4 && valid >= k) fn(ctx, v);
          if (v < 4) {
            ctx = ((ctx << 2) | v) & (contexts - 1);
            ++valid;
          } else {
            ctx = 0;
            valid = 0;
          }
        }
      }
    };
    walk(true, [&](uint64_t ctx, uint8_t v) { ++counts[ctx * 4 + v]; });
    for (double alpha : alphas) {
      double bits_test = 0, bits_train = 0;
      int64_t nt = 0, nr = 0;
      auto bits = [&](uint64_t ctx, uint8_t v) {
        const uint32_t* c4 = &counts[ctx * 4];
        const double tot = double(c4[0]) + c4[1] + c4[2] + c4[3];
        return -std::log2((double(c4[v]) + alpha) / (tot + 4 * alpha));
      };
      walk(false, [&](uint64_t ctx, uint8_t v) { bits_test += bits(ctx, v), ++nt; });
      walk(true, [&](uint64_t ctx, uint8_t v) { bits_train += bits(ctx, v), ++nr; });
      const double bt = nt ? bits_test / double(nt) : NAN;
      std::printf("%d\t%g\t%.4f\t%.4f\n", k, alpha, bt, nr ? bits_train / double(nr) : NAN);
      if (bt < best) best = bt, best_k = k, best_alpha = alpha;
    }
  }
  std::printf("# best: k = %d, alpha = %g: %.4f bits per base on the held-out part\n", best_k,
              best_alpha, best);
  return 0;
}
