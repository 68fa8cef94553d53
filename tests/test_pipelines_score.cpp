// `score` end to end on the golden model: per-record totals and per-base log-probs against the
// golden values, invariance to chunk length and batch size, record order, and the outputs.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/sam.h>

#include "io/fasta_index.h"
#include "io/h5.h"
#include "io/sequence_reader.h"
#include "model/checkpoint.h"
#include "pipelines/score.h"
#include "test_golden.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;
namespace fs = std::filesystem;

namespace {
using test::golden_model;
using test::kGolden;

// The golden input FASTA, copied into dir and indexed (regions need the index).
std::string indexed_golden_fasta(TempDir& dir) {
  const std::string fa = dir.copy(kGolden + "input.fa", "input.fa");
  REQUIRE(fai_build(fa.c_str()) == 0);
  return fa;
}

// FASTA text of n short records <prefix>0.. (the first shortest + i % cycle bases of `bases`)
// with the golden records (1,500 and 13 bases, renamed g<i>_... so that no contig comes twice)
// after each record i where i % every == at.
std::string mixed_records(const std::string& prefix, int n, const std::string& bases, int shortest, int cycle,
                          int every, int at) {
  std::ifstream golden(kGolden + "input.fa");
  const std::string g((std::istreambuf_iterator<char>(golden)), std::istreambuf_iterator<char>());
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += ">" + prefix + std::to_string(i) + "\n" + bases.substr(0, size_t(shortest + i % cycle)) + "\n";
    if (i % every != at) continue;
    std::string copy = g, tag = std::to_string(i);
    tag.insert(0, 1, 'g').push_back('_');
    for (size_t p = copy.find('>'); p != std::string::npos; p = copy.find('>', p + 1)) copy.insert(p + 1, tag);
    text += copy;
  }
  return text;
}

pipelines::ScoreOptions options(const std::vector<std::string>& inputs, int64_t chunk, int64_t streams) {
  pipelines::ScoreOptions o;
  o.inputs = inputs;
  o.reader.tok.case_mode = io::CaseMode::keep;  // the golden checkpoint's tokenizer
  o.chunk = chunk;
  o.streams = streams;
  return o;
}
}  // namespace

// The same records, lengths and totals (within float sums in another order: 1e-4 a position).
void same_records(const std::vector<pipelines::RecordScore>& got, const std::vector<pipelines::RecordScore>& ref) {
  REQUIRE(got.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO(ref[i].name);
    CHECK(got[i].name == ref[i].name);
    CHECK(got[i].length == ref[i].length);
    CHECK(got[i].scored == ref[i].scored);
    CHECK(std::fabs(got[i].loglik - ref[i].loglik) < 1e-4 * double(std::max<int64_t>(1, ref[i].scored)));
  }
}

// The short-record shape of inputs given as a temporary (short_record_shape keeps the readers
// of inputs read once in the options it is given).
pipelines::ScoreShape shape_of(pipelines::ScoreOptions o, int64_t rows) { return pipelines::short_record_shape(o, rows); }

TEST_CASE("score: per-base log-probs and totals match the golden values", "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  auto expected = io::H5File::open_read(kGolden + "expected.h5").read_f64("logprob");
  double golden_total = 0;
  for (double v : expected) golden_total += v;

  auto o = options({kGolden + "input.fa"}, 333, 2);
  o.h5_output = dir.file("s.h5");
  o.per_position = true;
  o.entropy = true;
  auto recs = pipelines::score(m, o, {});
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].name == "lambda_10001_11500");
  CHECK(recs[0].length == 1500);
  CHECK(recs[0].scored == 1499);  // every base after the first is A/C/G/T
  // float32 sums of 1,499 terms each within 1e-4: 0.15 nats at most, 1e-3 in practice
  CHECK(std::fabs(recs[0].loglik - golden_total) < 0.02);
  CHECK(recs[1].name == "short");
  CHECK(recs[1].length == 13);
  CHECK(recs[1].scored == 7);  // "ACGTNacgtRYKM": targets C G T . a c g t . . . . -> 7 of ACGTacgt

  auto f = io::H5File::open_read(o.h5_output);
  auto lp = f.read_f32("per_position/0/logprob");
  REQUIRE(lp.size() == 1500);
  CHECK(std::isnan(lp[0]));
  double worst = 0;
  for (size_t t = 1; t < lp.size(); ++t) worst = std::max(worst, std::fabs(double(lp[t]) - expected[t - 1]));
  CHECK(worst < 1e-4);
  auto ent = f.read_f32("per_position/0/entropy");
  REQUIRE(ent.size() == 1500);
  for (size_t t = 1; t < ent.size(); ++t) {
    CHECK(ent[t] >= 0.0f);
    CHECK(ent[t] <= float(std::log(256.0)) + 1e-4f);
  }
  CHECK(f.attr_str("/per_position/1", "name") == "short");
  CHECK(f.read_strings("records/name") == std::vector<std::string>{"lambda_10001_11500", "short"});
  CHECK(f.read_i64("records/length") == std::vector<int64_t>{1500, 13});
  CHECK(f.attr_str("/", "format") == "mambadna-score/1");
  CHECK(f.attr_str("/", "case") == "keep");  // the settings the numbers depend on
  CHECK(f.attr_str("/", "invalid") == "error");
  CHECK(f.attr_i64("/", "chunk") == 333);
}

