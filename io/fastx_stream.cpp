// Whole-file FASTA/FASTQ: a byte state machine over blocks read from htslib's stream (BGZF for
// gzip/bgzip, hFILE for plain text). Memory is one block whatever the record or line length.
//
// FASTA: '>' header line, then sequence lines up to the next line that starts with '>'.
// FASTQ: '@' header line, sequence lines up to a line that starts with '+', then quality lines
// until they hold as many characters as the sequence (so quality lines may start with '@' or '+').
// Blank lines, '\r' (CRLF files) and other whitespace inside sequence lines are ignored.
#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hfile.h>
#include <htslib/tbx.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/bgzf_end.h"
#include "io/error.h"
#include "io/fasta_index.h"
#include "io/reader_source.h"

namespace mambadna::io {

namespace {

// Bytes a read: one BGZF block's worth (htslib inflates plain gzip in pieces of that size too),
// so that data which fails to decompress fails the read that reaches it, after every base
// before it has been parsed: the error can name the record and position.
constexpr size_t kBlockBytes = 64 * 1024;

bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

bool file_exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// Sum of the contig lengths in an existing faidx index of `path`, or -1.
int64_t indexed_total(const std::string& path, Format format, bool bgzip) {
  if (path == "-") return -1;
  // Never let htslib build an index here: only use one that exists.
  if (!file_exists(path + ".fai") || (bgzip && !file_exists(path + ".gzi"))) return -1;
  faidx_t* fai = fai_load3_format(path.c_str(), nullptr, nullptr, 0,
                                  format == Format::fastq ? FAI_FASTQ : FAI_FASTA);
  if (!fai) return -1;
  fai_destroy(fai);  // loads: the index is one htslib can read
  int64_t total = 0;
  try {
    for (const auto& [name, len] : fai_lengths(path)) total += len;
  } catch (const InputError&) {
    return -1;
  }
  return total;
}

class FastxStream final : public SequenceReader::Source {
 public:
  FastxStream(HtsFilePtr fp, const std::string& path, const std::string& description,
              const ReaderOptions& options)
      : fp_(std::move(fp)), tok_(options.tok), buf_(kBlockBytes) {
    this->path = path;
    this->description = description;
    const htsFormat* fmt = hts_get_format(fp_.get());
    bool bgzip = fmt->compression == bgzf;
    if (fp_->is_bgzf) {
      bgzf_ = hts_get_bgzfp(fp_.get());
      bgzf_check_complete(bgzf_, path);
      threads_ = bgzip ? options.threads : 0;
      if (bgzip && options.threads > 0 && hts_set_threads(fp_.get(), options.threads) < 0)
        throw InputError(path + ": cannot start " + std::to_string(options.threads) +
                         " decompression threads");
    } else {
      hfile_ = fp_->fp.hfile;
    }
    // Decide FASTA or FASTQ from the first byte that is not blank (htslib does not recognise,
    // for example, a FASTA file whose records are all empty).
    skip_blank();
    if (p_ == e_) {
      format = Format::empty;
    } else if (*p_ == '>') {
      format = Format::fasta;
    } else if (*p_ == '@') {
      format = Format::fastq;
    } else {
      throw InputError(path + ": not a FASTA, FASTQ, SAM, BAM or CRAM file (htslib detected: " +
                       description + "; first character " + describe_byte(*p_) + ")");
    }
    fastq_ = format == Format::fastq;
    if (format != Format::empty) total = indexed_total(path, format, bgzip);
  }

  bool next(Chunk& out, size_t L) override {
    if (state_ == State::between_records) {
      if (!start_record()) return false;
      out.begin_of_record = true;
    } else {
      out.begin_of_record = false;
    }
    out.record = name_;
    out.record_index = records - 1;
    out.tokens.resize(L);
    size_t n = 0;
    int64_t first = pos_;
    bool ended = fill(out.tokens.data(), n, L, first);
    out.tokens.resize(n);
    out.offset = n > 0 ? first : pos_;
    out.end_of_record = ended;
    if (ended) {
      if (fastq_) read_quality();
      state_ = State::between_records;
    }
    return true;
  }

 private:
  enum class State : uint8_t { between_records, line_start, in_line };

  // Where the reading stands, for a message about the data: " in record 'chr1' at position
  // 12345", " after record 'chr1'", or "" before the first record.
  std::string reading_at() const {
    if (records == 0) return "";
    if (state_ == State::between_records) return " after record '" + name_ + "'";
    return " in record '" + name_ + "' at position " + std::to_string(pos_ + 1);
  }

  // Reads the next block; false at the end of the input.
  bool refill() {
    if (p_ < e_) return true;
    if (eof_) return false;
    ssize_t n = bgzf_ ? bgzf_read(bgzf_, buf_.data(), buf_.size())
                      : hread(hfile_, buf_.data(), buf_.size());
    if (n < 0)
      throw InputError(path + ": read error" +
                       (bgzf_ ? std::string(" (corrupt or truncated compressed data)")
                              : ": " + std::string(std::strerror(errno))) +
                       reading_at());
    if (n == 0) {
      bgzf_check_ended(bgzf_, threads_, path, reading_at());
      eof_ = true;
      return false;
    }
    p_ = buf_.data();
    e_ = p_ + n;
    return true;
  }

