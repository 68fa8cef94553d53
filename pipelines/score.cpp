#include "pipelines/score.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/h5.h"
#include "io/output_file.h"
#include "io/region.h"
#include "pipelines/short_records.h"

namespace mambadna::pipelines {

double RecordScore::bits_per_base() const { return scored ? -mean() / std::log(2.0) : NAN; }
double RecordScore::perplexity() const { return scored ? std::exp(-mean()) : NAN; }

double RecordScore::bits_per_base_rc() const {
  return scored_rc ? -loglik_rc / double(scored_rc) / std::log(2.0) : NAN;
}
double RecordScore::bits_per_base_both() const {
  const int64_t n = scored + scored_rc;
  return n ? -(loglik + loglik_rc) / double(n) / std::log(2.0) : NAN;
}

void write_score_header(std::ostream& out, bool both, bool regions) {
  out << "#input\trecord\tstart\tlength\tscored\tloglik\tmean_loglik\tbits_per_base\tperplexity"
      << (both ? "\tscored_rc\tloglik_rc\tbits_per_base_rc\tbits_per_base_both" : "")
      << (regions ? "\tregion\n" : "\n");
}

void write_score_line(std::ostream& out, const RecordScore& r, bool both, bool regions) {
  // A per-base figure of a record with no scored position is NA (as in stats), not nan.
  const bool any = r.scored > 0;
  auto num = [](double v, bool defined) {
    if (!defined) return std::string("NA");
    char b[32];
    std::snprintf(b, sizeof b, "%.6f", v);
    return std::string(b);
  };
  out << r.input << '\t' << r.name << '\t' << std::max<int64_t>(r.region_begin, 0) << '\t' << r.length
      << '\t' << r.scored << '\t' << num(r.loglik, true) << '\t' << num(r.mean(), any) << '\t'
      << num(r.bits_per_base(), any) << '\t' << num(r.perplexity(), any);
  // (each strand's figures by its own count: "NA" has one scored base forward, none reverse)
  if (both)
    out << '\t' << r.scored_rc << '\t' << num(r.loglik_rc, true) << '\t'
        << num(r.bits_per_base_rc(), r.scored_rc > 0) << '\t'
        << num(r.bits_per_base_both(), r.scored + r.scored_rc > 0);
  if (regions) out << '\t' << r.region_or_dot();
  out << '\n';
}

namespace {
using io::rereadable;

// A model whose log-probabilities are not finite (the weights of a training run that diverged)
// gives no score: refused at the first record, not written as nan.
void check_finite(const RecordScore& r, const std::string& model_path) {
  if (std::isfinite(r.loglik) && std::isfinite(r.loglik_rc)) return;
  throw InputError((model_path.empty() ? std::string("the model") : model_path) +
                   ": gives non-finite log-probabilities (record '" + r.name + "' of " + r.input +
                   "): its weights do not make a working model (a training run that diverged?)");
}

// Where scores go besides the TSV: the HDF5 file (records table, per-position datasets) and the
// bedGraph track, each under a temporary name until finish() renames it into place.
class Outputs {
 public:
  explicit Outputs(const ScoreOptions& opt) : opt_(opt) {
    if (!opt.h5_output.empty()) {
      h5_.emplace(io::H5File::create(opt.h5_output));
      h5_->set_provenance("mambadna-score/1", opt.command_line, opt.inputs);
      h5_->set_attr("/", "model", opt.model_path);
      h5_->set_attr("/", "chunk", opt.chunk);
      h5_->set_attr("/", "strand", std::string(opt.both_strands ? "both" : "fwd"));
      h5_->set_attr("/", "case", std::string(io::case_mode_name(opt.reader.tok.case_mode)));
      h5_->set_attr("/", "invalid", std::string(io::invalid_mode_name(opt.reader.tok.invalid)));
      // per_position/ is there with no record too (code reading it back needs it)
      if (opt.per_position) h5_->ensure_parent_groups("per_position/0");
    }
    if (!opt.bedgraph.empty()) bg_.emplace(opt.bedgraph, io::bgzip_name(opt.bedgraph));  // .gz: bgzip, for tabix
  }

  // Per-position datasets of record `row` (when --per-position).
  struct Positions {
    std::optional<io::H5Appender> lp, ent, lp_rc, lp_both, ent_rc;
  };
  Positions open(int64_t row) {
    Positions p;
    if (!h5_ || !opt_.per_position) return p;
    const std::string g = "per_position/" + std::to_string(row);
    // Chunks of 65,536 values, or one of the record's length where it is shorter (reads).
    const auto column = [&](std::optional<io::H5Appender>& c, const char* name) {
      c.emplace(*h5_, g + name, io::H5Type::f32, io::Shape{}, 65536, 4, io::H5Chunks::fit);
    };
    column(p.lp, "/logprob");
    if (opt_.entropy) column(p.ent, "/entropy");
    if (opt_.both_strands) column(p.lp_rc, "/logprob_rc"), column(p.lp_both, "/logprob_both");
    if (opt_.both_strands && opt_.entropy) column(p.ent_rc, "/entropy_rc");
    return p;
  }
  void close(int64_t row, const RecordScore& r, Positions& p) {
    if (!h5_ || !opt_.per_position) return;
    for (auto* c : {&p.lp, &p.ent, &p.lp_rc, &p.lp_both, &p.ent_rc})
      if (*c) (*c)->finish();
    const std::string g = "/per_position/" + std::to_string(row);
    h5_->set_attr(g, "name", r.name);
    if (!opt_.reader.regions.empty()) h5_->set_attr(g, "region", r.region_or_dot());
    h5_->set_attr(g, "input", r.input);
    h5_->set_attr(g, "start", std::max<int64_t>(r.region_begin, 0));
    p = Positions{};
  }

