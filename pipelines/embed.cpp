#include "pipelines/embed.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/h5.h"
#include "io/region.h"
#include "io/tokenizer.h"

namespace mambadna::pipelines {

void parse_pool(const std::string& text, Pool& pool, int64_t& bin) {
  bin = 0;
  if (text == "none") pool = Pool::none;
  else if (text == "mean") pool = Pool::mean;
  else if (text == "max") pool = Pool::max;
  else if (text == "last") pool = Pool::last;
  else if (text.rfind("bin:", 0) == 0) {
    pool = Pool::bin;
    try {
      size_t used = 0;
      bin = std::stoll(text.substr(4), &used);
      if (used != text.size() - 4) bin = 0;
    } catch (const std::exception&) {
      bin = 0;
    }
    if (bin < 1) throw UsageError("--pool " + text + ": the bin size K in bin:K must be a positive integer");
  } else {
    throw UsageError("--pool " + text + ": choose none, mean, max, last or bin:K");
  }
}

std::string pool_name(Pool pool, int64_t bin) {
  switch (pool) {
    case Pool::none: return "none";
    case Pool::mean: return "mean";
    case Pool::max: return "max";
    case Pool::last: return "last";
    case Pool::bin: return "bin:" + std::to_string(bin);
  }
  return "?";
}

std::string layer_name(int64_t layer) { return layer < 0 ? "final" : "layer_" + std::to_string(layer); }

namespace {

// Where one region's rows go, per requested layer; rows arrive in position order.
struct RegionSinks {
  struct Layer {
    std::optional<io::H5Appender> positions;  // Pool::none
    std::optional<io::H5Appender> bins;       // Pool::bin
    std::vector<double> acc;                  // mean / max / last / current bin
    int64_t count = 0;                        // rows in acc
    // --strand both, Pool::bin: the reverse strand's sum of each bin (row j: bin j), added as
    // each bin is written.
    io::H5File* rc_bins = nullptr;  // (its dataset: rc_dataset(k))
  };
  std::vector<Layer> layers;
  std::string label;  // the region or record, for messages: "region 'chr1:1-100 (BED line 3)'"
};

// What an invalid character's message offers (positions read from a FASTA keep their places:
// skip reads such a character as N).
constexpr const char* kInvalidHint = " (use --invalid skip or --invalid N to read it as N)";

class Embedder {
 public:
  Embedder(model::Mamba<float>& m, const EmbedOptions& o) : m_(m), o_(o), tok_(o.reader.tok) {
    D_ = m.config().d_model;
    L_ = o.chunk;
    for (size_t i = 0; i < o.layers.size(); ++i) {
      const int64_t l = o.layers[i];
      if (l < -1 || l >= m.config().n_layer)
        throw UsageError("--layer " + std::to_string(l) + ": the model has layers 0.." +
                         std::to_string(m.config().n_layer - 1) + " (-1 = final norm)");
      if (std::find(o.layers.begin(), o.layers.begin() + int64_t(i), l) != o.layers.begin() + int64_t(i))
        throw UsageError("--layer " + std::to_string(l) + " is given twice");
      if (l >= 0) acts_.taps.push_back(l);
    }
    out_.emplace(io::H5File::create(o.output));
    out_->set_provenance("mambadna-embed/1", o.command_line, o.inputs);
    out_->set_attr("/", "model", o.model_path);
    std::string names;
    for (int64_t l : o.layers) {
      if (!names.empty()) names += ',';
      names += layer_name(l);
    }
    out_->set_attr("/", "layers", names);
    out_->set_attr("/", "pooling", pool_name(o.pool, o.bin));
    out_->set_attr("/", "dtype", std::string(o.f16 ? "f16" : "f32"));
    out_->set_attr("/", "strand", std::string(o.both_strands ? "both" : o.stranded ? "bed" : "fwd"));
    out_->set_attr("/", "flank", o.flank);
    out_->set_attr("/", "d_model", D_);
    out_->set_attr("/", "chunk", o.chunk);  // -L: values move by ~1e-6 with it
    out_->set_attr("/", "case", std::string(io::case_mode_name(o.reader.tok.case_mode)));
    out_->set_attr("/", "invalid", std::string(io::invalid_mode_name(o.reader.tok.invalid)));
    const io::H5Type dt = o.f16 ? io::H5Type::f16 : io::H5Type::f32;
    if (o.pool == Pool::mean || o.pool == Pool::max || o.pool == Pool::last)
      for (int64_t l : o.layers) pooled_.emplace_back(*out_, "pooled/" + layer_name(l), dt, io::Shape{D_}, 256);
    t_chrom_.emplace(*out_, "regions/chrom", io::H5Type::string, io::Shape{});
    t_start_.emplace(*out_, "regions/start", io::H5Type::i64, io::Shape{});
    t_end_.emplace(*out_, "regions/end", io::H5Type::i64, io::Shape{});
    t_name_.emplace(*out_, "regions/name", io::H5Type::string, io::Shape{});
    t_strand_.emplace(*out_, "regions/strand", io::H5Type::string, io::Shape{});
    t_input_.emplace(*out_, "regions/input", io::H5Type::string, io::Shape{});
    t_index_.emplace(*out_, "regions/index", io::H5Type::i64, io::Shape{});
    tokens_.resize(size_t(L_));
    rows_.resize(size_t(L_ * D_));
    other_.resize(size_t(L_ * D_));
  }

