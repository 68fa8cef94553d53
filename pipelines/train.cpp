#include "pipelines/train.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "io/error.h"
#include "io/h5.h"
#include "io/output_file.h"
#include "io/region.h"
#include "io/temp_files.h"
#include "model/checkpoint.h"
#include "model/mamba.h"
#include "model/ops.h"
#include "pipelines/short_records.h"
#include "pipelines/train_data.h"

namespace mambadna::pipelines {

namespace fs = std::filesystem;

int64_t planned_steps(const TrainOptions& o) {
  return o.steps > 0 ? o.steps : std::max<int64_t>(1, o.tokens / std::max<int64_t>(1, o.streams * o.chunk));
}

int64_t length_p99(const std::vector<Segment>& segments) {
  std::vector<int64_t> len;
  len.reserve(segments.size());
  for (const Segment& g : segments) len.push_back(g.length());
  return percentile99(std::move(len));
}

StepShape resolve_step_shape(int64_t streams, int64_t chunk, const std::vector<Segment>& train) {
  StepShape s;
  s.p99 = length_p99(train);
  s.short_records = chunk == 0 && !train.empty() && s.p99 < kDefaultChunk;
  s.chunk = chunk > 0              ? chunk
            : s.short_records      ? chunk_for_records(s.p99)
                                   : kDefaultChunk;
  if (streams > 0) {
    s.streams = streams;
  } else if (s.short_records) {
    const int64_t fill = (kDefaultStreams * kDefaultChunk + s.chunk / 2) / s.chunk;
    s.streams = std::max<int64_t>(1, std::min({fill, kMaxShortStreams, int64_t(train.size())}));
  } else {
    s.streams = kDefaultStreams;
  }
  s.whole_records = !train.empty() && s.p99 <= s.chunk && int64_t(train.size()) >= s.streams;
  return s;
}

// step is 0-based: one step takes lr (the warm-up's last, or step 0 without one) and the
// run's last (steps − 1) min_lr, each step between a lower rate than the one before (the decay
// started again from lr after the warm-up and stopped a step short of min_lr).
std::string metric_text(double v, const char* format) {
  char b[64];  // (a finite 1e30 in %.4f is 36 characters)
  if (!std::isfinite(v) || v < 0) return "NA";
  std::snprintf(b, sizeof b, format, v);
  return b;
}

double learning_rate(const TrainOptions& o, int64_t step, int64_t steps) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  const int64_t peak = o.warmup > 0 ? o.warmup - 1 : 0;  // the step at lr
  const double span = double(std::max<int64_t>(1, steps - 1 - peak));
  const double progress = std::clamp(double(step - peak) / span, 0.0, 1.0);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

// metrics.tsv's header, and the fields of each row.
constexpr const char* kMetricsHeader = "#step\ttokens\ttrain_loss\ttrain_bpb\tvalid_bpb\tlr\tgrad_norm\ttokens_per_s";
constexpr int64_t kMetricsColumns = 8;


std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(line);
  return v;
}

// The numeric options a run keeps in its checkpoints, so that --resume needs nothing else: one
// table for saving and loading.
struct RealOption {
  const char* name;
  double TrainOptions::*field;
};
struct IntOption {
  const char* name;
  int64_t TrainOptions::*field;
};
constexpr RealOption kRealOptions[] = {
    {"holdout", &TrainOptions::holdout}, {"max_seconds", &TrainOptions::max_seconds},
    {"lr", &TrainOptions::lr},           {"min_lr", &TrainOptions::min_lr},
    {"beta1", &TrainOptions::beta1},     {"beta2", &TrainOptions::beta2},
    {"eps", &TrainOptions::eps},         {"weight_decay", &TrainOptions::weight_decay},
    {"clip", &TrainOptions::clip},
};
constexpr IntOption kIntOptions[] = {
    {"valid_tokens", &TrainOptions::valid_tokens}, {"block", &TrainOptions::block},
    {"streams", &TrainOptions::streams},           {"chunk", &TrainOptions::chunk},
    {"warmup", &TrainOptions::warmup},             {"valid_every", &TrainOptions::valid_every},
    {"ckpt_every", &TrainOptions::ckpt_every},     {"keep", &TrainOptions::keep},
};

void save_options(io::H5File& f, const TrainOptions& o, int64_t steps) {
  const std::string g = "/train";
  for (const auto& r : kRealOptions) f.set_attr(g, r.name, o.*r.field);
  for (const auto& i : kIntOptions) f.set_attr(g, i.name, o.*i.field);
  f.set_attr(g, "steps", steps);
  f.set_attr(g, "seed", int64_t(o.seed));
  f.set_attr(g, "rc_augment", int64_t(o.rc_augment));
  f.set_attr(g, "holdout_records", int64_t(o.holdout_records));
  f.set_attr(g, "whole_records", int64_t(o.whole_records));
  f.set_attr(g, "inputs", join(o.inputs, "\n"));
  f.set_attr(g, "valid_inputs", join(o.valid_inputs, "\n"));
  // Where the run directory was: inputs found beside it there are found beside it again when
  // the project moves (--resume on another node, a renamed directory).
  f.set_attr(g, "run_dir", fs::absolute(o.run_dir).lexically_normal().string());
  std::vector<std::string> regions;
  for (auto& r : o.reader.regions)
    regions.push_back(r.contig + "\t" + std::to_string(r.begin) + "\t" + std::to_string(r.end));
  f.set_attr(g, "regions", join(regions, "\n"));
  f.set_attr(g, "reference", o.reader.reference);
  f.set_attr(g, "invalid", std::string(o.reader.tok.invalid == io::InvalidMode::error ? "error"
                                       : o.reader.tok.invalid == io::InvalidMode::skip ? "skip" : "N"));
  f.set_attr(g, "read_filter_mask", int64_t(o.reader.filter.flag_mask()));
  f.set_attr(g, "as_sequenced", int64_t(o.reader.as_sequenced));
}