  // bedGraph lines of record `row` for n consecutive bases from 0-based contig position pos0,
  // whose tokens are base[0..n): only where the base is A/C/G/T, as the totals count (an N run
  // is a gap). The track is in record order: rows must come in order (score's streams start
  // no record while one longer than a chunk runs, so a pass's rows ascend with the streams).
  void bedgraph(int64_t row, const std::string& input, const std::string& chrom, int64_t pos0, const float* v,
                const int32_t* base, int64_t n) {
    if (!bg_ || n <= 0) return;
    if (row < bg_row_)
      throw Error("internal error: bedGraph lines of record " + std::to_string(row + 1) + " after record " +
                  std::to_string(bg_row_ + 1));
    bg_row_ = row;
    if (chrom.empty())  // a bare '>' header
      throw InputError(input + ": record " + std::to_string(row + 1) + " of the run has an empty name ('>' alone): " +
                       "a bedGraph line (--bedgraph) needs its contig's name");
    claim(chrom, pos0, pos0 + n);
    char buf[64];
    for (int64_t t = 0; t < n; ++t) {
      if (std::isnan(v[t]) || !io::is_acgt(base[t])) continue;
      std::snprintf(buf, sizeof buf, "\t%lld\t%lld\t%.4f\n", (long long)(pos0 + t),
                    (long long)(pos0 + t + 1), double(v[t]));
      bg_->write(chrom);
      bg_->write(buf);
    }
  }

  void finish(const std::vector<RecordScore>& done) {
    if (h5_) {
      std::vector<std::string> names, inputs, regions;
      std::vector<int64_t> start, length, scored, scored_rc, region_index;
      std::vector<double> loglik, bpb, loglik_rc, bpb_rc, bpb_both;
      for (auto& r : done) {
        names.push_back(r.name);
        regions.push_back(r.region_or_dot());
        region_index.push_back(r.region_index);
        inputs.push_back(r.input);
        start.push_back(std::max<int64_t>(r.region_begin, 0));
        length.push_back(r.length);
        scored.push_back(r.scored);
        loglik.push_back(r.loglik);
        bpb.push_back(r.bits_per_base());
        scored_rc.push_back(r.scored_rc);
        loglik_rc.push_back(r.loglik_rc);
        bpb_rc.push_back(r.bits_per_base_rc());
        bpb_both.push_back(r.bits_per_base_both());
      }
      const io::Shape n{int64_t(done.size())};
      h5_->write_strings("records/name", names);
      h5_->write_strings("records/input", inputs);
      if (!opt_.reader.regions.empty()) {
        h5_->write_strings("records/region", regions);
        h5_->write("records/region_index", region_index.data(), n);
      }
      h5_->write("records/start", start.data(), n);
      h5_->write("records/length", length.data(), n);
      h5_->write("records/scored", scored.data(), n);
      h5_->write("records/loglik", loglik.data(), n);
      h5_->write("records/bits_per_base", bpb.data(), n);
      // reads/: where each row's read lies (mates share a name), written as embed writes it.
      if (std::any_of(done.begin(), done.end(), [](const RecordScore& r) { return r.read.has_value(); })) {
        io::H5ReadColumns reads(*h5_);
        for (auto& r : done) reads.append(r.read ? *r.read : io::kNotRead);
      }
      if (opt_.both_strands) {
        h5_->write("records/scored_rc", scored_rc.data(), n);
        h5_->write("records/loglik_rc", loglik_rc.data(), n);
        h5_->write("records/bits_per_base_rc", bpb_rc.data(), n);
        h5_->write("records/bits_per_base_both", bpb_both.data(), n);
      }
      h5_->finish();
    }
    // Every output complete before any is put in place: a failure (a full disk, standard
    // output gone) leaves none of them.
    if (bg_) bg_->finish();
    if (opt_.before_publish) opt_.before_publish();
    if (h5_) h5_->commit();
    if (bg_) bg_->commit();
  }