  EmbedSummary run(const std::function<void(int64_t)>& progress) {
    progress_ = progress;
    // Every input is opened before any work (a missing index stops the run at once); then
    // input by input, in the order given; each row names its input (regions/input).
    const bool indexed = !o_.reader.regions.empty() || o_.both_strands || o_.flank > 0;
    std::vector<std::vector<io::Region>> by_input;
    std::vector<bool> reads(o_.inputs.size(), false);  // SAM/BAM/CRAM: whole reads, through the index
    // With several inputs, one may lack every region (one FASTA a chromosome).
    io::ReaderOptions reads_options = o_.reader;
    reads_options.regions_elsewhere = o_.inputs.size() > 1;
    if (indexed) {
      for (size_t i = 0; i < o_.inputs.size(); ++i)
        reads[i] = io::rereadable_reads(o_.inputs[i]);
      by_input = regions_of_inputs(reads);
    } else {
      io::check_inputs(o_.inputs, o_.reader);
    }
    for (size_t i = 0; i < o_.inputs.size(); ++i) {
      const std::string& in = o_.inputs[i];
      input_ = in;
      if (reads[i]) {
        // The reads that overlap the regions, each whole (as `score -r` and `samtools view` find them).
        records(in, reads_options);
      } else if (!o_.reader.regions.empty()) {
        // The regions on this FASTA's contigs, in BED order (the others are skipped for it).
        io::FastaIndex fa(in);
        for (const auto& r : by_input[i]) region(fa, r);
      } else if (o_.both_strands || o_.flank > 0) {
        // Whole contigs of an indexed FASTA.
        io::FastaIndex fa(in);
        for (const auto& c : fa.contigs()) region(fa, io::Region{c, 0, io::kContigEnd, c}, true);  // named as a record
      } else {
        records(in, o_.reader);
      }
      flush_batch();  // a batch holds one input's rows
    }
    // Every dataset closed before the file (H5File::finish).
    pooled_.clear();
    t_chrom_.reset(), t_start_.reset(), t_end_.reset(), t_name_.reset(), t_strand_.reset(), t_input_.reset();
    t_index_.reset();
    reads_.reset();
    out_->commit();
    return summary_;
  }

 private:
  // The regions each FASTA input has (io::regions_by_input), after every input is opened; an
  // input of reads (a pipe is not one: regions refuse it) takes the regions through its own
  // index, and may not take a flank or a strand (a read is embedded whole, as stored). Throws
  // when no input has any region.
  std::vector<std::vector<io::Region>> regions_of_inputs(const std::vector<bool>& reads) {
    for (size_t i = 0; i < o_.inputs.size(); ++i)
      if (reads[i] && (o_.both_strands || o_.stranded || o_.flank > 0))
        throw UsageError(o_.inputs[i] + ": " + (o_.both_strands ? "--strand both" : o_.stranded ? "--strand bed" : "--flank") +
                         " reads an indexed FASTA; reads (SAM/BAM/CRAM) are embedded whole, as stored "
                         "(--as-sequenced: as sequenced)");
    return io::regions_by_input(o_.inputs, o_.reader, reads);
  }

