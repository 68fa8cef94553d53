// A chunk of byte-level tokens with its provenance: the unit that flows from io/ to the model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mambadna::io {

struct Chunk {
  std::string record;            // record name (or the contig of a region)
  int64_t offset = 0;            // 0-based position of tokens[0] in the record/contig
  int64_t record_index = 0;      // index of the record/region in input order, from 0
  bool begin_of_record = false;  // first chunk of a record/region: reset recurrent state before it
  bool end_of_record = false;    // last chunk of a record/region
  bool reversed = false;         // the reader reverse-complemented the record (--as-sequenced reads)
  std::vector<uint8_t> tokens;   // (n) with n <= L; a token is the byte of the base
};

}  // namespace mambadna::io