 private:
  // A track holds one value a base: [b, e) of chrom must not have been written already (two
  // inputs with a contig of one name, a FASTA with a name twice). check_bedgraph refuses what
  // it can see before the run; this catches the rest as it comes, before the line is written
  // (the track, a temporary file, is then removed).
  void claim(const std::string& chrom, int64_t b, int64_t e) {
    auto& spans = written_[chrom];  // start -> end, disjoint, adjacent ones joined
    auto next = spans.upper_bound(b);
    if (next != spans.end() && next->first < e) overlap(chrom, next->first);
    if (next != spans.begin()) {
      auto prev = std::prev(next);
      if (prev->second > b) overlap(chrom, b);
      if (prev->second == b) {  // continues the span before (the usual case: the next chunk)
        prev->second = e;
        if (next != spans.end() && next->first == e) prev->second = next->second, spans.erase(next);
        return;
      }
    }
    if (next != spans.end() && next->first == e) {
      const int64_t end = next->second;
      spans.erase(next);
      spans.emplace(b, end);
    } else {
      spans.emplace(b, e);
    }
  }
  [[noreturn]] static void overlap(const std::string& chrom, int64_t pos) {
    throw InputError("--bedgraph: position " + std::to_string(pos + 1) + " of contig " + chrom +
                     " is scored twice (two records of that name, in one input or two): a track "
                     "holds one value a base; give such inputs to separate runs");
  }