TEST_CASE("score: totals do not depend on chunk length or batch size", "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  // Several records of different lengths, so that streams finish at different times.
  std::string fa;
  const char* seqs[] = {"ACGTACGGTTACGATCGATCGGGCTA", "A", "", "TTTTTTTTTTGGGGCCCCAAAA", "ACGTN", "GATTACA"};
  for (int i = 0; i < 6; ++i) fa += ">r" + std::to_string(i) + "\n" + seqs[i] + "\n";
  const std::string path = dir.write("r.fa", fa);
  // Two inputs: the streams' records come from one shared reader where they fit in a chunk,
  // from their own readers where they do not, across the change of input.
  auto ref = pipelines::score(m, options({path, path}, 4096, 1), {});
  REQUIRE(ref.size() == 12);
  for (int64_t chunk : {1, 3, 7}) {
    for (int64_t streams : {1, 2, 4, 8}) {
      INFO("chunk " << chunk << " streams " << streams);
      std::vector<std::string> order;
      auto got = pipelines::score(m, options({path, path}, chunk, streams),
                                  [&](const pipelines::RecordScore& r) { order.push_back(r.name); });
      REQUIRE(got.size() == ref.size());
      CHECK(order == std::vector<std::string>{"r0", "r1", "r2", "r3", "r4", "r5", "r0", "r1", "r2", "r3", "r4", "r5"});
      for (size_t i = 0; i < ref.size(); ++i) {
        CHECK(got[i].name == ref[i].name);
        CHECK(got[i].length == ref[i].length);
        CHECK(got[i].scored == ref[i].scored);
        CHECK(std::fabs(got[i].loglik - ref[i].loglik) < 1e-4 * std::max<int64_t>(1, ref[i].scored));
      }
    }
  }
}

