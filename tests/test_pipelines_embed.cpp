// `embed`: per-position states equal the model's hidden states (golden), pooled rows equal the
// pooling of the per-position data, chunk length does not matter, flank and both strands do what
// they say, float16 is float32 rounded, and an independent HDF5 reader (h5py) reads the layout.
#include <catch2/catch.hpp>
#include <htslib/faidx.h>
#include <htslib/sam.h>

#include <cmath>
#include <cstdlib>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/h5.h"
#include "io/sequence_reader.h"
#include "model/checkpoint.h"
#include "pipelines/embed.h"
#include "test_golden.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;

namespace {
using test::golden_model;
using test::kGolden;

pipelines::EmbedOptions options(const std::string& input, const std::string& out) {
  pipelines::EmbedOptions o;
  o.inputs = {input};
  o.reader.tok.case_mode = io::CaseMode::keep;
  o.output = out;
  o.chunk = 100;
  return o;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

// The golden input with an index, as a plain FASTA.
std::string indexed_input(const TempDir& dir) {
  std::string p = dir.copy(kGolden + "input.fa", "input.fa");
  REQUIRE(fai_build(p.c_str()) == 0);
  return p;
}
}  // namespace

TEST_CASE("embed: per-position final states are the golden hidden states, any chunk length",
          "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  auto hidden = io::H5File::open_read(kGolden + "expected.h5").read_f64("hidden");
  std::vector<float> ref;
  for (int64_t chunk : {4096, 333, 7}) {
    INFO("chunk " << chunk);
    auto o = options(kGolden + "input.fa", dir.file("e" + std::to_string(chunk) + ".h5"));
    o.pool = pipelines::Pool::none;
    o.chunk = chunk;
    auto s = pipelines::embed(m, o);
    CHECK(s.regions == 2);
    auto f = io::H5File::open_read(o.output);
    auto got = f.read_f32("per_position/0/final", {1500, 64});
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - hidden[i]));
    CHECK(worst < 1e-4);  // float32 forward against the float64 definition, as for log-probs
    if (ref.empty()) ref = got;
    CHECK(max_diff(got, ref) < 1e-5);
    CHECK(f.read_strings("regions/chrom") == std::vector<std::string>{"lambda_10001_11500", "short"});
    CHECK(f.read_i64("regions/end") == std::vector<int64_t>{1500, 13});
    CHECK(f.attr_str("/", "format") == "mambadna-embed/1");
  }
}

TEST_CASE("embed: records that fit in a chunk run side by side, in input order", "[pipelines][embed]") {
  // Short records wait and run as one pass, each from a zero state; a long one runs chunk by
  // chunk after those before it. The rows must be the same as one record at a time.
  TempDir dir;
  auto m = golden_model();
  const int64_t lengths[] = {5, 300, 7, 0, 12, 500, 9, 1, 64};
  std::string fa;
  uint64_t x = 7;
  for (size_t i = 0; i < std::size(lengths); ++i) {
    fa += ">r" + std::to_string(i) + "\n";
    for (int64_t j = 0; j < lengths[i]; ++j) fa += "ACGT"[(x = x * 6364136223846793005ull + 1) >> 62];
    fa += "\n";
  }
  const std::string path = dir.write("r.fa", fa);
  std::vector<std::string> names;
  for (size_t i = 0; i < std::size(lengths); ++i) names.push_back("r" + std::to_string(i));
  auto run = [&](int64_t chunk, pipelines::Pool pool) {
    auto o = options(path, dir.file("c" + std::to_string(chunk) + pipelines::pool_name(pool, 0) + ".h5"));
    o.chunk = chunk;
    o.pool = pool;
    o.layers = {0, 1, -1};  // two taps: each its own block of a pass's rows
    CHECK(pipelines::embed(m, o).regions == int64_t(std::size(lengths)));
    return io::H5File::open_read(o.output);
  };
  // chunk 128: all but r1 and r5 side by side (in passes of at most 128 rows); chunk 3: only
  // r3 and r7 (0 and 1 bases), the rest one at a time in chunks.
  auto side = run(128, pipelines::Pool::none), alone = run(3, pipelines::Pool::none);
  CHECK(side.read_strings("regions/name") == names);
  CHECK(alone.read_strings("regions/name") == names);
  CHECK(side.read_i64("regions/end") == std::vector<int64_t>(std::begin(lengths), std::end(lengths)));
  for (size_t i = 0; i < std::size(lengths); ++i) {
    for (const char* layer : {"final", "layer_0", "layer_1"}) {
      INFO("record " << i << " " << layer);
      const std::string ds = "per_position/" + std::to_string(i) + "/" + layer;
      auto a = side.read_f32(ds, {lengths[i], 64}), b = alone.read_f32(ds, {lengths[i], 64});
      CHECK(max_diff(a, b) < 1e-5);
    }
  }
  auto pa = run(128, pipelines::Pool::mean).read_f32("pooled/final");
  auto pb = run(3, pipelines::Pool::mean).read_f32("pooled/final");
  REQUIRE(pa.size() == std::size(lengths) * 64);
  for (size_t i = 0; i < pa.size(); ++i) {
    if (i / 64 == 3) {  // the empty record pools to NaN
      CHECK(std::isnan(pa[i]));
      CHECK(std::isnan(pb[i]));
    } else {
      CHECK(std::fabs(pa[i] - pb[i]) < 1e-5);
    }
  }
}

