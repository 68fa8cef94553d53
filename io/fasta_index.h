// Random access to an indexed FASTA (plain or bgzip, with .fai and, for bgzip, .gzi): contig
// names and lengths, and any window of a contig. The reference side of `vep` and the reverse
// strand of `score`/`embed` read through it.
#pragma once
#include <htslib/faidx.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/region.h"

namespace mambadna::io {

// One line of a faidx index (PATH.fai, FASTA or FASTQ), in 64 bits: htslib's faidx_seq_len
// returns an int, which wraps at 2^31 bases (axolotl and lungfish chromosomes are longer).
struct FaiRecord {
  std::string name;
  int64_t length = 0;      // bases
  int64_t offset = -1;     // of the first base in the uncompressed file; -1 when the line has no such column
  int64_t line_bases = 0;  // bases a line (0: not given)
  int64_t line_bytes = 0;  // bytes a line, its end included
};

// PATH.fai's lines in order. Throws InputError naming the .fai and its line when one has no
// name, tab and length; the columns after the length are read when they are numbers.
std::vector<FaiRecord> read_fai(const std::string& path);
// The contig lengths of read_fai(path).
std::unordered_map<std::string, int64_t> fai_lengths(const std::vector<FaiRecord>& fai);
std::unordered_map<std::string, int64_t> fai_lengths(const std::string& path);

// PATH.fai (read_fai), checked against PATH before PATH is read by position: the one way the
// readers by position (FastaIndex, the readers of regions) load an index. A bgzip file's end and
// .gzi (check_bgzip_index), then, for a FASTA, where its records lie (check_fai_matches); a
// FASTQ's index (samtools fqidx) is read only.
std::vector<FaiRecord> read_checked_fai(const std::string& path, bool fastq = false);

// Before a bgzipped file is read by position (faidx): throws InputError when it lacks its BGZF
// end-of-file block (cut short, it reads cleanly up to the cut) or when its .gzi does not fit it
// (every block the .gzi names must start inside the file with a BGZF header, and the records of
// `fai`, its read_fai, must end within the last block the .gzi names: a .gzi of another file, or
// of this one before it changed, sends htslib's seeks into the middle of blocks, where it stops
// the program on an assertion). Plain and uncompressed files, or no .gzi, pass. Returns the
// uncompressed offset of the last block the .gzi names (0 where there is none).
uint64_t check_bgzip_index(const std::string& path, const std::vector<FaiRecord>& fai);

// Before a FASTA is read by position: throws InputError when its .fai does not describe it
// (it changed since it was indexed: a record appended, removed, renamed or resized, which
// htslib reads on without a word), looking where the index puts the first, the last and up to
// 62 records between them: each one's header ('>' NAME) just after the record before it (blank
// lines and empty records between, which samtools leaves out of a .fai), and after the last no
// more bases. Plain gzip, or a bgzip file without its .gzi, pass (their opens say why). A bgzip
// file's size is counted from `known`, an uncompressed offset it reaches (check_bgzip_index's).
void check_fai_matches(const std::string& path, const std::vector<FaiRecord>& fai, uint64_t known = 0);

class FastaIndex {
 public:
  // Throws InputError naming the file when it or its index is missing ("run 'samtools faidx'").
  explicit FastaIndex(const std::string& path);
  ~FastaIndex();
  FastaIndex(FastaIndex&&) noexcept;
  FastaIndex& operator=(FastaIndex&&) noexcept;

  const std::string& path() const { return path_; }
  bool has(const std::string& contig) const;
  int64_t length(const std::string& contig) const;  // throws InputError for an unknown contig
  // The lengths as regions_present asks for them: -1 for a contig the FASTA lacks. The
  // function refers to this index, which must outlive it.
  ContigLength lengths() const {
    return [this](const std::string& c) { return has(c) ? length(c) : int64_t(-1); };
  }
  std::vector<std::string> contigs() const;

  // The bases of [begin, end) of `contig` as stored (case kept), clipped to the contig.
  std::string fetch(const std::string& contig, int64_t begin, int64_t end) const;

 private:
  struct Closer {
    void operator()(faidx_t* f) const { fai_destroy(f); }
  };
  std::string path_;
  std::unique_ptr<faidx_t, Closer> fai_;
  std::unordered_map<std::string, int64_t> lengths_;  // fai_lengths of path_'s .fai
};

// The reverse complement of bases (IUPAC codes complemented, case kept).
void reverse_complement(std::string& bases);
uint8_t complement_base(uint8_t b);

}  // namespace mambadna::io
