// `mambadna train`: next-token pretraining with truncated backpropagation through time.
//
// B streams walk disjoint shares of the training sequences (pipelines/train_data.h); each step
// runs L tokens per stream, forward and backward, with the conv and SSM states carried from the
// stream's previous chunk (no gradient through that boundary) and reset at a segment start.
// The loss is the mean next-token cross-entropy (nats) over every position whose next base is
// A/C/G/T (any case), including the first of a chunk (predicted from the carried state): N runs
// and other codes are read as context but not predicted, as score and validation count them. AdamW with linear warm-up
// and cosine decay, global gradient-norm clipping.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/sequence_reader.h"
#include "model/device.h"

namespace mambadna::pipelines {

struct TrainOptions {
  // data
  std::vector<std::string> inputs;
  io::ReaderOptions reader;
  std::vector<std::string> valid_inputs;  // a separate validation set, or
  double holdout = 0.0;                    // the last fraction of each training record
  bool holdout_records = false;            // or of the records, whole (for reads)
  int64_t valid_tokens = 0;                // cap on validation tokens but at the last step (0: all)
  bool rc_augment = false;
  int64_t block = 1 << 20;                 // tokens buffered per stream
  // shape of a step (0: chosen from the training records by resolve_step_shape)
  int64_t streams = 0;  // B
  int64_t chunk = 0;    // L
  bool whole_records = false;  // set by train() (StepShape), saved with the run
  // length
  int64_t steps = 0;           // 0: from tokens
  int64_t tokens = 0;          // total training tokens (used when steps is 0)
  double max_seconds = 0;      // stop (with a checkpoint) after this wall time; 0: no limit
  bool max_seconds_set = false;  // resume: max_seconds replaces the run's own (0 included)
  // optimiser
  double lr = 2e-3, min_lr = 2e-4;
  int64_t warmup = 100;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0;
  uint64_t seed = 1;
  // bookkeeping
  int64_t valid_every = 0;  // steps; 0: only at the end
  int64_t ckpt_every = 0;   // steps; 0: only at the end
  int64_t keep = 3;         // checkpoints kept
  int64_t max_bad_steps = 5;  // consecutive non-finite steps before giving up
  std::string init_model;   // checkpoint to start from (a new run)
  std::string run_dir;      // metrics.tsv, checkpoint-*.h5, model.h5
  bool resume = false;      // continue the run in run_dir
  std::string command_line;
  model::Device device;     // where the passes run (not saved: a run may resume elsewhere)
};

struct StepReport {
  int64_t step = 0, steps = 0, tokens = 0;
  double loss = 0, bits_per_base = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, eta_s = -1;
  double valid_bpb = -1;  // when validated at this step
  bool skipped = false;   // non-finite loss or gradient: the update was not applied
  bool empty = false;     // no A/C/G/T target in the step (an N run): loss and gradient NaN,
                          // no update (the schedule counts the step)
};

struct TrainResult {
  int64_t steps = 0, tokens = 0;
  int64_t steps_planned = 0;  // the run's --steps
  int64_t first_step = 0;     // the step it resumed from (0: a new run)
  double last_valid_bpb = -1;
  bool interrupted = false;   // stopped by `stop` before the last step: a checkpoint, no model.h5
  bool signal_at_end = false; // `stop` came at the last step: its validation was capped or cut
                              // short (NA), the run is complete (checkpoint and model.h5)
  bool time_up = false;       // stopped by max_seconds before the last step: both
  std::string checkpoint;  // the last checkpoint written (stopped before the first step: the
                           // one resumed from, "" for a new run)
};

// Runs (or resumes) training. `stop` is polled after every step and during validation (which
// it cuts short: that step's valid_bpb is NA): when set, the step finishes, a checkpoint is
// written and train() returns with interrupted = true. Set during the set-up (after the call,
// before the first step: a signal while the inputs are indexed), no step is taken:
// interrupted, with the checkpoint resumed from (none for a new run, which leaves no file);
// set already at the call, the first step is taken and checkpointed. A finished run resumed
// returns at once, writing nothing. `notice` (optional)
// gets a line of what the run chose or doubts before its first step (the shape that
// resolve_step_shape picked, a warm-up that outlasts the run).
TrainResult train(const TrainOptions& options, const std::function<void(const StepReport&)>& report,
                  const std::atomic<bool>* stop = nullptr,
                  const std::function<void(const std::string&)>& notice = {});

// The learning rate at a step: linear warm-up to lr, then cosine decay to min_lr at `steps`.
double learning_rate(const TrainOptions& o, int64_t step, int64_t steps);
// A step's figure as metrics.tsv and the console write it: `format` of v, or NA (as R and
// pandas read it) where it is not finite or negative (no figure).
std::string metric_text(double v, const char* format);
// The steps a new run takes: --steps, or --tokens / (B · L) (at least 1).
int64_t planned_steps(const TrainOptions& o);

// A new run's step shape where streams or chunk is 0. L: 2048 (kDefaultChunk); but where 99%
// of the training segments are shorter (reads), the length that holds 99% of them, rounded
// up to a multiple of 8 (at least 16): a chunk a record, each from a zero state, where 2048
// would train on a few percent of every chunk and run padding through the model for the rest.
// B: 8; with an L chosen shorter than 2048, enough streams for B · L ≈ 8 · 2048 tokens a step
// (the default's activation memory and matrix sizes), but no more than there are segments or
// kMaxShortStreams (pipelines/short_records.h: the carried states grow with B). A size that
// is given (non-zero) is kept.
struct Segment;  // pipelines/train_data.h
// Where 99% of the segments fit in a chunk (p99 <= L) and there are at least B of them, the
// streams take whole records in turn (DataStreams' whole records) instead of walking shares of
// the token space.
struct StepShape {
  int64_t streams = 0, chunk = 0;
  int64_t p99 = 0;             // the segment length 99% of the segments are at most
  bool short_records = false;  // L was chosen shorter than the default for them
  bool whole_records = false;  // p99 <= L and B <= segments
};
// The smallest length that at least 99% of the segments do not exceed (0 for none).
int64_t length_p99(const std::vector<Segment>& segments);
constexpr int64_t kDefaultChunk = 2048, kDefaultStreams = 8;
StepShape resolve_step_shape(int64_t streams, int64_t chunk, const std::vector<Segment>& train);

}  // namespace mambadna::pipelines