TEST_CASE("embed: reads turned back by --as-sequenced are on the '-' strand", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string sam = dir.write("strands.sam",
                                    "@HD\tVN:1.6\tSO:unsorted\n"
                                    "@SQ\tSN:c\tLN:100\n"
                                    "fwd\t0\tc\t1\t60\t6M\t*\t0\t0\tACGTTA\t*\n"
                                    "rev\t16\tc\t1\t60\t6M\t*\t0\t0\tACGTTA\t*\n"
                                    "fwd2\t0\tc\t9\t60\t3M\t*\t0\t0\tGGA\t*\n"
                                    "rev2\t16\tc\t9\t60\t3M\t*\t0\t0\tGGA\t*\n");
  // Chunk 64: every read side by side; chunk 4: the 6-base reads chunk by chunk.
  for (const int64_t chunk : {64, 4}) {
    for (const bool as_sequenced : {false, true}) {
      INFO("chunk " << chunk << (as_sequenced ? ", as sequenced" : ", as stored"));
      auto o = options(sam, dir.file("s" + std::to_string(chunk) + std::to_string(as_sequenced) + ".h5"));
      o.chunk = chunk;
      o.reader.as_sequenced = as_sequenced;
      REQUIRE(pipelines::embed(m, o).regions == 4);
      const auto f = io::H5File::open_read(o.output);
      CHECK(f.read_strings("regions/name") == std::vector<std::string>{"fwd", "rev", "fwd2", "rev2"});
      CHECK(f.read_strings("regions/strand") ==
            (as_sequenced ? std::vector<std::string>{"+", "-", "+", "-"}
                          : std::vector<std::string>{"+", "+", "+", "+"}));
    }
  }
}

TEST_CASE("embed: reads/ gives each read's place on the reference", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  // Mapped (a deletion makes its span longer than the read), unmapped but placed by its mate,
  // unmapped and unplaced, and a read on a second contig.
  const std::string sam = dir.write("places.sam",
                                    "@HD\tVN:1.6\tSO:unsorted\n"
                                    "@SQ\tSN:c\tLN:100\n@SQ\tSN:d\tLN:50\n"
                                    "del\t99\tc\t5\t37\t3M2D3M\t=\t20\t21\tACGTTA\t*\n"
                                    "mate\t181\tc\t5\t0\t*\t=\t5\t0\tGGA\t*\n"
                                    "none\t4\t*\t0\t0\t*\t*\t0\t0\tTTTT\t*\n"
                                    "rev\t16\td\t11\t60\t5M\t*\t0\t0\tACGTA\t*\n");
  const std::vector<std::string> contigs{"c", "c", "*", "d"};
  const std::vector<int64_t> pos{4, 4, -1, 10}, end{12, 5, -1, 15}, flag{99, 181, 4, 16}, mapq{37, 0, 0, 60};
  // Chunk 64: the reads side by side; chunk 4: the longer ones chunk by chunk.
  for (const int64_t chunk : {64, 4}) {
    INFO("chunk " << chunk);
    auto o = options(sam, dir.file("p" + std::to_string(chunk) + ".h5"));
    o.chunk = chunk;
    const auto summary = pipelines::embed(m, o);
    REQUIRE(summary.regions == 4);
    CHECK(summary.reads == 4);  // what the command's summary line calls them
    const auto f = io::H5File::open_read(o.output);
    CHECK(f.read_strings("regions/name") == std::vector<std::string>{"del", "mate", "none", "rev"});
    CHECK(f.read_strings("reads/contig") == contigs);
    CHECK(f.read_i64("reads/pos") == pos);
    CHECK(f.read_i64("reads/end") == end);
    CHECK(f.read_i64("reads/flag") == flag);
    CHECK(f.read_i64("reads/mapq") == mapq);
  }
  // A FASTA has no reads/; with a FASTA before the reads, its rows are marked as no read.
  const std::string fa = dir.write("two.fa", ">x\nACGTACGT\n>y\nGGCC\n");
  auto o = options(fa, dir.file("fa.h5"));
  pipelines::embed(m, o);
  CHECK_FALSE(io::H5File::open_read(o.output).exists("reads"));
  o = options(fa, dir.file("mixed.h5"));
  o.inputs.push_back(sam);
  REQUIRE(pipelines::embed(m, o).regions == 6);
  const auto f = io::H5File::open_read(o.output);
  std::vector<std::string> all_contigs{"*", "*"};
  all_contigs.insert(all_contigs.end(), contigs.begin(), contigs.end());
  CHECK(f.read_strings("reads/contig") == all_contigs);
  CHECK(f.read_i64("reads/flag") == std::vector<int64_t>{-1, -1, 99, 181, 4, 16});
  CHECK(f.read_i64("reads/pos") == std::vector<int64_t>{-1, -1, 4, 4, -1, 10});
}