  const ScoreOptions& opt_;
  std::optional<io::H5File> h5_;
  std::optional<io::TextOutput> bg_;
  std::map<std::string, std::map<int64_t, int64_t>> written_;  // the track's spans by contig
  int64_t bg_row_ = 0;  // the row of the last lines written
};

constexpr const char* kBothInvalidHint = " (use --invalid N to read it as N)";

// Refuses (UsageError) an input of reads (SAM/BAM/CRAM) for `option`, which `why`.
void refuse_reads(const ScoreOptions& opt, const std::string& option, const std::string& why) {
  for (const auto& in : opt.inputs)
    if (io::rereadable_reads(in))  // (a pipe is read once, by the scoring)
      throw UsageError(option + ": " + in + " holds reads: " + why +
                       "; score FASTA records or regions of an indexed FASTA");
}

// Throws the invalid-character error of the first invalid character of contig[b, e).
[[noreturn]] void throw_first_invalid(const io::FastaIndex& fa, const io::Tokenizer& tok, const std::string& file,
                                      const std::string& contig, int64_t b, int64_t e) {
  constexpr int64_t kStep = 1 << 20;
  for (int64_t p = b; p < e; p += kStep) {
    const std::string s = fa.fetch(contig, p, std::min(e, p + kStep));
    for (size_t i = 0; i < s.size(); ++i)
      io::aligned_token(tok, uint8_t(s[i]), file, contig, p + int64_t(i), kBothInvalidHint);
  }
  throw std::logic_error("throw_first_invalid: no invalid character in " + contig);
}

// --strand both: regions (or whole contigs) of indexed FASTAs, one at a time. The reverse
// strand runs first and leaves its per-position log-probs in a scratch file; the forward strand
// then runs, reads them back and writes both and their mean. Memory stays bounded by L.
std::vector<RecordScore> score_both_strands(model::Mamba<float>& m, const ScoreOptions& opt,
                                            const std::function<void(const RecordScore&)>& on_record,
                                            const std::function<void(int64_t)>& progress) {
  for (const auto& file : opt.inputs)
    if (file == "-")
      throw UsageError("--strand both needs indexed FASTA inputs (random access to both strands), "
                       "not standard input");
  refuse_reads(opt, "--strand both", "it reads both strands of an indexed FASTA by position");
  // A dropped character would move every later position off the other strand's.
  if (opt.reader.tok.invalid == io::InvalidMode::skip)
    throw UsageError("--strand both with --invalid skip: a dropped character would move the positions "
                     "that the two strands are aligned by; use --invalid N (scored as N)");
  const io::Tokenizer tok(opt.reader.tok);
  const int64_t L_max = opt.chunk;
  Outputs out(opt);
  model::State<float> state(m.config(), 1);
  model::Activations<float> acts;
  // (L_max) each: one strand's window of tokens, targets, log-probs (and entropies).
  std::vector<int32_t> tokens(static_cast<size_t>(L_max)), targets(static_cast<size_t>(L_max));
  std::vector<float> lp(static_cast<size_t>(L_max)), ent(static_cast<size_t>(opt.entropy ? L_max : 0)),
      rc(static_cast<size_t>(L_max)), both(static_cast<size_t>(L_max)),
      rc_ent(static_cast<size_t>(opt.entropy ? L_max : 0));  // the reverse strand's entropies
  std::vector<RecordScore> done;
  int64_t bases_done = 0;

  // Every input is opened before any work (a missing index stops the run at once); then input
  // by input, in the order given: its regions in BED order, or its contigs.
  const auto by_input = io::regions_by_input(opt.inputs, opt.reader);
  int64_t ri = 0;  // the row
  for (size_t i = 0; i < opt.inputs.size(); ++i) {
    const std::string& file = opt.inputs[i];
    io::FastaIndex fa(file);
    std::vector<io::Region> regions = by_input[i];
    if (opt.reader.regions.empty())
      for (auto& c : fa.contigs()) regions.push_back(io::Region{c, 0, io::kContigEnd, {}});
    for (size_t j = 0; j < regions.size(); ++j, ++ri) {
      io::Region r = regions[j];
      const int64_t len = fa.length(r.contig);
      io::clip_to_contig(r, len);
      auto token = [&](char c, int64_t at) {  // the base at contig position `at` (its complement on the reverse strand)
        return io::aligned_token(tok, uint8_t(c), file, r.contig, at, kBothInvalidHint);
      };
      const int64_t b = r.begin, e = r.end, n_pos = e - b;
      // The model's work is per position of the window, padding included: a region shorter than
      // the chunk runs in a window of its own length (rounded up to 8), not of L_max.
      const int64_t L = std::min(L_max, chunk_for_records(n_pos));
      RecordScore rec;
      rec.input = file;
      rec.name = r.contig;
      if (!opt.reader.regions.empty()) rec.region = io::region_name(r, b, e), rec.region_index = r.index;
      rec.index = int64_t(j);
      rec.region_begin = b;
      rec.length = n_pos;
      std::optional<io::H5File> scratch;
      if (n_pos > 0) {
        // Beside the HDF5 output, or in the temporary directory; removed when it goes out of scope.
        scratch.emplace(io::H5File::create_scratch(opt.h5_output, "rc", "the reverse strand's scratch file"));
        scratch->create_rows("rc", n_pos, 1);
        if (opt.entropy) scratch->create_rows("rc_entropy", n_pos, 1);
      }
      // Reverse strand: sequence index i is contig position top-1-i of the current window; the
      // prediction made at i is for position top-2-i (given everything to its right). The last
      // prediction of a window is for the first position of the next (lower) window.
      state.reset();
      float carried = NAN, carried_rc_ent = NAN;  // the prediction for position top-1 made by the previous window
      for (int64_t top = e; top > b; top -= L) {
        const int64_t lo = std::max(b, top - L), n = top - lo;
        const int64_t look = lo > b ? 1 : 0;
        std::string s = fa.fetch(r.contig, lo - look, top);
        // The reverse strand comes first, from the region's end: an invalid character met here
        // is named as the forward strand would name it, the first from the region's start.
        if (std::any_of(s.begin(), s.end(), [&](char c) { return tok[uint8_t(c)] == io::Tokenizer::kInvalid; }))
          throw_first_invalid(fa, tok, file, r.contig, b, e);
        io::reverse_complement(s);  // s[i] = complement of the base at top-1-i
        for (int64_t i = 0; i < L; ++i) {
          tokens[size_t(i)] = i < n ? token(s[size_t(i)], top - 1 - i) : 'N';
          targets[size_t(i)] = i + 1 < n + look ? token(s[size_t(i + 1)], top - 2 - i) : -1;
        }
        m.score(tokens.data(), targets.data(), 1, L, state, acts, lp.data(), opt.entropy ? ent.data() : nullptr);
        for (int64_t q = lo; q < top; ++q) {
          const float v = q == top - 1 ? carried : lp[size_t(top - 2 - q)];
          rc[size_t(q - lo)] = v;
          if (opt.entropy) rc_ent[size_t(q - lo)] = q == top - 1 ? carried_rc_ent : ent[size_t(top - 2 - q)];
          if (!std::isnan(v) && io::is_acgt(tokens[size_t(top - 1 - q)])) {
            rec.loglik_rc += double(v);
            ++rec.scored_rc;
          }
        }
        carried = look ? lp[size_t(n - 1)] : NAN;
        carried_rc_ent = look && opt.entropy ? ent[size_t(n - 1)] : NAN;
        scratch->write_rows("rc", lo - b, rc.data(), n);
        if (opt.entropy) scratch->write_rows("rc_entropy", lo - b, rc_ent.data(), n);
        bases_done += n;
        if (progress) progress(bases_done);
      }
      // Forward strand: the prediction made at index i is for position p+i+1; the last one of a
      // window is for the first position of the next window.
      auto pos = out.open(ri);
      state.reset();
      float carried_lp = NAN, carried_ent = NAN;
      std::vector<float> fwd(static_cast<size_t>(L)), en(static_cast<size_t>(L));
      for (int64_t p = b; p < e; p += L) {
        const int64_t n = std::min(L, e - p);
        const int64_t look = p + n < e ? 1 : 0;
        const std::string s = fa.fetch(r.contig, p, p + n + look);
        for (int64_t i = 0; i < L; ++i) {
          tokens[size_t(i)] = i < n ? token(s[size_t(i)], p + i) : 'N';
          targets[size_t(i)] = i + 1 < n + look ? token(s[size_t(i + 1)], p + i + 1) : -1;
        }
        m.score(tokens.data(), targets.data(), 1, L, state, acts, lp.data(), opt.entropy ? ent.data() : nullptr);
        scratch->read_rows("rc", p - b, rc.data(), n);
        if (opt.entropy) scratch->read_rows("rc_entropy", p - b, rc_ent.data(), n);
        for (int64_t q = p; q < p + n; ++q) {
          const size_t k = size_t(q - p);
          fwd[k] = q == p ? carried_lp : lp[k - 1];
          if (opt.entropy) en[k] = q == p ? carried_ent : ent[k - 1];
          const float f = fwd[k], v = rc[k];
          both[k] = std::isnan(f) ? v : std::isnan(v) ? f : 0.5f * (f + v);
          if (!std::isnan(f) && io::is_acgt(tokens[k])) {
            rec.loglik += double(f);
            ++rec.scored;
          }
        }
        carried_lp = look ? lp[size_t(n - 1)] : NAN;
        carried_ent = look && opt.entropy ? ent[size_t(n - 1)] : NAN;
        if (pos.lp) pos.lp->append(fwd.data(), n);
        if (pos.ent) pos.ent->append(en.data(), n);
        if (pos.lp_rc) pos.lp_rc->append(rc.data(), n);
        if (pos.lp_both) pos.lp_both->append(both.data(), n);
        if (pos.ent_rc) pos.ent_rc->append(rc_ent.data(), n);
        out.bedgraph(ri, file, r.contig, p, both.data(), tokens.data(), n);
        bases_done += n;
        if (progress) progress(bases_done);
      }
      check_finite(rec, opt.model_path);
      out.close(ri, rec, pos);
      scratch.reset();
      if (on_record) on_record(rec);
      done.push_back(std::move(rec));
    }
  }
  out.finish(done);
  return done;
}

// Hands out (input, record) pairs in increasing order to the streams.
struct Claims {
  size_t input = 0;
  int64_t record = 0;
};

struct Stream {
  std::shared_ptr<io::SequenceReader> reader;
  size_t reader_input = SIZE_MAX;
  std::optional<io::Chunk> pending;  // a chunk read ahead
  bool active = false;
  io::Chunk cur;
  std::optional<io::Chunk> nxt;  // the next chunk of the same record
  RecordScore rec;
  int64_t row = -1;      // row in the records table
  int64_t tokens = 0;    // tokens of the record consumed so far
  Outputs::Positions pos;  // per-position datasets of the current record
  bool eof = false;
  bool borrowed = false;   // reads its record's chunks from the shared reader (an input read once)
};


// A bedGraph track gives each contig position one value: FASTA/FASTQ records, or regions of
// one, that do not overlap; not reads (named by read, in read coordinates).
void check_bedgraph(const ScoreOptions& opt) {
  if (opt.bedgraph.empty()) return;
  // A dropped character still takes a contig position, and the track places bases by counting
  // them.
  if (opt.reader.tok.invalid == io::InvalidMode::skip)
    throw UsageError("--bedgraph with --invalid skip: a dropped character still takes a position, "
                     "which the track cannot place; use --invalid N (scored as N: a gap in the track)");
  refuse_reads(opt, "--bedgraph", "they may overlap, and a track needs non-overlapping positions");
  // The regions scored: those each input has, clipped to its contigs (a region skipped there,
  // or the part of one past a contig's end, puts nothing on the track).
  std::vector<io::Region> r;
  std::vector<std::pair<std::string, std::vector<std::string>>> contigs;  // (input, its contigs)
  for (const auto& in : opt.inputs) {
    if (!rereadable(in) || !std::filesystem::exists(in + ".fai")) continue;  // regions need one
    const io::FastaIndex fa(in);
    for (io::Region x : io::regions_present(in, opt.reader.regions, fa.lengths(), {}, true)) {
      io::clip_to_contig(x, fa.length(x.contig));
      r.push_back(std::move(x));
    }
    contigs.emplace_back(in, fa.contigs());
  }
  // A contig of one name in two indexed inputs (and, with regions, under one of them) would be
  // scored twice: refused before any work (Outputs::claim catches the cases no index shows).
  std::set<std::string> region_contigs;  // once, not per contig and region
  for (const io::Region& x : r) region_contigs.insert(x.contig);
  std::map<std::string, std::string> first_input;  // contig -> the input that has it
  for (const auto& [in, names] : contigs) {
    for (const std::string& c : names) {
      const bool used = opt.reader.regions.empty() || region_contigs.count(c) > 0;
      const auto [at, fresh] = first_input.emplace(c, in);
      if (used && !fresh)
        throw InputError("--bedgraph: contig " + c + " is in " + at->second + " and " + in +
                         ": a track holds one value a base; give them to separate runs");
    }
  }
  std::sort(r.begin(), r.end(), [](const io::Region& a, const io::Region& b) {
    return a.contig != b.contig ? a.contig < b.contig : a.begin < b.begin;
  });
  const io::Region* reach = nullptr;  // the region reaching furthest so far on this contig
  for (const io::Region& x : r) {
    if (x.end <= x.begin) continue;  // empty: holds no base
    if (reach && reach->contig == x.contig && x.begin < reach->end) {
      // Lines of a BED file are input (exit 1), regions typed with -r the command's use (2).
      const std::string what = "--bedgraph: regions " + io::describe_region(*reach) + " and " + io::describe_region(x) +
                               " overlap: a track holds one value a base (merge them, e.g. bedtools merge)";
      if (reach->line > 0 || x.line > 0) throw InputError(what);
      throw UsageError(what);
    }
    if (!reach || reach->contig != x.contig || x.end > reach->end) reach = &x;
  }
}

}  // namespace

int64_t score_streams(const ScoreOptions& opt) {
  // Both strands run region by region: one stream. (A bedGraph, written in record order, and
  // standard input or a pipe, read once, run several: while a record longer than a chunk runs,
  // the other streams start none.)
  if (opt.both_strands) return 1;
  return std::max<int64_t>(1, opt.streams);
}

bool score_holds(const ScoreOptions& opt) {
  if (!opt.bedgraph.empty()) return true;
  for (const auto& in : opt.inputs)
    if (!rereadable(in)) return true;
  return false;
}

int64_t records_known(const ScoreOptions& opt, int64_t enough) {
  if (!opt.reader.regions.empty()) return std::min(enough, int64_t(opt.reader.regions.size() * opt.inputs.size()));
  constexpr int64_t kScanBases = int64_t(64) << 20;
  int64_t n = 0;
  for (const auto& in : opt.inputs) {
    if (n >= enough) break;
    if (!rereadable(in)) return -1;
    std::error_code ec;
    if (std::filesystem::exists(in + ".fai", ec)) {  // an indexed FASTA: a line a contig
      std::ifstream fai(in + ".fai");
      for (std::string line; std::getline(fai, line);) n += !line.empty();
      continue;
    }
    io::SequenceReader reader(in, opt.reader);
    io::Chunk c;
    int64_t bases = 0;
    while (n < enough && reader.next(c, size_t(1) << 16)) {
      n += c.begin_of_record;
      bases += int64_t(c.tokens.size());
      if (bases > kScanBases) return -1;
    }
  }
  return std::min(n, enough);
}

ScoreShape short_record_shape(ScoreOptions& opt, int64_t rows) {
  ScoreShape shape;
  if (opt.inputs.empty() || opt.streams < 1) return shape;
  const int64_t chunk_now = rows / opt.streams;
  std::vector<int64_t> len;  // a record longer than chunk_now counts as chunk_now
  bool whole = true;         // every input sampled to its end
  opt.opened.resize(opt.inputs.size());
  for (size_t i = 0; i < opt.inputs.size(); ++i) {
    const std::string& in = opt.inputs[i];
    io::ReaderOptions each = opt.reader;
    each.regions_elsewhere = opt.inputs.size() > 1;  // as score() reads them
    // An input read once (standard input, a pipe) is sampled by the reader that score() will
    // read it with, which keeps what it reads (at most kShapeKeptBases) and gives it again.
    const bool once = !rereadable(in);
    if (once && opt.opened[i]) return shape;  // sampled before: not again
    const auto reader = std::make_shared<io::SequenceReader>(in, each);
    if (once) {
      reader->keep();
      opt.opened[i] = reader;
    }
    struct Replay {  // a pipe's reader gives back what the sampling read, however it ends
      io::SequenceReader* r;
      ~Replay() {
        if (r) r->replay();
      }
    } replay{once ? reader.get() : nullptr};
    io::Chunk c;
    int64_t n = 0, taken = 0, longer = 0;
    // Up to kShapeSample records of each input; more than 1% of that longer than the chunk
    // (or a first record that is: a genome) ends the question.
    while (taken < kShapeSample) {
      if (once && reader->kept_tokens() > kShapeKeptBases) return shape;
      if (!reader->next(c, size_t(chunk_now))) break;
      n = (c.begin_of_record ? 0 : n) + int64_t(c.tokens.size());
      if (!c.end_of_record) {
        if (c.begin_of_record && (taken == 0 || ++longer > kShapeSample / 100)) return shape;
        continue;  // on through a long record
      }
      len.push_back(std::min(n, chunk_now));
      ++taken;
    }
    whole = whole && taken < kShapeSample;
  }
  if (len.empty()) return shape;
  shape.sampled = int64_t(len.size());
  shape.p99 = percentile99(std::move(len));
  if (shape.p99 >= chunk_now) return ScoreShape{};
  shape.chunk = chunk_for_records(shape.p99);
  shape.streams = std::clamp<int64_t>(rows / shape.chunk, opt.streams, std::max(opt.streams, kMaxShortStreams));
  if (whole)  // every input was sampled to its end: no more streams than records
    shape.streams = std::max(opt.streams, std::min(shape.streams, shape.sampled));
  return shape;
}

std::vector<RecordScore> score(model::Mamba<float>& m, const ScoreOptions& options,
                               const std::function<void(const RecordScore&)>& on_record,
                               const std::function<void(int64_t)>& progress) {
  // With several inputs, one may lack every region (one FASTA a chromosome); some must have one.
  ScoreOptions opt = options;
  opt.reader.regions_elsewhere = opt.inputs.size() > 1;
  if (opt.inputs.empty()) throw UsageError("score: no input");
  if (opt.chunk < 1) throw UsageError("score: chunk length must be >= 1");
  check_bedgraph(opt);
  if (opt.both_strands) return score_both_strands(m, opt, on_record, progress);
  io::check_inputs(opt.inputs, opt.reader);  // before any work: a bad later input stops it now
  const int64_t B = score_streams(opt);
  const int64_t L = opt.chunk;

  Outputs out(opt);

  std::vector<Stream> streams(static_cast<size_t>(B));
  model::State<float> state(m.config(), B);
  model::Activations<float> acts;
  // (B, L) each: a pass's tokens, their targets (-1: none), log-probs and entropies.
  std::vector<int32_t> tokens(size_t(B * L)), targets(size_t(B * L));
  std::vector<float> lp(size_t(B * L)), ent(opt.entropy ? size_t(B * L) : 0);
  Claims claims;
  int64_t rows_started = 0, bases_done = 0;
  std::vector<RecordScore> done;
  std::map<int64_t, RecordScore> finished;  // by row, waiting for earlier rows
  int64_t next_row_out = 0;

  auto flush = [&]() {
    while (!finished.empty() && finished.begin()->first == next_row_out) {
      RecordScore r = std::move(finished.begin()->second);
      finished.erase(finished.begin());
      check_finite(r, opt.model_path);
      if (on_record) on_record(r);
      done.push_back(std::move(r));
      ++next_row_out;
    }
  };

  Stream shared;
  // Reads the next chunk of a stream's reader (the shared one where it borrows it), honouring a
  // read-ahead chunk.
  auto read_chunk = [&](Stream& stream, io::Chunk& c) -> bool {
    Stream& s = stream.borrowed ? shared : stream;
    if (s.pending) {
      c = std::move(*s.pending);
      s.pending.reset();
      return true;
    }
    return s.reader->next(c, size_t(L));
  };

  // Finds record `want` of input `in` with r's reader (opened when r has none on that input),
  // skipping the records before it; false when the input has no such record.
  auto find = [&](Stream& r, size_t in, int64_t want, io::Chunk& c) -> bool {
    if (r.reader_input != in) {
      if (in < opt.opened.size() && opt.opened[in])  // sampled by short_record_shape: read on
        r.reader = std::exchange(opt.opened[in], nullptr);
      else
        r.reader = std::make_shared<io::SequenceReader>(opt.inputs[in], opt.reader);
      r.reader_input = in;
      r.pending.reset();
    }
    while (read_chunk(r, c)) {
      if (c.record_index > want) {  // cannot happen with increasing claims; keep it safe
        r.pending = std::move(c);
        return false;
      }
      if (c.record_index == want && c.begin_of_record) return true;
    }
    return false;
  };
  // With several streams, records are found by one shared reader, which hands a record that
  // fits in a chunk (a read) to its stream whole; a longer one the stream reads with its own
  // reader, skipped to it, chunk by chunk in constant memory. (Each stream finding its records
  // with its own reader passed over the whole file: B passes, hundreds for reads.) An input
  // that can be read only once (standard input, a pipe) has no second reader: its stream reads
  // a long record on from the shared reader, and no other stream starts a record until it ends.
  // A bedGraph comes out in record order: likewise, while a record longer than a chunk runs, no
  // stream starts another. Streams then start records only when all are free, in stream order,
  // and a record that fits in a chunk ends in its first pass: each pass's rows ascend with the
  // streams, and the track is written as the pass goes.
  int64_t holder_row = -1;  // the row of the long record the other streams wait for, if any
  // Starts the next unclaimed record on stream s; false when every input is exhausted.
  auto start = [&](Stream& s) -> bool {
    if (holder_row >= 0) return false;  // a long record runs (see above)
    while (claims.input < opt.inputs.size()) {
      const size_t in = claims.input;
      const int64_t want = claims.record++;
      io::Chunk c;
      bool found = find(B > 1 ? shared : s, in, want, c);
      bool holds = false;
      if (found && B > 1 && !c.end_of_record) {
        s.borrowed = !rereadable(opt.inputs[in]);
        holds = s.borrowed || !opt.bedgraph.empty();
        if (!s.borrowed && !find(s, in, want, c))
          throw InputError(opt.inputs[in] + ": record " + std::to_string(want + 1) +
                           " was not found on a second reading (did the file change?)");
      }
      if (!found) {  // this input has no record `want`: move every stream on to the next input
        if (claims.input == in) {
          ++claims.input;
          claims.record = 0;
        }
        continue;
      }
      s.active = true;
      s.cur = std::move(c);
      s.nxt.reset();
      s.tokens = 0;
      s.row = rows_started++;
      if (holds) holder_row = s.row;
      s.rec = RecordScore{};
      s.rec.input = opt.inputs[in];
      s.rec.name = s.cur.record;
      s.rec.index = want;
      s.rec.region = (B > 1 ? shared : s).reader->region_name();
      s.rec.region_index = (B > 1 ? shared : s).reader->region_index();
      s.rec.region_begin = s.cur.offset;
      s.rec.read = s.cur.alignment;
      s.pos = out.open(s.row);
      return true;
    }
    return false;
  };

  auto finish = [&](Stream& s) {
    s.borrowed = false;
    if (s.row == holder_row) holder_row = -1;
    s.active = false;
    out.close(s.row, s.rec, s.pos);
    finished.emplace(s.row, s.rec);
  };

  const float nan = NAN;
  int64_t active = 0;  // streams [0, active) hold a record; the batch runs only over them
  for (;;) {
    for (int64_t b = 0; b < B; ++b) {
      Stream& s = streams[size_t(b)];
      while (!s.active && start(s)) {
        state.reset_stream(b);
        if (s.cur.tokens.empty()) finish(s);  // an empty record: nothing to score
      }
    }
    // Keep the active streams first (moving their state along) so that no row is wasted.
    active = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (!streams[size_t(b)].active) continue;
      if (b != active) {
        std::swap(streams[size_t(b)], streams[size_t(active)]);
        state.copy_stream(active, state, b);
      }
      ++active;
    }
    if (active == 0) break;

    // Where every stream holds its record's last chunk, the call covers the longest of them
    // rounded up to a power of two from 64 (at most L), not whole chunks of padding: one stream
    // (a bedGraph) ran 2,048 positions for a 200-base region. The states after the padding are
    // never used (those records end there).
    int64_t Lc = 64, longest = 0;
    for (int64_t b = 0; b < active; ++b) {
      const Stream& s = streams[size_t(b)];
      longest = std::max(longest, s.cur.end_of_record ? int64_t(s.cur.tokens.size()) : L);
    }
    while (Lc < longest && Lc < L) Lc *= 2;
    Lc = std::min(Lc, L);

    // Assemble the batch: (active, Lc) tokens, targets = the next token of the same record.
    for (int64_t b = 0; b < active; ++b) {
      Stream& s = streams[size_t(b)];
      int32_t* tok = tokens.data() + b * Lc;
      int32_t* tgt = targets.data() + b * Lc;
      std::fill(tok, tok + Lc, int32_t('N'));
      std::fill(tgt, tgt + Lc, -1);
      if (!s.active) continue;
      const int64_t n = int64_t(s.cur.tokens.size());
      if (!s.cur.end_of_record && !s.nxt) {
        io::Chunk c;
        if (!read_chunk(s, c) || c.record_index != s.cur.record_index)
          throw InputError(s.rec.input + ": record '" + s.rec.name + "' ended without its last chunk");
        s.nxt = std::move(c);
      }
      for (int64_t t = 0; t < n; ++t) tok[t] = s.cur.tokens[size_t(t)];
      for (int64_t t = 0; t + 1 < n; ++t) tgt[t] = tok[t + 1];
      if (s.nxt && !s.nxt->tokens.empty()) tgt[n - 1] = s.nxt->tokens[0];
    }

    m.score(tokens.data(), targets.data(), active, Lc, state, acts, lp.data(),
            opt.entropy ? ent.data() : nullptr);

    for (int64_t b = 0; b < active; ++b) {
      Stream& s = streams[size_t(b)];
      const int64_t n = int64_t(s.cur.tokens.size());
      const float* l = lp.data() + b * Lc;
      const int32_t* tgt = targets.data() + b * Lc;
      // Output at token t scores token t+1; token 0 of the record has no score.
      if (s.tokens == 0) {
        if (s.pos.lp) s.pos.lp->append(&nan, 1);
        if (s.pos.ent) s.pos.ent->append(&nan, 1);
      }
      const int64_t m_out = s.nxt ? n : n - 1;  // predictions that land inside the record
      for (int64_t t = 0; t < m_out; ++t)
        if (io::is_acgt(tgt[t])) {
          s.rec.loglik += double(l[t]);
          ++s.rec.scored;
        }
      if (s.pos.lp && m_out > 0) s.pos.lp->append(l, m_out);
      if (s.pos.ent && m_out > 0) s.pos.ent->append(ent.data() + b * Lc, m_out);
      out.bedgraph(s.row, s.rec.input, s.rec.name, std::max<int64_t>(s.rec.region_begin, 0) + s.tokens + 1, l, tgt, m_out);
      s.tokens += n;
      bases_done += n;
      if (s.cur.end_of_record) {
        s.rec.length = s.tokens;
        finish(s);
      } else {
        s.cur = std::move(*s.nxt);
        s.nxt.reset();
      }
    }
    flush();
    if (progress) progress(bases_done);
  }
  flush();

  out.finish(done);
  return done;
}

}  // namespace mambadna::pipelines
