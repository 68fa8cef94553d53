// Base counts of sequence files: streams every input through io::SequenceReader and counts the
// tokens of each record and of all records together. Counts are of tokens, so they follow the
// tokenizer options: with CaseMode::upper (the default) `lower` is always 0, and with
// InvalidMode::to_n replaced characters count as N.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/sequence_reader.h"

namespace mambadna::pipelines {

struct BaseCounts {
  int64_t length = 0;       // tokens
  int64_t a = 0, c = 0, g = 0, t = 0, n = 0;  // either case
  int64_t lower = 0;        // lower-case tokens (soft-masked bases under CaseMode::keep)
  int64_t other_iupac = 0;  // U R Y K M S W B D H V, either case

  // (G + C) / (A + C + G + T); NaN when the record has none of them.
  double gc() const;
  BaseCounts& operator+=(const BaseCounts& o);
};

struct RecordCounts {
  std::string input;     // the file it came from
  std::string record;    // record name (the contig for a region)
  int64_t record_index;  // within its input
  BaseCounts counts;
  std::string region;    // a region of a FASTA/FASTQ: its name (SequenceReader::region_name)
};

struct StatsOptions {
  io::ReaderOptions reader;
  size_t chunk = 65536;  // L: tokens per chunk read
};

struct StatsCallbacks {
  std::function<void(const RecordCounts&)> on_record;  // after each record (may be empty)
  std::function<void(int64_t bases)> on_progress;      // tokens so far, after each chunk (may be empty)
};

// Counts every record of every input in order; returns the totals. Throws what the reader throws.
BaseCounts count_bases(const std::vector<std::string>& inputs, const StatsOptions& options,
                       const StatsCallbacks& callbacks = {});

}  // namespace mambadna::pipelines