TEST_CASE("embed: pooled rows are the pooling of the per-position rows", "[pipelines][embed]") {
  // Records, forward; and regions with a flank on both strands, whose pooling takes the reverse
  // strand's sums (mean), its row at the end (last) or its bins' sums (bin, in a scratch file)
  // rather than every row (none, max): the same as pooling the per-position rows.
  TempDir dir;
  auto m = golden_model();
  const std::string indexed = indexed_input(dir);
  for (const bool both : {false, true}) {
  INFO((both ? "both strands" : "forward"));
  const auto configure = [&](pipelines::EmbedOptions& x) {
    x.layers = {-1, 0};
    if (!both) return;
    x.inputs = {indexed};
    x.both_strands = true;
    x.flank = 50;
    x.reader.regions = {io::Region{"lambda_10001_11500", 100, 1400, "a"}, io::Region{"lambda_10001_11500", 7, 340, "b"}};
  };
  auto o = options(kGolden + "input.fa", dir.file("none.h5"));
  o.pool = pipelines::Pool::none;
  configure(o);
  pipelines::embed(m, o);
  auto per = io::H5File::open_read(o.output);
  for (const char* pool : {"mean", "max", "last", "bin:64", "bin:7"}) {
    INFO("pool " << pool);
    auto p = options(kGolden + "input.fa", dir.file(std::string("p") + (pool[0] == 'b' ? "bin" : pool) + ".h5"));
    pipelines::parse_pool(pool, p.pool, p.bin);
    configure(p);
    pipelines::embed(m, p);
    auto f = io::H5File::open_read(p.output);
    for (const std::string layer : {"final", "layer_0"}) {
      for (int r = 0; r < 2; ++r) {
        auto rows = per.read_f32("per_position/" + std::to_string(r) + "/" + layer);
        const int64_t n = int64_t(rows.size()) / 64;
        std::vector<float> want;
        if (p.pool == pipelines::Pool::bin) {
          for (int64_t b0 = 0; b0 < n; b0 += p.bin) {
            const int64_t b1 = std::min(n, b0 + p.bin);
            for (int d = 0; d < 64; ++d) {
              double s = 0;
              for (int64_t i = b0; i < b1; ++i) s += rows[size_t(i * 64 + d)];
              want.push_back(float(s / double(b1 - b0)));
            }
          }
          CHECK(max_diff(f.read_f32("binned/" + std::to_string(r) + "/" + layer), want) < 1e-5);
        } else {
          for (int d = 0; d < 64; ++d) {
            double v = p.pool == pipelines::Pool::max ? -INFINITY : 0;
            for (int64_t i = 0; i < n; ++i) {
              const double x = rows[size_t(i * 64 + d)];
              if (p.pool == pipelines::Pool::mean) v += x / double(n);
              if (p.pool == pipelines::Pool::max) v = std::max(v, x);
              if (p.pool == pipelines::Pool::last && i == n - 1) v = x;
            }
            want.push_back(float(v));
          }
          auto all = f.read_f32("pooled/" + layer, {2, 64});
          std::vector<float> row(all.begin() + r * 64, all.begin() + (r + 1) * 64);
          CHECK(max_diff(row, want) < 1e-5);
        }
      }
    }
  }
  }
  // No scratch file is left beside the outputs.
  for (auto& e : std::filesystem::directory_iterator(dir.file("")))
    CHECK(e.path().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("embed: a layer's output normalised by norm_f is the final output", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  auto o = options(kGolden + "input.fa", dir.file("l.h5"));
  o.pool = pipelines::Pool::none;
  o.layers = {1, -1};
  pipelines::embed(m, o);
  auto f = io::H5File::open_read(o.output);
  auto last = f.read_f32("per_position/0/layer_1"), fin = f.read_f32("per_position/0/final");
  const auto& nf = m.table().specs.back();
  std::vector<float> want(last.size());
  for (size_t i = 0; i < 1500; ++i) {
    double ss = 0;
    for (int d = 0; d < 64; ++d) ss += double(last[i * 64 + d]) * last[i * 64 + d];
    const double rstd = 1.0 / std::sqrt(ss / 64 + 1e-5);
    for (int d = 0; d < 64; ++d) want[i * 64 + d] = float(last[i * 64 + d] * rstd * m.params()[size_t(nf.offset + d)]);
  }
  CHECK(max_diff(fin, want) < 1e-4);
}

TEST_CASE("embed: float16 output is float32 rounded to half precision", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  auto a = options(kGolden + "input.fa", dir.file("f32.h5")), b = options(kGolden + "input.fa", dir.file("f16.h5"));
  a.pool = b.pool = pipelines::Pool::none;
  b.f16 = true;
  pipelines::embed(m, a);
  pipelines::embed(m, b);
  auto x = io::H5File::open_read(a.output).read_f32("per_position/0/final");
  auto y = io::H5File::open_read(b.output).read_f32("per_position/0/final");
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i)  // half precision: 11 significant bits, subnormals below 6e-5
    CHECK(std::fabs(x[i] - y[i]) <= std::max(std::fabs(x[i]) * 0x1p-11f, 6e-8f));
}

TEST_CASE("embed: a flank gives a region the context of the bases before it", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  auto whole = options(fa, dir.file("whole.h5"));
  whole.pool = pipelines::Pool::none;
  pipelines::embed(m, whole);
  auto all = io::H5File::open_read(whole.output).read_f32("per_position/0/final");

  auto o = options(fa, dir.file("flank.h5"));
  o.pool = pipelines::Pool::none;
  o.reader.regions = {io::Region{"lambda_10001_11500", 700, 900, "mid"}};
  o.flank = 700;  // the whole left context
  pipelines::embed(m, o);
  auto f = io::H5File::open_read(o.output);
  auto got = f.read_f32("per_position/0/final", {200, 64});
  std::vector<float> want(all.begin() + 700 * 64, all.begin() + 900 * 64);
  CHECK(max_diff(got, want) < 1e-5);
  CHECK(f.read_strings("regions/name") == std::vector<std::string>{"mid"});
  CHECK(f.read_i64("regions/start") == std::vector<int64_t>{700});

  // Without the flank the region starts from a zero state, and its first states differ.
  auto n = options(fa, dir.file("noflank.h5"));
  n.pool = pipelines::Pool::none;
  n.reader.regions = o.reader.regions;
  pipelines::embed(m, n);
  CHECK(max_diff(io::H5File::open_read(n.output).read_f32("per_position/0/final"), want) > 1e-3);
}

TEST_CASE("embed: regions that fit in a chunk with their flank run side by side", "[pipelines][embed]") {
  // -L 4096: all of these run as one pass, each from a zero state at its flank's start; -L 16:
  // one at a time in chunks. Same rows, same table, in the BED's order.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  const std::vector<io::Region> regions = {
      {"lambda_10001_11500", 0, 50, "a"},      {"lambda_10001_11500", 100, 130, "b"},
      {"lambda_10001_11500", 5, 5, "empty"},  {"short", 0, 13, "s"},
      {"lambda_10001_11500", 1400, 1500, "tail"}, {"lambda_10001_11500", 20, 90, "overlap"}};
  auto run = [&](int64_t chunk) {
    auto o = options(fa, dir.file("r" + std::to_string(chunk) + ".h5"));
    o.pool = pipelines::Pool::none;
    o.reader.regions = regions;
    o.flank = 40;  // clipped at the contig start for a, empty, s and overlap
    o.chunk = chunk;
    o.layers = {0, -1};
    CHECK(pipelines::embed(m, o).regions == int64_t(regions.size()));
    return io::H5File::open_read(o.output);
  };
  auto side = run(4096), alone = run(16);
  for (const char* col : {"regions/name", "regions/chrom", "regions/strand"})
    CHECK(side.read_strings(col) == alone.read_strings(col));
  CHECK(side.read_i64("regions/start") == std::vector<int64_t>{0, 100, 5, 0, 1400, 20});
  CHECK(side.read_i64("regions/end") == alone.read_i64("regions/end"));
  for (size_t i = 0; i < regions.size(); ++i) {
    for (const char* layer : {"final", "layer_0"}) {
      INFO(regions[i].name << " " << layer);
      const std::string ds = "per_position/" + std::to_string(i) + "/" + layer;
      const int64_t n = regions[i].end - regions[i].begin;
      CHECK(max_diff(side.read_f32(ds, {n, 64}), alone.read_f32(ds, {n, 64})) < 1e-5);
    }
  }
}