  // (n, D) rows of requested layer k of the last forward pass.
  const float* layer_rows(size_t k) const {
    const int64_t l = o_.layers[k];
    if (l < 0) return acts_.hidden.data();
    const size_t t = size_t(std::find(acts_.taps.begin(), acts_.taps.end(), l) - acts_.taps.begin());
    return acts_.tapped.data() + int64_t(t) * acts_.M * D_;
  }

  // One forward pass over tokens_[0, n), padded with N to the next power of two from 64 (at
  // most L): a short record or a region's last chunk runs a short pass, not a whole chunk of
  // padding (a 35-base read ran 4,096 positions), and the passes take a few shapes only (each
  // new one replans the activations). The state after the padding is never used.
  void forward(int64_t n) {
    int64_t len = 64;
    while (len < n && len < L_) len *= 2;
    len = std::min(len, L_);
    std::fill(tokens_.begin() + n, tokens_.begin() + len, int32_t('N'));
    m_.forward(tokens_.data(), 1, len, state_, acts_);
  }


  RegionSinks open_sinks(int64_t row, std::string label) {
    RegionSinks s;
    s.label = std::move(label);
    s.layers.resize(o_.layers.size());
    const io::H5Type dt = o_.f16 ? io::H5Type::f16 : io::H5Type::f32;
    for (size_t k = 0; k < o_.layers.size(); ++k) {
      auto& l = s.layers[k];
      const std::string name = std::to_string(row) + "/" + layer_name(o_.layers[k]);
      // Chunks of 1,024 rows (at most 1 MiB), or one of the region's rows where it has fewer (reads).
      if (o_.pool == Pool::none)
        l.positions.emplace(*out_, "per_position/" + name, dt, io::Shape{D_}, 1024, 1, io::H5Chunks::fit);
      if (o_.pool == Pool::bin)
        l.bins.emplace(*out_, "binned/" + name, dt, io::Shape{D_}, 1024, 4, io::H5Chunks::fit);
      l.acc.assign(size_t(D_), o_.pool == Pool::max ? -INFINITY : 0.0);
    }
    return s;
  }

  // A model whose states are not finite (a training run that diverged) embeds nothing: its
  // NaN rows would read as empty regions' (as score and vep refuse it).
  void check_finite(size_t k, const float* rows, int64_t n) const {
    if (std::find_if(rows, rows + n * D_, [](float v) { return !std::isfinite(v); }) != rows + n * D_)
      throw InputError((o_.model_path.empty() ? std::string("the model") : o_.model_path) +
                       ": gives hidden states that are not finite (" + layer_name(o_.layers[k]) + ", in " + input_ +
                       "): its weights do not make a working model (a training run that diverged?)");
  }

  // Rows about to be written as float16 (--dtype f16): a value that rounds past its largest,
  // 65504 (from 65520 on), would be inf.
  void check_half(const RegionSinks& s, size_t k, const float* rows, int64_t n) const {
    if (!o_.f16) return;
    const float* big = std::find_if(rows, rows + n * D_, [](float v) { return std::fabs(v) >= 65520.0f; });
    if (big != rows + n * D_)
      throw InputError((o_.model_path.empty() ? std::string("the model") : o_.model_path) + ": a value of " +
                       layer_name(o_.layers[k]) + " in " + input_ + ", " + s.label + ", is " + number_text(*big) +
                       ", past float16's range (65504): write float32 (--dtype f32)");
  }

  // The region's next n rows (n, D) of requested layer k, in position order; `progress` false
  // for the reverse strand's rows of --strand both, whose positions the forward strand counts.
  void deliver(RegionSinks& s, size_t k, const float* rows, int64_t n, bool progress = true) {
    auto& l = s.layers[k];
    if (k == 0 && progress) positions_done_ += n;
    check_finite(k, rows, n);
    switch (o_.pool) {
      case Pool::none:
        check_half(s, k, rows, n);
        l.positions->append(rows, n);
        break;
      case Pool::mean:
        for (int64_t i = 0; i < n; ++i)
          for (int64_t d = 0; d < D_; ++d) l.acc[size_t(d)] += rows[i * D_ + d];
        l.count += n;
        break;
      case Pool::max:
        for (int64_t i = 0; i < n; ++i)
          for (int64_t d = 0; d < D_; ++d) l.acc[size_t(d)] = std::max(l.acc[size_t(d)], double(rows[i * D_ + d]));
        l.count += n;
        break;
      case Pool::last:
        if (n > 0) {
          for (int64_t d = 0; d < D_; ++d) l.acc[size_t(d)] = rows[(n - 1) * D_ + d];
          l.count += n;
        }
        break;
      case Pool::bin:
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t d = 0; d < D_; ++d) l.acc[size_t(d)] += rows[i * D_ + d];
          if (++l.count == o_.bin) flush_bin(s, k);  // bins are counted from the region start
        }
        break;
    }
  }

