// Region text (1-based inclusive, htslib syntax) and BED (0-based half-open) to io::Region.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "io/error.h"
#include "io/region.h"
#include "test_io_util.h"

using namespace mambadna;
using io::kContigEnd;
using io::Region;

TEST_CASE("parse_region converts 1-based inclusive text to 0-based half-open", "[io][region]") {
  struct Row {
    const char* text;
    const char* contig;
    int64_t begin, end;
  };
  // clang-format off
  const std::vector<Row> table = {
      {"chr1",                     "chr1",             0,       kContigEnd},
      {"chr1:100",                 "chr1",             99,      kContigEnd},  // 100 to the end
      {"chr1:100-",                "chr1",             99,      kContigEnd},
      {"chr1:100-200",             "chr1",             99,      200},
      {"chr1:1-1",                 "chr1",             0,       1},           // one base
      {"chr1:-200",                "chr1",             0,       200},         // 1 to 200
      {"chr1:1,000-2k",            "chr1",             999,     2000},
      {"chr1:1,000,001-1,000,100", "chr1",             1000000, 1000100},
      {"chr1:1.5k-2M",             "chr1",             1499,    2000000},
      {"20:1e6-2e6",               "20",               999999,  2000000},
      {"{name:with:colons}:1-10",  "name:with:colons", 0,       10},
      {"{name:with:colons}",       "name:with:colons", 0,       kContigEnd},
      {"{chr1}:5",                 "chr1",             4,       kContigEnd},
      {"{a,b}:1,001-2,000",        "a,b",              1000,    2000},        // a comma in braces
      {"HLA-DRB1*12:17",           "HLA-DRB1*12",      16,      kContigEnd},  // split at the last ':'
      {"gi|5|ref|NM_1.3|:10-20",   "gi|5|ref|NM_1.3|", 9,       20},
  };
  // clang-format on
  for (const Row& row : table) {
    INFO("region text: " << row.text);
    Region r = io::parse_region(row.text);
    CHECK(r.contig == row.contig);
    CHECK(r.begin == row.begin);
    CHECK(r.end == row.end);
    CHECK(r.name.empty());
    // format_region writes text that parses back to the same region.
    CHECK(io::parse_region(io::format_region(r)) == r);
  }
}

TEST_CASE("parse_region rejects bad text with a message naming it", "[io][region]") {
  struct Row {
    const char* text;
    const char* why;
  };
  const std::vector<Row> table = {
      {"", "empty region"},
      {"chr1:200-100", "the start (200) is after the end (100)"},
      {"chr1:101-100", "the start (101) is after the end (100)"},
      {"chr1:0-10", "at least 1"},
      {"chr1:abc", "cannot parse"},
      {"chr1:10-20x", "cannot parse"},
      {"{chr1", "no closing '}'"},
      {":1-10", "empty contig name"},
      {"s:1-60,1", "a comma that is no thousands separator"},       // a bcftools list
      {"20:1-100000,21", "a comma that is no thousands separator"},
      {"e1,e2", "a comma that is no thousands separator"},
      {"chr1:1,0000-2", "a comma that is no thousands separator"},
      {"chr1:,100", "a comma that is no thousands separator"},
      // past 2^63: htslib's parse wraps them round, to 7766279631452241919 or a negative start
      {"chr1:99999999999999999999", "past any contig's length (2^63 or more)"},
      {"chr1:9223372036854775808-9223372036854775809", "past any contig's length"},
      {"chr1:1-9,223,372,036,854,775,808", "past any contig's length"},
      {"chr1:99999999999G", "past any contig's length"},  // htslib's suffixes and exponents
      {"chr1:1e19-1e19", "past any contig's length"},
      {"chr1:9.3e18", "past any contig's length"},
      {"chr1:5-1e30", "past any contig's length"},
      {"{a:b}:1e19", "past any contig's length"},  // a braced name: its first position too
      {"{a,b}:2-1e19", "past any contig's length"},
  };
  for (const Row& row : table) {
    INFO("region text: '" << row.text << "'");
    REQUIRE_THROWS_AS(io::parse_region(row.text), UsageError);
    REQUIRE_THROWS_WITH(io::parse_region(row.text),
                        Catch::Contains(std::string("'") + row.text + "'") && Catch::Contains(row.why));
  }
}

TEST_CASE("parse_region takes large positions as htslib writes them", "[io][region]") {
  // Leading zeros, suffixes and exponents below 2^63 are positions (the check above is of
  // values, not of digits).
  CHECK(io::parse_region("chr1:0000000000000000001-5").begin == 0);
  CHECK(io::parse_region("chr1:2k-1M").begin == 1999);
  CHECK(io::parse_region("chr1:2k-1M").end == 1000000);
  CHECK(io::parse_region("chr1:1,000-9,000,000,000,000,000,000").end == 9000000000000000000);
}