TEST_CASE("embed: both strands average the forward and reverse-complement states", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  io::FastaIndex idx(fa);
  std::string rc = idx.fetch("lambda_10001_11500", 0, 1500);
  io::reverse_complement(rc);
  const std::string rc_fa = dir.write("rc.fa", ">rc\n" + rc + "\n");
  auto fw = options(fa, dir.file("fw.h5")), rv = options(rc_fa, dir.file("rv.h5"));
  fw.pool = rv.pool = pipelines::Pool::none;
  pipelines::embed(m, fw);
  pipelines::embed(m, rv);
  auto F = io::H5File::open_read(fw.output).read_f32("per_position/0/final");
  auto R = io::H5File::open_read(rv.output).read_f32("per_position/0/final");

  auto o = options(fa, dir.file("both.h5"));
  o.pool = pipelines::Pool::none;
  o.both_strands = true;
  o.reader.regions = {io::Region{"lambda_10001_11500", 0, io::kContigEnd, {}}};
  pipelines::embed(m, o);
  auto got = io::H5File::open_read(o.output).read_f32("per_position/0/final", {1500, 64});
  std::vector<float> want(got.size());
  for (int64_t p = 0; p < 1500; ++p)
    for (int d = 0; d < 64; ++d)
      want[size_t(p * 64 + d)] = 0.5f * (F[size_t(p * 64 + d)] + R[size_t((1499 - p) * 64 + d)]);
  CHECK(max_diff(got, want) < 1e-5);
  // A region whose two strands fit in a chunk runs them side by side in one pass with the other
  // short ones (beside a region of 1 base and an empty one), not through the scratch file: the
  // same rows. (At -L 2048 the 1500 bases take the long way, as above at -L 100.)
  o.chunk = 4096;
  o.output = dir.file("both_short.h5");
  o.reader.regions.push_back(io::Region{"lambda_10001_11500", 700, 701, {}});
  o.reader.regions.push_back(io::Region{"lambda_10001_11500", 900, 900, {}});
  pipelines::embed(m, o);
  const auto short_out = io::H5File::open_read(o.output);
  CHECK(max_diff(short_out.read_f32("per_position/0/final", {1500, 64}), want) < 1e-5);
  // The 1-base region: the mean of its base and its complement, each embedded alone.
  std::string base = idx.fetch("lambda_10001_11500", 700, 701), comp = base;
  io::reverse_complement(comp);
  auto alone = options(dir.write("alone.fa", ">f\n" + base + "\n>r\n" + comp + "\n"), dir.file("alone.h5"));
  alone.pool = pipelines::Pool::none;
  pipelines::embed(m, alone);
  const auto alone_out = io::H5File::open_read(alone.output);
  const auto f1 = alone_out.read_f32("per_position/0/final", {1, 64}), r1 = alone_out.read_f32("per_position/1/final", {1, 64});
  std::vector<float> want1(64);
  for (int d = 0; d < 64; ++d) want1[size_t(d)] = 0.5f * (f1[size_t(d)] + r1[size_t(d)]);
  CHECK(max_diff(short_out.read_f32("per_position/1/final", {1, 64}), want1) < 1e-5);
  CHECK(short_out.read_strings("regions/strand") == std::vector<std::string>{"both", "both", "both"});
  CHECK(short_out.read_i64("regions/end") == std::vector<int64_t>{1500, 701, 900});
  // No scratch file is left beside the output.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.file(""))) files += e.path().string().find(".tmp.") != std::string::npos;
  CHECK(files == 0);
}