  // --strand both: layer k's reverse-strand rows (or bin sums) in the scratch file.
  static std::string rc_dataset(size_t k) { return "rc/" + std::to_string(k); }

  void flush_bin(RegionSinks& s, size_t k) {
    RegionSinks::Layer& l = s.layers[k];
    std::vector<float> row(static_cast<size_t>(D_));
    double rows = double(l.count);
    if (l.rc_bins) {  // both strands: the bin's reverse-strand sum, and as many rows again
      l.rc_bins->read_rows(rc_dataset(k), l.bins->rows(), row.data(), 1);
      for (int64_t d = 0; d < D_; ++d) l.acc[size_t(d)] += row[size_t(d)];
      rows *= 2;
    }
    for (int64_t d = 0; d < D_; ++d) row[size_t(d)] = float(l.acc[size_t(d)] / rows);
    check_half(s, k, row.data(), 1);
    l.bins->append(row.data(), 1);
    std::fill(l.acc.begin(), l.acc.end(), 0.0);
    l.count = 0;
  }

  // Writes the row's pooled values and its regions/ entry; a per-position or binned group gets
  // the same facts as attributes. index: the region's place in the list given (-1: a record).
  void close_sinks(RegionSinks& s, const std::string& chrom, int64_t start, int64_t end,
                   const std::string& name, const std::string& strand, int64_t index,
                   const std::optional<io::Alignment>& read = std::nullopt) {
    for (size_t k = 0; k < s.layers.size(); ++k) {
      auto& l = s.layers[k];
      if (o_.pool == Pool::bin && l.count > 0) flush_bin(s, k);
      if (l.positions) l.positions->finish();
      if (l.bins) l.bins->finish();
      if (o_.pool == Pool::mean || o_.pool == Pool::max || o_.pool == Pool::last) {
        std::vector<float> row(size_t(D_), NAN);  // an empty region pools to NaN
        if (l.count > 0)
          for (int64_t d = 0; d < D_; ++d)
            row[size_t(d)] = float(o_.pool == Pool::mean ? l.acc[size_t(d)] / double(l.count) : l.acc[size_t(d)]);
        check_half(s, k, row.data(), 1);
        pooled_[k].append(row.data(), 1);
      }
    }
    t_chrom_->append(chrom);
    t_start_->append(&start, 1);
    t_end_->append(&end, 1);
    t_name_->append(name);
    t_strand_->append(strand);
    t_input_->append(input_);
    t_index_->append(&index, 1);
    if (o_.pool == Pool::none || o_.pool == Pool::bin) {
      const std::string group = (o_.pool == Pool::none ? "per_position/" : "binned/") + std::to_string(summary_.regions);
      out_->set_attr(group, "chrom", chrom);
      out_->set_attr(group, "start", start);
      out_->set_attr(group, "end", end);
      out_->set_attr(group, "name", name);
      out_->set_attr(group, "strand", strand);
      out_->set_attr(group, "index", index);
    }
    if (read && !reads_) open_reads(summary_.regions);
    if (reads_) reads_->append(read.value_or(io::kNotRead));
    ++summary_.regions;
    summary_.reads += read.has_value();
  }

  // reads/ is made at the first read, or for an input of reads; the rows before are kNotRead.
  void open_reads(int64_t rows_before) { reads_.emplace(*out_, rows_before); }

  // A region of an indexed FASTA: [begin, end) clipped to the contig, with flank and strands.
  // What messages call a region: its text and BED line, or a whole record its name.
  static std::string label_of(const io::Region& r, bool record) {
    return record ? "record '" + r.contig + "'" : "region '" + io::describe_region(r) + "'";
  }