TEST_CASE("format_region writes samtools' syntax", "[io][region]") {
  CHECK(io::format_region({"chr1", 0, kContigEnd, ""}) == "chr1");
  CHECK(io::format_region({"chr1", 99, 200, ""}) == "chr1:100-200");
  CHECK(io::format_region({"chr1", 99, kContigEnd, ""}) == "chr1:100");
  CHECK(io::format_region({"a:b", 0, 10, ""}) == "{a:b}:1-10");
  // What outputs name a region by: a BED name, or the interval in the same syntax (it was
  // "x:1-5:1-300" for contig x:1-5, which does not read back).
  CHECK(io::region_name({"x:1-5", 0, kContigEnd, ""}, 0, 300) == "{x:1-5}:1-300");
  CHECK(io::parse_region(io::region_name({"x:1-5", 0, kContigEnd, ""}, 0, 300)) == Region{"x:1-5", 0, 300, ""});
  CHECK(io::region_name({"chr1", 0, kContigEnd, ""}, 9, 20) == "chr1:10-20");
  CHECK(io::region_name({"chr1", 0, 5, "peak1"}, 0, 5) == "peak1");
}

TEST_CASE("read_bed reads the shared regions.bed", "[io][region][bed]") {
  std::vector<Region> r = io::read_bed(test::data_file("edge/regions.bed"));
  REQUIRE(r.size() == 2);
  CHECK(r[0] == Region{"gi|563317589|dbj|AB821309.1|", 0, 999, ""});
  CHECK(r[1] == Region{"gi|543583785|ref|NM_000465.3|", 99, 5522, ""});
}

