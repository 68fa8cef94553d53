// Regions of indexed FASTA/FASTQ (faidx), and SAM/BAM/CRAM reads (whole file or through the index).
#include <htslib/cram.h>
#include <htslib/faidx.h>
#include <htslib/sam.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <vector>

#include "io/bgzf_end.h"
#include "io/error.h"
#include "io/fasta_index.h"
#include "io/reader_source.h"

namespace mambadna::io {

namespace {

// faidx fetches at most this many bases at a time, so memory stays bounded for any region.
constexpr int64_t kFetchWindow = int64_t(1) << 20;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
struct FaiDeleter {
  void operator()(faidx_t* p) const { fai_destroy(p); }
};
struct HdrDeleter {
  void operator()(sam_hdr_t* p) const { sam_hdr_destroy(p); }
};
struct BamDeleter {
  void operator()(bam1_t* p) const { bam_destroy1(p); }
};
struct IdxDeleter {
  void operator()(hts_idx_t* p) const { hts_idx_destroy(p); }
};
struct ItrDeleter {
  void operator()(hts_itr_t* p) const { hts_itr_destroy(p); }
};

class FaidxRegions final : public SequenceReader::Source {
 public:
  FaidxRegions(const std::string& path, Format format, const std::string& description,
               const ReaderOptions& options)
      : tok_(options.tok) {
    this->path = path;
    this->format = format;
    this->description = description;
    // The index must exist: without FAI_CREATE htslib does not build one behind the user's back.
    if (::access((path + ".fai").c_str(), F_OK) != 0)
      throw InputError(path + ": regions need a faidx index (" + path + ".fai not found): run 'samtools " +
                       (format == Format::fastq ? "fqidx" : "faidx") + " " + path + "'");
    const std::vector<FaiRecord> fai = read_checked_fai(path, format == Format::fastq);
    fai_.reset(fai_load3_format(path.c_str(), nullptr, nullptr, 0,
                                format == Format::fastq ? FAI_FASTQ : FAI_FASTA));
    if (!fai_)
      throw InputError(path + ": cannot load its faidx index (a bgzip file also needs its .gzi): "
                              "run 'samtools faidx " + path + "' to rebuild it");
    const auto lengths = fai_lengths(fai);
    regions_ = regions_present(
        path, options.regions,
        [&](const std::string& c) {
          const auto it = lengths.find(c);
          return it == lengths.end() ? int64_t(-1) : it->second;
        },
        options.on_regions_skipped, options.regions_elsewhere);
    regions_here = int64_t(regions_.size());
    total = 0;
    for (Region& r : regions_) {
      const int64_t len = lengths.at(r.contig);  // regions_present keeps those it has
      clip_to_contig(r, len);
      total += r.end - r.begin;
    }
  }

  bool next(Chunk& out, size_t L) override {
    if (!in_region_) {
      if (size_t(records) == regions_.size()) return false;
      const Region& r = regions_[size_t(records)];
      ++records;
      in_region_ = true;
      pos_ = fetched_to_ = r.begin;
      wp_ = we_ = nullptr;
      out.begin_of_record = true;
    } else {
      out.begin_of_record = false;
    }
    const Region& r = regions_[size_t(records - 1)];
    out.record = r.contig;
    out.record_index = records - 1;
    out.tokens.resize(L);
    size_t n = 0;
    int64_t first = pos_;
    bool ended = false;
    for (;;) {
      if (wp_ == we_) {
        if (fetched_to_ == r.end) {
          ended = true;
          break;
        }
        fetch(r);
      }
      auto stop = tok_.tokenize(wp_, we_, out.tokens.data(), n, L, pos_, first);
      if (stop == Tokenizer::Stop::full) break;
      if (stop == Tokenizer::Stop::invalid) throw_invalid_byte(path, r.contig, pos_, *wp_);
    }
    out.tokens.resize(n);
    out.offset = n > 0 ? first : pos_;
    out.end_of_record = ended;
    if (ended) in_region_ = false;
    return true;
  }

