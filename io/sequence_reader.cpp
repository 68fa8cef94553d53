#include "io/sequence_reader.h"

#include <htslib/sam.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/error.h"
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
  return source_->next(out, L);
}

Format SequenceReader::format() const { return source_->format; }
const std::string& SequenceReader::format_description() const { return source_->description; }
const std::string& SequenceReader::path() const { return source_->path; }
int64_t SequenceReader::record_length() const { return source_->record_length(); }
std::string SequenceReader::region_name() const { return source_->region_name(); }
int64_t SequenceReader::total_length() const { return source_->total; }
int64_t SequenceReader::regions_here() const { return source_->regions_here; }

void check_inputs(const std::vector<std::string>& inputs, const ReaderOptions& options) {
  int64_t with_regions = 0;
  bool all_opened = true;
  for (const auto& in : inputs) {
    std::error_code ec;
    // Standard input, a pipe or a FIFO can be read once: by the run itself.
    if (in == "-" || (std::filesystem::exists(in, ec) && !std::filesystem::is_regular_file(in, ec))) {
      all_opened = false;
      continue;
    }
    with_regions += SequenceReader(in, options).regions_here() > 0;
  }
  if (!options.regions.empty() && all_opened && with_regions == 0)
    throw InputError("none of the " + std::to_string(inputs.size()) + " inputs has any of the regions (the first: " +
                     describe_region(options.regions[0]) + ")");
}
int64_t SequenceReader::records() const { return source_->records; }

}  // namespace mambadna::io