TEST_CASE("embed: a '-' strand BED region is read as its reverse complement", "[pipelines][embed]") {
  // With stranded regions, a '-' region (flank included: upstream on that strand, to the right)
  // equals the reverse complement of [begin, end + flank) embedded as a record, less the flank
  // rows; a '+' region is the forward region. regions/strand says which.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  io::FastaIndex idx(fa);
  const std::string contig = "lambda_10001_11500";
  std::string rc = idx.fetch(contig, 300, 900);  // region [300, 800) and a flank of 100
  io::reverse_complement(rc);
  auto rv = options(dir.write("rc.fa", ">rc\n" + rc + "\n"), dir.file("rv.h5"));
  rv.pool = pipelines::Pool::none;
  pipelines::embed(m, rv);
  const auto R = io::H5File::open_read(rv.output).read_f32("per_position/0/final");
  auto fw = options(fa, dir.file("fw.h5"));
  fw.pool = pipelines::Pool::none;
  fw.flank = 100;
  fw.reader.regions = {io::Region{contig, 300, 800, "plus", '+'}};
  pipelines::embed(m, fw);
  const auto F = io::H5File::open_read(fw.output).read_f32("per_position/0/final");

  const std::string bed = dir.write("r.bed", contig + "\t300\t800\tminus\t0\t-\n" + contig + "\t300\t800\tplus\t0\t+\n");
  auto o = options(fa, dir.file("stranded.h5"));
  o.pool = pipelines::Pool::none;
  o.flank = 100;
  o.stranded = true;
  o.reader.regions = io::read_bed(bed);
  REQUIRE(o.reader.regions[0].strand == '-');
  o.chunk = 77;  // chunks that do not line up with the flank
  pipelines::embed(m, o);
  auto f = io::H5File::open_read(o.output);
  CHECK(f.read_strings("regions/strand") == std::vector<std::string>{"-", "+"});
  const auto minus = f.read_f32("per_position/0/final", {500, 64});
  CHECK(max_diff(minus, std::vector<float>(R.begin() + 100 * 64, R.end())) < 1e-5);
  CHECK(max_diff(f.read_f32("per_position/1/final", {500, 64}), F) < 1e-5);
  // Without stranded regions the '-' region is read forward.
  o.stranded = false;
  o.output = dir.file("unstranded.h5");
  pipelines::embed(m, o);
  CHECK(max_diff(io::H5File::open_read(o.output).read_f32("per_position/0/final"), F) < 1e-5);
  // An empty region past the contig's end is past it, as a longer one is: skipped beside
  // others (with the warning), on either strand; an empty one at the end is there.
  const int64_t len = idx.length(contig);
  o.stranded = true;
  o.output = dir.file("past.h5");
  o.reader.regions = {io::Region{contig, len + 500, len + 500, "far", '+'}, io::Region{contig, len + 9, len + 9, "far", '-'},
                      io::Region{contig, len, len, "end", '-'}, io::Region{contig, 0, 10, "near", '+'}};
  int64_t past = 0;
  o.reader.on_regions_skipped = [&](const std::string&, const std::vector<io::Region>& skipped, io::RegionSkip why) {
    if (why == io::RegionSkip::past_end) past += int64_t(skipped.size());
  };
  pipelines::embed(m, o);
  auto p = io::H5File::open_read(o.output);
  CHECK(past == 2);
  CHECK(p.read_i64("regions/start") == std::vector<int64_t>{len, 0});
  CHECK(p.read_i64("regions/end") == std::vector<int64_t>{len, 10});
  // A strand that is none of +, - and . is an error naming the line.
  CHECK_THROWS_WITH(io::read_bed(dir.write("bad.bed", contig + "\t1\t2\tx\t0\t-\n" + contig + "\t1\t2\tx\t0\tminus\n")),
                    Catch::Contains("line 2") && Catch::Contains("strand 'minus'"));
}

