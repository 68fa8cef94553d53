// Streams the sequences of a FASTA, FASTQ, SAM, BAM or CRAM file (format detected from the
// content by htslib; plain, gzip or bgzip) as chunks of at most L byte tokens with provenance.
//
// Whole-file FASTA/FASTQ reading runs in constant memory whatever the record or line length:
// bytes are read in blocks from htslib's stream and parsed by a byte state machine. With regions,
// FASTA/FASTQ are read through their faidx index in windows of at most 1 Mbp, and SAM/BAM/CRAM
// through their .bai/.csi/.crai index.
//
// Records:
//   FASTA/FASTQ  one record per '>'/'@' header, named by the first word after it (leading spaces
//                skipped, as samtools faidx does; a bare '>' names the record "").
//   SAM/BAM/CRAM one record per read that passes the ReadFilter, named by the read name; the
//                read's sequence as stored (reverse-complemented reads stay as stored); a read
//                without a sequence ('*') is a record of length 0.
//   regions      one record per region (FASTA/FASTQ: named by the contig, clipped to the contig's
//                length like samtools faidx), or per overlapping read (SAM/BAM/CRAM).
//
// Chunks (io::Chunk): every record gives at least one chunk; an empty record gives exactly one
// chunk with no tokens and both begin_of_record and end_of_record set; other records give chunks
// of 1..L tokens, the first with begin_of_record, the last with end_of_record. `offset` is the
// 0-based record (for regions: contig) position of tokens[0]; positions count every sequence
// character, including ones dropped by InvalidMode::skip, but not line breaks or other whitespace.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "io/chunk.h"
#include "io/region.h"
#include "io/tokenizer.h"

namespace mambadna::io {

enum class Format : uint8_t { empty, fasta, fastq, sam, bam, cram };

// "FASTA", "FASTQ", "SAM", "BAM", "CRAM" or "empty".
const char* format_name(Format format);
// SAM, BAM or CRAM: reads, which may overlap, found by region through their own index.
inline bool holds_reads(Format f) { return f == Format::sam || f == Format::bam || f == Format::cram; }

// Which SAM/BAM/CRAM reads to skip. The defaults give each read once: all primary reads,
// unmapped ones included; secondary and supplementary alignments skipped.
struct ReadFilter {
  bool skip_unmapped = false;       // BAM_FUNMAP  0x4
  bool skip_secondary = true;       // BAM_FSECONDARY 0x100
  bool skip_supplementary = true;   // BAM_FSUPPLEMENTARY 0x800
  bool skip_duplicate = false;      // BAM_FDUP 0x400
  bool skip_qcfail = false;         // BAM_FQCFAIL 0x200

