// io::SequenceReader on SAM/BAM/CRAM: reads as records, the flag filter, index regions, and CRAM
// with and without its reference (never touching the network).
#include <catch2/catch.hpp>
#include <htslib/sam.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "io/error.h"
#include "io/sequence_reader.h"
#include "test_io_util.h"

using namespace mambadna;
using test::Rec;

namespace {

// Keeps htslib from fetching CRAM references from the network or a cache.
void no_reference_lookup() {
  ::setenv("REF_PATH", "/nonexistent", 1);
  ::unsetenv("REF_CACHE");
}

}  // namespace

TEST_CASE("ex1.bam: 3,270 reads, 35 unmapped, named by read name", "[io][reader][bam]") {
  const std::string path = test::data_file("edge/ex1.bam");
  std::vector<Rec> all = test::read_all(path, 10);
  CHECK(all.size() == 3270);
  CHECK(all == test::samtools_reads("'" + path + "'"));
  io::ReaderOptions opt;
  opt.filter.skip_unmapped = true;
  std::vector<Rec> mapped = test::read_all(path, 10, opt);
  CHECK(mapped.size() == 3270 - 35);
  CHECK(mapped == test::samtools_reads("-F 0x4 '" + path + "'"));
  // The record length is known as soon as a read starts.
  io::SequenceReader r(path);
  io::Chunk c;
  REQUIRE(r.next(c, 1));
  CHECK(c.record == "EAS56_57:6:190:289:82");
  CHECK(r.record_length() == 35);
  CHECK(r.total_length() == -1);
}

TEST_CASE("the read filter: defaults keep each read once, every flag is an option", "[io][reader][bam]") {
  test::TempDir dir;
  const std::string sam = dir.write("flags.sam",
                                    "@HD\tVN:1.6\tSO:unsorted\n"
                                    "@SQ\tSN:c\tLN:100\n"
                                    "primary\t0\tc\t1\t60\t4M\t*\t0\t0\tACGT\t*\n"
                                    "unmapped\t4\t*\t0\t0\t*\t*\t0\t0\tGGGG\t*\n"
                                    "secondary\t256\tc\t1\t60\t4M\t*\t0\t0\tACGT\t*\n"
                                    "qcfail\t512\tc\t1\t60\t4M\t*\t0\t0\tTTTT\t*\n"
                                    "duplicate\t1024\tc\t1\t60\t4M\t*\t0\t0\tCCCC\t*\n"
                                    "supplementary\t2048\tc\t1\t60\t2M\t*\t0\t0\tAC\t*\n"
                                    "noseq\t0\tc\t5\t60\t4M\t*\t0\t0\t*\t*\n"
                                    "iupac\t0\tc\t9\t60\t3M\t*\t0\t0\tRYN\t*\n");
  auto read_names = [&](const io::ReadFilter& f) {
    io::ReaderOptions opt;
    opt.filter = f;
    std::vector<std::string> v;
    for (const Rec& r : test::read_all(sam, 3, opt)) v.push_back(r.name);
    return v;
  };
  io::ReadFilter f;
  CHECK(io::SequenceReader(sam).format() == io::Format::sam);
  CHECK(f.flag_mask() == (BAM_FSECONDARY | BAM_FSUPPLEMENTARY));
  CHECK(read_names(f) ==
        std::vector<std::string>{"primary", "unmapped", "qcfail", "duplicate", "noseq", "iupac"});
  f.skip_unmapped = true;
  f.skip_qcfail = true;
  f.skip_duplicate = true;
  CHECK(read_names(f) == std::vector<std::string>{"primary", "noseq", "iupac"});
  f = {};
  f.skip_secondary = false;
  f.skip_supplementary = false;
  CHECK(read_names(f).size() == 8);

  // A read without a sequence is one empty chunk.
  io::SequenceReader r(sam);
  io::Chunk c;
  while (r.next(c, 3) && c.record != "noseq") {
  }
  CHECK(c.tokens.empty());
  CHECK(c.begin_of_record);
  CHECK(c.end_of_record);
  CHECK(r.record_length() == 0);
  REQUIRE(r.next(c, 3));
  CHECK(std::string(c.tokens.begin(), c.tokens.end()) == "RYN");
}