TEST_CASE("score: short records (reads) get a chunk each and more streams", "[pipelines][score]") {
  auto m = golden_model();
  const std::string bam = test::data_file("edge/ex1.bam");
  auto o = options({bam}, 256, 8);
  // 3,270 reads of 33-40 bases: chunks of 40 and 2048 / 40 streams for the same rows.
  auto shape = pipelines::short_record_shape(o, 2048);
  CHECK(shape.sampled == 3270);
  CHECK(shape.p99 == 40);
  CHECK(shape.chunk == 40);
  CHECK(shape.streams == 51);
  // A small input, sampled whole: no more streams than its records.
  TempDir dir;
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += ">r" + std::to_string(i) + "\nACGTACGTAC\n";
  auto small = shape_of(options({dir.write("twenty.fa", twenty)}, 256, 8), 2048);
  CHECK(small.chunk == 16);
  CHECK(small.streams == 20);  // 2048 / 16 would be 128
  // 99% of the records decide: one longer than the chunk among 500 reads does not.
  std::string mixed;
  for (int i = 0; i < 500; ++i) mixed += ">r" + std::to_string(i) + "\n" + std::string(30, "ACGT"[i % 4]) + "\n";
  mixed += ">long\n" + std::string(300, 'A') + "\n";
  auto mx = shape_of(options({dir.write("mixed.fa", mixed)}, 256, 8), 2048);
  CHECK(mx.p99 == 30);
  CHECK(mx.chunk == 32);
  CHECK(mx.sampled == 501);
  // Every input must qualify: reads then a genome keep the shape as it is.
  CHECK(shape_of(options({bam, mambadna::test::source_dir() + "/data/lambda_phage.fa.gz"}, 256, 8), 2048).chunk == 0);
  // An input that can be read only once (a FIFO, as bash's <(...) gives) is scored by the
  // streams asked for (a long record read on from the shared reader; tested below); its shape
  // is sampled by the reader that scores it (tested below too).
  const std::string fifo = dir.file("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(pipelines::score_streams(options({fifo}, 256, 8)) == 8);
  CHECK(pipelines::score_streams(options({bam}, 256, 8)) == 8);
  // What the command sizes the chunk by: a record longer than it holds the other streams where
  // the input is read once (or a bedGraph is written); records known from an index or regions.
  CHECK(pipelines::score_holds(options({fifo}, 256, 8)));
  CHECK_FALSE(pipelines::score_holds(options({bam}, 256, 8)));
  CHECK(pipelines::records_known(options({bam}, 256, 8), 8) == 8);  // reads: 8 and more at once
  CHECK(pipelines::records_known(options({fifo}, 256, 8), 8) == -1);  // cannot be read twice
  const std::string indexed = dir.copy(kGolden + "input.fa", "indexed.fa");
  CHECK(pipelines::records_known(options({indexed}, 256, 8), 8) == 2);  // read through
  REQUIRE(fai_build(indexed.c_str()) == 0);
  CHECK(pipelines::records_known(options({indexed, indexed}, 256, 8), 8) == 4);  // from the index
  CHECK(pipelines::records_known(options({indexed, indexed}, 256, 8), 3) == 3);
  auto one_region = options({indexed}, 256, 8);
  one_region.reader.regions = {io::parse_region("short:1-5")};
  CHECK(pipelines::records_known(one_region, 8) == 1);
  // Long records: left as they are.
  CHECK(shape_of(options({mambadna::test::source_dir() + "/data/lambda_phage.fa.gz"}, 256, 8), 2048).chunk == 0);
  // The scores do not change with the shape.
  auto ref = pipelines::score(m, options({bam}, 256, 8), {});
  auto got = pipelines::score(m, options({bam}, shape.chunk, shape.streams), {});
  REQUIRE(got.size() == ref.size());
  REQUIRE(ref.size() == 3270);
  for (size_t i = 0; i < ref.size(); ++i) {
    CHECK(got[i].name == ref[i].name);
    CHECK(got[i].scored == ref[i].scored);
    CHECK(std::fabs(got[i].loglik - ref[i].loglik) < 1e-4 * std::max<int64_t>(1, ref[i].scored));
  }
}

TEST_CASE("score: a pipe's first records choose the shape, and are scored from what was kept",
          "[pipelines][score]") {
  // The reads of ex1.bam, then the lambda genome (its first record longer than the chunk),
  // through a FIFO: the same shape as the file's, and the same scores, record for record.
  TempDir dir;
  auto m = golden_model();
  const std::string fifo = dir.file("in.fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& file : {test::data_file("edge/ex1.bam"), mambadna::test::source_dir() + "/data/lambda_phage.fa.gz"}) {
    INFO(file);
    std::ifstream src(file, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(src), std::istreambuf_iterator<char>()};
    std::thread writer([&] {
      std::ofstream out(fifo, std::ios::binary);
      out << bytes;
    });
    auto piped = options({fifo}, 256, 8);
    auto direct = options({file}, 256, 8);
    const auto shape = pipelines::short_record_shape(piped, 2048);
    const auto expect = pipelines::short_record_shape(direct, 2048);
    CHECK(shape.chunk == expect.chunk);
    CHECK(shape.streams == expect.streams);
    CHECK(shape.sampled == expect.sampled);
    REQUIRE(piped.opened.size() == 1);
    CHECK(piped.opened[0] != nullptr);  // the sampling reader, handed to score()
    if (shape.chunk > 0) {
      piped.chunk = direct.chunk = shape.chunk;
      piped.streams = direct.streams = shape.streams;
    }
    const auto got = pipelines::score(m, piped, {});
    writer.join();
    const auto ref = pipelines::score(m, direct, {});
    same_records(got, ref);
  }
}

TEST_CASE("score: an input read once runs several streams, long records read on from the shared reader",
          "[pipelines][score]") {
  // Records longer than the chunk among short ones, through a FIFO (read once: no stream can
  // reopen it): the same records, lengths and totals as the file scored the same way.
  TempDir dir;
  auto m = golden_model();
  const std::string text = mixed_records("r", 40, "ACGTTGCAGG", 3, 8, 13, 5);
  const std::string file = dir.write("mixed.fa", text);
  const std::string fifo = dir.file("mixed.fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    out << text;
  });
  const auto once = pipelines::score(m, options({fifo}, 100, 4), {});
  writer.join();
  const auto ref = pipelines::score(m, options({file}, 100, 4), {});
  REQUIRE(ref.size() == 40 + 3 * 2);
  same_records(once, ref);
}