  // A region, or (record) a whole contig read by position for --flank or --strand both.
  void region(const io::FastaIndex& fa, io::Region r, bool record = false) {
    const int64_t len = fa.length(r.contig);
    io::clip_to_contig(r, len);
    if (o_.stranded && r.strand == '-') {
      flush_batch();
      return minus_region(fa, r);
    }
    const int64_t b = r.begin, e = r.end, n_pos = e - b;
    const int64_t s0 = std::max<int64_t>(0, b - o_.flank);  // the flank's first base
    const int64_t hi = std::min(len, e + o_.flank);         // the reverse strand's flank's first base, + 1
    // Fits in a chunk with its flank (both strands: the two in one, as they run in one pass):
    // wait for others.
    if (o_.both_strands ? 2 * std::max(e - s0, hi - b) <= L_ : e - s0 <= L_) {
      const std::string seq = fa.fetch(r.contig, s0, e);
      Short q{r.contig, io::region_name(r, b, e), b, e, b - s0, {}, o_.both_strands ? "both" : "+"};
      q.index = r.index;
      q.label = label_of(r, record);
      q.tokens.resize(seq.size());
      for (size_t i = 0; i < seq.size(); ++i)
        q.tokens[i] = io::aligned_token(tok_, uint8_t(seq[i]), input_, r.contig, s0 + int64_t(i), kInvalidHint);
      std::optional<Short> rc;
      if (o_.both_strands && n_pos > 0) {  // the reverse complement of [b, hi), its flank first
        std::string back = fa.fetch(r.contig, b, hi);
        io::reverse_complement(back);
        rc.emplace(Short{r.contig, q.name, b, e, hi - e, {}, "-"});
        rc->tokens.resize(back.size());
        for (size_t i = 0; i < back.size(); ++i)
          rc->tokens[i] =
              io::aligned_token(tok_, uint8_t(back[i]), input_, r.contig, hi - 1 - int64_t(i), kInvalidHint);
        q.rc_next = true;
      }
      enqueue(std::move(q), std::move(rc));
      return;
    }
    flush_batch();  // the regions before this one come out first
    const int64_t row = summary_.regions;
    RegionSinks sinks = open_sinks(row, label_of(r, record));
    const size_t NLy = o_.layers.size();

    // --strand both: a position's row is the mean of its two strands' rows, the reverse strand
    // run first (from e + flank down to b). What of it the pooling needs: mean, the reverse
    // rows summed into the same sums (2n rows); last, its row at e − 1; bin, each bin's sum,
    // kept in a scratch file of the output's size; none and max, every row, kept in a scratch
    // file position-aligned (n × D floats a layer), which the forward pass reads back. Memory
    // does not grow with the region.
    std::optional<io::H5File> scratch;
    const bool aligned = o_.both_strands && n_pos > 0 && (o_.pool == Pool::none || o_.pool == Pool::max);
    std::vector<std::vector<float>> rc_last(NLy);
    if (o_.both_strands && n_pos > 0) {
      const int64_t n_bins = o_.pool == Pool::bin ? (n_pos + o_.bin - 1) / o_.bin : 0;
      if (aligned || n_bins > 0) {
        // Beside the output, or in the temporary directory when it goes to standard output.
        scratch.emplace(io::H5File::create_scratch(o_.output, "rc", "the reverse strand's scratch file"));
        for (size_t k = 0; k < NLy; ++k) scratch->create_rows(rc_dataset(k), aligned ? n_pos : n_bins, D_);
      }
      std::vector<std::vector<double>> bin_sum(NLy, std::vector<double>(size_t(D_), 0.0));
      std::vector<int64_t> bin_at(NLy, -1);  // the bin being summed (positions come high to low)
      const auto write_bin = [&](size_t k) {
        for (int64_t d = 0; d < D_; ++d) rows_[size_t(d)] = float(bin_sum[k][size_t(d)]);
        scratch->write_rows(rc_dataset(k), bin_at[k], rows_.data(), 1);
        std::fill(bin_sum[k].begin(), bin_sum[k].end(), 0.0);
      };
      reverse_walk(fa, r.contig, b, std::min(len, e + o_.flank), [&](int64_t lo, int64_t top) {
        // row i is position top-1-i; the positions kept, lo .. keep_hi-1, are its rows from top-keep_hi
        const int64_t keep_hi = std::min(top, e);
        if (keep_hi <= lo) return;
        const int64_t m = keep_hi - lo;
        for (size_t k = 0; k < NLy; ++k) {
          const float* kept = layer_rows(k) + (top - keep_hi) * D_;  // (m, D): positions keep_hi-1 down to lo
          if (o_.pool == Pool::mean) {
            deliver(sinks, k, kept, m, false);  // (a sum: the order does not matter)
            continue;
          }
          check_finite(k, kept, m);
          if (o_.pool == Pool::last) {
            if (keep_hi == e) rc_last[k].assign(kept, kept + D_);
          } else if (o_.pool == Pool::bin) {
            for (int64_t i = 0; i < m; ++i) {
              const int64_t j = (keep_hi - 1 - i - b) / o_.bin;
              if (j != bin_at[k]) {
                if (bin_at[k] >= 0) write_bin(k);
                bin_at[k] = j;
              }
              for (int64_t d = 0; d < D_; ++d) bin_sum[k][size_t(d)] += kept[i * D_ + d];
            }
          } else {  // none, max: stored ascending
            for (int64_t i = 0; i < m; ++i) std::copy_n(kept + (m - 1 - i) * D_, D_, rows_.data() + i * D_);
            scratch->write_rows(rc_dataset(k), lo - b, rows_.data(), m);
          }
        }
      });
      for (size_t k = 0; k < NLy; ++k) {
        if (bin_at[k] >= 0) write_bin(k);
        if (o_.pool == Pool::bin) sinks.layers[k].rc_bins = &*scratch;
      }
    }

    state_.reset();
    for (int64_t p = s0; p < e; p += L_) {
      const int64_t n = std::min(L_, e - p);
      std::string s = fa.fetch(r.contig, p, p + n);
      for (int64_t i = 0; i < n; ++i)
        tokens_[size_t(i)] = io::aligned_token(tok_, uint8_t(s[size_t(i)]), input_, r.contig, p + i, kInvalidHint);
      forward(n);
      const int64_t from = std::max(p, b);  // flank positions are not written
      if (from < p + n) {
        const int64_t m = p + n - from;
        for (size_t k = 0; k < NLy; ++k) {
          const float* rows = layer_rows(k) + (from - p) * D_;
          if (aligned) {
            scratch->read_rows(rc_dataset(k), from - b, other_.data(), m);
            for (int64_t i = 0; i < m * D_; ++i) rows_[size_t(i)] = 0.5f * (rows[i] + other_[size_t(i)]);
            rows = rows_.data();
          }
          deliver(sinks, k, rows, m);
        }
      }
      summary_.bases += n;
      if (progress_) progress_(positions_done_);
    }
    if (o_.pool == Pool::last && o_.both_strands)
      for (size_t k = 0; k < NLy; ++k)
        if (!rc_last[k].empty())
          for (int64_t d = 0; d < D_; ++d)
            sinks.layers[k].acc[size_t(d)] = 0.5 * (sinks.layers[k].acc[size_t(d)] + double(rc_last[k][size_t(d)]));
    close_sinks(sinks, r.contig, b, e, io::region_name(r, b, e), o_.both_strands ? "both" : "+", r.index);
    scratch.reset();  // never committed: its destructor removes the temporary file
  }

