// Owners of htslib handles (unique_ptr with the matching destroy function), shared by io/ and
// the pipelines that talk to htslib directly.
#pragma once
#include <htslib/hts.h>
#include <htslib/vcf.h>

#include <memory>

namespace mambadna::io {

struct HtsFileCloser {
  void operator()(htsFile* fp) const { hts_close(fp); }
};
using HtsFilePtr = std::unique_ptr<htsFile, HtsFileCloser>;

struct BcfHdrCloser {
  void operator()(bcf_hdr_t* h) const { bcf_hdr_destroy(h); }
};
using BcfHdrPtr = std::unique_ptr<bcf_hdr_t, BcfHdrCloser>;

struct BcfRecCloser {
  void operator()(bcf1_t* r) const { bcf_destroy(r); }
};
using BcfRecPtr = std::unique_ptr<bcf1_t, BcfRecCloser>;

// htslib's messages down to its errors while the guard lives: for a file opened once more only
// to check or measure it, whose warnings (an index older than its file) show when the run
// itself opens it, not once an open.
class HtsWarningsOff {
 public:
  HtsWarningsOff() : saved_(hts_get_log_level()) {
    if (saved_ > HTS_LOG_ERROR) hts_set_log_level(HTS_LOG_ERROR);
  }
  ~HtsWarningsOff() { hts_set_log_level(saved_); }
  HtsWarningsOff(const HtsWarningsOff&) = delete;
  HtsWarningsOff& operator=(const HtsWarningsOff&) = delete;

 private:
  enum htsLogLevel saved_;
};

}  // namespace mambadna::io