TEST_CASE("score: a bedGraph from several streams is the one-stream track, in record order", "[pipelines][score]") {
  // Short records and long ones (longer than the chunk) mixed over 6 streams: while a long one
  // runs the others start none, so the track comes out in record order, line for line the
  // track one stream writes (values within the float sums' differences).
  TempDir dir;
  auto m = golden_model();
  const std::string fa = dir.write("mixed.fa", mixed_records("s", 30, "GATTACAGGCTTAACG", 4, 12, 11, 3));
  auto track = [&](int64_t streams, const std::string& name) {
    auto o = options({fa}, 100, streams);
    o.bedgraph = dir.file(name);
    pipelines::score(m, o, {});
    std::ifstream in(o.bedgraph);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  const auto one = track(1, "one.bedGraph"), many = track(6, "many.bedGraph");
  REQUIRE(one.size() > 3 * 1500);
  REQUIRE(many.size() == one.size());
  size_t differ = 0;
  for (size_t i = 0; i < one.size(); ++i) {
    const auto a = one[i].rfind('\t'), b = many[i].rfind('\t');
    if (one[i].substr(0, a) != many[i].substr(0, b)) ++differ;  // chrom, start, end
    else if (std::fabs(std::stod(one[i].substr(a + 1)) - std::stod(many[i].substr(b + 1))) > 2e-4) ++differ;
  }
  CHECK(differ == 0);
}

TEST_CASE("score: a bedGraph named .gz is bgzip-compressed, the same lines", "[pipelines][score]") {
  // It was plain text under a .gz name: zcat and tabix refused it.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = dir.write("r.fa", mixed_records("s", 3, "GATTACAGGCTTAACG", 2, 12, 11, 3));
  std::string plain, unzipped;
  for (const char* name : {"t.bedGraph", "t.bedGraph.GZ"}) {
    auto o = options({fa}, 100, 2);
    o.bedgraph = dir.file(name);
    pipelines::score(m, o, {});
    BGZF* fp = bgzf_open(o.bedgraph.c_str(), "r");
    REQUIRE(fp);
    CHECK(bool(fp->is_compressed) == (name != std::string("t.bedGraph")));
    CHECK_FALSE(fp->is_gzip);                                   // BGZF, not plain gzip
    if (fp->is_compressed) CHECK(bgzf_check_EOF(fp) == 1);     // its end-of-file block
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = bgzf_read(fp, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    bgzf_close(fp);
    (name == std::string("t.bedGraph") ? plain : unzipped) = text;
  }
  CHECK(std::count(plain.begin(), plain.end(), '\n') > 3);
  CHECK(unzipped == plain);
}

TEST_CASE("score: reads/ gives each read's place on the reference, as embed's", "[pipelines][score]") {
  // Mates share a name: the TSV and records/ could not tell them apart.
  TempDir dir;
  auto m = golden_model();
  const std::string sam = dir.write("places.sam",
                                    "@HD\tVN:1.6\tSO:unsorted\n"
                                    "@SQ\tSN:c\tLN:100\n@SQ\tSN:d\tLN:50\n"
                                    "del\t99\tc\t5\t37\t3M2D3M\t=\t20\t21\tACGTTA\t*\n"
                                    "del\t147\tc\t20\t30\t4M\t=\t5\t-21\tGGAT\t*\n"
                                    "none\t4\t*\t0\t0\t*\t*\t0\t0\tTTTT\t*\n"
                                    "rev\t16\td\t11\t60\t5M\t*\t0\t0\tACGTA\t*\n");
  const std::string fa = dir.write("one.fa", ">x\nACGTACGT\n");
  for (const int64_t chunk : {64, 4}) {
    INFO("chunk " << chunk);
    auto o = options({fa, sam}, chunk, 2);
    o.h5_output = dir.file("r" + std::to_string(chunk) + ".h5");
    REQUIRE(pipelines::score(m, o, {}).size() == 5);
    const auto f = io::H5File::open_read(o.h5_output);
    CHECK(f.read_strings("records/name") == std::vector<std::string>{"x", "del", "del", "none", "rev"});
    CHECK(f.read_strings("reads/contig") == std::vector<std::string>{"*", "c", "c", "*", "d"});
    CHECK(f.read_i64("reads/pos") == std::vector<int64_t>{-1, 4, 19, -1, 10});
    CHECK(f.read_i64("reads/end") == std::vector<int64_t>{-1, 12, 23, -1, 15});
    CHECK(f.read_i64("reads/flag") == std::vector<int64_t>{-1, 99, 147, 4, 16});
    CHECK(f.read_i64("reads/mapq") == std::vector<int64_t>{255, 37, 30, 0, 60});
  }
  auto o = options({fa}, 64, 2);  // no reads: no reads/
  o.h5_output = dir.file("fa.h5");
  pipelines::score(m, o, {});
  CHECK_FALSE(io::H5File::open_read(o.h5_output).exists("reads"));
}

TEST_CASE("score: an input with no record still gives the per_position group, empty", "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  auto o = options({dir.write("empty.fa", "")}, 100, 2);
  o.h5_output = dir.file("e.h5");
  o.per_position = true;
  CHECK(pipelines::score(m, o, {}).empty());
  const auto f = io::H5File::open_read(o.h5_output);
  REQUIRE(f.exists("per_position"));  // (h5py's f['per_position'] raised KeyError)
  CHECK(f.is_group("per_position"));
  CHECK(f.list("per_position").empty());
}

TEST_CASE("score: bedGraph track has one line per scored position", "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  auto o = options({kGolden + "input.fa"}, 100, 4);
  o.bedgraph = dir.file("t.bedGraph");
  int64_t scored = 0;
  for (const auto& r : pipelines::score(m, o, {})) scored += r.scored;
  std::ifstream in(o.bedgraph);
  std::string line;
  int64_t n = 0;
  std::string first;
  while (std::getline(in, line)) {
    if (n == 0) first = line;
    ++n;
  }
  CHECK(n == scored);
  CHECK(n == 1499 + 7);  // the second record's 12 predictions include 5 of non-A/C/G/T bases
  CHECK(first.rfind("lambda_10001_11500\t1\t2\t", 0) == 0);
  // An N run is a gap in the track, as in the totals: on one strand as many lines as scored
  // positions, summing to the log-likelihood (4 decimals a line); on both strands likewise.
  const std::string gap = dir.write("gap.fa", ">gap\nACGTTGCAACGGTTAC" + std::string(10, 'N') + "GATTACAGATTACACCGGTTAA\n");
  REQUIRE(fai_build(gap.c_str()) == 0);  // --strand both reads the reverse strand by index
  for (bool both : {false, true}) {
    INFO("both strands " << both);
    auto g = options({gap}, 16, 2);
    g.both_strands = both;
    g.bedgraph = dir.file("gap.bedGraph");
    const auto recs = pipelines::score(m, g, {});
    REQUIRE(recs.size() == 1);
    std::ifstream bg(g.bedgraph);
    int64_t lines = 0;
    double sum = 0;
    while (std::getline(bg, line)) {
      const auto at = line.rfind('\t');
      const int64_t pos = std::stoll(line.substr(line.find('\t') + 1));
      CHECK((pos < 16 || pos >= 26));  // no line inside the N run
      sum += std::stod(line.substr(at + 1));
      ++lines;
    }
    // One strand: every A/C/G/T base but the first (nothing predicts it); both: the first too
    // (the reverse strand predicts it).
    CHECK(lines == (both ? 16 + 22 : recs[0].scored));
    CHECK(recs[0].scored == 16 + 22 - 1);
    if (!both) CHECK(sum == Approx(recs[0].loglik).margin(1e-4 * double(lines)));
  }
}

TEST_CASE("score: a bedGraph track refuses a base scored twice", "[pipelines][score]") {
  // Two inputs with a contig of one name, a name twice in one FASTA, or -R over two indexed
  // inputs that share a contig: each would give a base two lines (bedGraphToBigWig refuses
  // overlaps). Refused before the run where the indexes show it, else as it comes; no track.
  TempDir dir;
  auto m = golden_model();
  const std::string a = dir.write("a.fa", ">c\nACGTACGTTGCA\n>d\nACGTTGCAAC\n");
  const std::string b = dir.write("b.fa", ">c\nTTGCAACGGTAC\n");
  const std::string twice = dir.write("twice.fa", ">c\nACGTACGT\n>c\nGGTTAACC\n");
  auto run = [&](std::vector<std::string> inputs, std::vector<io::Region> regions) {
    auto o = options(std::move(inputs), 8, 2);
    o.reader.regions = std::move(regions);
    o.bedgraph = dir.file("t.bedGraph");
    return pipelines::score(m, o, {});
  };
  const std::string twice_msg = "--bedgraph: position 2 of contig c is scored twice (two records of that name, in one "
                                "input or two)";
  CHECK_THROWS_WITH(run({a, b}, {}), Catch::Contains(twice_msg));
  CHECK_THROWS_AS(run({a, b}, {}), InputError);  // the data's fault: exit 1
  CHECK_FALSE(fs::exists(dir.file("t.bedGraph")));
  CHECK_THROWS_WITH(run({twice}, {}), Catch::Contains(twice_msg));
  CHECK_FALSE(fs::exists(dir.file("t.bedGraph")));
  {  // --invalid skip drops a character that still takes a position: the track could not place it
    auto o = options({dir.write("skip.fa", ">s\nACGTAC**GTACGT\n")}, 8, 2);
    o.reader.tok.invalid = io::InvalidMode::skip;
    o.bedgraph = dir.file("t.bedGraph");
    CHECK_THROWS_WITH(pipelines::score(m, o, {}), Catch::StartsWith("--bedgraph with --invalid skip:"));
    CHECK_FALSE(fs::exists(dir.file("t.bedGraph")));
  }
  REQUIRE(fai_build(a.c_str()) == 0);
  REQUIRE(fai_build(b.c_str()) == 0);
  const io::Region c_reg{"c", 2, 6, {}}, d_reg{"d", 0, 5, {}};  // d: in a alone
  CHECK_THROWS_WITH(run({a, b}, {c_reg}), Catch::Contains("--bedgraph: contig c is in " + a + " and " + b));
  CHECK_THROWS_WITH(run({a, b}, {}), Catch::Contains("--bedgraph: contig c is in " + a + " and " + b));
  CHECK_FALSE(fs::exists(dir.file("t.bedGraph")));
  // Regions each on a contig that one input has: one track line a base (position 0 of each
  // has no prediction).
  const std::string e = dir.write("e.fa", ">e\nGGTTACCA\n");
  REQUIRE(fai_build(e.c_str()) == 0);
  REQUIRE(run({a, e}, {d_reg, io::Region{"e", 0, 5, {}}}).size() == 2);
  std::ifstream in(dir.file("t.bedGraph"));
  std::string line;
  int64_t lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == 8);
}

TEST_CASE("score: --strand both reads several indexed FASTAs, input by input", "[pipelines][score]") {
  // The golden input split into one FASTA a contig, given in the other order: every contig (or
  // region) is scored from the input that has it, input by input, as the one-file run scores it.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_golden_fasta(dir);
  std::vector<std::string> split = test::split_by_contig(dir, fa);
  std::reverse(split.begin(), split.end());
  REQUIRE(split.size() == 2);  // short, then lambda_10001_11500
  for (const bool regions : {false, true}) {
    INFO("regions " << regions);
    auto run = [&](const std::vector<std::string>& inputs, const std::string& name) {
      auto o = options(inputs, 333, 1);
      o.both_strands = true;
      if (regions)
        o.reader.regions = {io::Region{"lambda_10001_11500", 40, 700, {}}, io::Region{"short", 1, 12, {}}};
      o.reader.on_regions_skipped = [](const std::string&, const std::vector<io::Region>&, io::RegionSkip) {};
      o.h5_output = dir.file(name);
      o.per_position = true;
      return pipelines::score(m, o, {});
    };
    const auto one = run({fa}, "one.h5"), two = run(split, "two.h5");
    REQUIRE(one.size() == 2);
    REQUIRE(two.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      const auto& a = one[1 - i];  // the one-file run has lambda first, the split run short
      const auto& b = two[i];
      INFO(b.name);
      CHECK(b.input == split[i]);
      CHECK(b.index == 0);
      CHECK(a.name == b.name);
      CHECK(a.scored_rc == b.scored_rc);
      CHECK(a.loglik == b.loglik);
      CHECK(a.loglik_rc == b.loglik_rc);
    }
    auto f = io::H5File::open_read(dir.file("two.h5"));
    CHECK(f.read_strings("records/input") == split);
    CHECK(f.read_strings("records/name") == std::vector<std::string>{"short", "lambda_10001_11500"});
    CHECK(f.read_f32("per_position/0/logprob_rc").size() == size_t(two[0].length));
  }
}

TEST_CASE("score: --strand both scores the reverse complement position by position",
          "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_golden_fasta(dir);
  io::FastaIndex idx(fa);
  std::string rc = idx.fetch("lambda_10001_11500", 0, 1500);
  io::reverse_complement(rc);
  const std::string rc_fa = dir.write("rc.fa", ">rc\n" + rc + "\n");
  // The reverse strand scored forward, as an ordinary record.
  auto r = options({rc_fa}, 4096, 1);
  r.h5_output = dir.file("rc.h5");
  r.per_position = true;
  r.entropy = true;
  auto rc_rec = pipelines::score(m, r, {});
  auto rc_lp = io::H5File::open_read(r.h5_output).read_f32("per_position/0/logprob");
  auto rc_en = io::H5File::open_read(r.h5_output).read_f32("per_position/0/entropy");
  auto expected = io::H5File::open_read(kGolden + "expected.h5").read_f64("logprob");

  for (int64_t chunk : {4096, 333, 7}) {
    INFO("chunk " << chunk);
    auto o = options({fa}, chunk, 1);
    o.both_strands = true;
    o.reader.regions = {io::Region{"lambda_10001_11500", 0, io::kContigEnd, {}}};
    o.h5_output = dir.file("both" + std::to_string(chunk) + ".h5");
    o.per_position = true;
    o.entropy = chunk != 4096;  // (with and without)
    auto recs = pipelines::score(m, o, {});
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].scored == 1499);
    CHECK(recs[0].scored_rc == 1499);
    CHECK(std::fabs(recs[0].loglik_rc - rc_rec[0].loglik) < 0.02);
    auto f = io::H5File::open_read(o.h5_output);
    auto fw = f.read_f32("per_position/0/logprob"), rv = f.read_f32("per_position/0/logprob_rc"),
         bo = f.read_f32("per_position/0/logprob_both");
    REQUIRE(fw.size() == 1500);
    REQUIRE(rv.size() == 1500);
    CHECK(std::isnan(fw[0]));
    CHECK(std::isnan(rv[1499]));
    // Positions off by more than `tol` (a NaN where a value belongs counts: std::max would skip it).
    auto off = [](double a, double b, double tol) { return !(std::fabs(a - b) <= tol); };
    int64_t off_f = 0, off_r = 0, off_b = 0;
    for (size_t q = 1; q < 1500; ++q) off_f += off(fw[q], expected[q - 1], 1e-4);
    for (size_t q = 0; q + 1 < 1500; ++q) {
      off_r += off(rv[q], rc_lp[1499 - q], 1e-4);
      if (q > 0) off_b += off(bo[q], 0.5 * (double(fw[q]) + double(rv[q])), 1e-6);
    }
    CHECK(off_f == 0);
    CHECK(off_r == 0);
    CHECK(off_b == 0);
    CHECK(bo[0] == rv[0]);  // only one strand predicts the ends
    CHECK(bo[1499] == fw[1499]);
    // Each strand's entropies, the reverse one's as the reverse complement's scored forward
    // (the windows' carried last prediction included).
    CHECK(f.exists("per_position/0/entropy") == o.entropy);
    CHECK(f.exists("per_position/0/entropy_rc") == o.entropy);
    if (!o.entropy) continue;
    auto er = f.read_f32("per_position/0/entropy_rc");
    REQUIRE(er.size() == 1500);
    CHECK(std::isnan(er[1499]));
    int64_t off_e = 0;
    for (size_t q = 0; q + 1 < 1500; ++q) off_e += off(er[q], rc_en[1499 - q], 1e-4);
    CHECK(off_e == 0);
  }
}

