// Helpers for the io tests: shared data paths, temporary directories, reading every chunk of a
// file back into records (checking the chunk invariants on the way), independent readings of
// the same files to compare with (htslib's faidx, a plain line parser, samtools view), and HDF5
// attributes in h5py's forms.
#pragma once
#include <catch2/catch.hpp>
#include <hdf5.h>
#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/fasta_index.h"
#include "io/sequence_reader.h"
#include "tests/test_paths.h"

namespace mambadna::test {

namespace fs = std::filesystem;

// A file of the shared test data; fails the test when it is missing.
inline std::string data_file(const std::string& rel) {
  std::string p = mambadna::test::shared_dir() + "/data/" + rel;
  INFO("shared test data file " << p);
  REQUIRE(fs::is_regular_file(p));
  return p;
}

// A fresh directory under $TMPDIR, removed with its contents at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mambadna-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Writes `text` to a file in the directory and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = file(name);
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
    return p;
  }
  // Copies `src` into the directory (without any index files) and returns the copy's path.
  std::string copy(const std::string& src, const std::string& name) const {
    std::string p = file(name);
    fs::copy_file(src, p, fs::copy_options::overwrite_existing);
    return p;
  }

 private:
  fs::path path_;
};

// The indexed FASTA `fasta` written out as one indexed FASTA a contig (named <contig>.fa) in
// `dir`, in the FASTA's order.
inline std::vector<std::string> split_by_contig(const TempDir& dir, const std::string& fasta) {
  const io::FastaIndex fa(fasta);
  std::vector<std::string> files;
  for (const auto& c : fa.contigs()) {
    std::string text = ">";
    text.append(c).append("\n").append(fa.fetch(c, 0, fa.length(c))).append("\n");
    files.push_back(dir.write(c + ".fa", text));
    REQUIRE(fai_build(files.back().c_str()) == 0);
  }
  return files;
}

// Attributes as h5py writes them and io::H5File does not, on an HDF5 object (H5File::id() for
// the root); one already there is replaced.
inline void set_raw_attr(hid_t obj, const char* key, hid_t type, const void* value) {
  if (H5Aexists(obj, key) > 0) REQUIRE(H5Adelete(obj, key) >= 0);
  const hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, key, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(a >= 0);
  REQUIRE(H5Awrite(a, type, value) >= 0);
  H5Aclose(a), H5Sclose(sp);
}

// A fixed-length string of `bytes` (padding included) with the given padding: h5py writes
// np.bytes_(b'upper') as NULLPAD of size 5.
inline void set_fixed_str_attr(hid_t obj, const char* key, const std::string& bytes, H5T_str_t pad) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, bytes.size());
  H5Tset_strpad(t, pad);
  set_raw_attr(obj, key, t, bytes.data());
  H5Tclose(t);
}

// A numpy bool as h5py stores it: an enum of int8, FALSE = 0, TRUE = 1.
inline void set_bool_attr(hid_t obj, const char* key, bool v) {
  const hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  const int8_t no = 0, yes = 1, value = v;
  H5Tenum_insert(t, "FALSE", &no);
  H5Tenum_insert(t, "TRUE", &yes);
  set_raw_attr(obj, key, t, &value);
  H5Tclose(t);
}