TEST_CASE("BAM regions go through the index", "[io][reader][bam][regions]") {
  test::TempDir dir;
  const std::string bam = dir.copy(test::data_file("edge/ex1.bam"), "ex1.bam");
  io::ReaderOptions opt;
  opt.regions = {io::parse_region("chr1:100-300"), io::parse_region("chr2:1,000")};
  REQUIRE_THROWS_AS(io::SequenceReader(bam, opt), InputError);
  REQUIRE_THROWS_WITH(io::SequenceReader(bam, opt),
                      Catch::StartsWith(bam + ": regions need an index") &&
                          Catch::Contains("run 'samtools index " + bam + "'"));
  // An index there that does not load (garbage, as ex1.bai beside ex1.bam) is not "needed".
  const std::string junk = dir.write("ex1.bai", std::string(200, 'x'));
  REQUIRE_THROWS_WITH(io::SequenceReader(bam, opt),
                      bam + ": its index " + junk + " cannot be read (corrupt, or another file's): run 'samtools "
                            "index " + bam + "' again");
  std::filesystem::remove(junk);
  REQUIRE(sam_index_build(bam.c_str(), 0) == 0);
  std::vector<Rec> expect = test::samtools_reads("'" + bam + "' chr1:100-300");
  std::vector<Rec> chr2 = test::samtools_reads("'" + bam + "' chr2:1000");
  expect.insert(expect.end(), chr2.begin(), chr2.end());
  REQUIRE(expect.size() > 100);
  CHECK(test::read_all(bam, 16, opt) == expect);
  {  // a read found through a region names that region
    opt.regions[1].index = 1;
    io::SequenceReader r(bam, opt);
    io::Chunk c;
    REQUIRE(r.next(c, 16));
    CHECK(r.region_name() == "chr1:100-300");
    CHECK(r.region_index() == -1);  // (the command line numbers the regions)
    while (r.next(c, 16)) {
    }
    CHECK(r.region_name() == "chr2:1000-1584");  // (to the contig's end, as samtools reads chr2:1000)
    CHECK(r.region_index() == 1);
    opt.regions[1].index = -1;
  }
  // A region on a contig the BAM lacks is skipped and reported; the others read as before.
  std::vector<io::Region> reported;
  opt.regions = {io::parse_region("chr1:100-300"), io::parse_region("chrX:1-10"),
                 io::parse_region("chr2:1,000")};
  opt.on_regions_skipped = [&](const std::string& p, const std::vector<io::Region>& skipped, io::RegionSkip why) {
    CHECK(p == bam);
    CHECK(why == io::RegionSkip::absent_contig);
    reported.insert(reported.end(), skipped.begin(), skipped.end());
  };
  CHECK(test::read_all(bam, 16, opt) == expect);
  CHECK(reported == std::vector<io::Region>{io::parse_region("chrX:1-10")});
  opt.regions = {io::parse_region("chrX:1-10")};
  REQUIRE_THROWS_WITH(io::SequenceReader(bam, opt), bam + ": region 'chrX:1-10': unknown contig 'chrX'");
  // In a run of several inputs another may hold the regions: this one then gives no read (not
  // the whole file), and check_inputs refuses a run where no input has any.
  opt.regions_elsewhere = true;
  {
    io::SequenceReader none(bam, opt);
    CHECK(none.regions_here() == 0);
    io::Chunk c;
    CHECK_FALSE(none.next(c, 16));
  }
  CHECK_THROWS_WITH(io::check_inputs({bam, bam}, opt),
                    "none of the 2 inputs has any of the regions (the first: chrX:1-10)");
  opt.regions = {io::parse_region("chrX:1-10"), io::parse_region("chr2:1,000")};
  CHECK_NOTHROW(io::check_inputs({bam, bam}, opt));
}

