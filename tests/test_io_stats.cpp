// pipelines::count_bases and the `mambadna stats` command end to end.
#include <catch2/catch.hpp>
#include <htslib/faidx.h>
#include <htslib/sam.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/error.h"
#include "pipelines/stats.h"
#include "test_io_util.h"
#include "tests/test_paths.h"

using namespace mambadna;

namespace {

std::vector<std::vector<std::string>> parse_tsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::istringstream ls(line);
    std::string col;
    while (std::getline(ls, col, '\t')) cols.push_back(col);
    rows.push_back(cols);
  }
  return rows;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kBinary = mambadna::test::binary_path();

}  // namespace

TEST_CASE("count_bases: A C G T N, other IUPAC and GC per record", "[io][stats]") {
  std::vector<pipelines::RecordCounts> recs;
  pipelines::StatsCallbacks cb;
  cb.on_record = [&](const pipelines::RecordCounts& r) { recs.push_back(r); };
  int64_t progress = 0;
  cb.on_progress = [&](int64_t done) { progress = done; };
  pipelines::StatsOptions opt;
  opt.chunk = 7;
  const std::string path = test::data_file("edge/short_lines_iupac.fa");
  pipelines::BaseCounts total = pipelines::count_bases({path}, opt, cb);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].record == "seq1");
  CHECK(recs[0].input == path);
  const pipelines::BaseCounts& s1 = recs[0].counts;
  CHECK(s1.length == 39);
  CHECK(s1.a == 9);
  CHECK(s1.c == 10);
  CHECK(s1.g == 10);
  CHECK(s1.t == 8);
  CHECK(s1.n == 2);
  CHECK(s1.other_iupac == 0);
  const pipelines::BaseCounts& s2 = recs[1].counts;
  CHECK(s2.n == 0);
  CHECK(s2.other_iupac == 2);  // R and Y
  CHECK(s2.gc() == Approx(20.0 / 37.0));
  CHECK(total.length == 78);
  CHECK(total.other_iupac == 2);
  CHECK(progress == 78);
}

TEST_CASE("count_bases: lower case counts only under --case keep", "[io][stats]") {
  const std::string path = test::data_file("edge/softmasked_one_long_line.fa");
  pipelines::StatsOptions opt;
  pipelines::BaseCounts up = pipelines::count_bases({path}, opt);
  opt.reader.tok.case_mode = io::CaseMode::keep;
  pipelines::BaseCounts keep = pipelines::count_bases({path}, opt);
  CHECK(up.length == 40000);
  CHECK(up.lower == 0);
  CHECK(keep.lower == 17395);  // the lower-case bases of the file
  CHECK(keep.a == up.a);
  CHECK(keep.gc() == up.gc());
  // Records without A/C/G/T have no GC fraction.
  pipelines::BaseCounts none = pipelines::count_bases({test::data_file("edge/all_empty_records.fa")}, opt);
  CHECK(none.length == 0);
  CHECK(std::isnan(none.gc()));
}

TEST_CASE("count_bases over several inputs, and the known total", "[io][stats]") {
  const std::string bam = test::data_file("edge/ex1.bam");
  const std::string chr20 = test::data_file("genomes/human_grch37_chr20.fa.gz");
  int64_t read_bases = 0;
  for (const test::Rec& r : test::samtools_reads("'" + bam + "'")) read_bases += int64_t(r.seq.size());
  int records = 0;
  pipelines::StatsCallbacks cb;
  cb.on_record = [&](const pipelines::RecordCounts&) { ++records; };
  pipelines::StatsOptions opt;
  opt.reader.regions = {io::parse_region("20:1-1000")};
  CHECK(io::known_total_length({chr20}, opt.reader) == 1000);
  opt.reader.regions.clear();
  CHECK(io::known_total_length({chr20}, opt.reader) == 63025520);
  CHECK(io::known_total_length({chr20, bam}, opt.reader) == -1);
  pipelines::BaseCounts total = pipelines::count_bases({bam, test::data_file("edge/multiline.fq")}, opt, cb);
  CHECK(records == 3270 + 2);
  CHECK(total.length == read_bases + 78);
}

