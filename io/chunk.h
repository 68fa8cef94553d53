// A chunk of byte-level tokens with its provenance: the unit that flows from io/ to the model.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mambadna::io {

// Where a SAM/BAM/CRAM read lies on the reference, as its record says: RNAME ("*" when none),
// POS − 1 (0-based; −1 when none), the end of its alignment (htslib's bam_endpos: 0-based,
// exclusive; an unmapped read's is pos + 1, or −1), FLAG and MAPQ.
struct Alignment {
  std::string contig = "*";
  int64_t pos = -1, end = -1;
  int64_t flag = 0, mapq = 255;
};
// A row of reads/ columns that is not a read (a FASTA record, a region): flag −1.
inline const Alignment kNotRead{"*", -1, -1, -1, 255};

struct Chunk {
  std::string record;            // record name (or the contig of a region)
  int64_t offset = 0;            // 0-based position of tokens[0] in the record/contig
  int64_t record_index = 0;      // index of the record/region in input order, from 0
  bool begin_of_record = false;  // first chunk of a record/region: reset recurrent state before it
  bool end_of_record = false;    // last chunk of a record/region
  bool reversed = false;         // the reader reverse-complemented the record (--as-sequenced reads)
  std::vector<uint8_t> tokens;   // (n) with n <= L; a token is the byte of the base
  std::optional<Alignment> alignment;  // the read's, on every chunk of a SAM/BAM/CRAM read
};

}  // namespace mambadna::io