void load_options(const io::H5File& f, TrainOptions& o, int64_t& steps) {
  const std::string g = "/train";
  for (const auto& r : kRealOptions) o.*r.field = f.attr_f64(g, r.name);
  for (const auto& i : kIntOptions) o.*i.field = f.attr_i64(g, i.name);
  steps = f.attr_i64(g, "steps");
  o.seed = uint64_t(f.attr_i64(g, "seed"));
  o.rc_augment = f.attr_i64(g, "rc_augment") != 0;
  o.holdout_records = f.has_attr(g, "holdout_records") && f.attr_i64(g, "holdout_records") != 0;
  o.whole_records = f.has_attr(g, "whole_records") && f.attr_i64(g, "whole_records") != 0;
  o.inputs = split_lines(f.attr_str(g, "inputs"));
  o.valid_inputs = split_lines(f.attr_str(g, "valid_inputs"));
  o.reader.regions.clear();
  for (auto& line : split_lines(f.attr_str(g, "regions"))) {
    std::istringstream in(line);
    io::Region r;
    std::getline(in, r.contig, '\t');
    in >> r.begin >> r.end;
    o.reader.regions.push_back(r);
  }
  o.reader.reference = f.attr_str(g, "reference");
  o.reader.tok.invalid = io::parse_invalid_mode(f.attr_str(g, "invalid"));
  const auto mask = uint16_t(f.attr_i64(g, "read_filter_mask"));
  o.reader.filter.skip_unmapped = mask & 0x4;
  o.reader.filter.skip_secondary = mask & 0x100;
  o.reader.filter.skip_qcfail = mask & 0x200;
  o.reader.filter.skip_duplicate = mask & 0x400;
  o.reader.filter.skip_supplementary = mask & 0x800;
  o.reader.as_sequenced = f.has_attr(g, "as_sequenced") && f.attr_i64(g, "as_sequenced") != 0;
}

// The run's own checkpoints, checkpoint-<step>.h5 with the step in 8 digits or more, by step:
// a copy put beside them (checkpoint-best.h5, checkpoint-00000005-keep.h5) is neither resumed
// from nor counted or removed by --keep.
std::vector<fs::path> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, fs::path>> v;
  if (!fs::is_directory(dir)) return {};
  constexpr std::string_view head = "checkpoint-", tail = ".h5";
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() < head.size() + 8 + tail.size() || n.compare(0, head.size(), head) != 0 ||
        n.compare(n.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    const std::string_view digits = std::string_view(n).substr(head.size(), n.size() - head.size() - tail.size());
    int64_t step = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
    if (ec != std::errc() || end != digits.data() + digits.size() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    v.emplace_back(step, e.path());
  }
  std::sort(v.begin(), v.end());
  std::vector<fs::path> paths;
  for (auto& [step, path] : v) paths.push_back(std::move(path));
  return paths;
}

// Bits per base of the model over a validation set. Records of up to a piece (reads, of any
// length against L; a genome's tail up to 65,536 bases) are scored whole, each from a zero
// state, taken in turn by B streams (a pass over the file, however many streams). Longer ones
// (genomes) are scored in kValidShares shares of the token space, each from a zero state,
// min(B, kValidShares) side by side. Neither depends on -b (shares as many as the streams, and
// the choice between the two by -b, moved the figure by ~1e-4). The cap ends the takes (whole)
// or each share.
constexpr int64_t kValidShares = 8;
double evaluate(model::Mamba<float>& m, const TrainOptions& o, const std::vector<std::string>& inputs,
                const io::ReaderOptions& reader, const std::vector<Segment>& segments, int64_t cap,
                const std::atomic<bool>* stop) {
  const int64_t total = total_length(segments);
  if (total < 2) return NAN;
  const int64_t B = std::max<int64_t>(1, std::min<int64_t>(o.streams, total / 2));
  const int64_t L = o.chunk;
  const bool whole = length_p99(segments) <= DataStreams::kPieceTokens;
  // Streams of DataStreams (each a share, or a taker of whole records), and how many run side by
  // side: all of them at once when whole, else in rounds.
  // (Whole records: no more streams than records. A read-shaped step, 410 streams of 40, ran one
  // genome tail on one stream beside 409 empty ones: 50x its work.)
  const int64_t shares = whole ? std::min(B, std::max<int64_t>(1, int64_t(segments.size())))
                               : std::max<int64_t>(1, std::min<int64_t>(kValidShares, total / 2));
  const int64_t side = std::min(B, shares);
  DataStreams ds(inputs, reader, segments, shares, std::min<int64_t>(o.block, total), false, o.seed, whole);
  std::vector<int64_t> left(static_cast<size_t>(shares));
  for (int64_t s = 0; s < shares; ++s) {
    left[size_t(s)] = total * (s + 1) / shares - total * s / shares;
    if (cap > 0) left[size_t(s)] = std::min(left[size_t(s)], std::max<int64_t>(1, cap / shares));
  }
  int64_t handed = 0;  // whole records: tokens handed out
  auto more = [&](int64_t s) {
    if (!whole) return left[size_t(s)] > 0;
    return ds.in_record(s) || (ds.taken() < ds.pieces() && (cap <= 0 || handed < cap));
  };
  model::Activations<float> acts;
  std::vector<int32_t> tok(size_t(side * L)), tgt(size_t(side * L));  // (side, L)
  std::vector<float> lp(size_t(side * L));                               // (side, L)
  StreamChunk sc;
  double sum = 0;
  int64_t count = 0;
  for (int64_t first = 0; first < shares; first += side) {  // a round: streams first .. first + side − 1
    model::State<float> state(m.config(), side);             // zero
    for (;;) {
      if (stop && stop->load()) return NAN;  // a signal: its checkpoint must not wait for this
      bool any = false;
      for (int64_t j = 0; j < side; ++j) {
        const int64_t s = first + j;
        std::fill_n(tok.begin() + j * L, L, int32_t('N'));
        std::fill_n(tgt.begin() + j * L, L, -1);
        if (s >= shares || !more(s)) continue;
        any = true;
        ds.next(s, L, sc);
        if (sc.reset) state.reset_stream(j);
        const int64_t n = whole ? sc.n : std::min(sc.n, left[size_t(s)]);
        std::copy_n(sc.tokens.begin(), L, tok.begin() + j * L);
        std::copy_n(sc.targets.begin(), n, tgt.begin() + j * L);
        left[size_t(s)] -= sc.consumed;  // a last base skipped as an input counts too
        handed += sc.consumed;
      }
      if (!any) break;
      m.score(tok.data(), tgt.data(), side, L, state, acts, lp.data());
      for (int64_t i = 0; i < side * L; ++i)
        if (tgt[size_t(i)] >= 0 && io::is_acgt(tgt[size_t(i)])) sum += double(lp[size_t(i)]), ++count;
    }
  }
  return count ? -sum / double(count) / std::log(2.0) : NAN;
}