  // The FLAG bits whose reads are skipped (samtools view -F).
  uint16_t flag_mask() const;
};

struct ReaderOptions {
  TokenizerOptions tok;
  ReadFilter filter;
  std::string reference;        // FASTA reference for decoding CRAM
  int threads = 0;              // htslib decompression threads for BGZF/BAM/CRAM (0: none)
  std::vector<Region> regions;  // empty: the whole input, in file order
  // Regions on contigs an input lacks are skipped and reported here (regions_present); an
  // input that has none of the regions is an error, unless `regions_elsewhere` (a run of several
  // inputs: one FASTA a chromosome): then it gives no record, and check_inputs makes sure that
  // some input has some region.
  RegionsSkipped on_regions_skipped;
  bool regions_elsewhere = false;
  // SAM/BAM/CRAM: a reverse-strand read (FLAG 0x10) is stored reverse-complemented against the
  // reference; true gives it back in the orientation it was sequenced in (as samtools fastq
  // writes it), its positions counted from its own first base.
  bool as_sequenced = false;
};

// Whether `path` can be opened again from its start: a file, not standard input ("-",
// /dev/stdin), a pipe, a FIFO or bash's <(...), which are read once (and a missing path is
// left to the reader to report: true).
bool rereadable(const std::string& path);

// Opens every input that can be opened twice (not standard input or a pipe) as `options` reads
// it, so that a missing index, a file that is not a sequence format or cannot take the regions,
// or an unreadable file stops a run before any work; with regions, throws InputError when no
// input has any of them.
void check_inputs(const std::vector<std::string>& inputs, const ReaderOptions& options);

// The regions (options.regions) each input has, in order, after opening every input first, so
// that a missing index or a plain-gzip file stops a run before any work: an indexed FASTA's
// list (regions_present; with several inputs, one with none of them gives none); an input of
// reads (SAM/BAM/CRAM: reads[i]) an empty list, as it takes the regions through its own index
// (regions_here counts them). Throws InputError when no input has any region. Without regions:
// an empty list an input.
std::vector<std::vector<Region>> regions_by_input(const std::vector<std::string>& inputs, const ReaderOptions& options,
                                                  const std::vector<bool>& reads = {});

// Whether `path` is a file of reads (SAM/BAM/CRAM) that can be opened again to tell (not a pipe,
// which the run reads once).
bool rereadable_reads(const std::string& path);

// Sum of SequenceReader::total_length() over the inputs (the regions' lengths where there are
// regions), or -1 when one of them is unknown (a pipe, reads): a progress meter's total. Says
// nothing of skipped regions (the run does).
int64_t known_total_length(const std::vector<std::string>& inputs, const ReaderOptions& options);

class SequenceReader {
 public:
  // Opens `path` ("-" is stdin) and detects its format. Throws InputError when the file cannot be
  // opened, is not a sequence format, or (with regions) lacks an index or every region's contig;
  // UsageError for regions on stdin.
  explicit SequenceReader(const std::string& path, ReaderOptions options = {});
  ~SequenceReader();
  SequenceReader(SequenceReader&&) noexcept;
  SequenceReader& operator=(SequenceReader&&) noexcept;
  SequenceReader(const SequenceReader&) = delete;
  SequenceReader& operator=(const SequenceReader&) = delete;

  // Fills `out` with the next chunk of at most L (>= 1) tokens and returns true, or returns false
  // at the end of the input. Throws InputError for malformed input or invalid characters (under
  // InvalidMode::error), naming the file, record and 1-based position.
  bool next(Chunk& out, size_t L);

  Format format() const;
  // htslib's description of the file, e.g. "FASTA BGZF-compressed sequence data".
  const std::string& format_description() const;
  const std::string& path() const;

  // Length of the current record (the one of the last chunk) when known before reading it all:
  // regions (clipped) and SAM/BAM/CRAM reads; -1 for streamed FASTA/FASTQ.
  int64_t record_length() const;

  // The region of the current record: with regions of an indexed FASTA/FASTQ (one record per
  // region, in order) io::region_name of its clipped interval; for a read found through regions
  // (a record of its own, given once for each region that overlaps it), the region whose query
  // gave it; empty otherwise (whole files).
  std::string region_name() const;
  // Its Region::index (the place in the list given), -1 where region_name() is empty.
  int64_t region_index() const;

  // With regions: how many of them this input has (regions_present); -1 without regions.
  int64_t regions_here() const;
  // Total bases the reader will visit when known beforehand: the sum of the clipped region
  // lengths, or the sum of the contig lengths in the FASTA's .fai when one exists; else -1.
  int64_t total_length() const;

  // Records (or regions) started so far.
  int64_t records() const;

  // Standard input and pipes can be read once. keep() keeps every chunk read from then on;
  // replay() stops keeping, and the calls to next() after it give the kept chunks again, from
  // the first, re-cut to each call's L (a record's kept chunks joined up to L, a longer one
  // split), then read on from where keeping stopped. Memory: what was read while keeping (the
  // caller bounds it: score samples a pipe's first records this way, kept_tokens() at a time).
  void keep();
  void replay();
  int64_t kept_tokens() const { return kept_tokens_; }

  class Source;  // one per way of reading (stream, faidx regions, SAM/BAM/CRAM)

 private:
  bool next_kept(Chunk& out, size_t L);
  std::unique_ptr<Source> source_;
  std::deque<Chunk> kept_;  // chunks read while keeping, or left to replay
  bool keeping_ = false;
  bool replaying_ = false;
  int64_t kept_tokens_ = 0;
};

}  // namespace mambadna::io