TEST_CASE("embed: regions and contigs of several FASTAs, each row naming its input", "[pipelines][embed]") {
  // The golden input split into two indexed FASTAs, one contig each: every region comes from the
  // input that has its contig (skipped for the other), input by input, in BED order within one,
  // with the rows the one-file run gives it; regions/input names the file.
  TempDir dir;
  auto m = golden_model();
  const std::string both = indexed_input(dir);
  const std::vector<std::string> split = test::split_by_contig(dir, both);
  REQUIRE(split.size() == 2);  // lambda_10001_11500, then short
  std::vector<io::Region> regions = {{"short", 2, 11, "s"}, {"lambda_10001_11500", 30, 900, "a"},
                                     {"lambda_10001_11500", 5, 60, "b"}};
  for (size_t i = 0; i < regions.size(); ++i) regions[i].index = int64_t(i);  // as parse_regions numbers them
  std::vector<std::string> skipped;
  auto run = [&](const std::vector<std::string>& inputs, const std::string& name, bool regions_mode) {
    auto o = options(inputs[0], dir.file(name));
    o.inputs = inputs;
    o.pool = pipelines::Pool::none;
    if (regions_mode) o.reader.regions = regions;
    else o.both_strands = true;  // whole contigs
    o.reader.on_regions_skipped = [&](const std::string& input, const std::vector<io::Region>& r, io::RegionSkip) {
      skipped.push_back(input + ":" + std::to_string(r.size()));
    };
    pipelines::embed(m, o);
    return io::H5File::open_read(o.output);
  };
  auto one = run({both}, "one.h5", true), two = run({split[1], split[0]}, "two.h5", true);
  CHECK(skipped == std::vector<std::string>{split[1] + ":2", split[0] + ":1"});
  CHECK(two.read_strings("regions/chrom") == std::vector<std::string>{"short", "lambda_10001_11500", "lambda_10001_11500"});
  CHECK(two.read_strings("regions/input") == std::vector<std::string>{split[1], split[0], split[0]});
  CHECK(one.read_strings("regions/input") == std::vector<std::string>{both, both, both});
  CHECK(two.read_strings("regions/name") == std::vector<std::string>{"s", "a", "b"});
  CHECK(one.read_strings("regions/name") == std::vector<std::string>{"s", "a", "b"});
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t n = regions[size_t(i)].end - regions[size_t(i)].begin;
    const std::string ds = "per_position/" + std::to_string(i) + "/final";
    CHECK(max_diff(one.read_f32(ds, {n, 64}), two.read_f32(ds, {n, 64})) == 0);
  }
  // Input by input: the rows leave the list's order, and regions/index leads back to it; each
  // row's group carries the row's facts, and lists its members in the order they were made.
  skipped.clear();
  auto three = run(split, "three.h5", true);
  CHECK(three.read_strings("regions/name") == std::vector<std::string>{"a", "b", "s"});
  CHECK(three.read_i64("regions/index") == std::vector<int64_t>{1, 2, 0});
  CHECK(one.read_i64("regions/index") == std::vector<int64_t>{0, 1, 2});
  CHECK(three.attr_str("per_position/2", "chrom") == "short");
  CHECK(three.attr_i64("per_position/2", "start") == 2);
  CHECK(three.attr_i64("per_position/2", "end") == 11);
  CHECK(three.attr_str("per_position/2", "name") == "s");
  CHECK(three.attr_str("per_position/2", "strand") == "+");
  CHECK(three.attr_i64("per_position/2", "index") == 0);
  CHECK(three.attr_i64("per_position/0", "index") == 1);
  CHECK(three.attr_i64("/", "chunk") == 100);
  CHECK(three.attr_str("/", "case") == "keep");
  CHECK(three.attr_str("/", "invalid") == "error");
  // Whole contigs, both strands: one row a contig, input by input.
  auto whole = run(split, "whole.h5", false);
  CHECK(whole.read_strings("regions/chrom") == std::vector<std::string>{"lambda_10001_11500", "short"});
  CHECK(whole.read_strings("regions/input") == split);
  CHECK(whole.read_i64("regions/index") == std::vector<int64_t>{-1, -1});
}

TEST_CASE("embed: regions of an indexed BAM select the reads that overlap them, each whole", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string bam = dir.copy(test::data_file("edge/ex1.bam"), "ex1.bam");
  REQUIRE(sam_index_build(bam.c_str(), 0) == 0);
  int status = 0;
  // samtools view's count of the primary reads there (secondary and supplementary skipped, as here)
  const int64_t expected = std::stoll(test::run_shell("samtools view -c -F 0x900 " + bam + " chr1:100-200", status));
  REQUIRE(status == 0);
  REQUIRE(expected > 5);
  auto o = options(bam, dir.file("region.h5"));
  o.reader.regions = {io::parse_region("chr1:100-200")};
  o.reader.regions[0].index = 0;  // (as the command line numbers them)
  REQUIRE(pipelines::embed(m, o).regions == expected);
  auto all = options(bam, dir.file("all.h5"));
  pipelines::embed(m, all);
  const auto f = io::H5File::open_read(o.output), g = io::H5File::open_read(all.output);
  const auto names = f.read_strings("regions/name"), all_names = g.read_strings("regions/name");
  const auto pos = f.read_i64("reads/pos"), all_pos = g.read_i64("reads/pos"), end = f.read_i64("reads/end");
  const auto flag = f.read_i64("reads/flag"), all_flag = g.read_i64("reads/flag");  // mates share a name
  CHECK(f.read_i64("regions/index") == std::vector<int64_t>(size_t(expected), 0));  // the region that found them
  const auto rows = f.read_f32("pooled/final"), all_rows = g.read_f32("pooled/final");
  for (size_t i = 0; i < names.size(); ++i) {
    INFO("read " << names[i] << " at " << pos[i]);
    CHECK(pos[i] < 200);  // overlaps chr1:100-200 (0-based [99, 200))
    CHECK(end[i] > 99);
    size_t j = 0;  // the same read in the whole file's run
    while (j < all_names.size() && !(all_names[j] == names[i] && all_pos[j] == pos[i] && all_flag[j] == flag[i])) ++j;
    REQUIRE(j < all_names.size());
    const std::vector<float> a(rows.begin() + int64_t(i) * 64, rows.begin() + int64_t(i + 1) * 64),
        b(all_rows.begin() + int64_t(j) * 64, all_rows.begin() + int64_t(j + 1) * 64);
    CHECK(max_diff(a, b) < 1e-5);  // the whole read, from a zero state, in other company: ~1e-6
  }
  // Reads take no flank and no second strand; beside a FASTA that lacks the contig, the BAM has it.
  o.flank = 10;
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("--flank reads an indexed FASTA"));
  o.flank = 0;
  o.stranded = true;  // --strand bed
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("--strand bed reads an indexed FASTA"));
  o.stranded = false;
  const std::string fa = indexed_input(dir);
  o.inputs = {fa, bam};
  REQUIRE(pipelines::embed(m, o).regions == expected);
  o.reader.regions = {io::parse_region("nowhere:1-10")};
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("none of the 2 inputs has any of the regions"));
  // A region without reads: no rows, and reads/ all the same (code reading it back needs it).
  auto empty = options(bam, dir.file("empty.h5"));
  empty.reader.regions = {io::parse_region("chr1:1570-1575")};
  REQUIRE(pipelines::embed(m, empty).regions == 0);
  CHECK(io::H5File::open_read(empty.output).read_i64("reads/flag").empty());
  // Two regions that overlap: a read in both is a row for each (as samtools view without -M),
  // and regions/index tells which region found the row.
  const int64_t second = std::stoll(test::run_shell("samtools view -c -F 0x900 " + bam + " chr1:150-250", status));
  REQUIRE(status == 0);
  auto two = options(bam, dir.file("two.h5"));
  two.reader.regions = {io::parse_region("chr1:100-200"), io::parse_region("chr1:150-250")};
  two.reader.regions[0].index = 0, two.reader.regions[1].index = 1;
  REQUIRE(pipelines::embed(m, two).regions == expected + second);
  std::vector<int64_t> index(size_t(expected), 0);
  index.resize(size_t(expected + second), 1);
  CHECK(io::H5File::open_read(two.output).read_i64("regions/index") == index);
}