TEST_CASE("score: regions carry their names into the TSV and the HDF5 records",
          "[pipelines][score]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_golden_fasta(dir);
  const std::string contig = "lambda_10001_11500";  // 1,500 bases
  // A named BED region, an unnamed one clipped to the contig's end, and a named one again: the
  // names follow the regions whichever stream scores them.
  std::vector<io::Region> regions = {io::Region{contig, 100, 400, "promoter", '.'},
                                     io::Region{contig, 1200, io::kContigEnd, {}, '.'},
                                     io::Region{contig, 0, 50, "start", '.'}};
  const std::vector<int64_t> places = {2, 0, 1};  // their places in the list given (BED lines, say)
  for (size_t i = 0; i < 3; ++i) regions[i].index = places[i];
  const std::vector<std::string> want = {"promoter", contig + ":1201-1500", "start"};
  for (int mode = 0; mode < 3; ++mode) {  // one stream, two streams, both strands
    INFO("mode " << mode);
    auto o = options({fa}, 64, mode == 1 ? 2 : 1);
    o.both_strands = mode == 2;
    o.reader.regions = regions;
    o.h5_output = dir.file("r" + std::to_string(mode) + ".h5");
    o.per_position = true;
    auto recs = pipelines::score(m, o, {});
    REQUIRE(recs.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(recs[i].region == want[i]);
      CHECK(recs[i].name == contig);
    }
    CHECK(recs[1].region_begin == 1200);
    CHECK(recs[1].length == 300);
    auto f = io::H5File::open_read(o.h5_output);
    CHECK(f.read_strings("records/region") == want);
    CHECK(f.read_i64("records/region_index") == places);
    CHECK(f.attr_str("/per_position/0", "region") == "promoter");
    // The TSV: the region's name last, after the strand columns.
    std::ostringstream tsv;
    pipelines::write_score_header(tsv, o.both_strands, true);
    pipelines::write_score_line(tsv, recs[1], o.both_strands, true);
    const std::string text = tsv.str();
    CHECK(text.find("\tregion\n") != std::string::npos);
    CHECK(text.substr(text.size() - (want[1].size() + 2)) == "\t" + want[1] + "\n");
  }
  // Without regions: no region column, no records/region; a record without a region reads ".".
  auto o = options({fa}, 64, 1);
  o.h5_output = dir.file("none.h5");
  auto recs = pipelines::score(m, o, {});
  REQUIRE(!recs.empty());
  for (const auto& r : recs) CHECK(r.region.empty());
  CHECK_FALSE(io::H5File::open_read(o.h5_output).exists("records/region"));
  std::ostringstream plain, dotted;
  pipelines::write_score_header(plain, false, false);
  CHECK(plain.str().find("region") == std::string::npos);
  pipelines::write_score_line(dotted, recs[0], false, true);
  CHECK(dotted.str().substr(dotted.str().size() - 3) == "\t.\n");
  // Both strands: each strand's count, and its figures NA by its own count ("NA": the A is
  // scored forward, the reverse strand "TN" scores nothing; "AN" the other way round).
  std::ostringstream both;
  pipelines::write_score_header(both, true, false);
  pipelines::RecordScore na;
  na.input = "x.fa", na.name = "NA", na.length = 2, na.scored = 1, na.loglik = -std::log(4.0);
  pipelines::write_score_line(both, na, true, false);
  std::swap(na.scored, na.scored_rc), std::swap(na.loglik, na.loglik_rc), na.name = "AN";
  pipelines::write_score_line(both, na, true, false);
  CHECK(both.str() ==
        "#input\trecord\tstart\tlength\tscored\tloglik\tmean_loglik\tbits_per_base\tperplexity\tscored_rc\t"
        "loglik_rc\tbits_per_base_rc\tbits_per_base_both\n"
        "x.fa\tNA\t0\t2\t1\t-1.386294\t-1.386294\t2.000000\t4.000000\t0\t0.000000\tNA\t2.000000\n"
        "x.fa\tAN\t0\t2\t0\t0.000000\tNA\tNA\tNA\t1\t-1.386294\t2.000000\t2.000000\n");

  // Reads found through regions of a BAM are records of their own, each with the region that
  // found it, in the records and in the per-position groups alike.
  const std::string bam = dir.copy(test::data_file("edge/ex1.bam"), "ex1.bam");
  REQUIRE(sam_index_build(bam.c_str(), 0) == 0);
  auto b = options({bam}, 64, 2);
  b.reader.regions = {io::parse_region("chr1:100-200")};
  b.reader.regions[0].index = 0;  // (as the command line numbers them)
  b.h5_output = dir.file("reads.h5");
  b.per_position = true;
  auto reads = pipelines::score(m, b, {});
  REQUIRE(reads.size() > 5);
  auto f = io::H5File::open_read(b.h5_output);
  CHECK(f.read_strings("records/region") == std::vector<std::string>(reads.size(), "chr1:100-200"));
  CHECK(f.read_i64("records/region_index") == std::vector<int64_t>(reads.size(), 0));
  CHECK(f.attr_str("/per_position/0", "region") == "chr1:100-200");
}

