#include "io/fasta_index.h"

#include <fcntl.h>
#include <htslib/hfile.h>
#include <htslib/hts.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <unordered_set>

#include "io/bgzf_end.h"
#include "io/error.h"

namespace mambadna::io {

std::vector<FaiRecord> read_fai(const std::string& path) {
  const std::string fai = path + ".fai";
  std::ifstream in(fai);
  if (!in) throw InputError(fai + ": cannot open: " + std::strerror(errno));
  std::vector<FaiRecord> records;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const size_t tab = line.find('\t');
    const char* len = tab == std::string::npos ? nullptr : line.c_str() + tab + 1;
    char* end = nullptr;
    errno = 0;
    const long long v = len ? std::strtoll(len, &end, 10) : -1;
    if (!len || end == len || (*end != '\t' && *end != '\0') || v < 0 || errno == ERANGE)
      throw InputError(fai + ": line " + std::to_string(n) +
                       ": not a faidx line (NAME, tab, LENGTH, ...): run 'samtools faidx " + path + "' again");
    FaiRecord r;
    r.name = line.substr(0, tab);
    r.length = int64_t(v);
    long long off = 0, bases = 0, bytes = 0;
    const bool columns = std::sscanf(end, "\t%lld\t%lld\t%lld", &off, &bases, &bytes) == 3;
    // htslib divides by LINEBASES (SIGFPE at 0) and trusts LINEWIDTH to hold the bases.
    if (columns && r.length > 0 && (bases <= 0 || bytes < bases || off < 0))
      throw InputError(fai + ": line " + std::to_string(n) + " (" + r.name + "): " +
                       (off < 0     ? "OFFSET " + std::to_string(off) + " is negative"
                        : bases <= 0 ? "LINEBASES " + std::to_string(bases) + " for a record of " +
                                           std::to_string(r.length) + " bases"
                                     : "LINEWIDTH " + std::to_string(bytes) + " is less than LINEBASES " +
                                           std::to_string(bases)) +
                       ": run 'samtools faidx " + path + "' again");
    if (columns && off >= 0 && ((bases > 0 && bytes >= bases) || r.length == 0)) {  // (an empty record: "0 W")
      r.offset = off;
      r.line_bases = bases;
      r.line_bytes = bytes;
    }
    records.push_back(std::move(r));
  }
  if (in.bad()) throw InputError(fai + ": read error: " + std::strerror(errno));
  return records;
}

std::unordered_map<std::string, int64_t> fai_lengths(const std::vector<FaiRecord>& fai) {
  std::unordered_map<std::string, int64_t> lengths;
  for (const FaiRecord& r : fai) lengths.emplace(r.name, r.length);
  return lengths;
}

std::unordered_map<std::string, int64_t> fai_lengths(const std::string& path) { return fai_lengths(read_fai(path)); }