  int64_t record_length() const override {
    return records > 0 ? regions_[size_t(records - 1)].length() : -1;
  }
  std::string region_name() const override {
    if (records == 0) return {};
    const Region& r = regions_[size_t(records - 1)];  // clipped to its contig
    return io::region_name(r, r.begin, r.end);
  }
  int64_t region_index() const override { return records == 0 ? -1 : regions_[size_t(records - 1)].index; }

 private:
  void fetch(const Region& r) {
    int64_t to = std::min(r.end, fetched_to_ + kFetchWindow);
    hts_pos_t len = 0;
    window_.reset(faidx_fetch_seq64(fai_.get(), r.contig.c_str(), fetched_to_, to - 1, &len));
    if (!window_ || len != to - fetched_to_)
      throw InputError(where(path, r.contig, fetched_to_) + ": cannot fetch " +
                       format_region(Region{r.contig, fetched_to_, to, {}}) +
                       " (is the faidx index out of date?)");
    wp_ = reinterpret_cast<const uint8_t*>(window_.get());
    we_ = wp_ + len;
    pos_ = fetched_to_;
    fetched_to_ = to;
  }

  Tokenizer tok_;
  std::vector<Region> regions_;  // clipped to their contigs
  std::unique_ptr<faidx_t, FaiDeleter> fai_;
  bool in_region_ = false;
  int64_t pos_ = 0;         // contig position of *wp_
  int64_t fetched_to_ = 0;  // end of the fetched part of the region
  std::unique_ptr<char, FreeDeleter> window_;
  const uint8_t* wp_ = nullptr;
  const uint8_t* we_ = nullptr;
};

class AlignmentSource final : public SequenceReader::Source {
 public:
  AlignmentSource(HtsFilePtr fp, const std::string& path, Format format,
                  const std::string& description, const ReaderOptions& options)
      : fp_(std::move(fp)), tok_(options.tok), mask_(options.filter.flag_mask()),
        has_reference_(!options.reference.empty()), as_sequenced_(options.as_sequenced) {
    this->path = path;
    this->format = format;
    this->description = description;
    if (has_reference_) {
      if (options.reference == "-")
        throw UsageError("--reference -: a CRAM reference is read by position (a FASTA with its .fai), "
                         "not from standard input; give its file");
      if (::access(options.reference.c_str(), R_OK) != 0)
        throw InputError(options.reference + ": cannot open the reference: " + std::strerror(errno));
      if (hts_set_opt(fp_.get(), CRAM_OPT_REFERENCE, options.reference.c_str()) < 0) {
        HtsFilePtr ref(hts_open(options.reference.c_str(), "r"));
        const bool gzipped = ref && hts_get_format(ref.get())->compression == gzip;
        throw InputError(path + ": cannot use the reference " + options.reference +
                         (gzipped ? ": it is gzip-compressed, and a reference is read by position: "
                                    "recompress it with bgzip and index it with 'samtools faidx'"
                                  : std::string()));
      }
    }
    if (options.threads > 0 && (fp_->is_bgzf || fp_->is_cram) &&
        hts_set_threads(fp_.get(), options.threads) < 0)
      throw InputError(path + ": cannot start " + std::to_string(options.threads) +
                       " decompression threads");
    if (fp_->is_bgzf) bgzf_check_complete(fp_->fp.bgzf, path);  // BAM or bgzipped SAM cut short
    if (fp_->is_cram && cram_check_EOF(fp_->fp.cram) == 0)  // 2: a stream, which cannot tell
      throw InputError(path + ": truncated: the CRAM end-of-file container is missing (a copy cut short?)");
    threads_ = options.threads;
    hdr_.reset(sam_hdr_read(fp_.get()));
    if (!hdr_) throw InputError(path + ": cannot read the " + format_name(format) + " header");
    b_.reset(bam_init1());
    if (!b_) throw std::bad_alloc();
    if (!options.regions.empty()) {
      idx_.reset(sam_index_load3(fp_.get(), path.c_str(), nullptr, HTS_IDX_SILENT_FAIL));
      if (!idx_) {
        // One that is there but does not load (corrupt, or of another file) is not missing.
        // The names htslib looks for, in its order: x.bam.csi before x.bam.bai, then x.bai.
        std::string found;
        auto other = [&](const char* ext) { return std::filesystem::path(path).replace_extension(ext).string(); };
        const std::vector<std::string> names =
            format == Format::cram ? std::vector<std::string>{path + ".crai", other(".crai")}
                                   : std::vector<std::string>{path + ".csi", other(".csi"), path + ".bai", other(".bai")};
        for (const std::string& name : names)
          if (found.empty() && ::access(name.c_str(), F_OK) == 0) found = name;
        if (!found.empty())
          throw InputError(path + ": its index " + found + " cannot be read (corrupt, or another file's): run "
                           "'samtools index " + path + "' again");
        throw InputError(path + ": regions need an index (.bai, .csi or .crai): run 'samtools index " +
                         path + "'");
      }
      const auto tid_of = [&](const std::string& c) { return sam_hdr_name2tid(hdr_.get(), c.c_str()); };
      for (const Region& r : regions_present(
               path, options.regions,
               [&](const std::string& c) { return tid_of(c) >= 0 ? int64_t(sam_hdr_tid2len(hdr_.get(), tid_of(c))) : -1; },
               options.on_regions_skipped, options.regions_elsewhere)) {
        queries_.push_back({tid_of(r.contig), r.begin, r.end == kContigEnd ? HTS_POS_MAX : r.end});
        query_regions_.push_back(r);
        clip_to_contig(query_regions_.back(), int64_t(sam_hdr_tid2len(hdr_.get(), queries_.back().tid)));
      }
      by_region_ = true;
      regions_here = int64_t(queries_.size());
    }
  }