TEST_CASE("count_bases: reads found through regions are named by their names", "[io][stats]") {
  // (The reader gives the region that found a read, for score and embed; stats names reads.)
  test::TempDir dir;
  const std::string bam = dir.copy(test::data_file("edge/ex1.bam"), "ex1.bam");
  REQUIRE(sam_index_build(bam.c_str(), 0) == 0);
  std::vector<std::string> want;
  for (const test::Rec& r : test::samtools_reads("-F 0x900 '" + bam + "' chr1:100-200")) want.push_back(r.name);
  REQUIRE(want.size() > 5);
  pipelines::StatsOptions opt;
  opt.reader.regions = {io::parse_region("chr1:100-200")};
  std::vector<std::string> got;
  pipelines::StatsCallbacks cb;
  cb.on_record = [&](const pipelines::RecordCounts& rc) {
    CHECK(rc.region.empty());
    got.push_back(rc.record);
  };
  pipelines::count_bases({bam}, opt, cb);
  CHECK(got == want);
}

TEST_CASE("mambadna stats end to end on lambda phage", "[io][stats][cli]") {
  REQUIRE(test::fs::is_regular_file(kBinary));
  const std::string lambda = test::data_file("genomes/lambda_phage.fa.gz");
  test::TempDir dir;

  // Independent counts: htslib decompresses, the test counts.
  const std::string plain = dir.file("lambda.fa");
  test::decompress(lambda, plain);
  std::vector<test::Rec> recs = test::simple_fasta(plain);
  REQUIRE(recs.size() == 1);
  int64_t a = 0, c = 0, g = 0, t = 0;
  for (char b : recs[0].seq) {
    a += b == 'A' || b == 'a';
    c += b == 'C' || b == 'c';
    g += b == 'G' || b == 'g';
    t += b == 'T' || b == 't';
  }
  REQUIRE(int64_t(recs[0].seq.size()) == 48502);

  const std::string out = dir.file("stats.tsv");
  int status = -1;
  test::run_shell("'" + kBinary + "' stats -v 0 --chunk 999 -o '" + out + "' '" + lambda + "'", status);
  REQUIRE(status == 0);
  auto rows = parse_tsv(slurp(out));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::vector<std::string>{"#input", "record", "length", "A", "C", "G", "T", "N", "lower",
                                            "other_iupac", "gc"});
  CHECK(rows[1][0] == lambda);
  CHECK(rows[1][1] == recs[0].name);
  for (size_t row : {size_t(1), size_t(2)}) {
    REQUIRE(rows[row].size() == 11);
    CHECK(rows[row][2] == "48502");
    CHECK(rows[row][3] == std::to_string(a));
    CHECK(rows[row][4] == std::to_string(c));
    CHECK(rows[row][5] == std::to_string(g));
    CHECK(rows[row][6] == std::to_string(t));
    CHECK(rows[row][7] == "0");
    CHECK(std::stod(rows[row][10]) == Approx(double(g + c) / double(a + c + g + t)).epsilon(1e-6));
  }
  CHECK(rows[2][0] == ".");
  CHECK(rows[2][1] == "total");
  // No temporary file is left beside the output.
  int files = 0;
  for (const auto& e : test::fs::directory_iterator(dir.file(""))) files += e.is_regular_file();
  CHECK(files == 2);  // lambda.fa and stats.tsv

  // Standard input and standard output give the same table, but for the input's name; so do
  // bash's <(...) and /dev/stdin (read once: the counting must be their only reader).
  for (const std::string& in : {std::string("-"), std::string("/dev/stdin"), std::string("<(cat '") + lambda + "')"}) {
    INFO(in);
    const std::string piped = test::run_shell("cat '" + lambda + "' | bash -c \"'" + kBinary + "' stats -v 0 " + in + "\"", status);
    CHECK(status == 0);
    std::string expect = slurp(out);
    const std::string name = in.rfind("<(", 0) == 0 ? piped.substr(piped.find('\n') + 1, piped.find('\t', piped.find('\n')) - piped.find('\n') - 1) : in;
    for (size_t at; (at = expect.find(lambda + "\t")) != std::string::npos;) expect.replace(at, lambda.size(), name);
    CHECK(piped == expect);
  }

  // Regions are rows named as score and embed name them: the BED name, else the interval.
  REQUIRE(fai_build(plain.c_str()) == 0);
  const std::string bed = dir.write("r.bed", recs[0].name + "\t100\t600\tfirst\n" + recs[0].name +
                                                 "\t48000\t60000\t.\n");
  const std::string by_region = test::run_shell("'" + kBinary + "' stats -v 0 -R '" + bed + "' '" + plain + "'", status);
  CHECK(status == 0);
  rows = parse_tsv(by_region);
  REQUIRE(rows.size() == 4);
  CHECK(rows[1][1] == "first");
  CHECK(rows[1][2] == "500");
  CHECK(rows[2][1] == recs[0].name + ":48001-48502");
  CHECK(rows[2][2] == "502");
}