TEST_CASE("embed: row groups are listed in the order they were made (10 after 9)", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  auto o = options(fa, dir.file("rows.h5"));
  o.pool = pipelines::Pool::bin;
  o.bin = 4;
  for (int64_t i = 0; i < 12; ++i) o.reader.regions.push_back(io::Region{"lambda_10001_11500", 10 * i, 10 * i + 9, {}});
  pipelines::embed(m, o);
  auto f = io::H5File::open_read(o.output);
  for (int64_t i = 0; i < 12; ++i) {
    char name[32] = {};
    REQUIRE(H5Lget_name_by_idx(f.id(), "binned", H5_INDEX_CRT_ORDER, H5_ITER_INC, hsize_t(i), name, sizeof name,
                               H5P_DEFAULT) > 0);
    CHECK(std::string(name) == std::to_string(i));
    CHECK(f.attr_i64("binned/" + std::to_string(i), "start") == 10 * i);
  }
}

TEST_CASE("embed: bad regions give clear errors and no output file", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  auto o = options(fa, dir.file("bad.h5"));
  o.reader.regions = {io::Region{"nope", 0, 10, {}}};
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("unknown contig 'nope'"));
  o.reader.regions = {io::Region{"short", 100, 200, {}}};
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("region 'short:101-200' starts after the end of contig 'short' (13 bases)"));
  CHECK_THROWS_AS(io::parse_region("short:20-10"), UsageError);
  CHECK_FALSE(std::filesystem::exists(o.output));
  // Regions on a FASTA without an index: the samtools hint.
  auto p = options(dir.write("plain.fa", ">a\nACGT\n"), dir.file("x.h5"));
  p.reader.regions = {io::Region{"a", 0, 2, {}}};
  CHECK_THROWS_WITH(pipelines::embed(m, p), Catch::Contains("samtools faidx"));
}

TEST_CASE("embed: a model whose states are not finite is refused, not written as NaN rows", "[pipelines][embed]") {
  // Its pooled rows were NaN, which the layout keeps for empty regions; score and vep refuse it.
  TempDir dir;
  auto m = golden_model();
  const model::ParamSpec& norm_f = m.table().specs.back();
  std::fill_n(m.params().begin() + norm_f.offset, norm_f.size, 3e38f);
  auto o = options(kGolden + "input.fa", dir.file("nan.h5"));
  o.model_path = "diverged.h5";
  CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::StartsWith("diverged.h5: gives hidden states that are not finite "
                                                              "(final, in " + kGolden + "input.fa)"));
  CHECK_FALSE(std::filesystem::exists(o.output));
  o.layers = {0};  // the layers before the final norm are finite: their rows are written
  CHECK(pipelines::embed(m, o).regions > 0);
}

TEST_CASE("embed: --dtype f16 refuses a value past float16's range, not written as inf", "[pipelines][embed]") {
  // The final norm's weight scaled up: finite states of ~1e5, which float16 holds as inf.
  TempDir dir;
  auto m = golden_model();
  const model::ParamSpec& norm_f = m.table().specs.back();
  std::fill_n(m.params().begin() + norm_f.offset, norm_f.size, 1e5f);
  for (const auto pool : {pipelines::Pool::none, pipelines::Pool::mean, pipelines::Pool::bin}) {
    auto o = options(kGolden + "input.fa", dir.file("big.h5"));
    o.model_path = "big.h5";
    o.f16 = true;
    o.pool = pool;
    o.bin = 10;
    // Named by the record (or region) whose row it is.
    CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::StartsWith("big.h5: a value of final in " + kGolden +
                                                                "input.fa, record 'lambda_10001_11500', is ") &&
                                                  Catch::EndsWith(", past float16's range (65504): write float32 (--dtype f32)"));
    CHECK_FALSE(std::filesystem::exists(o.output));
    o.f16 = false;  // float32 holds them
    CHECK(pipelines::embed(m, o).regions == 2);
    std::filesystem::remove(o.output);
  }
  // A region is named by its text and BED line, in each path: one short enough to wait for
  // others, one longer than the chunk, one on the '-' strand read as its reverse complement.
  const std::string fa = indexed_input(dir);
  for (int path = 0; path < 3; ++path) {
    auto o = options(fa, dir.file("bigr.h5"));
    o.model_path = "big.h5";
    o.f16 = true;
    o.chunk = path == 1 ? 64 : 4096;
    o.stranded = path == 2;
    io::Region r{"lambda_10001_11500", 100, 400, "", path == 2 ? '-' : '.', 3};
    o.reader.regions = {r};
    INFO("path " << path);
    CHECK_THROWS_WITH(pipelines::embed(m, o),
                      Catch::Contains("input.fa, region 'lambda_10001_11500:101-400 (BED line 3)', is "));
  }
  {  // A whole record read by position (--flank asks for it) is named as a record.
    auto o = options(fa, dir.file("bigf.h5"));
    o.f16 = true;
    o.flank = 10;
    CHECK_THROWS_WITH(pipelines::embed(m, o), Catch::Contains("input.fa, record 'lambda_10001_11500', is "));
  }
}