  // A region on the '-' strand (stranded): the reverse complement of [begin, end), read from
  // its flank past `end` down to `begin`; rows in that order (row j is base end − 1 − j).
  void minus_region(const io::FastaIndex& fa, io::Region r) {
    const int64_t len = fa.length(r.contig);  // r clipped to it (region)
    const int64_t b = r.begin, e = r.end;
    RegionSinks sinks = open_sinks(summary_.regions, label_of(r, false));
    reverse_walk(fa, r.contig, b, std::min(len, e + o_.flank), [&](int64_t lo, int64_t top) {
      const int64_t n = top - lo, skip = std::max<int64_t>(0, top - e);  // flank rows (positions >= e)
      if (skip < n)
        for (size_t k = 0; k < o_.layers.size(); ++k)
          deliver(sinks, k, layer_rows(k) + skip * D_, n - skip);
    });
    close_sinks(sinks, r.contig, b, e, io::region_name(r, b, e), "-", r.index);
  }

  // The reverse complement of contig[b, hi) through the model from a zero state, chunk by chunk
  // from hi down to b; after each chunk [lo, top), `use(lo, top)` reads its rows (row i is base
  // top − 1 − i).
  template <typename F>
  void reverse_walk(const io::FastaIndex& fa, const std::string& contig, int64_t b, int64_t hi, F&& use) {
    state_.reset();
    for (int64_t top = hi; top > b; top -= L_) {
      const int64_t lo = std::max(b, top - L_), n = top - lo;
      std::string s = fa.fetch(contig, lo, top);
      io::reverse_complement(s);
      for (int64_t i = 0; i < n; ++i)
        tokens_[size_t(i)] = io::aligned_token(tok_, uint8_t(s[size_t(i)]), input_, contig, top - 1 - i, kInvalidHint);
      forward(n);
      use(lo, top);
      summary_.bases += n;
      if (progress_) progress_(positions_done_);
    }
  }

