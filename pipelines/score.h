// `mambadna score`: per-record (or per-region) log-likelihood of sequences under a model, and
// optionally the per-base log-probability, in constant memory whatever the record length.
//
// Position t of a record gets log p(x_t | x_0..x_{t-1}) (natural log) for t >= 1; position 0
// has no context and is not scored (NaN in per-position output). The summary counts only
// positions whose observed base is A, C, G or T (either case): N runs and other IUPAC codes are
// scored per position but left out of the totals.
//
// --strand both (regions or contigs of an indexed FASTA): the reverse complement is scored too,
// so that each base is also predicted from the bases to its right; position t of the reverse
// strand gets log p(comp(x_t) | comp(x_{t+1}), comp(x_{t+2}), ...). Per-position output then
// holds logprob (forward), logprob_rc and logprob_both (their mean where both exist).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "io/sequence_reader.h"
#include "model/mamba.h"

namespace mambadna::pipelines {

struct ScoreOptions {
  std::vector<std::string> inputs;  // sequence files ("-" = stdin)
  io::ReaderOptions reader;
  int64_t chunk = 4096;        // L: tokens per stream per forward pass
  int64_t streams = 8;         // B: records scored side by side
  std::string h5_output;       // "" = none
  std::string bedgraph;        // "" = none
  bool per_position = false;   // per-base log-probs in the HDF5 output
  bool entropy = false;        // also the entropy of each predicted distribution
  bool both_strands = false;   // also score the reverse complement (indexed FASTA input)
  std::string command_line;    // for file attributes
  std::string model_path;
  // By input: a reader short_record_shape sampled an input read once with (standard input, a
  // pipe), which score() reads on from (it gives the sampled chunks again first); else null.
  std::vector<std::shared_ptr<io::SequenceReader>> opened;
  // Called when every record is done and the output files are complete, before they are put
  // in place: the command checks its standard output there, and a throw leaves none of them.
  std::function<void()> before_publish;
};

struct RecordScore {
  std::string input;           // file
  std::string name;            // record name (a region's contig)
  std::string region;          // with -r/-R, FASTA/FASTQ: the region's name (io::region_name);
                               // "" otherwise (reads found through regions: their own name above)
  int64_t index = 0;           // record index within its file
  int64_t region_index = -1;   // with `region`: Region::index, its place in the list given
  int64_t region_begin = -1;   // 0-based start of the region's first base on its contig (or 0)
  std::optional<io::Alignment> read;  // SAM/BAM/CRAM: where the read lies (the HDF5's reads/)
  int64_t length = 0;          // bases in the record (after the tokenizer)
  int64_t scored = 0;          // positions counted in the totals (A/C/G/T, t >= 1)
  double loglik = 0;           // sum of log p over the scored positions (nats)
  int64_t scored_rc = 0;       // --strand both: the reverse strand's scored positions
  double loglik_rc = 0;        //   and their log-likelihood (each base given the bases after it)
  double mean() const { return scored ? loglik / double(scored) : 0.0; }
  double bits_per_base() const;
  double perplexity() const;
  double bits_per_base_rc() const;
  double bits_per_base_both() const;  // over the predictions of both strands
  std::string region_or_dot() const { return region.empty() ? "." : region; }  // as outputs write it
};

// Scores every record of every input; calls `on_record` for each finished record in input order
// and `progress` with the bases done so far. Writes the HDF5 and bedGraph outputs atomically.
// The streams score() runs side by side: opt.streams, or 1 when both strands are scored. (A
// bedGraph, written in record order, and an input read once, standard input or a pipe, run
// them too: a record longer than a chunk runs while the others wait.)
int64_t score_streams(const ScoreOptions& opt);
// True where a record longer than a chunk runs while the other streams wait: a bedGraph (written
// in record order) or an input that can be read only once.
bool score_holds(const ScoreOptions& opt);
// How many records the inputs hold, counted up to `enough`: from the regions (at most one a
// region and file), an index, or for a file without one by reading up to its first 64 MB (a
// genome's first records; reads reach `enough` at once); -1 where that does not tell (standard
// input, a longer first stretch).
int64_t records_known(const ScoreOptions& opt, int64_t enough);

// A step shape for short records, where score chooses -L and -b: when 99% of the first records
// of every input (up to kShapeSample of each) are shorter than rows / streams (reads), a chunk
// a record (their length rounded up to 8, at least 16) and rows / L streams (at least
// opt.streams, at most 512 and, where the samples are the whole inputs, their record count):
// the same rows per step, a read in 40 positions instead of 256. chunk 0 where it does not
// apply: long records (an input whose first record is longer than the chunk stops the
// sampling). An input that can be read only once (standard input, a pipe) is sampled through
// the reader score() then reads it with, left in opt.opened: it keeps what the sampling read
// (up to kShapeKeptBases; past that the question ends with chunk 0) and gives it again.
struct ScoreShape {
  int64_t streams = 0, chunk = 0;
  int64_t p99 = 0, sampled = 0;  // the length 99% of the sampled records are at most; records
};
constexpr int64_t kShapeSample = 4096;
constexpr int64_t kShapeKeptBases = int64_t(16) << 20;
ScoreShape short_record_shape(ScoreOptions& opt, int64_t rows);

std::vector<RecordScore> score(model::Mamba<float>& model, const ScoreOptions& opt,
                               const std::function<void(const RecordScore&)>& on_record,
                               const std::function<void(int64_t)>& progress = {});

// The TSV header and one line per record, as written on stdout. both_strands adds the reverse
// strand's columns (loglik_rc, bits_per_base_rc, bits_per_base_both); regions (scoring with
// -r/-R) a last column, region (RecordScore::region_or_dot).
void write_score_header(std::ostream& out, bool both_strands = false, bool regions = false);
void write_score_line(std::ostream& out, const RecordScore& r, bool both_strands = false,
                      bool regions = false);

}  // namespace mambadna::pipelines