  bool next(Chunk& out, size_t L) override {
    if (!in_read_) {
      if (!next_read()) return false;
      in_read_ = true;
      out.begin_of_record = true;
    } else {
      out.begin_of_record = false;
    }
    out.record = name_;
    out.record_index = records - 1;
    out.reversed = reversed_;
    out.alignment = alignment_;
    out.tokens.resize(L);
    size_t n = 0;
    int64_t first = pos_;
    const uint8_t* end = seq_.data() + seq_.size();
    auto stop = tok_.tokenize(sp_, end, out.tokens.data(), n, L, pos_, first);
    if (stop == Tokenizer::Stop::invalid) throw_invalid_byte(path, name_, pos_, *sp_);
    out.tokens.resize(n);
    out.offset = n > 0 ? first : pos_;
    out.end_of_record = stop == Tokenizer::Stop::end;
    if (out.end_of_record) in_read_ = false;
    return true;
  }

  int64_t record_length() const override { return records > 0 ? int64_t(seq_.size()) : -1; }
  // Through regions: the region whose query gave the read (one that overlaps two is given by
  // each, as samtools view gives it).
  std::string region_name() const override {
    if (!by_region_ || records == 0) return {};
    const Region& r = query_regions_[next_query_ - 1];
    return io::region_name(r, r.begin, r.end);
  }
  int64_t region_index() const override {
    return by_region_ && records > 0 ? query_regions_[next_query_ - 1].index : -1;
  }

 private:
  struct Query {
    int tid;
    hts_pos_t begin, end;
  };

  // Reads up to the next read that passes the filter; false at the end.
  bool next_read() {
    for (;;) {
      int rc;
      if (!by_region_) {
        rc = sam_read1(fp_.get(), hdr_.get(), b_.get());
        if (rc == -1 && fp_->is_bgzf)  // a pipe cut short ends like a whole file
          bgzf_check_ended(fp_->fp.bgzf, threads_, path, " after read " + std::to_string(records));
      } else {
        if (!itr_) {
          if (next_query_ == queries_.size()) return false;
          const Query& q = queries_[next_query_++];
          itr_.reset(sam_itr_queryi(idx_.get(), q.tid, q.begin, q.end));
          if (!itr_) throw InputError(path + ": cannot query the index");
        }
        rc = sam_itr_next(fp_.get(), itr_.get(), b_.get());
        if (rc == -1) {
          itr_.reset();
          continue;
        }
      }
      if (rc == -1) return false;
      if (rc < -1) read_failed();
      if (b_->core.flag & mask_) continue;
      break;
    }
    ++records;
    name_ = bam_get_qname(b_.get());
    const uint8_t* s = bam_get_seq(b_.get());
    int32_t len = b_->core.l_qseq;
    seq_.resize(size_t(len));
    for (int32_t i = 0; i < len; ++i) seq_[size_t(i)] = uint8_t(seq_nt16_str[bam_seqi(s, i)]);
    const bam1_core_t& core = b_->core;
    const char* contig = core.tid >= 0 ? sam_hdr_tid2name(hdr_.get(), core.tid) : nullptr;
    alignment_.contig = contig ? contig : "*";
    alignment_.pos = core.pos;
    alignment_.end = core.pos >= 0 ? bam_endpos(b_.get()) : -1;
    alignment_.flag = core.flag;
    alignment_.mapq = core.qual;
    reversed_ = as_sequenced_ && (core.flag & BAM_FREVERSE);
    if (reversed_) {
      std::reverse(seq_.begin(), seq_.end());
      for (auto& c : seq_) c = complement_base(c);
    }
    sp_ = seq_.data();
    pos_ = 0;
    return true;
  }

