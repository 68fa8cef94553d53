// io::SequenceReader on FASTA/FASTQ: every shared data file read back exactly at chunk lengths that
// do not divide its records (compared with faidx, a plain line parser or samtools view), the edge
// cases one by one, invalid characters under each mode, malformed input and faidx regions.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <htslib/hts.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/sequence_reader.h"
#include "test_io_util.h"
#include "tests/test_paths.h"

using namespace mambadna;
using test::Rec;

namespace {

const std::vector<size_t> kChunkLengths = {1, 7, 1000, 65536};

io::ReaderOptions keep_case() {
  io::ReaderOptions o;
  o.tok.case_mode = io::CaseMode::keep;
  return o;
}

std::vector<Rec> upper(std::vector<Rec> recs) {
  for (Rec& r : recs) r.seq = test::to_upper(r.seq);
  return recs;
}

std::vector<std::string> names(const std::vector<Rec>& recs) {
  std::vector<std::string> v;
  for (const Rec& r : recs) v.push_back(r.name);
  return v;
}

// htslib's exact format of a file, or text_format for text it does not name.
htsExactFormat detect(const std::string& path) {
  htsFile* fp = hts_open(path.c_str(), "r");
  if (!fp) return unknown_format;  // e.g. .fai and .gzi indexes, which htslib does not open
  htsExactFormat f = hts_get_format(fp)->format;
  hts_close(fp);
  return f;
}

}  // namespace

TEST_CASE("every FASTA/FASTQ/BAM/CRAM file of the shared data reads back exactly",
          "[io][reader][roundtrip]") {
  // These must all be there; any other sequence file found in the folders is checked as well.
  const std::set<std::string> required = {
      "genomes/lambda_phage.fa.gz",     "genomes/ecoli_k12_mg1655.fa.gz",
      "genomes/saureus_nctc8325.fa.gz", "genomes/human_grch37_chr20.fa.gz",
      "edge/headers_faidx.fa",          "edge/all_empty_records.fa",
      "edge/softmasked_one_long_line.fa", "edge/crlf.fa",
      "edge/ragged_lines.fa",           "edge/short_lines_iupac.fa",
      "edge/multiline.fq",              "edge/longline.fq",
      "edge/ex1.fa",                    "edge/ex1.bam",
      "edge/ce.fa",                     "edge/ce_range.cram"};
  std::set<std::string> files = required;
  for (const char* dir : {"genomes", "edge"})
    for (const auto& e : test::fs::directory_iterator(mambadna::test::shared_dir() + "/data/" + dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".fai" || ext == ".gzi" || ext == ".crai" || ext == ".bai" || ext == ".csi") continue;
      htsExactFormat f = detect(e.path().string());
      if (f == fasta_format || f == fastq_format || f == bam || f == cram || f == sam)
        files.insert(std::string(dir) + "/" + e.path().filename().string());
    }
  const std::string ce_fa = test::data_file("edge/ce.fa");

  int checked = 0;
  for (const std::string& rel : files) {
    INFO("file " << rel);
    const std::string path = test::data_file(rel);
    test::TempDir tmp;
    htsExactFormat f = detect(path);
    io::ReaderOptions opt = keep_case();
    std::vector<Rec> expect;
    if (f == bam || f == sam) {
      expect = test::samtools_reads("-F 0x900 '" + path + "'");
    } else if (f == cram) {
      opt.reference = ce_fa;
      expect = test::samtools_reads("-F 0x900 -T '" + ce_fa + "' '" + path + "'");
    } else if (rel == "genomes/human_grch37_chr20.fa.gz") {
      expect = test::faidx_records(path);  // bgzip with its .fai and .gzi
    } else {
      std::string plain = tmp.file("plain");
      test::decompress(path, plain);
      if (f == fastq_format) {
        expect = test::simple_fastq(plain);
      } else {
        expect = test::simple_fasta(plain);
        std::vector<Rec> fai = test::faidx_records(plain);
        // faidx refuses files whose line lengths change inside a record, and files htslib does
        // not recognise as FASTA (no bases at all).
        if (rel != "edge/ragged_lines.fa" && rel != "edge/all_empty_records.fa") REQUIRE(fai == expect);
      }
    }
    REQUIRE(!expect.empty());
    for (size_t L : kChunkLengths) {
      INFO("L = " << L);
      std::vector<Rec> got = test::read_all(path, L, opt);
      REQUIRE(names(got) == names(expect));
      REQUIRE(got == expect);
    }
    // Default options: upper case.
    io::ReaderOptions def = opt;
    def.tok = {};
    REQUIRE(test::read_all(path, 4099, def) == upper(expect));
    ++checked;
  }
  CHECK(checked >= int(required.size()));
}

TEST_CASE("decompression threads do not change what is read", "[io][reader]") {
  const std::string path = test::data_file("genomes/human_grch37_chr20.fa.gz");
  io::ReaderOptions opt;
  opt.threads = 2;
  io::SequenceReader r0(path), r2(path, opt);
  CHECK(r2.format() == io::Format::fasta);
  io::Chunk a, b;
  int64_t total = 0;
  while (r0.next(a, 100000)) {
    REQUIRE(r2.next(b, 100000));
    REQUIRE(a.tokens == b.tokens);
    REQUIRE(a.offset == b.offset);
    total += int64_t(a.tokens.size());
  }
  REQUIRE_FALSE(r2.next(b, 100000));
  CHECK(total == 63025520);
}