TEST_CASE("read_bed names the file and line of a malformed line", "[io][region][bed]") {
  std::string path = test::data_file("edge/malformed.bed");
  REQUIRE_THROWS_AS(io::read_bed(path), InputError);
  REQUIRE_THROWS_WITH(io::read_bed(path), Catch::StartsWith(path + ": line 1: ") &&
                                              Catch::Contains("at least 3 columns"));
  // A name that is not UTF-8 (Latin-1 bytes, a cut or overlong sequence, a surrogate) would be
  // stored in outputs that declare UTF-8, and fail a reader there (h5py's asstr); UTF-8 names
  // of every length are kept.
  test::TempDir dir;
  for (const std::string name : {"caf\xe9", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    INFO(name);
    const std::string bed = dir.write("n.bed", "c\t0\t5\tok\nc\t1\t5\t" + name + "\n");
    CHECK_THROWS_WITH(io::read_bed(bed), Catch::Contains(": line 2: the name (column 4) is not UTF-8 text"));
  }
  const std::string good = "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\xa7\xac";  // é, an arrow, a four-byte one
  CHECK(io::read_bed(dir.write("u.bed", "c\t0\t5\t" + good + "\n"))[0].name == good);
}

TEST_CASE("read_bed skips headers and blank lines, reads names, checks coordinates",
          "[io][region][bed]") {
  test::TempDir dir;
  std::string ok = dir.write("ok.bed",
                             "# comment\n"
                             "track name=x\n"
                             "browser position chr1:1-100\n"
                             "\n"
                             "chr1\t0\t10\tfirst\t0\t+\r\n"
                             "chr2\t5\t5\n"  // empty region: allowed
                             "chr3 7 9 spaced\n"
                             "chr4\t1\t2\t.\t0\t-\n");  // name '.': none
  std::vector<Region> r = io::read_bed(ok);
  REQUIRE(r.size() == 4);
  // No region at all (empty, or only headers): refused, not read as "the whole input".
  for (const char* text : {"", "# only a comment\n", "track x\n\n"}) {
    const std::string none = dir.write("none.bed", text);
    CHECK_THROWS_WITH(io::read_bed(none), Catch::Contains(none + ": no regions in this BED file"));
  }
  CHECK(r[0] == Region{"chr1", 0, 10, "first", '+'});
  CHECK(r[1] == Region{"chr2", 5, 5, ""});
  CHECK(r[2] == Region{"chr3", 7, 9, "spaced"});
  CHECK(r[3] == Region{"chr4", 1, 2, "", '-'});

  struct Row {
    const char* text;
    const char* message;
  };
  const std::vector<Row> bad = {
      {"chr1\t0\t10\nchr1\t-5\t10\n", ": line 2: start '-5' is negative"},
      {"chr1\tx\t10\n", ": line 1: start 'x' is not a non-negative integer"},
      {"chr1\t1\t10.5\n", ": line 1: end '10.5' is not a non-negative integer"},
      {"chr1\t20\t10\n", ": line 1: start 20 is after end 10"},
      {"#h\nchr1\t20\n", ": line 2: expected at least 3 columns (chrom, start, end), found 2"},
  };
  for (const Row& row : bad) {
    INFO("BED text: " << row.text);
    std::string p = dir.write("bad.bed", row.text);
    REQUIRE_THROWS_AS(io::read_bed(p), InputError);
    REQUIRE_THROWS_WITH(io::read_bed(p), p + row.message);
  }
  REQUIRE_THROWS_WITH(io::read_bed(dir.file("missing.bed")),
                      Catch::StartsWith(dir.file("missing.bed") + ": cannot open"));
}

TEST_CASE("a contig name with ':' is read whole where the input has it, as htslib does",
          "[io][region]") {
  // GRCh38's HLA contigs are named like HLA-A*01:01:01:01. "a:b:c" is the contig "a:b" from
  // position c, or the contig "a:b:c": each input's names decide, and both is ambiguous.
  test::TempDir dir;
  auto fasta = [&](const std::string& name, const std::vector<std::string>& contigs) {
    std::string text;
    for (size_t i = 0; i < contigs.size(); ++i) text.append(">").append(contigs[i]).append("\n").append(std::string(10 + i, "ACGT"[i % 4])).append("\n");
    const std::string path = dir.write(name, text);
    REQUIRE(fai_build(path.c_str()) == 0);
    return path;
  };
  auto read = [](const std::string& path, const std::string& region) {
    io::ReaderOptions o;
    o.regions = {io::parse_region(region)};
    io::SequenceReader reader(path, o);
    io::Chunk c;
    REQUIRE(reader.next(c, 1000));
    return std::make_pair(c.record, c.offset + int64_t(c.tokens.size()));  // contig, end
  };
  const std::string both = fasta("both.fa", {"HLA-A*01:01:01", "HLA-A*01:01", "chrX:1-5", "chrX"});
  const std::string one = fasta("one.fa", {"HLA-A*01:01:01", "chrX:1-5"});
  CHECK(io::parse_region("HLA-A*01:01:01").contig == "HLA-A*01:01");  // split until an input says
  CHECK(io::parse_region("HLA-A*01:01:01").whole == "HLA-A*01:01:01");
  CHECK(io::parse_region("{HLA-A*01:01}:1").whole.empty());  // braces say which
  // Only the whole name is a contig: that contig, whole.
  CHECK(read(one, "HLA-A*01:01:01") == std::make_pair(std::string("HLA-A*01:01:01"), int64_t(10)));
  CHECK(read(one, "chrX:1-5") == std::make_pair(std::string("chrX:1-5"), int64_t(11)));
  // Only the part before the last ':' is: a range of it.
  CHECK(read(both, "HLA-A*01:01:3-5") == std::make_pair(std::string("HLA-A*01:01"), int64_t(5)));
  // Both: refused, saying how to write either.
  CHECK_THROWS_WITH(read(both, "HLA-A*01:01:01"),
                    both + ": region 'HLA-A*01:01:01' is ambiguous: write {HLA-A*01:01:01} for that "
                           "contig, or {HLA-A*01:01}:01 for a range of contig 'HLA-A*01:01'");
  CHECK_THROWS_AS(read(both, "chrX:1-5"), UsageError);
  CHECK(read(both, "{chrX:1-5}") == std::make_pair(std::string("chrX:1-5"), int64_t(12)));
  CHECK(read(both, "{chrX}:1-5") == std::make_pair(std::string("chrX"), int64_t(5)));
  // Neither: the message quotes the text as typed.
  CHECK_THROWS_WITH(read(one, "HLA-B*07:02:01"),
                    one + ": region 'HLA-B*07:02:01': unknown contig 'HLA-B*07:02'");
}

TEST_CASE("RegionCover holds the positions some region covers, as a scan of the list says", "[io][region]") {
  // Overlapping, nested, touching and empty regions on two contigs, against asking each region.
  std::mt19937 rng(7);
  std::vector<io::Region> regions;
  for (int i = 0; i < 60; ++i) {
    const int64_t b = int64_t(rng() % 500), len = int64_t(rng() % 40);
    regions.push_back(io::Region{i % 3 ? "a" : "b", b, b + len, {}});
  }
  regions.push_back(io::Region{"c", 100, io::kContigEnd, {}});
  const io::RegionCover cover(regions);
  for (const char* contig : {"a", "b", "c", "d"})
    for (int64_t p = -1; p < 560; ++p) {
      bool in = false;
      for (const auto& r : regions) in = in || (r.contig == contig && p >= r.begin && p < r.end);
      INFO(contig << ":" << p);
      CHECK(cover.contains(contig, p) == in);
      // and the spans that start there, of every length up to 50 (0: the position alone)
      for (int64_t len = 0; len <= 50; len += 7) {
        bool meets = false;
        for (const auto& r : regions)
          meets = meets || (r.contig == contig && r.begin < r.end && (len == 0 ? p >= r.begin && p < r.end : p < r.end && p + len > r.begin));
        INFO("length " << len);
        CHECK(cover.overlaps(contig, p, p + len) == meets);
      }
    }
}