TEST_CASE("ce_range.cram decodes with its reference and fails cleanly without", "[io][reader][cram]") {
  no_reference_lookup();
  const std::string cram = test::data_file("edge/ce_range.cram");
  const std::string ref = test::data_file("edge/ce.fa");
  io::ReaderOptions opt;
  opt.reference = ref;
  std::vector<Rec> expect = test::samtools_reads("-T '" + ref + "' '" + cram + "'");
  REQUIRE(expect.size() == 112);
  CHECK(test::read_all(cram, 33, opt) == expect);

  // Without the reference: an InputError that says what to do.
  REQUIRE_THROWS_AS(test::read_all(cram, 33), InputError);
  REQUIRE_THROWS_WITH(test::read_all(cram, 33),
                      Catch::StartsWith(cram + ": cannot decode the CRAM data") &&
                          Catch::Contains("--reference"));
  // A reference that does not exist.
  opt.reference = "/nonexistent/ce.fa";
  REQUIRE_THROWS_WITH(io::SequenceReader(cram, opt), Catch::StartsWith("/nonexistent/ce.fa: cannot open"));

  // A region through the .crai index.
  opt.reference = ref;
  opt.regions = {io::parse_region("CHROMOSOME_II:2,000-3,000")};
  std::vector<Rec> region = test::samtools_reads("-T '" + ref + "' '" + cram + "' CHROMOSOME_II:2000-3000");
  REQUIRE(!region.empty());
  CHECK(test::read_all(cram, 1000, opt) == region);

  // A copy cut short: said before any read (it was blamed on the reference), as for BAM.
  test::TempDir dir;
  opt.regions.clear();
  const std::string cut = dir.file("cut.cram");
  {
    std::ifstream in(cram, std::ios::binary);
    std::string bytes(5000, '\0');
    in.read(bytes.data(), 5000);
    std::ofstream(cut, std::ios::binary) << bytes;
  }
  REQUIRE_THROWS_WITH(io::SequenceReader(cut, opt),
                      cut + ": truncated: the CRAM end-of-file container is missing (a copy cut short?)");
  // A reference in plain gzip cannot be read by position: said, with what to do.
  const std::string gz = dir.file("ce.fa.gz");
  int st = -1;
  test::run_shell("gzip -c '" + ref + "' > '" + gz + "'", st);
  REQUIRE(st == 0);
  opt.reference = gz;
  REQUIRE_THROWS_WITH(io::SequenceReader(cram, opt), Catch::Contains("it is gzip-compressed") && Catch::Contains("bgzip"));
}