  // Records or regions that fit in a chunk, waiting to run side by side, one a stream: their
  // tokens (a region's flank first: `skip` of them, not written) and where their rows go.
  struct Short {
    std::string chrom, name;
    int64_t start = 0, end = 0, skip = 0;
    std::vector<uint8_t> tokens;
    const char* strand = "+";
    std::optional<io::Alignment> read{};  // a SAM/BAM/CRAM read's place
    int64_t index = -1;                   // the region's place in the list given; -1: a record
    std::string label{};                  // for messages (RegionSinks::label)
    bool rc_next = false;                 // --strand both: the next one is its reverse strand (rows end − 1 down)
  };
  std::vector<Short> batch_;
  int64_t batch_len_ = 0;  // the longest of them

  // A pass's length for the waiting ones when the longest has n tokens: n rounded up to 8.
  static int64_t batch_pass_length(int64_t n) { return std::max<int64_t>(8, (n + 7) / 8 * 8); }

  // Queues a short one (and its reverse strand, which runs in the same pass), running the
  // queue first when it would pass kBatch or about L rows.
  void enqueue(Short r, std::optional<Short> rc = std::nullopt) {
    const int64_t len = std::max({batch_len_, int64_t(r.tokens.size()), rc ? int64_t(rc->tokens.size()) : 0});
    const int64_t more = rc ? 2 : 1;
    if (int64_t(batch_.size()) + more > kBatch || (int64_t(batch_.size()) + more) * batch_pass_length(len) > L_)
      flush_batch();
    for (Short* q : {&r, rc ? &*rc : nullptr}) {
      if (!q) continue;
      batch_len_ = std::max(batch_len_, int64_t(q->tokens.size()));
      batch_.push_back(std::move(*q));
    }
  }

  // Runs the waiting short ones as one pass of (their count, their longest length rounded up
  // to 8) from zero states, and writes them in input order.
  void flush_batch() {
    if (batch_.empty()) return;
    const int64_t Bp = int64_t(batch_.size()), Lp = batch_pass_length(batch_len_);
    batch_tokens_.assign(size_t(Bp * Lp), int32_t('N'));
    for (int64_t i = 0; i < Bp; ++i)
      std::copy(batch_[size_t(i)].tokens.begin(), batch_[size_t(i)].tokens.end(), batch_tokens_.begin() + i * Lp);
    if (!batch_state_ || batch_state_->B < Bp) batch_state_.emplace(m_.config(), Bp);  // zero
    else
      for (int64_t i = 0; i < Bp; ++i) batch_state_->reset_stream(i);
    m_.forward(batch_tokens_.data(), Bp, Lp, *batch_state_, acts_);
    for (int64_t i = 0; i < Bp; ++i) {
      const Short& r = batch_[size_t(i)];
      const int64_t n = r.end - r.start;
      RegionSinks sinks = open_sinks(summary_.regions, r.label);
      if (n > 0)
        for (size_t k = 0; k < o_.layers.size(); ++k) {
          const float* rows = layer_rows(k) + (i * Lp + r.skip) * D_;
          if (r.rc_next) {  // both strands: each position's mean (the reverse rows run end − 1 down)
            const float* back = layer_rows(k) + ((i + 1) * Lp + batch_[size_t(i + 1)].skip) * D_;
            for (int64_t p = 0; p < n; ++p)
              for (int64_t d = 0; d < D_; ++d)
                rows_[size_t(p * D_ + d)] = 0.5f * (rows[p * D_ + d] + back[(n - 1 - p) * D_ + d]);
            rows = rows_.data();
          }
          deliver(sinks, k, rows, n);
        }
      close_sinks(sinks, r.chrom, r.start, r.end, r.name, r.strand, r.index, r.read);
      summary_.bases += int64_t(r.tokens.size());
      if (r.rc_next) summary_.bases += int64_t(batch_[size_t(++i)].tokens.size());
    }
    batch_.clear();
    batch_len_ = 0;
    if (progress_) progress_(positions_done_);
  }