struct Rec {
  std::string name;
  std::string seq;
  friend bool operator==(const Rec&, const Rec&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const Rec& r) {
  os << "{'" << r.name << "', " << r.seq.size() << " bp";
  if (r.seq.size() <= 80) os << " " << r.seq;
  return os << "}";
}

// Reads the chunks `reader` has left at chunk length L, checks the invariants of io::Chunk and
// returns the records with their chunks concatenated (`chunks`, if given, counts the chunks).
inline std::vector<Rec> read_chunks(io::SequenceReader& reader, size_t L,
                                    const io::ReaderOptions& options = {}, size_t* chunks = nullptr) {
  std::vector<Rec> recs;
  io::Chunk c;
  bool in_record = false;
  int64_t expect_offset = 0;
  while (reader.next(c, L)) {
    REQUIRE(c.tokens.size() <= L);
    if (!in_record) {
      REQUIRE(c.begin_of_record);
      REQUIRE(c.record_index == int64_t(recs.size()));
      recs.push_back({c.record, {}});
      expect_offset = c.offset;
      in_record = true;
    } else {
      REQUIRE_FALSE(c.begin_of_record);
      REQUIRE(c.record == recs.back().name);
      REQUIRE(c.record_index == int64_t(recs.size()) - 1);
    }
    // Only a record with no tokens at all yields an empty chunk.
    if (c.tokens.empty()) REQUIRE((c.begin_of_record && c.end_of_record));
    if (options.tok.invalid != io::InvalidMode::skip) {
      REQUIRE(c.offset == expect_offset);
    } else {
      REQUIRE(c.offset >= expect_offset);
    }
    expect_offset = c.offset + int64_t(c.tokens.size());
    recs.back().seq.append(c.tokens.begin(), c.tokens.end());
    if (c.end_of_record) in_record = false;
    if (chunks) ++*chunks;
  }
  REQUIRE_FALSE(in_record);
  return recs;
}

// Reads every chunk of `path` at chunk length L, checks the invariants of io::Chunk and returns
// the records with their chunks concatenated.
inline std::vector<Rec> read_all(const std::string& path, size_t L,
                                 const io::ReaderOptions& options = {}) {
  io::SequenceReader reader(path, options);
  std::vector<Rec> recs = read_chunks(reader, L, options);
  REQUIRE(reader.records() == int64_t(recs.size()));
  return recs;
}

// Decompresses (or copies) a plain/gzip/bgzip file with htslib's BGZF reader into `out`.
inline void decompress(const std::string& in, const std::string& out) {
  BGZF* fp = bgzf_open(in.c_str(), "r");
  REQUIRE(fp != nullptr);
  std::ofstream o(out, std::ios::binary);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = bgzf_read(fp, buf.data(), buf.size())) > 0) o.write(buf.data(), n);
  REQUIRE(n == 0);
  bgzf_close(fp);
  REQUIRE(o.good());
}

// Records of an indexed FASTA (builds `path`.fai when missing, so `path` must be a private copy
// unless the index exists), fetched with faidx in index order. Empty when faidx refuses the file.
inline std::vector<Rec> faidx_records(const std::string& path) {
  std::vector<Rec> recs;
  if (!fs::exists(path + ".fai") && fai_build(path.c_str()) != 0) return recs;
  faidx_t* fai = fai_load(path.c_str());
  REQUIRE(fai != nullptr);
  for (int i = 0; i < faidx_nseq(fai); ++i) {
    const char* name = faidx_iseq(fai, i);
    hts_pos_t len = 0;
    char* s = faidx_fetch_seq64(fai, name, 0, HTS_POS_MAX, &len);
    REQUIRE(len >= 0);
    recs.push_back({name, std::string(s ? s : "", size_t(len))});
    std::free(s);
  }
  fai_destroy(fai);
  return recs;
}

inline std::string first_word(const std::string& header) {
  size_t b = header.find_first_not_of(" \t", 1);
  if (b == std::string::npos) return "";
  size_t e = header.find_first_of(" \t\r", b);
  return header.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

inline std::string strip_space(const std::string& line) {
  std::string s;
  for (char c : line)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  return s;
}

// A plain line-by-line FASTA parser of an uncompressed file.
inline std::vector<Rec> simple_fasta(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<Rec> recs;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '>')
      recs.push_back({first_word(line), {}});
    else if (!recs.empty())
      recs.back().seq += strip_space(line);
  }
  return recs;
}

// A plain line-by-line FASTQ parser (multi-line sequence and quality) of an uncompressed file.
inline std::vector<Rec> simple_fastq(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<Rec> recs;
  std::string line;
  while (std::getline(in, line)) {
    if (strip_space(line).empty()) continue;
    REQUIRE(line[0] == '@');
    Rec r{first_word(line), {}};
    while (std::getline(in, line) && (line.empty() || line[0] != '+')) r.seq += strip_space(line);
    size_t qual = 0;
    while (qual < r.seq.size() && std::getline(in, line)) qual += strip_space(line).size();
    REQUIRE(qual == r.seq.size());
    recs.push_back(std::move(r));
  }
  return recs;
}

// Runs a shell command; returns its standard output and sets `status` to its exit code.
inline std::string run_shell(const std::string& cmd, int& status) {
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Reads (name, SEQ) of SAM/BAM/CRAM records with `samtools view ARGS`; SEQ '*' becomes "".
inline std::vector<Rec> samtools_reads(const std::string& args) {
  int status = 0;
  std::string out = run_shell("samtools view " + args, status);
  REQUIRE(status == 0);
  std::vector<Rec> recs;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    std::string line = out.substr(pos, eol - pos);
    pos = eol == std::string::npos ? out.size() : eol + 1;
    std::vector<std::string> cols;
    size_t s = 0;
    for (int i = 0; i < 10; ++i) {
      size_t t = line.find('\t', s);
      cols.push_back(line.substr(s, t - s));
      s = t + 1;
    }
    recs.push_back({cols[0], cols[9] == "*" ? "" : cols[9]});
  }
  return recs;
}

inline std::string to_upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace mambadna::test