TEST_CASE("reverse-strand reads turn back to how they were sequenced with --as-sequenced, as samtools fastq",
          "[io][reader][bam]") {
  test::TempDir dir;
  const std::string sam = dir.write("strands.sam",
                                    "@HD\tVN:1.6\tSO:unsorted\n"
                                    "@SQ\tSN:c\tLN:100\n"
                                    "fwd\t0\tc\t1\t60\t6M\t*\t0\t0\tACGTTN\t*\n"
                                    "rev\t16\tc\t1\t60\t6M\t*\t0\t0\tACGTTN\t*\n"
                                    "rev_iupac\t16\tc\t9\t60\t3M\t*\t0\t0\tRYK\t*\n"
                                    "unmapped_rev\t20\t*\t0\t0\t*\t*\t0\t0\tAAC\t*\n");
  io::ReaderOptions opt;
  CHECK(test::read_all(sam, 4, opt) == std::vector<Rec>{{"fwd", "ACGTTN"}, {"rev", "ACGTTN"},
                                                        {"rev_iupac", "RYK"}, {"unmapped_rev", "AAC"}});
  opt.as_sequenced = true;
  CHECK(test::read_all(sam, 4, opt) == std::vector<Rec>{{"fwd", "ACGTTN"}, {"rev", "NAACGT"},
                                                        {"rev_iupac", "MRY"}, {"unmapped_rev", "GTT"}});

  // ex1.bam's 3,270 reads against samtools fastq -n (names without /1 /2), which writes
  // reverse-strand reads reverse-complemented; sorted, since it puts a pair's READ1 before its
  // READ2 where the file has them the other way round (one pair in ex1.bam).
  const std::string path = test::data_file("edge/ex1.bam");
  int status = 0;
  const std::string fq = test::run_shell("samtools fastq -n '" + path + "' 2> /dev/null", status);
  REQUIRE(status == 0);
  std::vector<Rec> want;
  size_t pos = 0;
  for (int line = 0; pos < fq.size(); ++line) {
    const size_t eol = fq.find('\n', pos);
    const std::string text = fq.substr(pos, eol - pos);
    pos = eol == std::string::npos ? fq.size() : eol + 1;
    if (line % 4 == 0) want.push_back({text.substr(1), ""});
    if (line % 4 == 1) want.back().seq = text;
  }
  REQUIRE(want.size() == 3270);
  std::vector<Rec> got = test::read_all(path, 10, opt);
  CHECK(got != test::read_all(path, 10));  // some of them did turn round
  const auto by_name = [](const Rec& a, const Rec& b) { return std::tie(a.name, a.seq) < std::tie(b.name, b.seq); };
  std::sort(got.begin(), got.end(), by_name);
  std::sort(want.begin(), want.end(), by_name);
  CHECK(got == want);
}

TEST_CASE("a SAM line that does not parse is named by its line number and QNAME", "[io][reader][bam]") {
  // htslib's [E::...] line says why; ours names the record itself, the first one too (before,
  // only the read before it, or nothing for the first).
  test::TempDir dir;
  const std::string header = "@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:c\tLN:100\n";
  const std::string good = "r1\t0\tc\t1\t60\t4M\t*\t0\t0\tACGT\t*\n";
  const std::string bad = "r2\t0\tc\t7\t60\t4Z\t*\t0\t0\tACGT\t*\n";  // no such CIGAR operation
  CHECK_THROWS_WITH(test::read_all(dir.write("first.sam", header + bad), 3),
                    Catch::Contains("first.sam: cannot read SAM line 3 (read 'r2'): it does not parse"));
  CHECK_THROWS_WITH(test::read_all(dir.write("later.sam", header + good + bad), 3),
                    Catch::Contains("later.sam: cannot read SAM line 4 (read 'r2') after read 'r1'"));
  // Data that breaks off in a bgzipped SAM (a block whose checksum fails) is corrupt, not a line
  // that does not parse: htslib's buffer then holds the line before, which it would misname.
  std::string many = header;
  for (int i = 0; i < 5000; ++i)
    many += "r" + std::to_string(i) + "\t4\t*\t0\t0\t*\t*\t0\t0\t" + std::string(20 + i % 31, "ACGT"[i % 4]) + "\t*\n";
  const std::string plain = dir.write("many.sam", many);
  int status = 0;
  test::run_shell("bgzip -c '" + plain + "' > '" + plain + ".gz'", status);
  REQUIRE(status == 0);
  std::string z;
  {
    std::ifstream in(plain + ".gz", std::ios::binary);
    z.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(z.size() > 2000);
  z[z.size() / 2] = char(z[z.size() / 2] ^ 0xff);
  const std::string bad_gz = dir.write("bad.sam.gz", z);
  for (int threads : {0, 2}) {
    io::ReaderOptions opt;
    opt.threads = threads;
    INFO("threads " << threads);
    CHECK_THROWS_WITH(test::read_all(bad_gz, 3, opt),
                      Catch::Contains("bad.sam.gz: cannot read SAM record") &&
                          Catch::Contains("(corrupt or truncated file?)") && !Catch::Contains("does not parse"));
  }
}
