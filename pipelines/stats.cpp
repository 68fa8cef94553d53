#include "pipelines/stats.h"

#include <array>
#include <cctype>
#include <cmath>
#include <limits>

#include "io/chunk.h"

namespace mambadna::pipelines {

namespace {

// Per-record histogram of token bytes, folded into BaseCounts when the record ends: the inner
// loop is one increment per token.
BaseCounts fold(const std::array<int64_t, 256>& hist) {
  BaseCounts c;
  for (int b = 0; b < 256; ++b) {
    int64_t k = hist[size_t(b)];
    if (k == 0) continue;
    c.length += k;
    if (std::islower(b)) c.lower += k;
    switch (std::toupper(b)) {
      case 'A': c.a += k; break;
      case 'C': c.c += k; break;
      case 'G': c.g += k; break;
      case 'T': c.t += k; break;
      case 'N': c.n += k; break;
      default: c.other_iupac += k; break;
    }
  }
  return c;
}

}  // namespace

double BaseCounts::gc() const {
  int64_t acgt = a + c + g + t;
  return acgt > 0 ? double(g + c) / double(acgt) : std::numeric_limits<double>::quiet_NaN();
}

BaseCounts& BaseCounts::operator+=(const BaseCounts& o) {
  length += o.length;
  a += o.a;
  c += o.c;
  g += o.g;
  t += o.t;
  n += o.n;
  lower += o.lower;
  other_iupac += o.other_iupac;
  return *this;
}

BaseCounts count_bases(const std::vector<std::string>& inputs, const StatsOptions& options,
                       const StatsCallbacks& callbacks) {
  // With several inputs, one may lack every region (one FASTA a chromosome); some must have one.
  // A caller that reads its inputs one at a time (index_segments) has checked them all and says
  // that the regions may be elsewhere.
  io::ReaderOptions reader_options = options.reader;
  if (!reader_options.regions_elsewhere) {
    reader_options.regions_elsewhere = inputs.size() > 1;
    io::check_inputs(inputs, reader_options);
  }
  BaseCounts total;
  int64_t done = 0;
  io::Chunk chunk;
  std::array<int64_t, 256> hist{};
  for (const std::string& input : inputs) {
    io::SequenceReader reader(input, reader_options);
    while (reader.next(chunk, options.chunk)) {
      if (chunk.begin_of_record) hist.fill(0);
      for (uint8_t b : chunk.tokens) ++hist[b];
      done += int64_t(chunk.tokens.size());
      if (callbacks.on_progress) callbacks.on_progress(done);
      if (chunk.end_of_record) {
        // (a read found through a region is a record of its own, named by its name)
        RecordCounts rc{input, chunk.record, chunk.record_index, fold(hist),
                        io::holds_reads(reader.format()) ? std::string() : reader.region_name()};
        total += rc.counts;
        if (callbacks.on_record) callbacks.on_record(rc);
      }
    }
  }
  return total;
}


}  // namespace mambadna::pipelines
