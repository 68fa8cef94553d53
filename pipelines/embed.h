// `mambadna embed`: the model's hidden states for regions or records, to HDF5.
//
// A layer's output is the residual stream after that layer (as Hugging Face's MambaModel
// returns hidden_states); layer -1 ("final", the default) is the output of the final norm, the
// input of the LM head. Per-position states, pooled rows (mean, max, last) or bin means are
// written as the model runs, chunk by chunk: memory does not grow with region length.
//
// Regions (-r/-R) of an indexed SAM/BAM/CRAM select its reads that overlap them, each embedded
// whole as a record (as `score -r` reads them). Regions (-r/-R) of indexed FASTAs (input by input) are read through faidx, which also allows a flank (bases
// before the region run through the model for context, not written) and both strands (the
// reverse complement of the region, run from its own right flank, averaged with the forward
// states position by position). With `stranded`, a region on the '-' strand is read as its
// reverse complement alone (its flank on the right, upstream on that strand) and its rows come
// in that reading order, 5' to 3' on the '-' strand. Without regions, every record of the
// inputs is embedded whole, forward only.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/sequence_reader.h"
#include "model/mamba.h"

namespace mambadna::pipelines {

enum class Pool { none, mean, max, last, bin };

struct EmbedOptions {
  std::vector<std::string> inputs;
  io::ReaderOptions reader;     // regions here select region mode; InvalidMode::skip reads as to_n
  std::vector<int64_t> layers{-1};
  Pool pool = Pool::mean;
  int64_t bin = 0;              // K for Pool::bin
  bool both_strands = false;
  bool stranded = false;        // a region on the '-' strand (BED column 6) is read as its reverse complement
  int64_t flank = 0;
  bool f16 = false;             // pooled, binned and per-position data as float16
  int64_t chunk = 4096;
  std::string output;           // HDF5 file
  std::string command_line, model_path;
};

// "none", "mean", "max", "last" or "bin:K"; throws UsageError.
void parse_pool(const std::string& text, Pool& pool, int64_t& bin);
std::string pool_name(Pool pool, int64_t bin);
// "final" for -1, else "layer_<i>".
std::string layer_name(int64_t layer);

struct EmbedSummary {
  int64_t regions = 0, bases = 0;  // rows (regions, records or reads), tokens run
  int64_t reads = 0;               // of the rows, reads of SAM/BAM/CRAM inputs
};

// progress: positions of the regions (or records) embedded so far, flanks and the second
// strand not counted, so that the inputs' known length (io::known_total_length) is the total.
EmbedSummary embed(model::Mamba<float>& model, const EmbedOptions& options,
                   const std::function<void(int64_t)>& progress = {});

}  // namespace mambadna::pipelines