TEST_CASE("score: progress reaches the inputs' known length, each strand counted", "[pipelines][score]") {
  // What the command gives its progress meter as the total (io::known_total_length, twice with
  // --strand both): the last report must equal it, or the meter's fraction and ETA are wrong.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = dir.copy(kGolden + "input.fa", "in.fa");
  REQUIRE(fai_build(fa.c_str()) == 0);
  for (int variant = 0; variant < 4; ++variant) {
    auto o = options({fa}, 256, 4);
    o.both_strands = variant & 1;
    if (variant & 2) o.reader.regions = {io::Region{"lambda_10001_11500", 100, 1400, ""}, io::Region{"short", 2, 9, ""}};
    for (size_t i = 0; i < o.reader.regions.size(); ++i) o.reader.regions[i].index = int64_t(i);
    int64_t last = -1, reports = 0;
    pipelines::score(m, o, {}, [&](int64_t done) {
      CHECK(done >= last);
      last = done;
      ++reports;
    });
    INFO("both strands " << o.both_strands << ", regions " << o.reader.regions.size());
    const int64_t known = io::known_total_length(o.inputs, o.reader);
    CHECK(known == ((variant & 2) ? 1300 + 7 : 1513));
    CHECK(reports > 1);
    CHECK(last == known * (o.both_strands ? 2 : 1));
  }
}