  [[noreturn]] void read_failed() const {
    std::string after = records > 0 ? " after read '" + name_ + "'" : "";
    if (format == Format::cram && !has_reference_)
      throw InputError(path + ": cannot decode the CRAM data" + after +
                       ": its reference sequence is not available; give the reference FASTA "
                       "with --reference");
    if (format == Format::cram)
      throw InputError(path + ": cannot decode the CRAM data" + after +
                       " (does --reference match the reference the file was written with?)");
    // A SAM line that does not parse: htslib counts its lines and leaves the text in its
    // buffer, QNAME first. Not so where a pool parses (bgzip with threads), where an index's
    // seek made the count start anew (regions), or where the data broke off (the buffer holds
    // the line before).
    const bool broken = fp_->is_bgzf && fp_->fp.bgzf->errcode != 0;
    if (format == Format::sam && !(fp_->is_bgzf && threads_ > 0) && !by_region_ && !broken && fp_->lineno > 0 &&
        fp_->line.s) {
      const char* s = fp_->line.s;
      const size_t n = std::min(fp_->line.m, size_t(255));
      size_t q = 0;
      while (q < n && s[q] != '\t' && s[q] != '\0') ++q;
      throw InputError(path + ": cannot read SAM line " + std::to_string(fp_->lineno) + " (read '" +
                       std::string(s, q) + "')" + after + ": it does not parse (htslib's line above says why)");
    }
    throw InputError(path + ": cannot read " + format_name(format) + " record" + after +
                     " (corrupt or truncated file?)");
  }

  HtsFilePtr fp_;
  Tokenizer tok_;
  uint16_t mask_;
  bool has_reference_;
  bool as_sequenced_;  // reverse-strand reads reverse-complemented back (ReaderOptions)
  bool reversed_ = false;  // the current read was turned back (as_sequenced, FLAG 0x10)
  Alignment alignment_;    // the current read's
  std::unique_ptr<sam_hdr_t, HdrDeleter> hdr_;
  std::unique_ptr<bam1_t, BamDeleter> b_;
  int threads_ = 0;  // decompression threads
  std::unique_ptr<hts_idx_t, IdxDeleter> idx_;
  std::unique_ptr<hts_itr_t, ItrDeleter> itr_;
  std::vector<Query> queries_;
  std::vector<Region> query_regions_;  // (queries_): the regions, clipped to their contigs
  bool by_region_ = false;  // reads through queries_ (none: no read), not the whole file
  size_t next_query_ = 0;
  bool in_read_ = false;
  std::string name_;
  std::vector<uint8_t> seq_;  // the current read's bases as letters
  const uint8_t* sp_ = nullptr;
  int64_t pos_ = 0;
};

}  // namespace

std::unique_ptr<SequenceReader::Source> make_faidx_regions(const std::string& path, Format format,
                                                           const std::string& description,
                                                           const ReaderOptions& options) {
  return std::make_unique<FaidxRegions>(path, format, description, options);
}

std::unique_ptr<SequenceReader::Source> make_alignment_source(HtsFilePtr fp, const std::string& path,
                                                              Format format,
                                                              const std::string& description,
                                                              const ReaderOptions& options) {
  return std::make_unique<AlignmentSource>(std::move(fp), path, format, description, options);
}

}  // namespace mambadna::io