namespace {

uint64_t read_u64le(std::istream& in) {
  unsigned char b[8];
  in.read(reinterpret_cast<char*>(b), 8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

// Just past a record's last base, by its .fai line (its offset when it has none). (Unsigned: a
// wild .fai wraps, no more.)
uint64_t fai_record_end(const FaiRecord& r) {
  if (r.length == 0 || r.line_bases <= 0) return uint64_t(r.offset);
  const uint64_t last = uint64_t(r.length) - 1, bases = uint64_t(r.line_bases);
  return uint64_t(r.offset) + last / bases * uint64_t(r.line_bytes) + last % bases + 1;
}

struct BgzfCloser {
  void operator()(BGZF* fp) const { bgzf_close(fp); }
};
// `path` through BGZF (uncompressed files too), or null when it does not open (the caller's
// open says why).
std::unique_ptr<BGZF, BgzfCloser> open_bgzf(const std::string& path) {
  return std::unique_ptr<BGZF, BgzfCloser>(bgzf_open(path.c_str(), "r"));
}

}  // namespace

uint64_t check_bgzip_index(const std::string& path, const std::vector<FaiRecord>& fai) {
  {
    const auto fp = open_bgzf(path);
    if (!fp || !fp->is_compressed || fp->is_gzip) return 0;
    bgzf_check_complete(fp.get(), path);
  }
  const std::string gzi = path + ".gzi";
  std::ifstream idx(gzi, std::ios::binary);
  if (!idx) return 0;  // fai_load3 says what is missing
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot open: " + ec.message());
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } fd_closer{fd};
  const auto stale = [&](const std::string& why) {
    return InputError(gzi + ": " + why + ": it is not this file's index (the file changed, or the "
                      ".gzi belongs to another): run 'bgzip -r " + path + "' or 'samtools faidx " +
                      path + "' again");
  };
  const uint64_t n = read_u64le(idx);
  if (!idx) throw stale("cannot read its entry count");
  // Every entry in order and inside the file (the .gzi alone, 16 bytes an entry); the first, the
  // last and up to 62 between them (a genome's .gzi has ~50,000) at the start of a block.
  // Its uncompressed offsets too: the block that starts at the entry before (or at the file's
  // start) holds their difference, its uncompressed size (ISIZE, at the end its header's BSIZE
  // gives; empty blocks after it, as where two bgzip files were concatenated, the .gzi leaves out).
  const uint64_t stride = std::max<uint64_t>(1, n / 63);
  uint64_t prev = 0, prev_u = 0, last_u = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t c = read_u64le(idx);
    last_u = read_u64le(idx);  // the uncompressed offset
    if (!idx) throw stale("ends after " + std::to_string(i) + " of its " + std::to_string(n) + " entries");
    if (c <= prev && i > 0) throw stale("entry " + std::to_string(i + 1) + " goes backwards");
    if (c >= size) throw stale("entry " + std::to_string(i + 1) + " points past the end of the file");
    const uint64_t before = prev, before_u = prev_u;
    prev = c, prev_u = last_u;
    if (i % stride != 0 && i + 1 != n) continue;
    unsigned char magic[4] = {}, head[18] = {}, isize[4] = {};
    if (::pread(fd, magic, 4, off_t(c)) != 4 || magic[0] != 0x1f || magic[1] != 0x8b || magic[2] != 0x08 ||
        magic[3] != 0x04)
      throw stale("entry " + std::to_string(i + 1) + " (byte " + std::to_string(c) + ") is not the start of a block");
    // (a header other than bgzip's own layout, XLEN 6 holding BC: not checked)
    if (::pread(fd, head, 18, off_t(before)) != 18 || head[10] != 6 || head[11] != 0 || head[12] != 'B' ||
        head[13] != 'C')
      continue;
    const uint64_t block_end = before + (uint64_t(head[16]) | uint64_t(head[17]) << 8) + 1;
    if (block_end > c || ::pread(fd, isize, 4, off_t(block_end - 4)) != 4 ||
        last_u - before_u != (uint64_t(isize[0]) | uint64_t(isize[1]) << 8 | uint64_t(isize[2]) << 16 |
                              uint64_t(isize[3]) << 24))
      throw stale("entry " + std::to_string(i + 1) + " (uncompressed byte " + std::to_string(last_u) +
                  ") does not follow the block before it");
  }
  // The last block it names holds at most 64 KiB: the records of the .fai must end before that.
  for (size_t k = 0; k < fai.size(); ++k) {
    const FaiRecord& r = fai[k];
    if (r.offset < 0) continue;  // htslib says what is wrong with the line
    const uint64_t end = fai_record_end(r);
    if (end > last_u + 65536)
      throw stale(path + ".fai line " + std::to_string(k + 1) + " ends at byte " + std::to_string(end) +
                  " of the uncompressed data, past the last block the .gzi names (" +
                  std::to_string(last_u) + ")");
  }
  return last_u;
}