TEST_CASE("score: --strand both names the first invalid character, refuses skip and reads", "[pipelines][score]") {
  // The reverse strand runs first, from a region's end: its first invalid character was the
  // record's last; --invalid skip read characters as N there (a dropped one would move the
  // positions the strands share), so the forward totals changed with --strand both; reads
  // were refused as a data error where --bedgraph refuses them as a usage error.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = dir.write("inv.fa", ">ok\nACGTACGTTAGC\n>inv\nACGTXACGT-ACGT*ACG\n");
  REQUIRE(fai_build(fa.c_str()) == 0);
  auto o = options({fa}, 8, 1);
  o.both_strands = true;
  CHECK_THROWS_WITH(pipelines::score(m, o, {}),
                    Catch::Contains("record 'inv': position 5: invalid character 'X'") &&
                        Catch::Contains("(use --invalid N to read it as N)"));
  o.chunk = 64;  // one window: the same
  CHECK_THROWS_WITH(pipelines::score(m, o, {}), Catch::Contains("record 'inv': position 5: invalid character 'X'"));
  o.reader.tok.invalid = io::InvalidMode::skip;
  CHECK_THROWS_AS(pipelines::score(m, o, {}), UsageError);
  CHECK_THROWS_WITH(pipelines::score(m, o, {}), Catch::Contains("--strand both with --invalid skip"));
  o.reader.tok.invalid = io::InvalidMode::to_n;
  const auto n_both = pipelines::score(m, o, {});
  o.both_strands = false;
  const auto n_fwd = pipelines::score(m, o, {});
  REQUIRE(n_both.size() == 2);
  REQUIRE(n_fwd.size() == 2);
  for (size_t i = 0; i < 2; ++i) {  // the forward columns do not depend on --strand both
    CHECK(n_both[i].length == n_fwd[i].length);
    CHECK(n_both[i].scored == n_fwd[i].scored);
    CHECK(n_both[i].loglik == Approx(n_fwd[i].loglik).epsilon(1e-5));
  }
  auto r = options({test::data_file("edge/ex1.bam")}, 64, 1);
  r.both_strands = true;
  CHECK_THROWS_AS(pipelines::score(m, r, {}), UsageError);
  CHECK_THROWS_WITH(pipelines::score(m, r, {}), Catch::Contains("ex1.bam holds reads"));
}
