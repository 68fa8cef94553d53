#include "io/sequence_reader.h"

#include <htslib/sam.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/hts_handles.h"
#include "io/reader_source.h"

namespace mambadna::io {

const char* format_name(Format format) {
  switch (format) {
    case Format::empty: return "empty";
    case Format::fasta: return "FASTA";
    case Format::fastq: return "FASTQ";
    case Format::sam: return "SAM";
    case Format::bam: return "BAM";
    case Format::cram: return "CRAM";
  }
  return "?";
}

uint16_t ReadFilter::flag_mask() const {
  uint16_t m = 0;
  if (skip_unmapped) m |= BAM_FUNMAP;
  if (skip_secondary) m |= BAM_FSECONDARY;
  if (skip_supplementary) m |= BAM_FSUPPLEMENTARY;
  if (skip_duplicate) m |= BAM_FDUP;
  if (skip_qcfail) m |= BAM_FQCFAIL;
  return m;
}

void throw_invalid_byte(const std::string& path, const std::string& record, int64_t pos,
                        uint8_t byte) {
  throw InputError(where(path, record, pos) + ": invalid character " + describe_byte(byte) +
                   " (use --invalid skip or --invalid N to accept it)");
}

SequenceReader::SequenceReader(const std::string& path, ReaderOptions options) {
  if (path != "-") {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
      throw InputError(path + ": cannot open: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": cannot read: is a directory");
    if (!S_ISREG(st.st_mode) && !options.regions.empty())  // a FIFO, <(...): no index can serve it
      throw UsageError(path + ": regions need an indexed file, not a pipe or other special file");
  } else if (!options.regions.empty()) {
    throw UsageError("regions need an indexed file, not standard input");
  }
  HtsFilePtr fp(hts_open(path.c_str(), "r"));
  if (!fp && errno == ENOEXEC)  // htslib recognised no format (binary data, say)
    throw InputError(path + ": not a sequence file (FASTA/FASTQ or SAM/BAM/CRAM, plain, gzip or bgzip)");
  if (!fp) throw InputError(path + ": cannot open: " + std::strerror(errno));

  const htsFormat* fmt = hts_get_format(fp.get());
  std::string description;
  if (char* d = hts_format_description(fmt)) {
    description = d;
    std::free(d);
  }
  switch (fmt->format) {
    case fasta_format:
    case fastq_format:
    case text_format:
    case empty_format:
      if (options.regions.empty()) {
        source_ = make_fastx_stream(std::move(fp), path, description, options);
      } else {
        if (fmt->compression == gzip)
          throw InputError(path + ": regions need random access, which gzip does not allow: "
                                  "recompress with bgzip (zcat FILE | bgzip > FILE.bgz) and "
                                  "index it with 'samtools faidx'");
        Format f = fmt->format == fastq_format ? Format::fastq : Format::fasta;
        fp.reset();
        source_ = make_faidx_regions(path, f, description, options);
      }
      break;
    case sam:
    case bam:
    case cram: {
      Format f = fmt->format == sam ? Format::sam : fmt->format == bam ? Format::bam : Format::cram;
      source_ = make_alignment_source(std::move(fp), path, f, description, options);
      break;
    }
    default:
      throw InputError(path + ": not a FASTA, FASTQ, SAM, BAM or CRAM file (htslib detected: " +
                       description + ")");
  }
}

SequenceReader::~SequenceReader() = default;
SequenceReader::SequenceReader(SequenceReader&&) noexcept = default;
SequenceReader& SequenceReader::operator=(SequenceReader&&) noexcept = default;

bool SequenceReader::next(Chunk& out, size_t L) {
  if (L == 0) throw UsageError("SequenceReader::next: the chunk length L must be at least 1");
  if (replaying_ && !kept_.empty()) return next_kept(out, L);
  out.alignment.reset();  // set by an alignment source only
  if (!source_->next(out, L)) return false;
  if (keeping_) {
    kept_.push_back(out);
    kept_tokens_ += int64_t(out.tokens.size());
  }
  return true;
}

void SequenceReader::keep() {
  if (replaying_ && !kept_.empty())
    throw UsageError("SequenceReader::keep: the kept chunks have not all been replayed");
  kept_.clear();
  kept_tokens_ = 0;
  keeping_ = true;
  replaying_ = false;
}

void SequenceReader::replay() {
  keeping_ = false;
  replaying_ = true;
}

// The next at most L tokens of the kept chunks: the front one whole, with the same record's
// next kept chunks joined on, or its first L tokens (the rest stays in front, its offset moved).
bool SequenceReader::next_kept(Chunk& out, size_t L) {
  auto take = [&](Chunk& from, size_t n) {  // moves from's first n tokens to out's end
    out.tokens.insert(out.tokens.end(), from.tokens.begin(), from.tokens.begin() + std::ptrdiff_t(n));
    from.tokens.erase(from.tokens.begin(), from.tokens.begin() + std::ptrdiff_t(n));
    from.offset += int64_t(n);
    from.begin_of_record = false;
  };
  Chunk& front = kept_.front();
  out = front;
  out.tokens.clear();
  out.end_of_record = false;
  for (;;) {
    Chunk& f = kept_.front();
    const size_t n = std::min(f.tokens.size(), L - out.tokens.size());
    take(f, n);
    if (!f.tokens.empty()) break;  // out is full: the rest of f comes next
    out.end_of_record = f.end_of_record;
    kept_.pop_front();
    if (out.end_of_record || out.tokens.size() == L || kept_.empty()) break;
    if (kept_.front().record_index != out.record_index || kept_.front().begin_of_record) break;
  }
  if (kept_.empty()) {
    replaying_ = false;
    // The record goes on past what was kept: fill the chunk from the source, so that the
    // chunks are those of a reader that kept nothing.
    Chunk more;
    if (!out.end_of_record && out.tokens.size() < L && source_->next(more, L - out.tokens.size())) {
      out.tokens.insert(out.tokens.end(), more.tokens.begin(), more.tokens.end());
      out.end_of_record = more.end_of_record;
    }
  }
  return true;
}

Format SequenceReader::format() const { return source_->format; }
const std::string& SequenceReader::format_description() const { return source_->description; }
const std::string& SequenceReader::path() const { return source_->path; }
int64_t SequenceReader::record_length() const { return source_->record_length(); }
std::string SequenceReader::region_name() const { return source_->region_name(); }
int64_t SequenceReader::region_index() const { return source_->region_index(); }
int64_t SequenceReader::total_length() const { return source_->total; }
int64_t SequenceReader::regions_here() const { return source_->regions_here; }

bool rereadable(const std::string& path) {
  std::error_code ec;
  return path != "-" && (!std::filesystem::exists(path, ec) || std::filesystem::is_regular_file(path, ec));
}

namespace {
InputError no_input_has_regions(const std::vector<std::string>& inputs, const std::vector<Region>& regions) {
  return InputError("none of the " + std::to_string(inputs.size()) + " inputs has any of the regions (the first: " +
                    describe_region(regions[0]) + ")");
}
}  // namespace

void check_inputs(const std::vector<std::string>& inputs, const ReaderOptions& options) {
  const HtsWarningsOff quiet;  // the run opens each again
  int64_t with_regions = 0;
  bool all_opened = true;
  for (const auto& in : inputs) {
    if (!rereadable(in)) {  // read once: by the run itself
      if (!options.regions.empty())  // said now, not after the inputs before it were read
        throw UsageError((in == "-" ? std::string("standard input") : in) +
                         ": regions need an indexed file, not standard input or a pipe");
      all_opened = false;
      continue;
    }
    with_regions += SequenceReader(in, options).regions_here() > 0;
  }
  if (!options.regions.empty() && all_opened && with_regions == 0)
    throw no_input_has_regions(inputs, options.regions);
}

std::vector<std::vector<Region>> regions_by_input(const std::vector<std::string>& inputs, const ReaderOptions& options,
                                                  const std::vector<bool>& reads) {
  const HtsWarningsOff quiet;  // the run opens each again
  ReaderOptions each = options;
  each.regions_elsewhere = inputs.size() > 1;  // one FASTA a chromosome: an input may lack them all
  std::vector<std::vector<Region>> by_input(inputs.size());
  int64_t with_regions = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i < reads.size() && reads[i]) {
      with_regions += SequenceReader(inputs[i], each).regions_here() > 0;
      continue;
    }
    const FastaIndex fa(inputs[i]);
    by_input[i] = regions_present(inputs[i], options.regions, fa.lengths(), options.on_regions_skipped,
                                  each.regions_elsewhere);
    with_regions += !by_input[i].empty();
  }
  if (!options.regions.empty() && with_regions == 0) throw no_input_has_regions(inputs, options.regions);
  return by_input;
}
bool rereadable_reads(const std::string& path) {
  return rereadable(path) && holds_reads(SequenceReader(path).format());
}

int64_t known_total_length(const std::vector<std::string>& inputs, const ReaderOptions& options) {
  const HtsWarningsOff quiet;  // the run opens each again
  int64_t total = 0;
  ReaderOptions each = options;
  each.regions_elsewhere = inputs.size() > 1;
  each.on_regions_skipped = nullptr;  // the run says it
  for (const std::string& input : inputs) {
    if (!rereadable(input)) return -1;  // a pipe is read once: by the counting
    SequenceReader reader(input, each);
    int64_t t = reader.total_length();
    if (t < 0) return -1;
    total += t;
  }
  return total;
}

int64_t SequenceReader::records() const { return source_->records; }

}  // namespace mambadna::io