void check_fai_matches(const std::string& path, const std::vector<FaiRecord>& fai, uint64_t known) {
  const auto owner = open_bgzf(path);
  BGZF* fp = owner.get();
  if (!fp || fp->is_gzip || (fp->is_compressed && bgzf_index_load(fp, path.c_str(), ".gzi") != 0)) return;  // said elsewhere
  const auto stale = [&](const std::string& what) {
    return InputError(path + ".fai: " + what + ": is the faidx index out of date (or edited)? run 'samtools faidx " +
                      path + "' again");
  };
  // The uncompressed size, which no seek may pass (htslib's bgzf_useek asserts): the file's, or
  // `known` and what follows it, read.
  uint64_t size = 0;
  if (fp->is_compressed) {
    size = known;
    if (bgzf_useek(fp, off_t(size), SEEK_SET) < 0) return;  // (check_bgzip_index has looked at it)
    char buf[65536];
    ssize_t got = 0;
    while ((got = bgzf_read(fp, buf, sizeof buf)) > 0) size += uint64_t(got);
    if (got < 0) throw InputError(path + ": read error (corrupt or truncated compressed data)");
  } else {
    std::error_code ec;
    size = std::filesystem::file_size(path, ec);
    if (ec) return;
  }
  const auto space = [](int c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; };
  {  // a FASTQ's index (fqidx) is not checked
    if (bgzf_useek(fp, 0, SEEK_SET) < 0) return;
    int c = bgzf_getc(fp);
    while (c >= 0 && space(c)) c = bgzf_getc(fp);
    if (c == '@') return;
  }
  // From uncompressed byte `at`, past blank lines, to the header of record `want` (null: none
  // is wanted), whose name is returned, with bases_at just past its header line; or to the first
  // other one with bases after it, returned too, passing the headers of empty records (samtools
  // leaves some out of a .fai, and one may have the wanted name: a header of that name is want's
  // where its bases start at want's OFFSET, or where it has bases) and records named as one of
  // `earlier` (htslib indexes a name's first record only, warning of the others); none at the
  // end of the file. A header's name is htslib's: after '>' and any spaces, up to a space (it may
  // be empty). Throws where there are bases before a header.
  uint64_t at = 0, bases_at = 0;
  std::unordered_set<std::string> earlier;
  const auto next_header = [&](const FaiRecord* want, const std::string& after) -> std::optional<std::string> {
    if (bgzf_useek(fp, off_t(at), SEEK_SET) < 0) throw stale("cannot seek to byte " + std::to_string(at) + after);
    int c = bgzf_getc(fp);
    while (c >= 0 && space(c)) c = bgzf_getc(fp);
    if (c >= 0 && c != '>')
      throw stale("bases at byte " + std::to_string(bgzf_utell(fp) - 1) + after +
                  ", where the index has none (a record longer than it says, or one it does not name)");
    while (c == '>') {
      std::string name;
      c = bgzf_getc(fp);
      while (c >= 0 && c != '\n' && std::isspace(c)) c = bgzf_getc(fp);  // (htslib's: '\r' too)
      while (c >= 0 && !space(c)) name += char(c), c = bgzf_getc(fp);
      while (c >= 0 && c != '\n') c = bgzf_getc(fp);  // the description
      const uint64_t header_end = uint64_t(bgzf_utell(fp));
      const bool wanted = want && name == want->name;
      if (wanted && (want->offset < 0 || want->length == 0 || header_end == uint64_t(want->offset))) {
        bases_at = header_end;
        return name;
      }
      // Its bases, if any: up to the next header (a '>' that starts a line) or the end.
      bool bases = false, line_start = true;
      for (c = bgzf_getc(fp); c >= 0 && !(c == '>' && line_start); c = bgzf_getc(fp)) {
        bases = bases || !space(c);
        line_start = c == '\n';
        if (bases && (wanted || !earlier.count(name))) {  // the wanted one elsewhere, or another record
          bases_at = header_end;
          return name;
        }
      }
    }
    return std::nullopt;
  };
  // The first, the last and up to 62 records between them (a genome of 100,000 scaffolds: 64
  // seeks): each one's header where the record before it ends; after the last, no more bases.
  const size_t stride = std::max<size_t>(1, fai.size() / 63);
  for (size_t k = 0; k <= fai.size(); ++k) {
    if (k > 0) earlier.insert(fai[k - 1].name);
    if (k % stride != 0 && k + 1 != fai.size() && k != fai.size()) continue;
    at = 0;
    std::string after = ", the file's start";
    if (k > 0) {
      const FaiRecord& r = fai[k - 1];
      if (r.offset < 0) continue;  // htslib says what is wrong with the line
      at = fai_record_end(r);
      after = ", after line " + std::to_string(k) + "'s record " + r.name;
      if (at > size)
        throw stale("line " + std::to_string(k) + "'s record " + r.name + " ends at byte " + std::to_string(at) +
                    ", past the end of the file's " + std::to_string(size) + " bytes of sequence text");
    }
    if (k == fai.size()) {
      if (const auto name = next_header(nullptr, after))
        throw stale("a record '" + *name + "' after the last one it names" +
                    (fai.empty() ? std::string(" (it names none)") : " (" + fai.back().name + ")"));
      break;
    }
    if (const auto name = next_header(&fai[k], after); name != fai[k].name)
      throw stale("line " + std::to_string(k + 1) + " names '" + fai[k].name + "', and the file has " +
                  (name ? "'" + *name + "'" : std::string("no record")) + " there");
    // Its bases where the index puts them (a header line that grew as the record shrank leaves
    // the file's size and the next header where they were), and its first line as long.
    const FaiRecord& r = fai[k];
    if (r.offset < 0 || r.length == 0) continue;
    if (bases_at != uint64_t(r.offset))
      throw stale("line " + std::to_string(k + 1) + "'s record " + r.name + " has its bases at byte " +
                  std::to_string(bases_at) + ", where the index has " + std::to_string(r.offset));
    if (r.length > r.line_bases) {  // (a second line: its first ends inside the record)
      const uint64_t eol = uint64_t(r.offset + r.line_bases);
      const int c = eol >= size || bgzf_useek(fp, off_t(eol), SEEK_SET) < 0 ? -1 : bgzf_getc(fp);
      if (c < 0 || !space(c))  // (trailing blanks: samtools counts them in LINEWIDTH)
        throw InputError(path + ": record " + r.name + "'s first line does not end after " +
                         std::to_string(r.line_bases) + " bases, as line " + std::to_string(k + 1) +
                         " of its .fai says (a blank inside a line, which reads wrong by position; or an "
                         "index out of date: run 'samtools faidx " + path + "' again)");
    }
  }
}

