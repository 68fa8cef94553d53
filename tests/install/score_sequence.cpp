// score_sequence MODEL.h5 SEQUENCES [L]: the log-likelihood of every record of a FASTA/FASTQ/
// SAM/BAM/CRAM file under a mambadna or mamba_ssm checkpoint, read in chunks of L bases (default
// 4096) with the model's recurrent state carried from chunk to chunk, so that a record of any
// length is scored in constant memory. Prints "name<TAB>scored<TAB>loglik" a record, as the
// columns of `mambadna score` name them: scored counts the A/C/G/T bases predicted (every base
// but a record's first), loglik sums their log-probabilities in nats.
//
// The example of README's "The library", built against the installed library by the tests.
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "io/error.h"
#include "io/sequence_reader.h"
#include "model/checkpoint.h"
#include "model/mamba.h"

namespace md = mambadna;

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: score_sequence MODEL.h5 SEQUENCES [L]\n");
    return 2;
  }
  try {
    const int64_t L = argc == 4 ? std::stoll(argv[3]) : 4096;
    if (L < 1) throw md::UsageError("L must be at least 1");
    md::model::Checkpoint ck = md::model::load_checkpoint(argv[1]);
    md::model::Mamba<float> model(ck.config, std::move(ck.params));

    md::model::State<float> state(model.config(), 1);    // one stream
    md::model::Activations<float> acts;
    std::vector<int32_t> tokens, targets;                  // (1, n): inputs, next bases
    std::vector<float> logprob;                            // (1, n)
    md::io::ReaderOptions read;  // the model's tokenizer: soft-masked bases folded or kept
    read.tok.case_mode = md::io::parse_case_mode(model.config().tokenizer_case);
    md::io::SequenceReader reader(argv[2], read);
    md::io::Chunk chunk;
    std::string name;
    int64_t scored = 0;
    double loglik = 0;
    int32_t carried = -1;  // the last base of the record's previous chunk: the next pass's first input
    while (reader.next(chunk, size_t(L))) {
      if (chunk.begin_of_record) {
        state.reset();
        name = chunk.record, scored = 0, loglik = 0, carried = -1;
      }
      // Inputs: the carried base, then this chunk's but its last; targets: the base after each.
      tokens.clear(), targets.clear();
      if (carried >= 0) tokens.push_back(carried);
      for (uint8_t t : chunk.tokens) tokens.push_back(t);
      if (!tokens.empty()) {
        carried = tokens.back();
        targets.assign(tokens.begin() + 1, tokens.end());
        tokens.pop_back();
      }
      const int64_t n = int64_t(tokens.size());
      if (n > 0) {
        for (int32_t& t : targets)
          if (!md::io::is_acgt(t)) t = -1;  // N and other bytes are context, not scored
        if (acts.L != n) acts.plan(model.config(), 1, n, false);
        logprob.resize(size_t(n));
        model.score(tokens.data(), targets.data(), 1, n, state, acts, logprob.data());
        for (int64_t i = 0; i < n; ++i)
          if (targets[size_t(i)] >= 0) ++scored, loglik += logprob[size_t(i)];
      }
      if (chunk.end_of_record) std::printf("%s\t%lld\t%.6f\n", name.c_str(), (long long)scored, loglik);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "score_sequence: %s\n", e.what());
    return 1;
  }
}
