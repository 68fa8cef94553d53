// Internal to io/: the ways SequenceReader reads (one Source each) and the htslib handles they
// share. Not part of the public API; include io/sequence_reader.h instead.
#pragma once
#include <htslib/hts.h>

#include <memory>
#include <string>

#include "io/hts_handles.h"
#include "io/sequence_reader.h"

namespace mambadna::io {


class SequenceReader::Source {
 public:
  virtual ~Source() = default;
  virtual bool next(Chunk& out, size_t L) = 0;
  virtual int64_t record_length() const { return -1; }
  virtual std::string region_name() const { return {}; }
  virtual int64_t region_index() const { return -1; }

  std::string path;
  Format format = Format::empty;
  std::string description;  // htslib's
  int64_t total = -1;       // see SequenceReader::total_length
  int64_t regions_here = -1;  // see SequenceReader::regions_here
  int64_t records = 0;      // records started so far
};

// Whole-file FASTA/FASTQ (or text htslib could not name: decided from the first byte).
std::unique_ptr<SequenceReader::Source> make_fastx_stream(HtsFilePtr fp, const std::string& path,
                                                          const std::string& description,
                                                          const ReaderOptions& options);

// Regions of an indexed FASTA/FASTQ, fetched with faidx.
std::unique_ptr<SequenceReader::Source> make_faidx_regions(const std::string& path, Format format,
                                                           const std::string& description,
                                                           const ReaderOptions& options);

// SAM/BAM/CRAM, whole file or through the index when options.regions is not empty.
std::unique_ptr<SequenceReader::Source> make_alignment_source(HtsFilePtr fp, const std::string& path,
                                                              Format format,
                                                              const std::string& description,
                                                              const ReaderOptions& options);

// The "file: record 'x': position N: invalid character ..." error.
[[noreturn]] void throw_invalid_byte(const std::string& path, const std::string& record,
                                     int64_t pos, uint8_t byte);

}  // namespace mambadna::io