std::vector<FaiRecord> read_checked_fai(const std::string& path, bool fastq) {
  std::vector<FaiRecord> fai = read_fai(path);
  const uint64_t known = check_bgzip_index(path, fai);
  if (!fastq) check_fai_matches(path, fai, known);
  return fai;
}

FastaIndex::FastaIndex(const std::string& path) : path_(path) {
  if (path == "-")
    throw UsageError("random access (regions, both strands, a reference) needs an indexed file, "
                     "not standard input");
  if (::access(path.c_str(), R_OK) != 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  // Reads, not a genome: a faidx index would not help (the regions of score and stats read
  // them through their own index).
  if (hFILE* h = hopen(path.c_str(), "r")) {
    htsFormat fmt{};
    const bool ok = hts_detect_format2(h, path.c_str(), &fmt) == 0;
    hclose_abruptly(h);
    if (ok && (fmt.format == sam || fmt.format == bam || fmt.format == cram))
      throw InputError(path + ": a " + std::string(fmt.format == sam ? "SAM" : fmt.format == bam ? "BAM" : "CRAM") +
                       " file, where a FASTA is needed: this reads sequences by position (regions, "
                       "flanks, the reverse strand, a reference) from a faidx-indexed FASTA");
    if (ok && fmt.compression == gzip)  // plain gzip, not BGZF
      throw InputError(path + ": random access (regions, flanks, the reverse strand, a reference) "
                       "needs a plain or bgzip-compressed FASTA, and this is plain gzip: recompress "
                       "it with bgzip (zcat FILE | bgzip > FILE.bgz) and run 'samtools faidx' on that");
  }
  // Never build an index behind the user's back: without FAI_CREATE htslib only loads one.
  if (::access((path + ".fai").c_str(), F_OK) != 0)
    throw InputError(path + ": random access needs a faidx index (" + path +
                     ".fai not found): run 'samtools faidx " + path + "'");
  const std::vector<FaiRecord> fai = read_checked_fai(path);
  fai_.reset(fai_load3(path.c_str(), nullptr, nullptr, 0));
  if (!fai_)
    throw InputError(path + ": cannot load its faidx index (a bgzip file also needs its .gzi; plain "
                            "gzip cannot be indexed: recompress it with bgzip and run 'samtools faidx')");
  lengths_ = fai_lengths(fai);
}

FastaIndex::~FastaIndex() = default;
FastaIndex::FastaIndex(FastaIndex&&) noexcept = default;
FastaIndex& FastaIndex::operator=(FastaIndex&&) noexcept = default;

bool FastaIndex::has(const std::string& contig) const { return lengths_.count(contig) > 0; }

int64_t FastaIndex::length(const std::string& contig) const {
  const auto it = lengths_.find(contig);
  if (it == lengths_.end()) throw InputError(path_ + ": unknown contig '" + contig + "'");
  return it->second;
}

std::vector<std::string> FastaIndex::contigs() const {
  std::vector<std::string> v;
  for (int i = 0; i < faidx_nseq(fai_.get()); ++i) v.emplace_back(faidx_iseq(fai_.get(), i));
  return v;
}

std::string FastaIndex::fetch(const std::string& contig, int64_t begin, int64_t end) const {
  const int64_t len = length(contig);
  begin = std::clamp<int64_t>(begin, 0, len);
  end = std::clamp<int64_t>(end, begin, len);
  if (end == begin) return {};
  hts_pos_t got = 0;
  char* s = faidx_fetch_seq64(fai_.get(), contig.c_str(), begin, end - 1, &got);
  if (!s || got != end - begin) {
    std::free(s);
    throw InputError(path_ + ": cannot fetch " + contig + ":" + std::to_string(begin + 1) + "-" +
                     std::to_string(end) + " (is the faidx index out of date?)");
  }
  std::string out(s, size_t(got));
  std::free(s);
  return out;
}

uint8_t complement_base(uint8_t b) {
  switch (b) {
    case 'A': return 'T'; case 'C': return 'G'; case 'G': return 'C'; case 'T': return 'A';
    case 'U': return 'A';
    case 'a': return 't'; case 'c': return 'g'; case 'g': return 'c'; case 't': return 'a';
    case 'u': return 'a';
    case 'R': return 'Y'; case 'Y': return 'R'; case 'K': return 'M'; case 'M': return 'K';
    case 'B': return 'V'; case 'V': return 'B'; case 'D': return 'H'; case 'H': return 'D';
    case 'r': return 'y'; case 'y': return 'r'; case 'k': return 'm'; case 'm': return 'k';
    case 'b': return 'v'; case 'v': return 'b'; case 'd': return 'h'; case 'h': return 'd';
    default: return b;  // N, S, W: their own complement
  }
}

void reverse_complement(std::string& s) {
  std::reverse(s.begin(), s.end());
  for (auto& c : s) c = char(complement_base(uint8_t(c)));
}

}  // namespace mambadna::io
