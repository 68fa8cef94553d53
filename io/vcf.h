// VCF/BCF in and out through htslib, with the project's rules: the reader insists on a sorted
// input (contigs in one block each, positions non-decreasing) and names the record that breaks
// it; the writer picks its format as bcftools does, writes under a temporary name and renames on
// commit() (standard output and special files are written in place), and refuses a BCF record
// whose contig its header does not declare (the BCF would be unreadable).
#pragma once
#include <htslib/vcf.h>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>

#include "io/hts_handles.h"
#include "io/region.h"

namespace mambadna::io {

class VcfReader {
 public:
  // `path` may be "-" (standard input); plain or bgzipped VCF, or BCF. threads: htslib
  // decompression threads (0: none).
  VcfReader(const std::string& path, int threads = 0);
  bcf_hdr_t* header() { return hdr_.get(); }
  const std::string& path() const { return path_; }
  // Reads the next record into rec (unpacked up to the alleles); false at the end. An undeclared
  // contig or INFO tag is added to the header by htslib: not an error.
  bool next(bcf1_t* rec);
  int64_t records() const { return n_; }  // records read so far
  // "record N (chrom:pos)" of the last record read, for messages.
  std::string where() const;

 private:
  // Refuses a text record line (number `record`) of fewer than 8 columns or whose POS is no number.
  std::string check_text(const kstring_t& line, int64_t record) const;  // "record N (CHROM:POS)"

  std::string path_;
  HtsFilePtr fp_;
  BcfHdrPtr hdr_;
  int threads_ = 0;
  int64_t n_ = 0;
  std::string contig_;                     // current contig
  std::unordered_set<std::string> done_;  // contigs finished
  int64_t pos_ = -1;
};

// 'v' VCF, 'z' bgzipped VCF, 'b' BCF, 'u' uncompressed BCF: `requested` when given (bcftools'
// -O), else from the file name in any case (.gz, .bgz -> z, .bcf -> b, anything else
// and "-" -> v).
char vcf_output_type(const std::string& path, char requested = 0);

// bcftools' -O argument: a type letter and, for z and b, an optional compression level 0-9
// ("z9"). Sets *level to -1 without one; throws UsageError naming the argument.
char parse_vcf_output_type(const std::string& arg, int* level);

// The true variant's span (htslib's rule for --regions-overlap variant, io/region.h):
// [POS + off, POS + rlen) 0-based, off the fewest leading bases that REF shares with an ALT (a
// symbolic ALT shares none), at most rlen. An insertion's span is empty ({POS + 1, POS + 1}:
// between its padding base and the next).
std::pair<int64_t, int64_t> variant_span(bcf1_t* rec);

// Whether the regions select `rec` (on `contig`), as bcftools' -r with --regions-overlap; an
// insertion's empty variant span is selected when a region holds both bases beside it. The
// cover's regions are merged first: where two abut, an insertion between them is selected,
// which htslib (asking each region alone) leaves out.
bool regions_select(const RegionCover& cover, const std::string& contig, bcf1_t* rec, RegionsOverlap overlap);

// Adds a header line ("##INFO=<...>", "##contig=<...>", ...); throws Error naming it.
void vcf_header_append(bcf_hdr_t* hdr, const std::string& line);

class VcfWriter {
 public:
  // Writes `hdr` (after bcf_hdr_sync) at once. type as vcf_output_type; level 0-9 compresses a
  // z or b output at that level (-1: htslib's default).
  VcfWriter(const std::string& path, char type, bcf_hdr_t* hdr, int threads = 0, int level = -1);
  ~VcfWriter();  // without commit(): the temporary file is removed
  VcfWriter(const VcfWriter&) = delete;
  VcfWriter& operator=(const VcfWriter&) = delete;
  void write(bcf1_t* rec);
  void finish();  // closes the file: every write error shows here
  void commit();  // finishes it if need be, then renames the temporary file into place

 private:
  std::string path_, tmp_;
  bool bcf_ = false;
  bcf_hdr_t* hdr_;
  int contigs_written_ = 0;  // contigs in the header as written
  int ids_written_ = 0;      // FILTER/INFO/FORMAT ids in the header as written
  HtsFilePtr fp_;
};

}  // namespace mambadna::io