TEST_CASE("kept chunks are given again, re-cut to the next calls' length, then reading goes on",
          "[io][reader][keep]") {
  // What score does with a pipe: its first records read (and kept) to choose a shape, then read
  // again. Whatever was kept and however it is re-cut, the records read back exactly, and every
  // chunk keeps io::Chunk's invariants (read_chunks checks them).
  for (const std::string rel : {"edge/multiline.fq", "edge/ex1.bam", "edge/all_empty_records.fa",
                                "edge/ragged_lines.fa", "edge/softmasked_one_long_line.fa"}) {
    const std::string path = test::data_file(rel);
    const std::vector<Rec> ref = test::read_all(path, 1000);
    for (size_t keep_L : {size_t(7), size_t(1000)})
      for (int kept : {0, 1, 5, 200})
        for (size_t L : {size_t(3), size_t(64), size_t(100000)}) {
          INFO(rel << ": " << kept << " chunks of " << keep_L << " kept, read back at " << L);
          io::SequenceReader reader(path);
          reader.keep();
          io::Chunk c;
          int64_t tokens = 0;
          for (int i = 0; i < kept && reader.next(c, keep_L); ++i) tokens += int64_t(c.tokens.size());
          CHECK(reader.kept_tokens() == tokens);
          reader.replay();
          CHECK(test::read_chunks(reader, L) == ref);
        }
  }
  // A record's kept chunks are joined: kept at 7, read back at 1000, the chunks are those of a
  // reader read at 1000 from the start.
  const std::string path = test::data_file("edge/ragged_lines.fa");
  size_t fresh = 0, again = 0;
  io::SequenceReader one(path);
  const std::vector<Rec> ref = test::read_chunks(one, 1000, {}, &fresh);
  io::SequenceReader kept(path);
  kept.keep();
  io::Chunk c;
  while (kept.next(c, 7)) {
  }
  kept.replay();
  CHECK(test::read_chunks(kept, 1000, {}, &again) == ref);
  CHECK(again == fresh);
}

TEST_CASE("format detection and lengths", "[io][reader]") {
  io::SequenceReader chr20(test::data_file("genomes/human_grch37_chr20.fa.gz"));
  CHECK(chr20.format() == io::Format::fasta);
  CHECK(chr20.format_description().find("BGZF") != std::string::npos);
  CHECK(chr20.total_length() == 63025520);  // from its .fai
  CHECK(chr20.record_length() == -1);       // streamed: not known
  io::SequenceReader lambda(test::data_file("genomes/lambda_phage.fa.gz"));
  CHECK(lambda.format() == io::Format::fasta);
  CHECK(lambda.total_length() == -1);  // plain gzip, no index
  CHECK(io::SequenceReader(test::data_file("edge/multiline.fq")).format() == io::Format::fastq);
  CHECK(io::SequenceReader(test::data_file("edge/ex1.bam")).format() == io::Format::bam);
  CHECK(io::SequenceReader(test::data_file("edge/ce_range.cram")).format() == io::Format::cram);
  // htslib calls this "unknown text" (no bases at all); the first byte makes it FASTA.
  CHECK(io::SequenceReader(test::data_file("edge/all_empty_records.fa")).format() == io::Format::fasta);
}

TEST_CASE("headers_faidx.fa: empty name, leading spaces, descriptions, CRLF, blank lines",
          "[io][reader][edge]") {
  const std::string path = test::data_file("edge/headers_faidx.fa");
  for (size_t L : {size_t(1), size_t(3), size_t(100)}) {
    std::vector<Rec> got = test::read_all(path, L);
    REQUIRE(got == std::vector<Rec>{
                       {"", "ATGC"},  // a bare '>' names the record ""
                       {"trailingblank1", "AAATTTGGGCCCTTTGGGCCCAAAGGGCCCAAA"},
                       {"trailingblank2",
                        "AAATTTGGGCCCAAATTTGGGCCCTTTGGGCCCAAATTTGGGCCCAAAGGGCCCAAATTTGGGCCCAAATTT"},
                       {"trailingblank3", "ACGTA"},  // CRLF lines and a CRLF blank line
                       {"foo", "TGCATGCA"},          // ">  foo": leading spaces skipped
                       {"bar", "TTTTAAAA"},          // "> bar description"
                   });
  }
}

TEST_CASE("all_empty_records.fa: 20 records of 0 bases, one empty chunk each", "[io][reader][edge]") {
  io::SequenceReader r(test::data_file("edge/all_empty_records.fa"));
  io::Chunk c;
  int n = 0;
  while (r.next(c, 10)) {
    ++n;
    CHECK(c.record == "seq" + std::to_string(n));
    CHECK(c.record_index == n - 1);
    CHECK(c.tokens.empty());
    CHECK(c.begin_of_record);
    CHECK(c.end_of_record);
    CHECK(c.offset == 0);
  }
  CHECK(n == 20);
}

TEST_CASE("crlf.fa: no carriage return reaches the tokens", "[io][reader][edge]") {
  std::vector<Rec> got = test::read_all(test::data_file("edge/crlf.fa"), 1000);
  REQUIRE(got.size() == 20);
  CHECK(got[0].name == "gi|563317589|dbj|AB821309.1|");
  for (const Rec& r : got) {
    CHECK(r.seq.find('\r') == std::string::npos);
    CHECK(!r.seq.empty());
  }
}

TEST_CASE("ragged_lines.fa: changing line lengths and a blank line", "[io][reader][edge]") {
  std::vector<Rec> got = test::read_all(test::data_file("edge/ragged_lines.fa"), 7);
  REQUIRE(got.size() == 2);
  CHECK(got[0].name == "MT");
  CHECK(got[0].seq.size() == 70 + 49);
  CHECK(got[0].seq.substr(63, 10) == "CAGGGTCATA");  // across the line break
  CHECK(got[1].name == "GL000207.1");
  CHECK(got[1].seq.size() == 60);
}

TEST_CASE("short_lines_iupac.fa and multiline.fq hold the same IUPAC sequences",
          "[io][reader][edge]") {
  const std::vector<Rec> expect = {
      {"seq1", "NAAAAAAAAACCCCCCCCCCGGGGGGGGGGTTTTTTTTN"},
      {"seq2", "RAAAAAAAAACCCCCCCCCCGGGGGGGGGGTTTTTTTTY"},
  };
  for (size_t L : kChunkLengths) {
    CHECK(test::read_all(test::data_file("edge/short_lines_iupac.fa"), L) == expect);
    // FASTQ: wrapped sequence and quality; quality lines start with '+' and '@'.
    CHECK(test::read_all(test::data_file("edge/multiline.fq"), L) == expect);
  }
}

TEST_CASE("longline.fq: a 1 kB header line with tags", "[io][reader][edge]") {
  CHECK(test::read_all(test::data_file("edge/longline.fq"), 3) == std::vector<Rec>{{"readname", "ATGC"}});
}