  void skip_blank() {
    while (refill()) {
      while (p_ < e_ && (*p_ == '\n' || is_space(*p_))) ++p_;
      if (p_ < e_) return;
    }
  }

  // Consumes the rest of the current line, '\n' included.
  void skip_line() {
    while (refill()) {
      auto* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', size_t(e_ - p_)));
      if (nl) {
        p_ = nl + 1;
        return;
      }
      p_ = e_;
    }
  }

  std::string context() const {
    return records == 0 ? path + ": at the start" : path + ": after record '" + name_ + "'";
  }

  // Parses a header line; false at the end of the input.
  bool start_record() {
    skip_blank();
    if (p_ == e_) return false;
    char expected = fastq_ ? '@' : '>';
    if (*p_ != expected)
      throw InputError(context() + ": expected '" + expected + "' at the start of a " +
                       format_name(format) + " record, found " + describe_byte(*p_));
    ++p_;
    // Name: the first word, after any leading spaces (as samtools faidx).
    while (refill() && (*p_ == ' ' || *p_ == '\t')) ++p_;
    name_.clear();
    while (refill()) {
      const uint8_t* q = p_;
      while (q < e_ && *q != '\n' && !is_space(*q)) ++q;
      name_.append(reinterpret_cast<const char*>(p_), size_t(q - p_));
      p_ = q;
      if (q < e_) break;
    }
    skip_line();
    ++records;
    pos_ = 0;
    state_ = State::line_start;
    return true;
  }

  // Runs the state machine until `room` tokens are written and another token follows (false), or
  // the record's sequence ends (true).
  bool fill(uint8_t* out, size_t& n, size_t room, int64_t& first) {
    for (;;) {
      if (!refill()) {
        if (fastq_)
          throw InputError(where(path, name_) + ": the file ends before the '+' line (truncated FASTQ?)");
        return true;
      }
      if (state_ == State::line_start) {
        uint8_t c = *p_;
        if (c == '\n') {
          ++p_;
          continue;
        }
        if (!fastq_ && c == '>') return true;
        if (fastq_ && c == '+') {
          skip_line();
          return true;
        }
        if (fastq_ && c == '@')
          throw InputError(where(path, name_) + ": a line starts with '@' before the '+' line");
        state_ = State::in_line;
      }
      auto* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', size_t(e_ - p_)));
      const uint8_t* stop = nl ? nl : e_;
      switch (tok_.tokenize(p_, stop, out, n, room, pos_, first)) {
        case Tokenizer::Stop::full: return false;
        case Tokenizer::Stop::invalid: throw_invalid_byte(path, name_, pos_, *p_);
        case Tokenizer::Stop::end: break;
      }
      if (nl) {
        p_ = nl + 1;
        state_ = State::line_start;
      }
    }
  }

  // Consumes the quality lines after the '+' line: as many characters as the sequence had.
  void read_quality() {
    const int64_t need = pos_;
    int64_t have = 0, lines = 0;
    while (have < need) {
      ++lines;
      // One line, possibly spread over several blocks.
      for (;;) {
        if (!refill())
          throw InputError(where(path, name_) + ": the quality string is shorter than the sequence (" +
                           std::to_string(have) + " < " + std::to_string(need) +
                           "; truncated FASTQ?)");
        auto* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', size_t(e_ - p_)));
        const uint8_t* stop = nl ? nl : e_;
        for (const uint8_t* q = p_; q < stop; ++q) have += !is_space(*q);
        p_ = nl ? nl + 1 : e_;
        if (nl) break;
      }
    }
    // A quality line may be wrapped, so a short one reads on into the next record's lines.
    if (have > need)
      throw InputError(where(path, name_) + ": the quality string is longer than the sequence (" +
                       std::to_string(have) + " > " + std::to_string(need) +
                       (lines > 1 ? " over " + std::to_string(lines) +
                                        " lines: or a quality line shorter than its sequence, "
                                        "read on into the next record"
                                  : std::string()) +
                       ")");
  }

  HtsFilePtr fp_;
  BGZF* bgzf_ = nullptr;
  int threads_ = 0;  // decompression threads
  hFILE* hfile_ = nullptr;
  Tokenizer tok_;
  std::vector<uint8_t> buf_;
  const uint8_t* p_ = nullptr;
  const uint8_t* e_ = nullptr;
  bool eof_ = false;
  bool fastq_ = false;
  State state_ = State::between_records;
  std::string name_;
  int64_t pos_ = 0;  // record position of the next sequence character
};

}  // namespace

std::unique_ptr<SequenceReader::Source> make_fastx_stream(HtsFilePtr fp, const std::string& path,
                                                          const std::string& description,
                                                          const ReaderOptions& options) {
  return std::make_unique<FastxStream>(std::move(fp), path, description, options);
}

}  // namespace mambadna::io