TEST_CASE("embed: whole records keep their names with --flank and --strand both", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  std::vector<std::vector<std::string>> names;
  for (int run = 0; run < 3; ++run) {
    auto o = options(fa, dir.file("n" + std::to_string(run) + ".h5"));
    o.flank = run == 1 ? 10 : 0;
    o.both_strands = run == 2;
    pipelines::embed(m, o);
    names.push_back(io::H5File::open_read(o.output).read_strings("regions/name"));
  }
  CHECK(names[0] == io::FastaIndex(fa).contigs());
  CHECK(names[1] == names[0]);
  CHECK(names[2] == names[0]);
}

TEST_CASE("embed: --invalid skip reads the character as N, keeping a row per position", "[pipelines][embed]") {
  // Dropping it would leave a record's rows one short of its positions (its end one short too),
  // and a region read by position would disagree with the same bases read whole.
  TempDir dir;
  auto m = golden_model();
  const std::string fa = dir.write("bad.fa", ">b\nACGT#ACG\n");
  REQUIRE(fai_build(fa.c_str()) == 0);
  for (bool region : {false, true}) {
    INFO((region ? "region" : "whole record"));
    std::vector<std::vector<float>> rows;
    for (io::InvalidMode mode : {io::InvalidMode::skip, io::InvalidMode::to_n}) {
      auto o = options(fa, dir.file("e" + std::to_string(rows.size()) + std::to_string(region) + ".h5"));
      o.pool = pipelines::Pool::none;
      o.reader.tok.invalid = mode;
      if (region) o.reader.regions = {io::Region{"b", 2, 8, {}}};
      pipelines::embed(m, o);
      auto f = io::H5File::open_read(o.output);
      CHECK(f.read_i64("regions/start") == std::vector<int64_t>{region ? 2 : 0});
      CHECK(f.read_i64("regions/end") == std::vector<int64_t>{8});
      rows.push_back(f.read_f32("per_position/0/final", {region ? 6 : 8, 64}));
    }
    CHECK(max_diff(rows[0], rows[1]) == 0);
  }
}

TEST_CASE("embed: h5py reads the documented layout", "[pipelines][embed]") {
  TempDir dir;
  auto m = golden_model();
  auto o = options(kGolden + "input.fa", dir.file("e.h5"));
  o.pool = pipelines::Pool::mean;
  o.layers = {-1, 1};
  pipelines::embed(m, o);
  const std::string script = dir.write("read.py",
      "import sys, h5py\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "assert f['pooled/final'].shape == (2, 64), f['pooled/final'].shape\n"
      "assert f['pooled/layer_1'].shape == (2, 64)\n"
      "assert [c.decode() if isinstance(c, bytes) else c for c in f['regions/chrom'][:]] == ['lambda_10001_11500', 'short']\n"
      "assert list(f['regions/end'][:]) == [1500, 13]\n"
      "assert f.attrs['pooling'] in ('mean', b'mean')\n"
      "print('ok')\n");
  const std::string cmd = "/usr/bin/python3 " + script + " " + o.output + " > " + dir.file("py.out") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(dir.file("py.out"));
  std::string said((std::istreambuf_iterator<char>(in)), {});
  INFO("python3/h5py said: " << said);
  CHECK(rc == 0);
  CHECK(said.find("ok") != std::string::npos);
}

TEST_CASE("embed: progress counts the regions' positions, not flanks or the second strand", "[pipelines][embed]") {
  // The command's meter takes io::known_total_length as its total: the last report must equal
  // it, in each path (regions that wait for others, longer ones chunk by chunk, '-' regions,
  // both strands, whole records).
  TempDir dir;
  auto m = golden_model();
  const std::string fa = indexed_input(dir);
  // Variant 5: both strands of regions longer than the chunk, each pooling (the reverse strand's
  // rows go into mean's sums as they come).
  for (int variant = 0; variant < 10; ++variant) {
    auto o = options(fa, dir.file("p" + std::to_string(variant) + ".h5"));
    o.flank = 50;
    o.chunk = variant == 1 || variant >= 5 ? 64 : 4096;
    o.both_strands = variant == 2 || variant >= 5;
    o.stranded = variant == 3;
    const pipelines::Pool pools[] = {pipelines::Pool::mean, pipelines::Pool::max, pipelines::Pool::last,
                                     pipelines::Pool::bin, pipelines::Pool::none};
    if (variant >= 5) o.pool = pools[variant - 5], o.bin = 7;
    if (variant != 4) {
      o.reader.regions = {io::Region{"lambda_10001_11500", 100, 1400, "", '.', 1},
                          io::Region{"short", 2, 9, "", variant == 3 ? '-' : '.', 2},
                          io::Region{"lambda_10001_11500", 0, 30, "", variant == 3 ? '-' : '.', 3}};
      for (size_t i = 0; i < o.reader.regions.size(); ++i) o.reader.regions[i].index = int64_t(i);
    }
    int64_t last = -1;
    pipelines::embed(m, o, [&](int64_t done) {
      CHECK(done >= last);
      last = done;
    });
    INFO("variant " << variant);
    const int64_t known = io::known_total_length(o.inputs, o.reader);
    CHECK(known == (variant != 4 ? 1300 + 7 + 30 : 1513));
    CHECK(last == known);
  }
}