TEST_CASE("FASTQ with CRLF line ends and wrapped quality", "[io][reader][edge]") {
  test::TempDir dir;
  const std::string fq = dir.write("crlf.fq", "@r1 x\r\nACGT\r\nAC\r\n+\r\nIIII\r\n@+\r\n@r2\r\n\r\n+r2\r\n\r\n@r3\r\nN\r\n+\r\n!\r\n");
  CHECK(test::read_all(fq, 4) == std::vector<Rec>{{"r1", "ACGTAC"}, {"r2", ""}, {"r3", "N"}});
}

TEST_CASE("softmasked_one_long_line.fa: case folding or keeping on a 40 kb line", "[io][reader][edge]") {
  const std::string path = test::data_file("edge/softmasked_one_long_line.fa");
  std::vector<Rec> raw = test::simple_fasta(path);
  REQUIRE(raw.size() == 1);
  REQUIRE(raw[0].seq.size() == 40000);
  size_t lower = size_t(std::count_if(raw[0].seq.begin(), raw[0].seq.end(), ::islower));
  CHECK(lower == 17395);  // 43% soft-masked
  for (size_t L : kChunkLengths) {
    std::vector<Rec> kept = test::read_all(path, L, keep_case());
    REQUIRE(kept == raw);
    std::vector<Rec> up = test::read_all(path, L);
    REQUIRE(up == upper(raw));
  }
}

TEST_CASE("a record longer than any buffer: one 3 Mbp line and a 600 kB header", "[io][reader]") {
  test::TempDir dir;
  std::string seq;
  const char* bases = "ACGTacgtNRYKM";
  uint32_t x = 12345;
  for (int i = 0; i < 3000017; ++i) {
    x = x * 1103515245u + 12345u;
    seq += bases[(x >> 16) % 13];
  }
  std::string text = ">big " + std::string(600000, 'd') + "\r\n" + seq + "\r\n>small\nAC\nGT\n";
  std::string path = dir.write("big.fa", text);
  for (size_t L : {size_t(7), size_t(65536), size_t(5000000)}) {
    std::vector<Rec> got = test::read_all(path, L, keep_case());
    REQUIRE(got.size() == 2);
    CHECK(got[0].name == "big");
    CHECK(got[0].seq == seq);
    CHECK(got[1] == Rec{"small", "ACGT"});
  }
  // bgzip-compressed, through decompression threads.
  int status = 0;
  test::run_shell("bgzip -c '" + path + "' > '" + path + ".gz'", status);
  REQUIRE(status == 0);
  io::ReaderOptions opt = keep_case();
  opt.threads = 2;
  std::vector<Rec> got = test::read_all(path + ".gz", 100000, opt);
  REQUIRE(got.size() == 2);
  CHECK(got[0].seq == seq);
}

TEST_CASE("invalid characters under each --invalid mode", "[io][reader][tokenizer]") {
  test::TempDir dir;
  const std::string fa = dir.write("bad.fa", ">ok\nACGT\n>x desc\nAC#G\nT-A\n");
  const std::string fq = dir.write("bad.fq", "@ok\nACGT\n+\nIIII\n@x\nAC#G\nT-A\n+\nIIIIIII\n");
  for (const std::string& path : {fa, fq}) {
    INFO(path);
    io::ReaderOptions opt;
    // error: names file, record and the 1-based position of the first bad character.
    REQUIRE_THROWS_AS(test::read_all(path, 100, opt), InputError);
    REQUIRE_THROWS_WITH(test::read_all(path, 100, opt),
                        Catch::StartsWith(path + ": record 'x': position 3: invalid character '#' (0x23)"));
    opt.tok.invalid = io::InvalidMode::skip;
    CHECK(test::read_all(path, 100, opt) == std::vector<Rec>{{"ok", "ACGT"}, {"x", "ACGTA"}});
    opt.tok.invalid = io::InvalidMode::to_n;
    CHECK(test::read_all(path, 100, opt) == std::vector<Rec>{{"ok", "ACGT"}, {"x", "ACNGTNA"}});
  }
  // Under skip, offsets still count the dropped characters.
  io::ReaderOptions skip;
  skip.tok.invalid = io::InvalidMode::skip;
  io::SequenceReader r(fa, skip);
  io::Chunk c;
  REQUIRE(r.next(c, 100));  // ok
  REQUIRE(r.next(c, 2));
  CHECK(std::string(c.tokens.begin(), c.tokens.end()) == "AC");
  CHECK(c.offset == 0);
  REQUIRE(r.next(c, 2));
  CHECK(std::string(c.tokens.begin(), c.tokens.end()) == "GT");
  CHECK(c.offset == 3);  // '#' was position 2
  REQUIRE(r.next(c, 2));
  CHECK(std::string(c.tokens.begin(), c.tokens.end()) == "A");
  CHECK(c.offset == 6);  // '-' was position 5
  CHECK(c.end_of_record);
  // Lower case under keep, and '-' '*' '.' are never bases.
  io::Tokenizer keep({io::CaseMode::keep, io::InvalidMode::error});
  CHECK(keep['a'] == 'a');
  CHECK(keep['u'] == 'u');
  for (uint8_t b : {'-', '*', '.', 'X', 'E', '0', '\0'}) CHECK(keep[b] == io::Tokenizer::kInvalid);
  for (uint8_t b : {' ', '\t', '\r', '\n'}) CHECK(keep[b] == io::Tokenizer::kIgnore);
  io::Tokenizer up;
  for (char b : std::string("ACGTUNRYKMSWBDHVacgtunrykmswbdhv"))
    CHECK(up[uint8_t(b)] == uint8_t(std::toupper(b)));
  CHECK_THROWS_AS(io::parse_invalid_mode("drop"), UsageError);
  CHECK(io::parse_invalid_mode("N") == io::InvalidMode::to_n);
  CHECK_THROWS_AS(io::parse_case_mode("lower"), UsageError);
}