  // A record's strand: '-' for a read the reader turned back to the orientation it was
  // sequenced in (its bases the reverse complement of the reference's), else '+'.
  static const char* strand_of(const io::Chunk& c) { return c.reversed ? "-" : "+"; }

  // Every record of a sequence file, whole and forward, streamed: those that fit in a chunk
  // side by side (up to kBatch of them, about L rows a pass), longer ones chunk by chunk.
  void records(const std::string& input, const io::ReaderOptions& ro) {
    io::SequenceReader reader(input, ro);
    // An input of reads has reads/ even when it gives none (a region without reads).
    if (!reads_ && io::holds_reads(reader.format())) open_reads(summary_.regions);
    io::Chunk c;
    std::optional<RegionSinks> sinks;
    int64_t length = 0;
    while (reader.next(c, size_t(L_))) {
      if (c.begin_of_record && c.end_of_record) {  // a whole record: wait for others
        const int64_t n = int64_t(c.tokens.size());
        // (a read found through a region: regions/index is that region's)
        enqueue(Short{c.record, c.record, 0, n, 0, std::move(c.tokens), strand_of(c), std::move(c.alignment),
                      reader.region_index(), "record '" + c.record + "'"});
        continue;
      }
      flush_batch();  // the records before this long one come out first
      if (c.begin_of_record) {
        state_.reset();
        sinks = open_sinks(summary_.regions, "record '" + c.record + "'");
        length = 0;
      }
      const int64_t n = int64_t(c.tokens.size());
      if (n > 0) {
        for (int64_t i = 0; i < n; ++i) tokens_[size_t(i)] = c.tokens[size_t(i)];
        forward(n);
        for (size_t k = 0; k < o_.layers.size(); ++k) deliver(*sinks, k, layer_rows(k), n);
      }
      length += n;
      summary_.bases += n;
      if (progress_) progress_(positions_done_);
      if (c.end_of_record)
        close_sinks(*sinks, c.record, 0, length, c.record, strand_of(c), reader.region_index(), c.alignment);
    }
    flush_batch();
  }

  model::Mamba<float>& m_;
  const EmbedOptions& o_;
  io::Tokenizer tok_;
  int64_t D_ = 0, L_ = 0;
  static constexpr int64_t kBatch = 128;  // short records a pass at most (their states)
  model::State<float> state_{m_.config(), 1};
  std::optional<model::State<float>> batch_state_;  // for the largest pass of short records yet
  std::vector<int32_t> batch_tokens_;  // (Bp, Lp): a pass of short records, N-padded
  model::Activations<float> acts_;
  std::optional<io::H5File> out_;
  std::vector<io::H5Appender> pooled_;
  std::optional<io::H5Appender> t_chrom_, t_start_, t_end_, t_name_, t_strand_, t_input_, t_index_;
  std::optional<io::H5ReadColumns> reads_;
  std::string input_;  // the input being read (as given), for rows and messages
  std::vector<int32_t> tokens_;      // (L): one stream's pass
  std::vector<float> rows_, other_;  // (L, D): both strands' rows averaged; the reverse strand's read back
  EmbedSummary summary_;
  int64_t positions_done_ = 0;  // rows of regions or records delivered (flanks and a second strand not counted)
  std::function<void(int64_t)> progress_;
};

}  // namespace

EmbedSummary embed(model::Mamba<float>& model, const EmbedOptions& options,
                   const std::function<void(int64_t)>& progress) {
  if (options.inputs.empty()) throw UsageError("embed: no input");
  if (options.output.empty()) throw UsageError("embed: no output file (-o)");
  if (options.chunk < 1) throw UsageError("embed: chunk length must be >= 1");
  if (options.flank < 0) throw UsageError("embed: --flank must be >= 0");
  if (options.layers.empty()) throw UsageError("embed: no layer");
  // A row per position (and strands averaged position by position): a character that
  // --invalid skip would drop is read as N, for whole records as for regions.
  EmbedOptions o = options;
  if (o.reader.tok.invalid == io::InvalidMode::skip) o.reader.tok.invalid = io::InvalidMode::to_n;
  Embedder e(model, o);  // regions go through io::regions_by_input, which knows the inputs
  return e.run(progress);
}

}  // namespace mambadna::pipelines