// One training run in a run directory at a time: a second (a job started twice, two jobs given
// one -o) would write over the first's checkpoints and metrics. The lock is the directory's own
// (flock), so nothing is left behind; where the file system has no locks it is not taken.
class RunDirLock {
 public:
  RunDirLock() = default;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;
  ~RunDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  void take(const std::string& dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
      throw UsageError(dir + ": another training run is using this directory");
  }
  bool taken() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A resumed run's inputs (absolute paths) that are not there: where the run directory moved
// from `old_run_dir` to o.run_dir, each at the same place relative to it (the project moved as
// a whole). The sizes saved with the run check that they are the same files.
void find_moved_inputs(TrainOptions& o, const std::string& old_run_dir,
                       const std::function<void(const std::string&)>& notice) {
  const fs::path now = fs::absolute(o.run_dir).lexically_normal();
  if (now == fs::path(old_run_dir)) return;
  auto find = [&](std::string& path) {
    std::error_code ec;
    if (path.empty() || fs::exists(path, ec)) return;
    const fs::path moved = (now / fs::path(path).lexically_relative(old_run_dir)).lexically_normal();
    if (!fs::exists(moved, ec)) return;  // the reader says what is missing
    if (notice) notice(path + " is not there; the run directory moved from " + old_run_dir + ": reading " + moved.string());
    path = moved.string();
  };
  for (auto* list : {&o.inputs, &o.valid_inputs})
    for (std::string& in : *list) find(in);
  find(o.reader.reference);
}

// Numbers a new run cannot use, refused before anything is read or created; the message names
// the option and the value given.
// The options' numbers in their ranges; with `new_run`, also the rules a new run's command line
// must follow (a resumed run keeps what its first version accepted: --min-lr above --lr, once).
void check_numbers(const TrainOptions& o, bool new_run = true) {
  const auto text = number_text;
  auto need = [&](bool ok, const char* option, double v, const char* what) {
    if (!ok) throw UsageError("train: " + std::string(option) + " " + text(v) + ": " + what);
  };
  need(o.steps >= 0, "--steps", double(o.steps), "give a count (or 0 with --tokens)");
  need(o.tokens >= 0, "--tokens", double(o.tokens), "give a count (or 0 with --steps)");
  need(o.lr >= 0 && std::isfinite(o.lr), "--lr", o.lr, "give a rate of 0 or more");
  need(o.min_lr >= 0 && std::isfinite(o.min_lr), "--min-lr", o.min_lr, "give a rate of 0 or more");
  if (new_run && o.min_lr > o.lr)  // the decay would climb past the peak
    throw UsageError("train: --min-lr " + text(o.min_lr) + " is above --lr " + text(o.lr) +
                     ": the rate decays from --lr to --min-lr; give --min-lr at most --lr (the default "
                     "is --lr/10)");
  need(o.warmup >= 0, "--warmup", double(o.warmup), "give 0 or more steps");
  need(o.beta1 >= 0 && o.beta1 < 1, "--beta1", o.beta1, "give a value in [0, 1)");
  need(o.beta2 >= 0 && o.beta2 < 1, "--beta2", o.beta2, "give a value in [0, 1)");
  need(o.eps > 0 && std::isfinite(o.eps), "--eps", o.eps, "give a value above 0");
  need(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "--weight-decay", o.weight_decay,
       "give 0 or more");
  need(o.clip >= 0 && !std::isnan(o.clip), "--clip", o.clip, "give 0 (off) or more");
  need(o.holdout >= 0 && o.holdout < 1, "--holdout", o.holdout, "give a fraction in [0, 1)");
  need(o.valid_tokens >= 0, "--valid-tokens", double(o.valid_tokens), "give 0 (all) or more");
  need(o.block >= 2, "--block", double(o.block), "give 2 or more tokens (an input and its target)");
  need(o.valid_every >= 0, "--valid-every", double(o.valid_every), "give 0 (at the end) or more steps");
  need(o.ckpt_every >= 0, "--ckpt-every", double(o.ckpt_every), "give 0 (at the end) or more steps");
}

}  // namespace