TEST_CASE("malformed input is an InputError naming the file", "[io][reader][errors]") {
  test::TempDir dir;
  struct Row {
    std::string name, text, message;
  };
  const std::vector<Row> rows = {
      {"text.txt", "hello world\n", "not a FASTA, FASTQ, SAM, BAM or CRAM file"},
      {"lead.fa", "\n\nACGT\n>x\nAC\n", "not a FASTA, FASTQ, SAM, BAM or CRAM file"},
      {"noplus.fq", "@r\nACGT\n", "record 'r': the file ends before the '+' line"},
      {"short.fq", "@r\nACGT\n+\nII\n", "record 'r': the quality string is shorter than the sequence"},
      {"long.fq", "@r\nACGT\n+\nIIIII\n@s\nA\n+\nI\n", "record 'r': the quality string is longer"},
      {"shortline.fq", "@r\nACGT\n+\nII\n@s2\nA\n+\nI\n",
       "record 'r': the quality string is longer than the sequence (5 > 4 over 2 lines: or a "
       "quality line shorter than its sequence"},
      {"at.fq", "@r\nACGT\n@s\n+\nIIII\n", "record 'r': a line starts with '@' before the '+' line"},
      {"mixed.fq", "@r\nA\n+\nI\n>s\nA\n", "after record 'r': expected '@' at the start of a FASTQ record"},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    std::string p = dir.write(row.name, row.text);
    REQUIRE_THROWS_AS(test::read_all(p, 10), InputError);
    REQUIRE_THROWS_WITH(test::read_all(p, 10), Catch::StartsWith(p + ": ") && Catch::Contains(row.message));
  }
  // Not a sequence format at all: says what htslib saw.
  const std::string vcf = test::data_file("variants/saureus_nctc8325.vcf.gz");
  REQUIRE_THROWS_WITH(io::SequenceReader(vcf), Catch::StartsWith(vcf + ": not a FASTA") &&
                                                   Catch::Contains("htslib detected: VCF"));
  REQUIRE_THROWS_WITH(io::SequenceReader(dir.file("missing.fa")),
                      dir.file("missing.fa") + ": cannot open: No such file or directory");
  {  // bgzip cut at a block boundary: the blocks before the cut inflate cleanly, so only the
     // missing end-of-file block shows the loss; from a file (at open) and through a pipe (at
     // the end).
    std::string text = ">long\n";
    for (int i = 0; i < 40000; ++i) text += "ACGTTGCAACGGTACCATGGACGTACGTTTGACCAGTACGGA\n";
    const std::string plain = dir.write("long.fa", text);
    int status = 0;
    const std::string gz = dir.file("long.fa.gz");
    test::run_shell("bgzip -c '" + plain + "' > '" + gz + "'", status);
    REQUIRE(status == 0);
    std::ifstream in(gz, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t off = 0;
    for (int b = 0; b < 3; ++b) off += size_t(uint8_t(bytes[off + 16])) + (size_t(uint8_t(bytes[off + 17])) << 8) + 1;
    REQUIRE(off + 28 < bytes.size());  // three whole blocks, more to come
    const std::string cut = dir.write("cut.fa.gz", bytes.substr(0, off));
    CHECK_THROWS_WITH(test::read_all(cut, 1000), Catch::Contains("end-of-file block is missing"));
    const std::string out = test::run_shell("cat '" + cut + "' | '" + test::binary_path() + "' stats -v0 - 2>&1", status);
    CHECK(status == 1);
    CHECK(out.find("-: truncated or corrupt compressed data in record 'long' at position ") != std::string::npos);
    CHECK(test::read_all(gz, 1000).front().seq.size() == 40000u * 42u);  // the whole file reads
    // Plain gzip cut short: the read that reaches the cut fails, and names where it was.
    const std::string plain_gz = dir.file("plain_cut.fa.gz");
    test::run_shell("gzip -c '" + plain + "' > '" + plain_gz + ".full' && head -c $(( $(stat -c %s '" + plain_gz +
                        ".full') / 2 )) '" + plain_gz + ".full' > '" + plain_gz + "'",
                    status);
    REQUIRE(status == 0);
    CHECK_THROWS_WITH(test::read_all(plain_gz, 1000),
                      Catch::StartsWith(plain_gz + ": read error (corrupt or truncated compressed data) in "
                                                   "record 'long' at position "));
  }
  {  // the same for a BAM file
    std::ifstream in(test::data_file("edge/ex1.bam"), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t off = 0;
    for (int b = 0; b < 2; ++b) off += size_t(uint8_t(bytes[off + 16])) + (size_t(uint8_t(bytes[off + 17])) << 8) + 1;
    REQUIRE(off + 28 < bytes.size());
    const std::string cut = dir.write("cut.bam", bytes.substr(0, off));
    CHECK_THROWS_WITH(test::read_all(cut, 1000), Catch::Contains("end-of-file block is missing"));
  }
  // An empty file has no records.
  io::SequenceReader empty(dir.write("empty.fa", ""));
  io::Chunk c;
  CHECK_FALSE(empty.next(c, 10));
  CHECK(empty.format() == io::Format::empty);
  CHECK_THROWS_AS(empty.next(c, 0), UsageError);
}

TEST_CASE("regions on bgzip chr20 match faidx", "[io][reader][regions]") {
  const std::string path = test::data_file("genomes/human_grch37_chr20.fa.gz");
  REQUIRE(test::fs::exists(path + ".fai"));
  REQUIRE(test::fs::exists(path + ".gzi"));
  faidx_t* fai = fai_load(path.c_str());
  REQUIRE(fai != nullptr);
  auto fetch = [&](int64_t b, int64_t e) {
    if (b >= e) return std::string();
    hts_pos_t len = 0;
    char* s = faidx_fetch_seq64(fai, "20", b, e - 1, &len);
    std::string out(s ? s : "", size_t(std::max<hts_pos_t>(len, 0)));
    std::free(s);
    return out;
  };
  io::ReaderOptions opt = keep_case();
  for (const char* text : {"20:1,000,000-1,100,000", "20:9,500,001-11,700,000", "20:63,025,000-63,100,000",
                           "20:63,025,520-63,025,600", "{20}:60,000,001"})
    opt.regions.push_back(io::parse_region(text));
  opt.regions.push_back({"20", 5000000, 5000100, "named"});
  const std::vector<std::pair<int64_t, int64_t>> clipped = {{999999, 1100000},     {9500000, 11700000},
                                                            {63024999, 63025520}, {63025519, 63025520},
                                                            {60000000, 63025520}, {5000000, 5000100}};
  io::SequenceReader r(path, opt);
  CHECK(r.total_length() == 100001 + 2200000 + 521 + 1 + 3025520 + 100);
  {  // each record's region name: its BED name, else its interval clipped to the contig
    io::SequenceReader names(path, opt);
    io::Chunk c;
    CHECK(names.region_name().empty());  // no record yet
    std::vector<std::string> got;
    while (names.next(c, 1 << 20))
      if (c.begin_of_record) got.push_back(names.region_name());
    CHECK(got == std::vector<std::string>{"20:1000000-1100000", "20:9500001-11700000",
                                          "20:63025000-63025520", "20:63025520-63025520",
                                          "20:60000001-63025520", "named"});
  }
  {  // a region that starts past the contig's end, alone, is an error (another assembly's
     // coordinates?); beside others it is skipped and reported (below)
    io::ReaderOptions past = keep_case();
    past.regions = {io::parse_region("20:70,000,000-70,000,010")};
    CHECK_THROWS_WITH(io::SequenceReader(path, past),
                      Catch::Contains("starts after the end of contig '20' (63025520 bases)"));
    // ... an empty one too (BED "20 63025521 63025521"), where an empty one at the end is there
    past.regions = {io::Region{"20", 63025521, 63025521, "", '.', 3}};
    CHECK_THROWS_WITH(io::SequenceReader(path, past),
                      Catch::Contains("region '20:63025522-63025521 (BED line 3)' starts after the end of contig '20'"));
  }
  for (size_t L : {size_t(7), size_t(65536)}) {
    if (L == 7) opt.regions.resize(4);  // keep L = 7 quick
    std::vector<Rec> got = test::read_all(path, L, opt);
    REQUIRE(got.size() == opt.regions.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("region " << io::format_region(opt.regions[i]) << ", L = " << L);
      CHECK(got[i].name == "20");
      REQUIRE(got[i].seq == fetch(clipped[i].first, clipped[i].second));
    }
  }
  fai_destroy(fai);
  // Offsets are contig positions.
  io::ReaderOptions one;
  one.regions = {io::parse_region("20:1,000,001-1,000,010")};
  io::SequenceReader r1(path, one);
  io::Chunk c;
  REQUIRE(r1.next(c, 4));
  CHECK(c.offset == 1000000);
  CHECK(r1.record_length() == 10);
  REQUIRE(r1.next(c, 4));
  CHECK(c.offset == 1000004);
  // An unknown contig names itself and the file.
  io::ReaderOptions bad;
  bad.regions = {io::parse_region("chr20:1-10")};
  REQUIRE_THROWS_AS(io::SequenceReader(path, bad), InputError);
  REQUIRE_THROWS_WITH(io::SequenceReader(path, bad),
                      path + ": region 'chr20:1-10': unknown contig 'chr20'");
  // Regions on contigs this input lacks are skipped and reported (samtools view goes on past
  // an unknown reference); only none at all is an error, naming the first and its BED line.
  io::ReaderOptions some;
  some.regions = {io::parse_region("chr20:1-10"), io::parse_region("20:70,000,000-70,000,010"),
                  io::parse_region("20:1,000,001-1,000,010"), io::Region{"chrY", 0, 5, "y", '.', 7}};
  std::vector<std::string> reported;
  some.on_regions_skipped = [&](const std::string& p, const std::vector<io::Region>& skipped, io::RegionSkip why) {
    for (const auto& s : skipped)
      reported.push_back(p + " " + io::describe_region(s) + (why == io::RegionSkip::past_end ? " past" : ""));
  };
  io::SequenceReader r2(path, some);
  CHECK(reported == std::vector<std::string>{path + " chr20:1-10", path + " chrY:1-5 (BED line 7)",
                                             path + " 20:70000000-70000010 past"});
  CHECK(r2.total_length() == 10);
  REQUIRE(r2.next(c, 16));
  CHECK(c.offset == 1000000);
  CHECK(r2.region_name() == "20:1000001-1000010");
  CHECK_FALSE(r2.next(c, 16));
  some.regions = {io::Region{"chrY", 0, 5, "", '.', 7}, io::parse_region("chr20")};
  REQUIRE_THROWS_WITH(io::SequenceReader(path, some),
                      path + ": region 'chrY:1-5 (BED line 7)': unknown contig 'chrY' (and no "
                             "other region is there)");
  // Both reasons: each named by its first region.
  some.regions = {io::Region{"chrY", 0, 5, "", '.', 7}, io::parse_region("20:70,000,000-70,000,010")};
  REQUIRE_THROWS_WITH(io::SequenceReader(path, some),
                      path + ": no region is there: region 'chrY:1-5 (BED line 7)': unknown contig 'chrY'; region "
                             "'20:70000000-70000010' starts after the end of contig '20' (63025520 bases)");
}

TEST_CASE("several inputs: all opened before any work, one may lack every region", "[io][reader][regions]") {
  // One FASTA a contig: regions on one file's contig only are fine (the other gives none); a
  // later input without its index stops the run before the first is read; regions in no input
  // are an error naming the first.
  test::TempDir dir;
  const std::string a = dir.write("a.fa", ">ca\nACGTACGTAC\n"), b = dir.write("b.fa", ">cb\nGGGGCCCCAA\n");
  REQUIRE(fai_build(a.c_str()) == 0);
  io::ReaderOptions opt;
  opt.regions = {io::parse_region("cb:2-5")};
  opt.regions_elsewhere = true;
  REQUIRE_THROWS_WITH(io::check_inputs({a, b}, opt), Catch::Contains(b + ".fai not found"));
  REQUIRE(fai_build(b.c_str()) == 0);
  CHECK_NOTHROW(io::check_inputs({a, b}, opt));
  CHECK(test::read_all(a, 16, opt).empty());  // none of the regions: no record, not the whole file
  CHECK(test::read_all(b, 16, opt) == std::vector<Rec>{{"cb", "GGGC"}});
  opt.regions = {io::parse_region("cz:1-5")};
  CHECK_THROWS_WITH(io::check_inputs({a, b}, opt), "none of the 2 inputs has any of the regions (the first: cz:1-5)");
  opt.regions_elsewhere = false;  // one input alone: its own error, as before
  CHECK_THROWS_WITH(io::SequenceReader(a, opt), a + ": region 'cz:1-5': unknown contig 'cz'");
  // A FIFO (bash's <(...)) cannot be indexed: said so, not "run samtools faidx /dev/fd/63".
  const std::string fifo = dir.file("in.fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(io::SequenceReader(fifo, opt), fifo + ": regions need an indexed file, not a pipe or other special file");
  // Before any input is read: check_inputs says it for a pipe anywhere in the list.
  CHECK_THROWS_WITH(io::check_inputs({"-", a}, opt), "standard input: regions need an indexed file, not standard input or a pipe");
}

TEST_CASE("contig lengths of 2^31 bases and more are read whole", "[io][reader][regions]") {
  // htslib's faidx_seq_len returns an int; a hand-written index says what a 3 Gbp and a
  // 2^32 + 100 bp chromosome's would (their bases are not needed to ask for the lengths).
  // The file is sparse (7.4 GB of holes): each header where the index puts it, and the end of
  // each record's first line, as the index is checked against the file.
  test::TempDir dir;
  const std::string fa = dir.write("big.fa", ">small\nACGT\n>big\n");
  const int64_t big_at = 17, wrap_at = big_at + 3000000000LL / 60 * 61 + 6;
  const int64_t end = wrap_at + 4294967396LL / 60 * 61 + 4294967396LL % 60;
  {
    std::fstream f(fa, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(wrap_at - 7) << "\n>wrap\n";  // (the end of big's last line, then wrap's header)
    f.seekp(big_at + 60) << "\n";
    f.seekp(wrap_at + 60) << "\n";
    f.seekp(end) << "\n";
    REQUIRE(f.good());
  }
  dir.write("big.fa.fai", "small\t4\t7\t4\t5\nbig\t3000000000\t" + std::to_string(big_at) + "\t60\t61\nwrap\t4294967396\t" +
                              std::to_string(wrap_at) + "\t60\t61\n");
  const io::FastaIndex idx(fa);
  CHECK(idx.length("small") == 4);
  CHECK(idx.length("big") == 3000000000LL);
  CHECK(idx.length("wrap") == 4294967396LL);
  CHECK(idx.lengths()("big") == 3000000000LL);
  CHECK(io::fai_lengths(fa).at("wrap") == 4294967396LL);
  // A region on it keeps its coordinates (it is not clipped to a wrapped length).
  io::ReaderOptions opt;
  opt.regions = {io::parse_region("big:2999999001-3000000000")};
  CHECK(io::SequenceReader(fa, opt).total_length() == 1000);
  dir.write("big.fa.fai", "small\tfour\t7\t4\t5\n");
  CHECK_THROWS_WITH(io::fai_lengths(fa), fa + ".fai: line 1: not a faidx line (NAME, tab, LENGTH, ...): run "
                                                  "'samtools faidx " + fa + "' again");
}

TEST_CASE("a .fai that does not describe its FASTA is refused before a read by position", "[io][reader][regions][errors]") {
  // A record appended after indexing was dropped without a word by --strand both (which reads
  // through the index) and read by a plain stream; LINEBASES 0 had htslib divide by zero.
  test::TempDir dir;
  const std::string body = ">r1 first\nACGTACGTAC\nGTA\n\n>empty\n>r2\nGGGCCCAAAT\n";
  const std::string fa = dir.write("a.fa", body);
  const std::string fai = "r1\t13\t10\t10\t11\nr2\t10\t37\t10\t11\n";  // as samtools writes it
  dir.write("a.fa.fai", fai);
  CHECK(io::FastaIndex(fa).fetch("r2", 0, 10) == "GGGCCCAAAT");
  const std::string again = ": is the faidx index out of date (or edited)? run 'samtools faidx " + fa + "' again";
  dir.write("a.fa", body + ">extra\nACGT\n");
  CHECK_THROWS_WITH(io::FastaIndex(fa), fa + ".fai: a record 'extra' after the last one it names (r2)" + again);
  io::ReaderOptions opt;
  opt.regions = {io::parse_region("r1")};
  CHECK_THROWS_WITH(io::SequenceReader(fa, opt), Catch::Contains("a record 'extra' after the last one"));
  dir.write("a.fa", body + "ACGT\n");
  CHECK_THROWS_WITH(io::FastaIndex(fa), Catch::StartsWith(fa + ".fai: bases at byte 48, after line 2's record r2, "
                                                               "where the index has none"));
  dir.write("a.fa", body);
  dir.write("a.fa.fai", "r1\t13\t10\t10\t11\nother\t10\t40\t10\t11\n");
  CHECK_THROWS_WITH(io::FastaIndex(fa), fa + ".fai: line 2 names 'other', and the file has 'r2' there" + again);
  dir.write("a.fa.fai", "r1\t12\t10\t10\t11\nr2\t10\t37\t10\t11\n");  // r1 one base short
  CHECK_THROWS_WITH(io::FastaIndex(fa), Catch::StartsWith(fa + ".fai: bases at byte 23, after line 1's record r1"));
  dir.write("a.fa.fai", "");
  CHECK_THROWS_WITH(io::FastaIndex(fa), fa + ".fai: a record 'r1' after the last one it names (it names none)" + again);
  dir.write("a.fa.fai", "r1\t13\t10\t0\t11\nr2\t10\t37\t10\t11\n");
  CHECK_THROWS_WITH(io::FastaIndex(fa), fa + ".fai: line 1 (r1): LINEBASES 0 for a record of 13 bases: run 'samtools "
                                             "faidx " + fa + "' again");
  dir.write("a.fa.fai", "r1\t13\t10\t10\t9\nr2\t10\t37\t10\t11\n");
  CHECK_THROWS_WITH(io::FastaIndex(fa), Catch::Contains("line 1 (r1): LINEWIDTH 9 is less than LINEBASES 10"));
  // The same through a bgzip file and its .gzi.
  const std::string gz = dir.file("a.fa.gz");
  REQUIRE(std::system(("bgzip -c " + fa + " > " + gz + " && samtools faidx " + gz).c_str()) == 0);
  CHECK(io::FastaIndex(gz).fetch("r1", 10, 13) == "GTA");
  const std::string gz2 = dir.file("b.fa.gz");
  dir.write("b.fa", body + ">extra\nACGT\n");
  REQUIRE(std::system(("bgzip -c " + dir.file("b.fa") + " > " + gz2 + " && bgzip -r " + gz2).c_str()) == 0);
  std::filesystem::copy_file(gz + ".fai", gz2 + ".fai");
  CHECK_THROWS_WITH(io::FastaIndex(gz2), Catch::Contains("a record 'extra' after the last one it names (r2)"));
}

TEST_CASE("a .fai check takes every layout samtools indexes", "[io][reader][regions]") {
  // Each file indexed by samtools (and bgzipped and indexed again) opens, and its last record
  // reads back: no final newline (a bgzip seek past the data stopped the program on an
  // assertion), empty records it lists ("  " or CRLF blank lines) or leaves out, a name given
  // twice (htslib indexes the first), an empty record named as the next, an empty name, and two
  // bgzip files concatenated (an empty end-of-file block inside, which the .gzi leaves out).
  test::TempDir dir;
  int st = -1;
  const std::pair<const char*, std::string> files[] = {
      {"nonl", ">a\nACGTACGT\n>b\nACGTACGT"},
      {"nonl_crlf", ">a\r\nACGTACGT\r\n>b\r\nACGTAC"},
      {"empty_listed", ">a\nACGTACGT\n>e\n  \n>b\nACGTACGT\n"},
      {"empty_crlf", ">a\r\nACGTACGT\r\n>e\r\n\r\n>b\r\nACGTACGT\r\n"},
      {"empty_left_out", ">a\nACGTACGT\n>e\n\n>f\n>b\nACGTACGT\n"},
      {"twice", ">a\nACGTACGT\n>a\nTTTTTTTT\n>b\nACGTACGT\n"},
      {"twice_apart", ">a\nACGTACGT\n>b\nACGTACGT\n>a\nTTTT\n"},
      // an empty record, left out, of the name of the next one (htslib indexes the one with bases)
      {"empty_twice", ">x\nAAAA\n>b\n>b\nACGTACGT\nAC\n>c\nAC\n"},
      {"empty_name", ">\nACGT\n>b\nACGTACGT\n"},
      {"cr_before_name", ">\rx\nACGT\n>b\nACGTACGT\n"},  // (htslib skips any blank after '>')
  };
  for (const auto& [name, text] : files) {
    INFO(name);
    const std::string fa = dir.write(std::string(name) + ".fa", text);
    test::run_shell("samtools faidx '" + fa + "' 2>/dev/null && bgzip -c '" + fa + "' > '" + fa +
                        ".gz' && samtools faidx '" + fa + ".gz' 2>/dev/null",
                    st);
    REQUIRE(st == 0);
    for (const std::string& path : {fa, fa + ".gz"}) {
      INFO(path);
      const io::FastaIndex idx(path);
      CHECK(idx.fetch("b", 0, 4) == "ACGT");
    }
  }
  const std::string p1 = dir.write("p1.fa", ">x\nACGTACGTAC\n"), p2 = dir.write("p2.fa", ">b\nACGTTTTT\n");
  const std::string cat = dir.file("cat.fa.gz");
  test::run_shell("bgzip -c '" + p1 + "' > '" + cat + "' && bgzip -c '" + p2 + "' >> '" + cat + "' && samtools faidx '" +
                      cat + "'",
                  st);
  REQUIRE(st == 0);
  CHECK(io::FastaIndex(cat).fetch("b", 0, 4) == "ACGT");
  // A bgzip file that shrank under its .fai: a clean error, where the seek asserted.
  const std::string longer = dir.write("long.fa", ">a\n" + std::string(5000, 'A') + "\n>b\nACGT\n");
  const std::string shrunk = dir.file("shrunk.fa.gz");
  test::run_shell("samtools faidx '" + longer + "' && head -c 3000 '" + longer + "' | bgzip -c > '" + shrunk +
                      "' && bgzip -r '" + shrunk + "' && cp '" + longer + ".fai' '" + shrunk + ".fai'",
                  st);
  REQUIRE(st == 0);
  CHECK_THROWS_WITH(io::FastaIndex(shrunk), Catch::Contains("past the end of the file's 3000 bytes"));
  // Rewritten to the same size under its old .fai: a header 5 bytes longer, a record 5 bases
  // shorter (every header where it was, the size the same): its bases are not where it says.
  std::string bases;
  for (int i = 0; i < 120; ++i) bases += "ACGT"[(i * 7 + i / 3) % 4];
  const std::string same = dir.write("same.fa", ">lam\n" + bases.substr(0, 60) + "\n" + bases.substr(60) + "\n");
  test::run_shell("samtools faidx '" + same + "'", st);
  REQUIRE(st == 0);
  dir.write("same.fa", ">lam desc\n" + bases.substr(0, 60) + "\n" + bases.substr(60, 55) + "\n");
  CHECK_THROWS_WITH(io::FastaIndex(same), Catch::Contains("same.fa.fai: line 1's record lam has its bases at byte 10, "
                                                          "where the index has 5"));
  // A blank inside a line: htslib reads such a file wrong by position (samtools faidx gives
  // "GTA" for bases 4-6 of ACGTACGTA); blanks at a line's end are counted, and read right
  // (bases 4-6 of ACGTACG).
  const std::string inner = dir.write("inner.fa", ">a\nAC GT\nACGTA\n");
  const std::string trailing = dir.write("trailing.fa", ">a\nACGT  \nACG\n");
  test::run_shell("samtools faidx '" + inner + "' && samtools faidx '" + trailing + "'", st);
  REQUIRE(st == 0);
  CHECK_THROWS_WITH(io::FastaIndex(inner), Catch::Contains("record a's first line does not end after 4 bases"));
  CHECK(io::FastaIndex(trailing).fetch("a", 3, 6) == "TAC");
  // A FASTQ's index (samtools fqidx) is not a FASTA's: not refused as out of date.
  const std::string fq = dir.copy(test::data_file("edge/multiline.fq"), "m.fq");
  test::run_shell("samtools fqidx '" + fq + "'", st);
  REQUIRE(st == 0);
  CHECK_NOTHROW(io::check_fai_matches(fq, io::read_fai(fq)));
}

TEST_CASE("a bgzipped FASTA cut short, or with another file's .gzi, is refused before a read by position",
          "[io][reader][regions][errors]") {
  // htslib would stop the program on an assertion (bgzf_useek) when the .gzi sends it into the
  // middle of a block, and reads a file cut short cleanly up to the cut.
  test::TempDir dir;
  std::string big = ">a\n", small = ">s\nACGTACGTAC\n";
  uint32_t x = 1;
  for (int r = 0; r < 3; ++r) {
    if (r) big += ">r" + std::to_string(r) + "\n";
    for (int i = 0; i < 100000; ++i) {
      x = x * 1664525u + 1013904223u;
      big += "ACGT"[x >> 30];
      if (i % 60 == 59) big += '\n';
    }
    big += '\n';
  }
  int st = -1;
  std::vector<std::string> gz;
  for (const auto& [name, text] : {std::pair{"big.fa", big}, std::pair{"small.fa", small}}) {
    const std::string p = dir.write(name, text);
    test::run_shell("bgzip -c '" + p + "' > '" + p + ".gz'", st);
    REQUIRE(st == 0);
    REQUIRE(fai_build((p + ".gz").c_str()) == 0);  // .fai and .gzi
    gz.push_back(p + ".gz");
  }
  io::ReaderOptions opt;
  opt.regions = {io::Region{"r2", 50000, 50100, {}}};
  CHECK(io::FastaIndex(gz[0]).fetch("r2", 50000, 50100).size() == 100);
  CHECK(test::read_all(gz[0], 1000, opt).at(0).seq.size() == 100);
  // The small file's .gzi (one block) beside the big file: its records end past that block.
  std::filesystem::copy_file(gz[1] + ".gzi", gz[0] + ".gzi", std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(io::FastaIndex(gz[0]), Catch::StartsWith(gz[0] + ".gzi: ") &&
                                               Catch::Contains("past the last block the .gzi names") &&
                                               Catch::Contains("it is not this file's index"));
  CHECK_THROWS_WITH(io::SequenceReader(gz[0], opt), Catch::Contains("it is not this file's index"));
  // The big file's .gzi beside the small file: its blocks lie past the end.
  REQUIRE(fai_build(gz[0].c_str()) == 0);  // its own .gzi again
  std::filesystem::copy_file(gz[0] + ".gzi", gz[1] + ".gzi", std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(io::FastaIndex(gz[1]), Catch::Contains("points past the end of the file"));
  // An entry's uncompressed offset moved by 7 (its compressed one right): htslib reads the
  // bases 7 places off. The block before it says how many bytes it holds.
  REQUIRE(fai_build(gz[1].c_str()) == 0);
  {
    std::fstream g(gz[0] + ".gzi", std::ios::in | std::ios::out | std::ios::binary);
    unsigned char u[8];
    g.seekg(8 + 16 * 1 + 8).read(reinterpret_cast<char*>(u), 8);  // entry 2's uncompressed offset
    u[0] = static_cast<unsigned char>(u[0] + 7);  // (no carry: checked below)
    REQUIRE(u[0] >= 7);
    g.seekp(8 + 16 * 1 + 8).write(reinterpret_cast<const char*>(u), 8);
    REQUIRE(g.good());
  }
  CHECK_THROWS_WITH(io::FastaIndex(gz[0]), Catch::StartsWith(gz[0] + ".gzi: entry 2 (uncompressed byte ") &&
                                               Catch::Contains("does not follow the block before it"));
  // Cut short, with its indexes: the end-of-file block is missing.
  REQUIRE(fai_build(gz[0].c_str()) == 0);
  const std::string cut = dir.file("cut.fa.gz");
  test::run_shell("head -c 40000 '" + gz[0] + "' > '" + cut + "' && cp '" + gz[0] + ".fai' '" + cut +
                      ".fai' && cp '" + gz[0] + ".gzi' '" + cut + ".gzi'", st);
  REQUIRE(st == 0);
  CHECK_THROWS_WITH(io::FastaIndex(cut), Catch::StartsWith(cut + ": truncated"));
  opt.regions = {io::Region{"a", 0, 100, {}}};  // inside the part that is there
  CHECK_THROWS_WITH(io::SequenceReader(cut, opt), Catch::StartsWith(cut + ": truncated"));
}

TEST_CASE("regions need an index, and say how to make one", "[io][reader][regions]") {
  test::TempDir dir;
  io::ReaderOptions opt;
  opt.regions = io::read_bed(test::data_file("edge/regions.bed"));
  const std::string crlf = dir.copy(test::data_file("edge/crlf.fa"), "crlf.fa");
  REQUIRE_THROWS_AS(io::SequenceReader(crlf, opt), InputError);
  REQUIRE_THROWS_WITH(io::SequenceReader(crlf, opt),
                      Catch::Contains(crlf + ".fai not found") && Catch::Contains("run 'samtools faidx " + crlf + "'"));
  const std::string lambda = test::data_file("genomes/lambda_phage.fa.gz");
  REQUIRE_THROWS_WITH(io::SequenceReader(lambda, opt),
                      Catch::StartsWith(lambda + ": ") && Catch::Contains("recompress with bgzip"));
  // Random access elsewhere (vep's reference, embed's regions) says the same of plain gzip.
  REQUIRE_THROWS_WITH(io::FastaIndex(lambda), Catch::StartsWith(lambda + ": ") && Catch::Contains("this is plain gzip") &&
                                                  Catch::Contains("recompress it with bgzip"));
  REQUIRE_THROWS_AS(io::SequenceReader("-", opt), UsageError);

  // With the index, regions.bed on the CRLF file matches faidx.
  std::vector<Rec> all = test::faidx_records(crlf);  // builds crlf.fa.fai
  REQUIRE(all.size() == 20);
  std::map<std::string, std::string> by_name;
  for (const Rec& r : all) by_name[r.name] = r.seq;
  for (size_t L : {size_t(1), size_t(1000)}) {
    std::vector<Rec> got = test::read_all(crlf, L, opt);
    REQUIRE(got.size() == 2);
    CHECK(got[0].name == "gi|563317589|dbj|AB821309.1|");
    CHECK(got[0].seq == test::to_upper(by_name[got[0].name].substr(0, 999)));
    CHECK(got[1].name == "gi|543583785|ref|NM_000465.3|");
    CHECK(got[1].seq == test::to_upper(by_name[got[1].name].substr(99, 5522 - 99)));
  }
  // Invalid characters are reported at their contig position through faidx as well.
  const std::string bad = dir.write("bad.fa", ">c\nACGTACGT\nAC*T\n");
  REQUIRE(test::faidx_records(bad).size() == 1);
  io::ReaderOptions ropt;
  ropt.regions = {io::parse_region("c:5-12")};
  REQUIRE_THROWS_WITH(test::read_all(bad, 3, ropt),
                      Catch::StartsWith(bad + ": record 'c': position 11: invalid character '*' (0x2A)"));
}
