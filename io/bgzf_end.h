// A bgzipped file cut short at a block boundary decompresses cleanly up to the cut, and htslib
// then reports a plain end of file: only the missing BGZF end-of-file block tells. Used by every
// reader that streams a whole bgzipped file (FASTA/FASTQ, VCF).
#pragma once
#include <htslib/bgzf.h>

#include <string>

#include "io/error.h"

namespace mambadna::io {

// At open, for files that can seek: throws InputError when the end block is missing. Plain gzip
// (no end block) and uncompressed data pass.
inline void bgzf_check_complete(BGZF* fp, const std::string& path) {
  if (fp && fp->is_compressed && !fp->is_gzip && bgzf_check_EOF(fp) == 0)
    throw InputError(path + ": truncated: the BGZF end-of-file block is missing (the file was cut "
                            "short, or written by a program that did not finish)");
}

// At the end of the data, for input that could not be checked at open (a pipe): the last block
// read must have been the end block. htslib's flag is trusted only without decompression
// threads.
inline void bgzf_check_ended(const BGZF* fp, int threads, const std::string& path, const std::string& after) {
  if (!fp) return;
  if (fp->errcode || (fp->is_compressed && !fp->is_gzip && threads == 0 && !fp->last_block_eof))
    throw InputError(path + ": truncated or corrupt compressed data" + after);
}

}  // namespace mambadna::io