TrainResult train(const TrainOptions& options, const std::function<void(const StepReport&)>& report,
                  const std::atomic<bool>* stop, const std::function<void(const std::string&)>& notice) {
  TrainOptions o = options;
  // A stop asked before the call takes a step and its checkpoint (as one at the first step's
  // end does); one that comes during the set-up takes none (below).
  const bool stop_at_call = stop && stop->load();
  if (o.run_dir.empty()) throw UsageError("train: no run directory (-o)");
  // Taken before anything is read from the directory (what a second run finds there, no
  // checkpoint yet, is the first's); a directory made below is locked once made.
  RunDirLock lock;
  if (fs::is_directory(o.run_dir)) lock.take(o.run_dir);
  if (!(o.max_seconds >= 0))
    throw UsageError("train: --max-time " + number_text(o.max_seconds) + ": give 0 (no limit) or more seconds");
  int64_t steps = 0, step = 0, tokens = 0;
  int64_t updates = 0;  // AdamW updates made: its bias corrections' t (steps with no update not counted)
  model::Checkpoint ck;
  std::vector<float> m1, m2;  // AdamW moments, flat like the parameters
  std::vector<float> state_conv, state_ssm;
  std::vector<int64_t> positions;
  std::vector<int64_t> sizes_then;  // resumed: (records, bases) of each input when the run began
  std::string resumed_from;         // resumed: the checkpoint
  // A run stopped (killed) before its first checkpoint leaves its metrics.tsv alone: nothing to
  // resume, and a new run would replace that file.
  const std::string stopped_early =
      fs::exists(fs::path(o.run_dir) / "metrics.tsv") && !fs::exists(fs::path(o.run_dir) / "model.h5")
          ? " (its metrics.tsv is of a run stopped before its first checkpoint: remove " + o.run_dir +
                " to start that run again)"
          : "";

  if (o.resume) {
    // A checkpoint being written when the run was killed (SIGKILL, the machine) left its
    // temporary, as big as a checkpoint.
    for (const std::string& t : io::stale_temp_files(o.run_dir)) {
      std::error_code ec;
      if (fs::remove(t, ec) && notice) notice("removed " + t + ", a file being written when the run was killed");
    }
    auto cks = list_checkpoints(o.run_dir);
    if (cks.empty()) throw InputError(o.run_dir + ": no checkpoint-*.h5 to resume from" + stopped_early);
    const std::string path = cks.back().string();
    resumed_from = path;
    ck = model::load_checkpoint(path);
    io::H5File f = io::H5File::open_read(path);
    if (!f.exists("train"))
      throw InputError(path + ": not a training checkpoint (no train/ group)");
    for (const char* d : {"train/exp_avg", "train/exp_avg_sq"})
      if (!f.exists(d)) throw InputError(path + ": a training checkpoint without " + d);
    // The run's own command line, with the resuming one after it (once: a second resume
    // replaces the first's).
    std::string cmd = o.command_line;
    if (f.has_attr("/", "command_line")) {
      std::string first = f.attr_str("/", "command_line");
      const auto cut = first.find(" [resumed by: ");
      if (cut != std::string::npos) first.resize(cut);
      cmd = first + " [resumed by: " + cmd + "]";
    }
    const std::string dir = o.run_dir;
    const double max_seconds = o.max_seconds;
    const bool max_seconds_set = o.max_seconds_set;
    load_options(f, o, steps);
    o.command_line = cmd, o.run_dir = dir, o.resume = true;
    if (f.has_attr("/train", "run_dir"))
      find_moved_inputs(o, f.attr_str("/train", "run_dir"), notice);
    if (max_seconds_set) o.max_seconds = max_seconds;
    if (notice)
      notice("resuming from " + path +
             (o.max_seconds > 0 && !max_seconds_set
                  ? "; the run's --max-time " + number_text(o.max_seconds) + " applies again (--max-time 0 lifts it)"
                  : ""));
    const int64_t P = ck.table.total;
    m1 = f.read_f32("train/exp_avg", {P});
    m2 = f.read_f32("train/exp_avg_sq", {P});
    step = f.attr_i64("/train", "step");
    tokens = f.attr_i64("/train", "tokens");
    // (checkpoints of version 0.1.0 before it counted every step)
    updates = f.has_attr("/train", "updates") ? f.attr_i64("/train", "updates") : step;
    const auto& c = ck.config;
    state_conv = f.read_f32("train/state/conv", {c.n_layer, o.streams, c.d_inner(), c.d_conv - 1});
    state_ssm = f.read_f32("train/state/ssm", {c.n_layer, o.streams, c.d_inner(), c.d_state});
    positions = o.whole_records ? f.read_i64("train/data_records", {2 * o.streams + 1})
                                : f.read_i64("train/data_consumed", {o.streams});
    if (f.exists("train/input_sizes"))  // (checkpoints of version 0.1.0 before it have none)
      sizes_then = f.read_i64("train/input_sizes", {int64_t(o.inputs.size()), 2});
    // Its numbers, checked before anything trusts them: a corrupt or edited checkpoint could
    // ask for a negative learning rate, or for a replay of its data positions that never ends.
    const auto corrupt = [&](const std::string& what) {
      return InputError(path + ": " + what + ": not a checkpoint as train writes them (corrupt or edited?)");
    };
    // (No run reaches 2^32 steps; -b and -L are at most 2^20 and 2^26: the bound below fits.)
    if (step < 0 || step > (int64_t(1) << 32) || tokens < 0 || updates < 0 || updates > step)
      throw corrupt("/train step " + std::to_string(step) + ", updates " + std::to_string(updates) +
                    ", tokens " + std::to_string(tokens));
    try {
      check_numbers(o, false);
      if (o.streams < 1 || o.streams > (int64_t(1) << 20) || o.chunk < 1 || o.chunk > (int64_t(1) << 26))
        throw UsageError("-b " + std::to_string(o.streams) + " -L " + std::to_string(o.chunk));
    } catch (const UsageError& e) {
      throw corrupt(std::string("its options: ") + e.what());
    }
    if (steps > 0 && step > steps)  // (step == steps: a finished run, nothing to do)
      throw corrupt("/train step " + std::to_string(step) + " past the run's " + std::to_string(steps) + " steps");
    // AdamW's moments: a NaN there turns the weights NaN at the first update (finite loss).
    for (size_t i = 0; i < m1.size(); ++i)
      if (!std::isfinite(m1[i]) || !std::isfinite(m2[i]) || m2[i] < 0)
        throw corrupt(std::string(!std::isfinite(m1[i]) ? "train/exp_avg" : "train/exp_avg_sq") + "[" +
                      std::to_string(i) + "] = " + number_text(!std::isfinite(m1[i]) ? m1[i] : m2[i]));
    // The carried states: a finite step leaves them finite (no checkpoint is written between
    // non-finite steps; a step with nothing to predict carries states its forward pass made
    // from finite ones), and one that is not would turn the run's losses NaN from its start.
    for (const auto* st : {&state_conv, &state_ssm})
      for (size_t i = 0; i < st->size(); ++i)
        if (!std::isfinite((*st)[i]))
          throw corrupt(std::string(st == &state_conv ? "train/state/conv" : "train/state/ssm") + "[" +
                        std::to_string(i) + "] = " + number_text((*st)[i]));
    // A stream moves past at most a chunk and a segment's lone last base a step (whole records:
    // a record a stream, and an offset in it); twice that is a bound no run reaches.
    const int64_t most = 2 * (step + 1) * (o.chunk + 1 + (o.whole_records ? o.streams : 0));
    for (size_t s = 0; s < positions.size(); ++s)
      if (positions[s] < -1 || positions[s] > most)
        throw corrupt("train/" + std::string(o.whole_records ? "data_records" : "data_consumed") + "[" +
                      std::to_string(s) + "] = " + std::to_string(positions[s]) + " (at step " +
                      std::to_string(step) + " it is at most " + std::to_string(most) + ")");
  } else {
    if (o.init_model.empty()) throw UsageError("train: no initial model (-m) and no --resume");
    check_numbers(o);
    if (o.steps <= 0 && o.tokens <= 0)
      throw UsageError(std::string("train: give --steps or --tokens") +
                       (o.max_seconds > 0 ? " (the learning-rate schedule runs to them; --max-time stops a run "
                                            "before its end)"
                                          : ""));
    if (o.steps > 0 && o.tokens > 0) throw UsageError("train: give --steps or --tokens, not both");
    if (o.holdout > 0 && !o.valid_inputs.empty())
      throw UsageError("train: give --holdout or --valid, not both (--holdout would drop the tails from training)");
    if (o.holdout_records && o.holdout <= 0) throw UsageError("train: --holdout-records needs --holdout");
    if (o.keep < 1) throw UsageError("train: --keep " + std::to_string(o.keep) + ": keep at least 1 checkpoint");
    if (o.run_dir == "-")
      throw UsageError("train: -o -: a run is a directory (checkpoints, metrics, model), not standard output");
    for (const auto* list : {&o.inputs, &o.valid_inputs})
      for (const std::string& in : *list) {
        std::error_code ec;
        const fs::file_status st = fs::status(in, ec);  // a missing file: the reader says so
        if (fs::is_directory(st)) throw InputError(in + ": cannot read: is a directory");
        if (!io::rereadable(in))
          throw UsageError("train: " + in + ": inputs are read more than once (indexed, then streamed " +
                           "again each pass): give files, not '-' or a pipe");
      }
    // Absolute paths, so that --resume works from any directory.
    for (auto* list : {&o.inputs, &o.valid_inputs})
      for (std::string& in : *list) in = fs::absolute(in).lexically_normal().string();
    for (size_t i = 0; i < o.inputs.size() && notice; ++i)
      for (size_t j = 0; j < i; ++j) {
        std::error_code ec;
        if (o.inputs[i] == o.inputs[j] || fs::equivalent(o.inputs[i], o.inputs[j], ec)) {
          notice("warning: " + o.inputs[i] + " is given twice: its records are trained on twice as often");
          break;
        }
      }
    if (!o.reader.reference.empty())
      o.reader.reference = fs::absolute(o.reader.reference).lexically_normal().string();
    if (!list_checkpoints(o.run_dir).empty())
      throw UsageError(o.run_dir + ": already holds checkpoints; use --resume to continue that run");
    // A new run writes metrics.tsv and model.h5 there: it must not replace another run's (or
    // its own initial model, given as <dir>/model.h5).
    for (const char* name : {"model.h5", "metrics.tsv"})
      if (fs::exists(fs::path(o.run_dir) / name))
        throw UsageError(o.run_dir + ": already holds " + name +
                         (stopped_early.empty() ? " (another run's, or this run's -m); give a new directory with -o"
                                                : stopped_early));
    ck = model::load_checkpoint(o.init_model);
    m1.assign(ck.params.size(), 0.0f);
    m2.assign(ck.params.size(), 0.0f);
    if (o.inputs.empty()) throw UsageError("train: no input");
    if (o.streams < 0) throw UsageError("train: -b " + std::to_string(o.streams) + ": give at least 1, or 0 to choose");
    if (o.chunk < 0) throw UsageError("train: -L " + std::to_string(o.chunk) + ": give at least 1, or 0 to choose");
  }
  // A finished run resumed: nothing to do, and nothing rewritten (its model.h5 and metrics.tsv
  // stay as the run left them); where model.h5 has gone, the run below writes it again.
  if (o.resume && step >= steps && fs::exists(fs::path(o.run_dir) / "model.h5")) {
    TrainResult done;
    done.first_step = done.steps = step, done.steps_planned = steps, done.tokens = tokens;
    done.checkpoint = resumed_from;
    return done;
  }
  o.reader.tok.case_mode = io::parse_case_mode(ck.config.tokenizer_case);
  // With several inputs, one may lack every region (one FASTA a chromosome); some must have one.
  o.reader.regions_elsewhere = o.inputs.size() > 1;
  io::check_inputs(o.inputs, o.reader);
  // A run directory made here goes again if the run fails before writing anything into it
  // (unreadable data, say).
  struct RemoveIfEmpty {
    std::string dir;
    ~RemoveIfEmpty() {
      std::error_code ec;
      if (!dir.empty() && fs::is_empty(dir, ec) && !ec) fs::remove(dir, ec);
    }
  } made;
  {
    std::error_code ec;
    const bool existed = fs::exists(o.run_dir, ec);
    fs::create_directories(o.run_dir, ec);
    if (ec || !fs::is_directory(o.run_dir))
      throw InputError(o.run_dir + ": cannot create the run directory" + (ec ? ": " + ec.message() : std::string()));
    if (!existed) made.dir = o.run_dir;
  }
  if (!lock.taken()) lock.take(o.run_dir);  // the directory is new: now it can be locked

  // Data: training segments, and validation from a held-out tail or separate inputs.
  int64_t acgt = 0;
  std::vector<Segment> all = index_segments(o.inputs, o.reader, &acgt), train_segs, valid_segs;
  if (!all.empty() && acgt == 0)  // all N (an assembly gap), or codes the tokenizer kept
    throw InputError(join(o.inputs, ", ") + ": no A, C, G or T base to predict (" +
                     std::to_string(total_length(all)) + " bases, none of them)");
  // (records, bases) of each input: a resumed run reads them at the positions it saved.
  std::vector<int64_t> sizes(2 * o.inputs.size(), 0);
  for (const Segment& g : all) sizes[2 * g.input] += 1, sizes[2 * g.input + 1] += g.length();
  for (size_t i = 0; i < o.inputs.size() && !sizes_then.empty(); ++i)
    if (sizes[2 * i] != sizes_then[2 * i] || sizes[2 * i + 1] != sizes_then[2 * i + 1])
      throw InputError(o.inputs[i] + ": changed since the run began (records " + std::to_string(sizes_then[2 * i]) +
                       ", bases " + std::to_string(sizes_then[2 * i + 1]) + " then; records " +
                       std::to_string(sizes[2 * i]) + ", bases " + std::to_string(sizes[2 * i + 1]) +
                       " now): the checkpoint's data positions are in the old file; start a new run");
  split_holdout(all, o.holdout, train_segs, valid_segs, o.holdout_records);
  if (o.holdout > 0 && train_segs.empty())
    throw UsageError("train: --holdout " + number_text(o.holdout) + " leaves no training data");
  if (!o.resume && notice && o.holdout > 0 && !o.holdout_records && !valid_segs.empty()) {
    // Over every record, those too short to hold out a base included (a few ultra-long reads
    // must not hide that most records hold out a base or two, or none).
    std::vector<int64_t> tails;
    for (const Segment& s : all) tails.push_back(int64_t(double(s.length()) * o.holdout));
    if (const int64_t p99 = percentile99(tails); p99 < 64)  // reads: a few bases each
      notice("warning: --holdout " + number_text(o.holdout) + " holds out each record's last " +
             number_text(100 * o.holdout) + "%: on these records at most " + std::to_string(p99) +
             (p99 == 1 ? " base" : " bases") + " each (99%), scored from a zero state; --holdout-records holds out whole records");
  }
  std::vector<std::string> valid_inputs = o.inputs;
  io::ReaderOptions valid_reader = o.reader;  // a separate set is read whole, without the regions
  if (!o.valid_inputs.empty()) {
    valid_inputs = o.valid_inputs;
    valid_reader.regions.clear();
    int64_t valid_acgt = 0;
    valid_segs = index_segments(valid_inputs, valid_reader, &valid_acgt);
    int64_t targets = 0;  // a validation set with nothing to predict gives no figure at all
    for (const Segment& g : valid_segs) targets += std::max<int64_t>(0, g.length() - 1);
    if (targets == 0) {
      throw InputError(join(valid_inputs, ", ") +
                       ": --valid: no record has two bases (nothing to predict)");
    }
    if (valid_acgt == 0)
      throw InputError(join(valid_inputs, ", ") + ": --valid: no A, C, G or T base (nothing to predict)");
  } else if (o.holdout > 0 && notice && total_length(valid_segs) < 2) {
    notice("warning: --holdout " + number_text(o.holdout) + " holds out " +
           (o.holdout_records ? std::to_string(valid_segs.size()) + " of the " + std::to_string(all.size()) + " records"
                              : std::to_string(total_length(valid_segs)) + " bases") +
           ": nothing to validate on (valid_bpb NA); hold out more");
  }
  {  // a record of one base has nothing to predict: a run on nothing but such is a mistake
    int64_t targets = 0;
    for (const Segment& g : train_segs) targets += std::max<int64_t>(0, g.length() - 1);
    if (!train_segs.empty() && targets == 0) {
      throw InputError(join(o.inputs, ", ") +
                       ": no training record has two bases (nothing to predict)");
    }
  }
  if (!o.resume) {  // a resumed run keeps the shape it chose (saved with its options)
    const StepShape shape = resolve_step_shape(o.streams, o.chunk, train_segs);
    if (notice && shape.short_records)
      notice("step shape -b " + std::to_string(shape.streams) + " -L " + std::to_string(shape.chunk) +
             ": 99% of the " + std::to_string(train_segs.size()) + " training records are at most " +
             std::to_string(shape.p99) + " bases long, a chunk each (give -L to choose)");
    if (notice && o.chunk == 0 && !shape.short_records) {
      // Records longer than a chunk run over several, the state carried; each one's last chunk
      // is padded (a record of k·L + 1 bases takes k chunks: its last base is a target only).
      double targets = 0, slots = 0;
      for (const Segment& s : train_segs) {
        const int64_t t = std::max<int64_t>(1, s.length() - 1);
        targets += double(t);
        slots += double((t + shape.chunk - 1) / shape.chunk * shape.chunk);
      }
      if (slots > 0 && targets < 0.95 * slots)
        notice("step shape -b " + std::to_string(shape.streams) + " -L " + std::to_string(shape.chunk) +
               ": each record's last chunk is padded, so about " + std::to_string(int(100 * targets / slots)) +
               "% of the positions train (a smaller -L pads less; the state carries across chunks)");
    }
    // Streams past the records: the streams split them into shares instead, and a share's
    // record ends pad its chunks, so shares crossing more of them go round more slowly.
    if (notice && !shape.whole_records && shape.p99 <= shape.chunk && !train_segs.empty())
      notice("warning: -b " + std::to_string(shape.streams) + (o.streams > 0 ? "" : " (the default)") +
             " is more than the " + std::to_string(train_segs.size()) +
             " training records: the streams split them into shares, each record end padding a chunk, so some "
             "shares go round more often than others (-b " + std::to_string(train_segs.size()) +
             " or fewer takes whole records in turn, one pass an epoch)");
    o.streams = shape.streams;
    o.chunk = shape.chunk;
    o.whole_records = shape.whole_records;
  }
  DataStreams data(o.inputs, o.reader, train_segs, o.streams, o.block, o.rc_augment, o.seed, o.whole_records);
  if (!positions.empty()) data.set_positions(positions);
  const int64_t B = o.streams, L = o.chunk;
  if (steps == 0) steps = planned_steps(o);
  if (!o.resume && notice && o.valid_every > 0 && valid_segs.empty())
    notice("warning: --valid-every " + std::to_string(o.valid_every) +
           " with no validation set: give --holdout or --valid");
  if (!o.resume && notice && (o.steps > 0 || o.tokens > 0) && o.warmup > steps)  // likely a mistake
    notice("warning: --warmup " + std::to_string(o.warmup) + " > " + std::to_string(steps) +
           " steps: the learning rate never reaches --lr");

  model::Mamba<float> m(ck.config, std::move(ck.params));
  const auto& table = m.table();
  const auto& cfg = m.config();
  m.to_device(o.device);
  m.set_moments(m1, m2);
  model::State<float> state(cfg, B), saved(cfg, B);
  if (!state_ssm.empty()) {  // resumed (conv is empty when d_conv is 1)
    std::copy(state_conv.begin(), state_conv.end(), state.conv_data());
    std::copy(state_ssm.begin(), state_ssm.end(), state.ssm_data());
  }
  // On the CPU the activations and their gradients are host memory planned here; on a CUDA
  // device they live in device memory and the host objects only carry the flags.
  model::Activations<float> acts;
  model::ActivationGrads<float> g;
  if (o.device.cuda) {
    acts.keep = true;
  } else {
    acts.plan(cfg, B, L, true);
    g.plan(cfg, B * L);
  }
  std::vector<int32_t> tok(size_t(B * L)), tgt(size_t(B * L));  // (B, L): a step's tokens and targets
  StreamChunk sc;

  // metrics.tsv: a new run starts it; a resumed run drops rows after its checkpoint.
  const std::string metrics = o.run_dir + "/metrics.tsv";
  {
    std::vector<std::string> keep_rows;
    if (o.resume) {
      std::ifstream in(metrics);
      if (!in && notice)
        notice("warning: " + metrics + " is missing: a new one starts at step " + std::to_string(step + 1));
      std::string line;
      int64_t rows = 0;  // of the steps up to the checkpoint's
      for (int64_t n = 1; std::getline(in, line); ++n) {
        if (line.empty()) continue;
        if (line[0] == '#') {
          keep_rows.push_back(line);
          continue;
        }
        char* end = nullptr;
        const long long row_step = std::strtoll(line.c_str(), &end, 10);
        if (end != line.c_str() && row_step > step) continue;  // after the checkpoint (cut short too): run again
        if (end == line.c_str() || *end != '\t')
          throw InputError(metrics + ": line " + std::to_string(n) +
                           " is not a metrics row (it should start with a step number and a tab)");
        if (const auto fields = std::count(line.begin(), line.end(), '\t') + 1; fields != kMetricsColumns)
          throw InputError(metrics + ": line " + std::to_string(n) + " (step " + std::to_string(row_step) + ") has " +
                           std::to_string(fields) + " fields, a metrics row " + std::to_string(kMetricsColumns) +
                           " (cut short or edited?): mend or remove it to resume");
        keep_rows.push_back(line);
        ++rows;
      }
      if (in.eof() && rows != step && notice)  // (a file that was there, read to its end)
        notice("warning: " + metrics + " holds " + std::to_string(rows) + " rows for the checkpoint's " +
               std::to_string(step) + " steps (edited?); the run's rows go on from step " + std::to_string(step + 1));
    }
    if (keep_rows.empty() || keep_rows[0][0] != '#') keep_rows.insert(keep_rows.begin(), kMetricsHeader);
    io::TextOutput out(metrics);
    for (auto& r : keep_rows) out.write(r + "\n");
    out.commit();
  }
  // A new run that fails before its first checkpoint leaves nothing to resume: its metrics.tsv
  // goes (and the directory, if the run made it), so that the same command can run again.
  // A signal before its first step leaves nothing either.
  struct DropMetrics {
    std::string path;
    int uncaught = 0;
    bool armed = false;
    bool stopped = false;  // by a signal before the first step
    ~DropMetrics() {
      std::error_code ec;
      if (armed && (stopped || std::uncaught_exceptions() > uncaught)) fs::remove(path, ec);
    }
  } drop_metrics{metrics, std::uncaught_exceptions(), !o.resume};
  std::ofstream metrics_out(metrics, std::ios::app);

  TrainResult result;
  result.first_step = step;
  int64_t bad = 0;  // non-finite steps in a row
  // The weights last written (the initial model, the checkpoint resumed from, or one written
  // since), until the step after them says whether they give a finite loss; `good`, the last
  // that did: what a diverged run names to go back to.
  std::string untried = o.resume ? resumed_from : o.init_model, good;
  // The run stops as diverged: `what`, and the last weights known good.
  const auto diverged_error = [&](const std::string& what) {
    std::error_code ec;
    return Error("training diverged: " + what + " (last good checkpoint: " +
                 (good.empty()           ? std::string("none: no weights of this run gave a finite step")
                  : fs::exists(good, ec) ? good
                                         : good + ", removed by --keep " + std::to_string(o.keep)) +
                 ")");
  };
  // The weights pulled to the host, refused when not finite: a finite step's update can take
  // them past float's range (--lr 1e38), and no checkpoint or model may hold what `score`
  // and the checkpoint reader refuse.
  const auto pull_finite_params = [&](int64_t at_step) {
    m.pull_params();
    const auto& p = m.params();
    if (std::find_if(p.begin(), p.end(), [](float v) { return !std::isfinite(v); }) != p.end())
      throw diverged_error("the weights at step " + std::to_string(at_step) + " are not finite");
  };
  auto write_checkpoint = [&](int64_t at_step) {
    char name[64];
    std::snprintf(name, sizeof name, "/checkpoint-%08lld.h5", (long long)at_step);
    const std::string path = o.run_dir + name;
    const auto positions_now = data.positions();
    pull_finite_params(at_step);
    m.moments(m1, m2);
    model::save_checkpoint(path, cfg, table, m.params().data(), o.command_line, [&](io::H5File& f) {
      f.write("train/exp_avg", m1.data(), {table.total});
      f.write("train/exp_avg_sq", m2.data(), {table.total});
      f.write("train/state/conv", std::as_const(state).conv_data(), {cfg.n_layer, B, cfg.d_inner(), cfg.d_conv - 1});
      f.write("train/state/ssm", std::as_const(state).ssm_data(), {cfg.n_layer, B, cfg.d_inner(), cfg.d_state});
      if (o.whole_records)
        f.write("train/data_records", positions_now.data(), {2 * B + 1});
      else
        f.write("train/data_consumed", positions_now.data(), {B});
      f.write("train/input_sizes", sizes.data(), {int64_t(o.inputs.size()), 2});
      save_options(f, o, steps);
      f.set_attr("/train", "step", at_step);
      f.set_attr("/train", "tokens", tokens);
      f.set_attr("/train", "updates", updates);
    }, o.inputs);
    auto cks = list_checkpoints(o.run_dir);
    for (size_t i = 0; i + size_t(std::max<int64_t>(1, o.keep)) < cks.size(); ++i) fs::remove(cks[i]);
    result.checkpoint = path;
    drop_metrics.armed = false;  // resumable from here
    if (bad == 0) untried = path;  // (in a run of non-finite steps: the weights that gave them)
  };

  const auto t_start = std::chrono::steady_clock::now();
  const int64_t step_at_start = step;
  double last_valid = -1;
  bool said_no_valid = false;  // a validation set with nothing to predict, said once
  while (step < steps) {
    // A signal while the run was set up (inputs indexed, validation read): no step of this
    // invocation to finish or save, so none is started (a new run leaves nothing, a resumed
    // one its checkpoint as it was).
    if (step == step_at_start && !stop_at_call && stop && stop->load()) {
      result.interrupted = true;
      result.checkpoint = resumed_from;
      drop_metrics.stopped = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < B; ++s) {
      data.next(s, L, sc);
      if (sc.reset) state.reset_stream(s);
      std::copy(sc.tokens.begin(), sc.tokens.end(), tok.begin() + s * L);
      std::copy(sc.targets.begin(), sc.targets.end(), tgt.begin() + s * L);
    }
    saved = state;  // on the device when the state is there
    m.grad_zero();
    int64_t count = 0;
    const double loss_sum = m.forward_loss(tok.data(), tgt.data(), B, L, state, acts, &count);
    // A step with no target (every stream in an N run): no loss, no gradient, no update (a
    // zero gradient would still move the weights by the moments and the decay).
    const double loss = count ? loss_sum / double(count) : NAN;
    if (count) m.grad_accumulate(tok.data(), tgt.data(), acts, g, 1.0f / float(count));
    const double gnorm = count ? m.grad_norm() : NAN;
    const double lr = learning_rate(o, step, steps);
    StepReport rep;
    rep.step = step + 1, rep.steps = steps, rep.lr = lr, rep.loss = loss, rep.grad_norm = gnorm;
    rep.bits_per_base = loss / std::log(2.0);
    rep.empty = count == 0;
    bool diverged = false;  // said after the step's row is written
    if (rep.empty) {
      // nothing to learn from: the states moved on through the N run, as they should
    } else if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      rep.skipped = true;
      state = saved;  // the states after a non-finite step are not to be trusted
      diverged = ++bad >= o.max_bad_steps;
    } else {
      bad = 0;
      if (!untried.empty()) good = untried, untried.clear();  // these weights gave a finite step
      const float clip = gnorm > o.clip && o.clip > 0 ? float(o.clip / (gnorm + 1e-6)) : 1.0f;
      kernels::AdamwParams ap;
      ap.lr = lr, ap.beta1 = o.beta1, ap.beta2 = o.beta2, ap.eps = o.eps;
      ap.step = ++updates;  // as torch.optim.AdamW counts: the updates made
      m.adamw_step(ap, o.weight_decay, clip);
      tokens += count;  // positions trained on
    }
    ++step;
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();
    const double elapsed = std::chrono::duration<double>(t1 - t_start).count();
    rep.tokens = tokens;
    rep.tokens_per_s = double(count) / dt;  // the positions trained on, not the padding
    rep.eta_s = elapsed / double(step - step_at_start) * double(steps - step);
    const bool time_up = o.max_seconds > 0 && elapsed >= o.max_seconds;
    const bool stopping = (stop && stop->load()) || time_up;
    const bool last = step == steps || stopping;
    // Validation: capped by valid_tokens but at the run's end, the last step or a --max-time
    // stop (a planned end), which reads the whole set. A signal validates only when capped: it
    // must not start a long pass before its checkpoint; one that comes during a validation cuts
    // it short (NA).
    const bool signalled = stop && stop->load();
    const bool end = (step == steps || time_up) && !signalled;
    if (((o.valid_every > 0 && step % o.valid_every == 0) || last) && !valid_segs.empty() && !diverged &&
        !(signalled && o.valid_tokens <= 0)) {
      last_valid = evaluate(m, o, valid_inputs, valid_reader, valid_segs, end ? 0 : o.valid_tokens,
                            signalled ? nullptr : stop);
      rep.valid_bpb = last_valid;
      if (std::isnan(last_valid) && !(stop && stop->load()) && notice && !said_no_valid &&
          total_length(valid_segs) >= 2) {  // (an empty one was warned about before the first step)
        notice("warning: the validation set has no A/C/G/T base to predict (an N run held out?): valid_bpb is NA");
        said_no_valid = true;
      }
    }
    result.signal_at_end = step == steps && stop && stop->load();
    char line[256];
    std::snprintf(line, sizeof line, "%lld\t%lld\t%s\t%s\t%s\t%.6g\t%s\t%.1f\n", (long long)step,
                  (long long)tokens, metric_text(loss, "%.6f").c_str(),
                  metric_text(rep.bits_per_base, "%.6f").c_str(), metric_text(rep.valid_bpb, "%.6f").c_str(), lr,
                  metric_text(gnorm, "%.6g").c_str(), rep.tokens_per_s);
    if (!(metrics_out << line << std::flush))
      throw InputError(metrics + ": cannot write step " + std::to_string(step) + "'s row: " + std::strerror(errno));
    if (report) report(rep);
    if (diverged)
      throw diverged_error(std::to_string(bad) + " non-finite steps in a row, to step " + std::to_string(step));
    const bool stop_now = stopping || (stop && stop->load());  // a signal during this step
    // No checkpoint in a run of non-finite steps but the last: it would hold the weights that
    // gave them, and --keep would remove a good one for it.
    if ((o.ckpt_every > 0 && step % o.ckpt_every == 0 && bad == 0) || last || stop_now) write_checkpoint(step);
    if (stop_now && step < steps) {
      result.interrupted = stop && stop->load();  // a signal wins over --max-time
      result.time_up = !result.interrupted;
      break;
    }
  }
  if (!result.interrupted) {  // finished (or out of time): the model alone, for score/embed/vep
    const std::string path = o.run_dir + "/model.h5";
    pull_finite_params(step);
    model::save_checkpoint(path, cfg, table, m.params().data(), o.command_line, {}, o.inputs);
  }
  // Ended in a run of non-finite steps (fewer than the divergence limit): the model is that of
  // the last update, after which every step failed; said, as `score` will refuse it if it
  // gives non-finite log-probabilities.
  if (bad > 0 && notice)
    notice("warning: the run ended after " + std::to_string(bad) + " non-finite step" + (bad > 1 ? "s" : "") +
           " in a row (skipped): the model written is that of the last update, and may have diverged "
           "(a lower --lr, or resume from an earlier checkpoint)");
  result.steps = step;
  result.steps_planned = steps;
  result.tokens = tokens;
  result.last_valid_bpb = last_valid;
  return result;
}

}  // namespace mambadna::pipelines