TEST_CASE("mambadna stats: errors are one line and exit 1 (2 for usage)", "[io][stats][cli]") {
  REQUIRE(test::fs::is_regular_file(kBinary));
  test::TempDir dir;
  const std::string missing = dir.file("missing.fa");
  const std::string out = dir.file("out.tsv");
  int status = -1;
  std::string err = test::run_shell(
      "'" + kBinary + "' stats -v 0 -o '" + out + "' '" + missing + "' 2>&1 >/dev/null", status);
  CHECK(status == 1);
  CHECK(err == "mambadna: " + missing + ": cannot open: No such file or directory\n");
  CHECK_FALSE(test::fs::exists(out));

  const std::string bad = dir.write("bad.fa", ">r\nACGT\nAC#\n");
  err = test::run_shell("'" + kBinary + "' stats -v 0 -o '" + out + "' '" + bad + "' 2>&1 >/dev/null", status);
  CHECK(status == 1);
  CHECK(err.find(bad + ": record 'r': position 7: invalid character '#'") != std::string::npos);
  // Nothing is left behind: neither the output nor its temporary file.
  int files = 0;
  for (const auto& e : test::fs::directory_iterator(dir.file(""))) files += e.is_regular_file();
  CHECK(files == 1);

  test::run_shell("'" + kBinary + "' stats -v 0 --invalid N '" + bad + "' > /dev/null 2>&1", status);
  CHECK(status == 0);
  test::run_shell("'" + kBinary + "' stats -v 0 --invalid SKIP '" + bad + "' > /dev/null 2>&1", status);
  CHECK(status == 0);  // either case, as N and n
  err = test::run_shell("'" + kBinary + "' stats -v 0 --invalid drop '" + bad + "' 2>&1 > /dev/null", status);
  CHECK(status == 2);
  CHECK(err == "mambadna: --invalid drop: choose error, skip or N (what to do with a character that is not an "
               "IUPAC nucleotide code)\n");
  // BED regions from standard input, as htslib reads "-".
  REQUIRE(fai_build(bad.c_str()) == 0);
  const std::string from_stdin = test::run_shell("printf 'r\\t0\\t2\\n' | '" + kBinary + "' stats -v 0 -R - '" + bad + "'", status);
  CHECK(status == 0);
  CHECK(from_stdin.find("\tr:1-2\t2\t1\t1\t") != std::string::npos);
  test::run_shell("'" + kBinary + "' stats -v 0 -r '20:5-1' '" + bad + "' > /dev/null 2>&1", status);
  CHECK(status == 2);
  test::run_shell("'" + kBinary + "' stats -v 0 > /dev/null 2>&1", status);
  CHECK(status == 2);
}

TEST_CASE("peak memory does not grow with the record length", "[io][stats][cli][memory]") {
  REQUIRE(test::fs::is_regular_file(kBinary));
  // `mambadna stats` reports its peak RSS; a 63 Mbp record must not be held whole.
  auto peak_gb = [&](const std::string& input) {
    int status = -1;
    std::string err =
        test::run_shell("'" + kBinary + "' stats -v 1 -o /dev/null '" + input + "' 2>&1 >/dev/null", status);
    REQUIRE(status == 0);
    size_t at = err.find("Peak RSS: ");
    REQUIRE(at != std::string::npos);
    return std::stod(err.substr(at + 10));
  };
  double small = peak_gb(test::data_file("genomes/lambda_phage.fa.gz"));        // 48 kbp
  double big = peak_gb(test::data_file("genomes/human_grch37_chr20.fa.gz"));    // 63 Mbp, one record
  INFO("peak RSS: lambda " << small << " GB, chr20 " << big << " GB");
  CHECK(big - small < 0.016);
}
