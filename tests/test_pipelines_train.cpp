// Training: the loss falls, a resumed run follows the uninterrupted one, a stop request leaves a
// checkpoint, and a checkpoint write that was killed half-way leaves the previous one usable.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include <hdf5.h>

#include "io/h5.h"
#include "io/region.h"
#include "io/sequence_reader.h"
#include "model/checkpoint.h"
#include "pipelines/score.h"
#include "pipelines/train.h"
#include "pipelines/train_data.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string tiny_model(const TempDir& dir) {
  model::Config c = model::preset("tiny");
  c.d_model = 32;
  auto table = model::ParamTable::build(c);
  auto p = model::init_params(c, table, 1);
  const std::string path = dir.file("init.h5");
  model::save_checkpoint(path, c, table, p.data(), "test");
  return path;
}

pipelines::TrainOptions base_options(const TempDir& dir, const std::string& run) {
  pipelines::TrainOptions o;
  o.inputs = {mambadna::test::source_dir() + "/data/lambda_phage.fa.gz"};
  o.init_model = tiny_model(dir);
  o.run_dir = dir.file(run);
  o.streams = 3;
  o.chunk = 64;
  o.steps = 12;
  o.warmup = 2;
  o.holdout = 0.1;
  o.valid_tokens = 2000;
  o.rc_augment = true;
  o.block = 1000;  // several blocks per stream: reverse-complement coins and state carry-over
  return o;
}

// metrics.tsv rows without the tokens/s column (timing differs between runs).
std::vector<std::string> metric_rows(const std::string& run) {
  std::ifstream in(run + "/metrics.tsv");
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    rows.push_back(line.substr(0, line.rfind('\t')));
  }
  return rows;
}

// Resumes the stopped run in run_dir to its end: its metrics rows must be the uninterrupted
// run's (same thread count, same data, same optimiser state: the same figures to float
// rounding).
void resume_matches(const std::string& run_dir, const std::vector<std::string>& whole) {
  pipelines::TrainOptions r;
  r.run_dir = run_dir;
  r.resume = true;
  pipelines::train(r, {});
  const auto parts = metric_rows(run_dir);
  REQUIRE(parts.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(parts[i] == whole[i]);
}

// A run of base_options on a copy of its input at `copy`, stopped after its first step (a
// checkpoint to resume from).
pipelines::TrainOptions stopped_run_on_copy(const TempDir& dir, const std::string& run, const std::string& copy) {
  auto o = base_options(dir, run);
  fs::copy_file(o.inputs[0], copy);
  o.inputs = {copy};
  std::atomic<bool> stop{true};
  REQUIRE(pipelines::train(o, {}, &stop).interrupted);
  return o;
}

}  // namespace

TEST_CASE("train: a few steps on a tiny model reduce the loss", "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "run");
  o.steps = 30;
  o.lr = 3e-3;
  std::vector<double> losses;
  auto res = pipelines::train(o, [&](const pipelines::StepReport& r) { losses.push_back(r.loss); });
  REQUIRE(losses.size() == 30);
  CHECK(res.steps == 30);
  double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[27] + losses[28] + losses[29]) / 3;
  CHECK(last < first - 0.5);  // from ~ln 256 = 5.5 nats towards ~1.4 (2 bits per base)
  CHECK(fs::exists(o.run_dir + "/model.h5"));
  CHECK(res.last_valid_bpb > 0);
  CHECK(res.last_valid_bpb < 8);
  auto ck = model::load_checkpoint(o.run_dir + "/model.h5");
  CHECK(ck.config.d_model == 32);
}

TEST_CASE("train: resume follows the uninterrupted run", "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "whole");
  o.ckpt_every = 5;
  pipelines::train(o, {});
  const auto whole = metric_rows(o.run_dir);
  REQUIRE(whole.size() == 12);

  // A run stopped after step 5 (a stop request), then resumed to the end.
  auto p = base_options(dir, "parts");
  p.ckpt_every = 100;
  std::atomic<bool> stop{false};
  auto res = pipelines::train(p, [&](const pipelines::StepReport& r) {
    if (r.step == 5) stop = true;
  }, &stop);
  CHECK(res.interrupted);
  CHECK(res.steps == 5);
  REQUIRE(fs::exists(p.run_dir + "/checkpoint-00000005.h5"));
  CHECK_FALSE(fs::exists(p.run_dir + "/model.h5"));

  resume_matches(p.run_dir, whole);
}

TEST_CASE("train: a signal during the set-up takes no step, a finished run resumed writes nothing",
          "[pipelines][train]") {
  // A signal while the inputs are indexed used to run a whole first step before it was seen.
  TempDir dir;
  int64_t reported = 0;
  const auto count_steps = [&](const pipelines::StepReport&) { ++reported; };
  {  // a new run: it leaves nothing, its directory included
    auto o = base_options(dir, "new");
    o.warmup = 20;  // longer than the run: a warning during the set-up, where the signal comes
    std::atomic<bool> stop{false};
    const auto res = pipelines::train(o, count_steps, &stop, [&](const std::string&) { stop = true; });
    CHECK(res.interrupted);
    CHECK(res.steps == 0);
    CHECK(res.checkpoint.empty());
    CHECK(reported == 0);
    CHECK_FALSE(fs::exists(o.run_dir));
  }
  // A run stopped at step 2, resumed with a signal during its set-up: its checkpoint as it was
  // (metrics.tsv is rewritten to the checkpoint's rows, here all of them).
  auto o = base_options(dir, "resumed");
  std::atomic<bool> stop{false};
  pipelines::train(o, [&](const pipelines::StepReport& r) { stop = r.step == 2; }, &stop);
  const auto rows = metric_rows(o.run_dir);
  REQUIRE(rows.size() == 2);
  pipelines::TrainOptions r;
  r.run_dir = o.run_dir;
  r.resume = true;
  stop = false;
  auto res = pipelines::train(r, count_steps, &stop, [&](const std::string& line) {
    if (line.rfind("resuming from", 0) == 0) stop = true;
  });
  CHECK(res.interrupted);
  CHECK(res.steps == 2);
  CHECK(res.checkpoint == o.run_dir + "/checkpoint-00000002.h5");
  CHECK(reported == 0);
  CHECK(metric_rows(o.run_dir) == rows);
  CHECK(fs::exists(o.run_dir + "/checkpoint-00000002.h5"));
  CHECK_FALSE(fs::exists(o.run_dir + "/checkpoint-00000003.h5"));
  // Then to its end, and resumed once more: nothing to do, and nothing rewritten (model.h5
  // kept its command line, metrics.tsv its bytes).
  stop = false;
  res = pipelines::train(r, {}, &stop);
  REQUIRE(res.steps == 12);
  const std::string model = o.run_dir + "/model.h5";
  const auto when = fs::last_write_time(model);
  auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string metrics = bytes(o.run_dir + "/metrics.tsv"), command = io::H5File::open_read(model).attr_str("/", "command_line");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a rewrite would show in the time
  r.command_line = "a second resume";
  res = pipelines::train(r, {}, &stop);
  CHECK(res.first_step == 12);
  CHECK(res.steps == 12);
  CHECK(res.steps_planned == 12);
  CHECK_FALSE(res.interrupted);
  CHECK(fs::last_write_time(model) == when);
  CHECK(bytes(o.run_dir + "/metrics.tsv") == metrics);
  CHECK(io::H5File::open_read(model).attr_str("/", "command_line") == command);
}

TEST_CASE("train: more streams than short records is said", "[pipelines][train]") {
  // Past the records, the streams split them into shares, and each record end pads a chunk:
  // the shares go round unevenly. Whole records in turn need -b at most the records.
  TempDir dir;
  const std::string fa = dir.write("three.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGT\n>b\nGGCATTACGATCGATTTACGGACTA\n"
                                                ">c\nTTGACCATGCATGCAAGTCCGATTGA\n");
  for (const int64_t b : {int64_t(3), int64_t(4), int64_t(0)}) {  // 0: the default, 8 streams with -L given
    INFO("-b " << b);
    auto o = base_options(dir, "run" + std::to_string(b));
    o.inputs = {fa};
    o.holdout = 0;
    o.streams = b;
    o.chunk = 32;
    o.steps = 1;
    o.warmup = 0;
    std::vector<std::string> notices;
    pipelines::train(o, {}, nullptr, [&](const std::string& line) { notices.push_back(line); });
    const bool said = std::any_of(notices.begin(), notices.end(), [&](const std::string& l) {
      return l.find(b == 0 ? "-b 8 (the default) is more than the 3 training records"
                           : "is more than the 3 training records") != std::string::npos &&
             l.find("-b 3 or fewer takes whole records") != std::string::npos;
    });
    CHECK(said == (b != 3));
  }
}

TEST_CASE("train: a half-written checkpoint leaves the previous one to resume from", "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "run");
  o.steps = 6;
  o.ckpt_every = 3;
  o.keep = 5;
  pipelines::train(o, {});
  REQUIRE(fs::exists(o.run_dir + "/checkpoint-00000006.h5"));
  // A kill during the write of step 6's checkpoint: the file never got its final name.
  fs::rename(o.run_dir + "/checkpoint-00000006.h5", o.run_dir + "/checkpoint-00000006.h5.tmp.4242");
  fs::remove(o.run_dir + "/model.h5");
  CHECK(model::load_checkpoint(o.run_dir + "/checkpoint-00000003.h5").params.size() > 0);
  pipelines::TrainOptions r;
  r.run_dir = o.run_dir;
  r.resume = true;
  auto res = pipelines::train(r, {});
  CHECK(res.steps == 6);
  CHECK(fs::exists(o.run_dir + "/model.h5"));
}

TEST_CASE("train: --keep and --resume take the run's own checkpoints only, a cut metrics row is refused",
          "[pipelines][train]") {
  // Copies kept beside the run's checkpoints (as PyTorch users keep checkpoint-best.pt) were
  // removed by the rotation, counted as checkpoints to keep, and resumed from.
  TempDir dir;
  auto o = base_options(dir, "run");
  o.steps = 5, o.ckpt_every = 1, o.keep = 2;
  std::atomic<bool> stop{false};
  REQUIRE(pipelines::train(o, [&](const pipelines::StepReport& r) { stop = r.step == 2; }, &stop).steps == 2);
  const std::string ck2 = o.run_dir + "/checkpoint-00000002.h5";
  for (const char* name : {"checkpoint-best.h5", "checkpoint-00000001-keep.h5", "checkpoint-999999999999-x.h5"})
    fs::copy_file(ck2, o.run_dir + "/" + name);
  dir.write("run/checkpoint-notes.h5", "not HDF5\n");
  pipelines::TrainOptions r;
  r.run_dir = o.run_dir, r.resume = true;
  // metrics.tsv: step 2's row cut short (the checkpoint's, kept on resume) is refused by line.
  const std::string rows = [&] {
    std::ifstream in(o.run_dir + "/metrics.tsv");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  dir.write("run/metrics.tsv", rows.substr(0, rows.rfind('\t', rows.rfind('\t', rows.rfind('\t') - 1) - 1)));
  CHECK_THROWS_WITH(pipelines::train(r, {}), o.run_dir + "/metrics.tsv: line 3 (step 2) has 5 fields, a metrics row 8 "
                                                         "(cut short or edited?): mend or remove it to resume");
  // A row after the checkpoint's step cut short (no tab) is dropped with the rows after it.
  const std::string copy = dir.file("copy");
  fs::copy(o.run_dir, copy, fs::copy_options::recursive);
  dir.write("copy/metrics.tsv", rows + "3");
  pipelines::TrainOptions rc = r;
  rc.run_dir = copy;
  REQUIRE(pipelines::train(rc, {}).steps == 5);
  CHECK(metric_rows(copy).size() == 5);
  // Gone: a warning, and a new one from step 3.
  fs::remove(o.run_dir + "/metrics.tsv");
  std::vector<std::string> notices;
  REQUIRE(pipelines::train(r, {}, nullptr, [&](const std::string& n) { notices.push_back(n); }).steps == 5);
  CHECK(std::count(notices.begin(), notices.end(),
                   "warning: " + o.run_dir + "/metrics.tsv is missing: a new one starts at step 3") == 1);
  CHECK(metric_rows(o.run_dir).size() == 3);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(o.run_dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint-00000001-keep.h5", "checkpoint-00000004.h5",
                                          "checkpoint-00000005.h5", "checkpoint-999999999999-x.h5",
                                          "checkpoint-best.h5", "checkpoint-notes.h5", "metrics.tsv", "model.h5"});
}

TEST_CASE("train: a new run refuses a directory that holds checkpoints", "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "run");
  o.steps = 2;
  pipelines::train(o, {});
  CHECK_THROWS_WITH(pipelines::train(o, {}), Catch::Contains("--resume"));
  // A run killed before its first checkpoint leaves metrics.tsv alone: neither a new run nor
  // --resume can use the directory, and both say how to start again.
  auto killed = base_options(dir, "killed");
  fs::create_directories(killed.run_dir);
  dir.write("killed/metrics.tsv", "#step\n");
  const std::string why = "(its metrics.tsv is of a run stopped before its first checkpoint: remove " +
                          killed.run_dir + " to start that run again)";
  CHECK_THROWS_WITH(pipelines::train(killed, {}), killed.run_dir + ": already holds metrics.tsv " + why);
  pipelines::TrainOptions r;
  r.run_dir = killed.run_dir, r.resume = true;
  CHECK_THROWS_WITH(pipelines::train(r, {}), killed.run_dir + ": no checkpoint-*.h5 to resume from " + why);
  // A directory another run is using (it holds the directory's lock): refused, for a new run
  // (both may have found it empty) and a resumed one alike.
  auto busy = base_options(dir, "busy");
  fs::create_directories(busy.run_dir);
  const int fd = ::open(busy.run_dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  CHECK_THROWS_WITH(pipelines::train(busy, {}), busy.run_dir + ": another training run is using this directory");
  // ... before anything found there is judged (a running run's metrics.tsv is not a dead one's).
  dir.write("busy/metrics.tsv", "#step\n");
  CHECK_THROWS_WITH(pipelines::train(busy, {}), busy.run_dir + ": another training run is using this directory");
  r.run_dir = o.run_dir;
  const int fd2 = ::open(o.run_dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(::flock(fd2, LOCK_EX | LOCK_NB) == 0);
  CHECK_THROWS_WITH(pipelines::train(r, {}), o.run_dir + ": another training run is using this directory");
  ::close(fd2);
  ::close(fd);
  CHECK(fs::file_size(busy.run_dir + "/metrics.tsv") == 6);  // the other run's, untouched
}

TEST_CASE("train data: regions over several inputs, each input holding some", "[pipelines][train]") {
  // train reads its inputs one by one (index_segments): an input without the regions is
  // passed over when the run says the regions are elsewhere (as train does for several inputs).
  TempDir dir;
  const std::string a = dir.write("a.fa", ">a1\nACGTACGTAC\n"), b = dir.write("b.fa", ">b1\nGGGGCCCCAAAATTTT\n");
  REQUIRE(fai_build(a.c_str()) == 0);
  REQUIRE(fai_build(b.c_str()) == 0);
  io::ReaderOptions ro;
  ro.regions = {io::parse_region("b1:3-10")};
  ro.regions_elsewhere = true;
  const auto segs = pipelines::index_segments({a, b}, ro);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].input == 1);
  CHECK(segs[0].length() == 8);
  ro.regions_elsewhere = false;  // one input alone must have them
  CHECK_THROWS_WITH(pipelines::index_segments({a}, ro), Catch::Contains("unknown contig 'b1'"));
}

TEST_CASE("train data: streams cover their shares and resume at the same tokens", "[pipelines][train]") {
  const std::string fa = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  io::ReaderOptions ro;
  auto segs = pipelines::index_segments({fa}, ro);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].length() == 48502);
  std::vector<pipelines::Segment> train, valid;
  pipelines::split_holdout(segs, 0.1, train, valid);
  CHECK(train[0].end == 48502 - 4850);
  CHECK(valid[0].begin == train[0].end);

  pipelines::DataStreams a({fa}, ro, train, 3, 500, true, 9), b({fa}, ro, train, 3, 500, true, 9);
  pipelines::StreamChunk ca, cb;
  for (int i = 0; i < 40; ++i)
    for (int s = 0; s < 3; ++s) a.next(s, 37, ca);
  b.set_positions(a.positions());
  for (int i = 0; i < 40; ++i)
    for (int s = 0; s < 3; ++s) {
      a.next(s, 37, ca);
      b.next(s, 37, cb);
      CHECK(ca.tokens == cb.tokens);
      CHECK(ca.targets == cb.targets);
      CHECK(ca.reset == cb.reset);
    }
}

TEST_CASE("train data: whole records are taken in turn, each once a pass, from a zero state", "[pipelines][train]") {
  // Reads (ex1.bam) and one long record in pieces (lambda, pieces of 1000 tokens), each in
  // chunks of 37.
  for (const std::string& path : {test::data_file("edge/ex1.bam"),
                                  mambadna::test::source_dir() + "/data/lambda_phage.fa.gz"}) {
    INFO(path);
    io::ReaderOptions ro;
    const auto segs = pipelines::index_segments({path}, ro);
    // The records' tokens in file order, read directly.
    std::vector<int32_t> file;
    {
      io::SequenceReader reader(path, ro);
      io::Chunk c;
      while (reader.next(c, 4096)) file.insert(file.end(), c.tokens.begin(), c.tokens.end());
    }
    // Windows of 50 pieces: ex1.bam's readers each load ~9 of them a pass, in turn.
    const int64_t B = 5, L = 37, block = 100, piece = 1000, window = 50;
    pipelines::DataStreams ds({path}, ro, segs, B, block, false, 3, true, piece, window);
    REQUIRE(ds.whole_records());
    int64_t expect_pieces = 0;
    for (const auto& g : segs) expect_pieces += (g.length() + piece - 1) / piece;
    REQUIRE(ds.pieces() == expect_pieces);
    if (ds.pieces() > 1000) {  // a reader's consecutive takes are not neighbours in the file
      const int64_t R = pipelines::DataStreams::kWholeReaders;
      int64_t neighbours = 0;
      for (int64_t t = 0; t + R < ds.pieces(); ++t) neighbours += ds.piece_of_take(t + R) == ds.piece_of_take(t) + 1;
      CHECK(neighbours < ds.pieces() / 20);  // unshuffled: all of them
    }
    // Every pass (takes eP .. eP + P - 1) takes each piece once, the later passes too (P is not
    // a multiple of the readers here: 3,270 and 49 pieces). A reader's takes counted across
    // passes gave each of the 8 readers 1/8 of them, and a reader of P/8 pieces drew each
    // 1 + 8/P as often as one of P/8 + 1 did.
    REQUIRE(ds.pieces() % pipelines::DataStreams::kWholeReaders != 0);
    for (int64_t e = 0; e < 3; ++e) {
      std::vector<int> drawn(size_t(ds.pieces()), 0);
      for (int64_t t = e * ds.pieces(); t < (e + 1) * ds.pieces(); ++t) ++drawn[size_t(ds.piece_of_take(t))];
      CHECK(std::count(drawn.begin(), drawn.end(), 1) == ds.pieces());
    }
    // The pieces' tokens, cut from the file's.
    std::vector<std::vector<int32_t>> want;
    {
      int64_t at = 0;
      for (const auto& g : segs) {
        for (int64_t b = 0; b < g.length(); b += piece)
          want.emplace_back(file.begin() + at + b, file.begin() + at + std::min(g.length(), b + piece));
        at += g.length();
      }
    }
    REQUIRE(int64_t(want.size()) == ds.pieces());
    // Walk until every piece of the first pass is taken and handed out; put each take's tokens
    // at its piece's place.
    std::vector<std::vector<int32_t>> pieces(size_t(ds.pieces()));
    std::vector<int64_t> piece_of(size_t(B), -1), pending(size_t(B), -2);
    pipelines::StreamChunk c;
    for (;;) {
      bool any = false;
      for (int64_t s = 0; s < B; ++s) {
        if (!ds.in_record(s) && ds.taken() >= ds.pieces()) continue;
        any = true;
        ds.next(s, L, c);
        if (c.reset) piece_of[size_t(s)] = ds.piece_of_take(ds.taken() - 1);  // a new take
        REQUIRE(piece_of[size_t(s)] >= 0);
        REQUIRE(c.n >= 1);
        REQUIRE(c.n <= L);
        auto& t = pieces[size_t(piece_of[size_t(s)])];
        CHECK(c.reset == t.empty());  // each piece taken once in the pass
        // Targets: the next token of the same take where it is A/C/G/T (across the chunks of
        // a take), none at its end or past n.
        const auto target = [](int32_t next) { return io::is_acgt(next) ? next : -1; };
        if (!c.reset) CHECK(pending[size_t(s)] == target(c.tokens[0]));
        for (int64_t i = 0; i + 1 < c.n; ++i) CHECK(c.targets[size_t(i)] == target(c.tokens[size_t(i + 1)]));
        for (int64_t i = c.n; i < L; ++i) CHECK(c.targets[size_t(i)] == -1);
        t.insert(t.end(), c.tokens.begin(), c.tokens.begin() + c.n);
        const auto& w = want[size_t(piece_of[size_t(s)])];
        if (ds.in_record(s)) {
          pending[size_t(s)] = c.targets[size_t(c.n - 1)];
        } else {  // the take's end: its last base is a target only, never a chunk of its own
          CHECK(c.targets[size_t(c.n - 1)] == (t.size() < w.size() ? target(w[t.size()]) : -1));
          CHECK(t.size() == (w.size() % L == 1 && w.size() > 1 ? w.size() - 1 : w.size()));
        }
      }
      if (!any) break;
    }
    for (size_t i = 0; i < want.size(); ++i) {  // every token once, but a last one alone
      INFO("piece " << i);
      CHECK(std::equal(pieces[i].begin(), pieces[i].end(), want[i].begin()));
      CHECK(pieces[i].size() + 1 >= want[i].size());
    }
    CHECK(int64_t(file.size()) == ds.total_tokens());

    // Resume: a second walk from the first's positions (reverse complements included) hands
    // out the same chunks.
    pipelines::DataStreams a({path}, ro, segs, B, block, true, 7, true, piece, window),
        b({path}, ro, segs, B, block, true, 7, true, piece, window);
    pipelines::StreamChunk ca, cb;
    for (int i = 0; i < 30; ++i)
      for (int64_t s = 0; s < B; ++s) a.next(s, L, ca);
    b.set_positions(a.positions());
    for (int i = 0; i < 1000; ++i)  // on into the next windows and the next pass
      for (int64_t s = 0; s < B; ++s) {
        a.next(s, L, ca);
        b.next(s, L, cb);
        CHECK(ca.tokens == cb.tokens);
        CHECK(ca.targets == cb.targets);
        CHECK(ca.reset == cb.reset);
      }
    CHECK_THROWS_WITH(b.set_positions({1, 2, 3}), Catch::Contains("whole-record data positions"));
  }
}

TEST_CASE("train data: streams wrap around their shares again and again", "[pipelines][train]") {
  // No held-out tail: a stream's walk wraps back to the start of a record whose chunk the
  // reader still holds (short records, the file's last record). Every token handed out must be
  // the one at that place in the stream's share, pass after pass.
  TempDir dir;
  const std::string fa = dir.write("three.fa", ">a\nACGTACGGTTCA\n>b\nGGGCCCAAATTT\nACG\n>c\nTTAACCGGTA\n");
  const std::string lambda = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  for (const std::string& path : {fa, lambda}) {
    INFO(path);
    io::ReaderOptions ro;
    std::string space;  // the token space: the records end to end
    {
      io::SequenceReader r(path, ro);
      io::Chunk c;
      while (r.next(c, 1 << 16)) space.append(c.tokens.begin(), c.tokens.end());
    }
    const auto segs = pipelines::index_segments({path}, ro);
    const int64_t T = int64_t(space.size()), S = 3, L = 7;
    for (const int64_t block : {int64_t(5), int64_t(1) << 20}) {
      INFO("block " << block);
      pipelines::DataStreams ds({path}, ro, segs, S, block, false, 1);
      REQUIRE(ds.total_tokens() == T);
      std::vector<int64_t> pos(S);
      for (int64_t s = 0; s < S; ++s) pos[size_t(s)] = T * s / S;
      pipelines::StreamChunk c;
      // Three passes over the shorter file's shares; over lambda's, past its first wrap.
      const int64_t steps = path == fa ? 3 * (T / S + 1) : (T / S) / L + 40;
      int64_t wrong = 0, short_then_carried = 0;
      std::vector<bool> was_short(size_t(S), false);
      for (int64_t i = 0; i < steps; ++i)
        for (int64_t s = 0; s < S; ++s) {
          ds.next(s, L, c);
          // A chunk is short (padded) only where the state is not carried on: block
          // boundaries inside a record do not end chunks.
          if (was_short[size_t(s)] && !c.reset) ++short_then_carried;
          was_short[size_t(s)] = c.n < L;
          for (int64_t t = 0; t < c.n; ++t) {
            if (c.tokens[size_t(t)] != space[size_t(pos[size_t(s)])]) ++wrong;
            if (++pos[size_t(s)] == T * (s + 1) / S) pos[size_t(s)] = T * s / S;
          }
        }
      CHECK(wrong == 0);
      CHECK(short_then_carried == 0);
    }
  }
}

TEST_CASE("train: the validation figure does not depend on the stream count", "[pipelines][train]") {
  // Records up to 65,536 bases are scored whole, each from a zero state, and longer ones in 8
  // shares, each from a zero state, side by side as many as there are streams: with lr 0 (the
  // weights stay as they were) every -b gives the same bits per base. (Shares as many as the
  // streams, and whole records only where there were as many records as streams, moved it by
  // up to 5e-4.)
  TempDir dir;
  uint64_t x = 11;
  std::string long_record = ">long\n";
  for (int i = 0; i < 70000; ++i) long_record += "ACGT"[(x = x * 6364136223846793005ull + 1) >> 62];
  const std::string long_fa = dir.write("long.fa", long_record + "\n");
  const std::string two_fa = dir.write("two.fa", ">a\n" + long_record.substr(6, 1500) + "\n>b\n" +
                                                     long_record.substr(2000, 1700) + "\n");
  struct Set {
    const char* what;
    double holdout;
    std::string valid;
  };
  for (const Set& set : {Set{"lambda's held-out tail, whole", 0.1, ""}, Set{"two records, whole", 0, two_fa},
                         Set{"one record of 70,000 bases, in shares", 0, long_fa}}) {
    INFO(set.what);
    std::vector<double> bpb;
    for (const int64_t b : {1, 2, 3, 8, 12}) {
      auto o = base_options(dir, "run_b" + std::to_string(b));
      fs::remove_all(o.run_dir);
      o.streams = b;
      o.steps = 2;
      o.lr = 0;
      o.min_lr = 0;
      o.valid_tokens = 0;  // the whole set
      o.holdout = set.holdout;
      if (!set.valid.empty()) o.valid_inputs = {set.valid};
      bpb.push_back(pipelines::train(o, {}).last_valid_bpb);
    }
    REQUIRE(std::isfinite(bpb[0]));
    for (size_t i = 1; i < bpb.size(); ++i) {
      INFO("streams run " << i);
      CHECK(std::fabs(bpb[i] - bpb[0]) < 1e-6);  // float rounding of the same sums
    }
  }
}

TEST_CASE("train data: a share walked to its end counts each target once, its last base included",
          "[pipelines][train]") {
  // 70,152 bases in 8 shares of 8,769 = 137 · 64 + 1, as validation walks them: each stream
  // until its share is used up, counting what next() moved past (consumed). A share must not
  // go on past its end (back to its start: a target counted twice), and every target of the
  // record is handed out once.
  TempDir dir;
  uint64_t x = 5;
  std::string seq;
  for (int i = 0; i < 70152; ++i) seq += "ACGT"[(x = x * 6364136223846793005ull + 1) >> 62];
  const std::string fa = dir.write("v.fa", ">v\n" + seq + "\n");
  io::ReaderOptions ro;
  const auto segs = pipelines::index_segments({fa}, ro);
  const int64_t shares = 8, L = 64, total = 70152;
  pipelines::DataStreams ds({fa}, ro, segs, shares, 1 << 20, false, 1, false);
  int64_t targets = 0;
  for (int64_t s = 0; s < shares; ++s) {
    int64_t left = total * (s + 1) / shares - total * s / shares;
    pipelines::StreamChunk c;
    for (bool first = true; left > 0; first = false) {
      ds.next(s, L, c);
      CHECK(c.reset == first);  // one walk from the share's start
      for (int64_t i = 0; i < c.n; ++i) targets += c.targets[size_t(i)] >= 0;
      left -= c.consumed;
    }
    CHECK(left == 0);
  }
  CHECK(targets == total - 1);
}

TEST_CASE("train: the learning rate warms up to lr once and decays to min_lr at the last step", "[pipelines][train]") {
  pipelines::TrainOptions o;
  o.lr = 2e-3;
  o.min_lr = 2e-4;
  auto rates = [&](int64_t warmup, int64_t steps) {
    o.warmup = warmup;
    std::vector<double> v;
    for (int64_t s = 0; s < steps; ++s) v.push_back(pipelines::learning_rate(o, s, steps));
    return v;
  };
  const auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
  };
  near(rates(2, 4), {1e-3, 2e-3, 1.1e-3, 2e-4});  // was 1e-3, 2e-3, 2e-3, 1.1e-3
  near(rates(0, 3), {2e-3, 1.1e-3, 2e-4});
  near(rates(0, 1), {2e-3});
  near(rates(1, 2), {2e-3, 2e-4});
  near(rates(4, 3), {5e-4, 1e-3, 1.5e-3});  // a warm-up longer than the run (warned about)
  const auto long_run = rates(100, 1000);
  CHECK(long_run[99] == Approx(2e-3));
  CHECK(long_run[999] == Approx(2e-4));
  for (size_t i = 100; i < long_run.size(); ++i) CHECK(long_run[i] < long_run[i - 1]);
}

TEST_CASE("train: a signal validates only when capped, --max-time validates the whole set", "[pipelines][train]") {
  // A signal must not start a full pass over the validation set before its checkpoint: with
  // --valid-tokens 0 it skips validation, with a cap it validates capped. --max-time is the
  // run's planned end: it validates as the last step does (the helper's run had no figure).
  TempDir dir;
  for (const int64_t cap : {int64_t(0), int64_t(2000)}) {
    INFO("valid_tokens " << cap);
    {
      auto o = base_options(dir, "signal" + std::to_string(cap));
      o.valid_tokens = cap;
      std::atomic<bool> stop{true};  // polled after each step: the first step ends the run
      const auto res = pipelines::train(o, {}, &stop);
      CHECK(res.interrupted);
      CHECK(res.steps == 1);
      const auto rows = metric_rows(o.run_dir);
      REQUIRE(rows.size() == 1);
      CHECK((rows[0].find("\tNA\t") == std::string::npos) == (cap > 0));
    }
    auto o = base_options(dir, "time" + std::to_string(cap));
    o.valid_tokens = cap;
    o.max_seconds = 1e-9;  // up after the first step
    const auto res = pipelines::train(o, {});
    CHECK(res.time_up);
    CHECK_FALSE(res.interrupted);
    CHECK(res.steps == 1);
    CHECK(fs::exists(o.run_dir + "/checkpoint-00000001.h5"));
    const auto rows = metric_rows(o.run_dir);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].find("\tNA\t") == std::string::npos);
    CHECK(std::isfinite(res.last_valid_bpb));
    // The whole set: the figure a 1-step run validating at its end gives.
    auto whole = base_options(dir, "one" + std::to_string(cap));
    whole.valid_tokens = cap;
    whole.steps = 1;
    CHECK(pipelines::train(whole, {}).last_valid_bpb == Approx(res.last_valid_bpb).epsilon(1e-12));
  }
}

TEST_CASE("train data: N runs are read as context, not predicted", "[pipelines][train]") {
  // As score and validation count only A/C/G/T, so does the training loss: a position whose
  // next base is N (or another code) has no target.
  TempDir dir;
  const std::string fa = dir.write("n.fa", ">r\nACGTNNNNRACGTa\n");
  io::ReaderOptions ro;
  ro.tok.case_mode = io::CaseMode::keep;
  pipelines::DataStreams ds({fa}, ro, pipelines::index_segments({fa}, ro), 1, 1 << 20, false, 1);
  pipelines::StreamChunk c;
  ds.next(0, 16, c);
  REQUIRE(c.n == 14);
  const std::vector<int32_t> want = {'C', 'G', 'T', -1, -1, -1, -1, -1, 'A', 'C', 'G', 'T', 'a', -1, -1, -1};
  CHECK(c.targets == want);
}

TEST_CASE("train: options that cannot work together are refused, --valid ignores the regions",
          "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "run");
  auto refused = [&](const std::function<void(pipelines::TrainOptions&)>& edit, const char* what) {
    auto x = o;
    edit(x);
    CHECK_THROWS_WITH(pipelines::train(x, {}), Catch::Contains(what));
    CHECK_FALSE(fs::exists(x.run_dir));
  };
  refused([](auto& x) { x.tokens = 1000; }, "--steps or --tokens, not both");
  refused([](auto& x) { x.valid_inputs = x.inputs; }, "--holdout or --valid, not both");
  refused([](auto& x) { x.keep = 0; }, "keep at least 1");
  refused([](auto& x) { x.inputs = {"-"}; }, "not '-'");
  const std::string fifo = dir.file("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  refused([&](auto& x) { x.inputs = {fifo}; }, "not '-' or a pipe");  // refused unopened

  // Training on a region of an indexed FASTA, validating on a whole (unindexed) file: the
  // validation set is read without the training regions (it had failed at the first
  // validation, losing the run).
  const std::string bgz = dir.file("lambda.fa.gz");
  int st = -1;
  test::run_shell("zcat '" + o.inputs[0] + "' | bgzip -c > '" + bgz + "' && samtools faidx '" + bgz + "'", st);
  REQUIRE(st == 0);
  auto r = o;
  r.inputs = {bgz};
  r.reader.regions = {io::parse_region("gi|9626243|ref|NC_001416.1|:1-20000")};
  r.holdout = 0;
  r.valid_inputs = {o.inputs[0]};
  r.steps = 2;
  const auto res = pipelines::train(r, {});
  CHECK(res.steps == 2);
  CHECK(std::isfinite(res.last_valid_bpb));
  CHECK(fs::exists(r.run_dir + "/model.h5"));
}

TEST_CASE("train: long reads of mixed lengths: the padding is said, and tails held out by the few", "[pipelines][train]") {
  TempDir dir;
  auto said_by = [&](pipelines::TrainOptions o) {
    std::vector<std::string> said;
    pipelines::train(o, {}, nullptr, [&](const std::string& line) { said.push_back(line); });
    return said;
  };
  auto has = [](const std::vector<std::string>& said, const std::string& text) {
    return std::any_of(said.begin(), said.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  uint32_t x = 9;
  auto bases = [&](int64_t n) {
    std::string s;
    for (int64_t i = 0; i < n; ++i) s += "ACGT"[(x = x * 1664525u + 1013904223u) >> 30];
    return s;
  };
  // 10 reads of 3,000 bases with the default -L 2048: 2,999 targets in 4,096 slots each.
  std::string text;
  for (int i = 0; i < 10; ++i) text += ">long" + std::to_string(i) + "\n" + bases(3000) + "\n";
  auto o = base_options(dir, "long");
  o.inputs = {dir.write("long.fa", text)};
  o.streams = 2, o.chunk = 0, o.steps = 1, o.holdout = 0;
  CHECK(has(said_by(o), "step shape -b 2 -L 2048: each record's last chunk is padded, so about 73% of the positions train"));
  o.run_dir = dir.file("long_L"), o.chunk = 1000;  // chosen by the user: not said
  CHECK_FALSE(has(said_by(o), "is padded"));
  // 1,000 reads of 1,000 bases and 3 of 100,000: --holdout 0.0009 holds out nothing of 99% of
  // them (90 bases of the 3). The warning counted only the records that held out a base.
  text.clear();
  for (int i = 0; i < 1000; ++i) text += ">r" + std::to_string(i) + "\n" + bases(1000) + "\n";
  for (int i = 0; i < 3; ++i) text += ">u" + std::to_string(i) + "\n" + bases(100000) + "\n";
  auto h = base_options(dir, "mixed");
  h.inputs = {dir.write("mixed.fa", text)};
  h.steps = 1, h.holdout = 0.0009, h.streams = 2, h.chunk = 256;
  CHECK(has(said_by(h), "warning: --holdout 0.0009 holds out each record's last 0.09%: on these records at most 0 bases each (99%)"));
}

TEST_CASE("train data: --holdout-records holds out whole records (reads)", "[pipelines][train]") {
  std::vector<pipelines::Segment> all;
  for (int i = 0; i < 10; ++i) all.push_back(pipelines::Segment{0, i, "r" + std::to_string(i), 0, 35});
  std::vector<pipelines::Segment> train, valid;
  pipelines::split_holdout(all, 0.2, train, valid, true);
  REQUIRE(train.size() == 8);
  REQUIRE(valid.size() == 2);
  CHECK(valid[0].record == "r8");
  CHECK(valid[1].record == "r9");
  CHECK(valid[0].length() == 35);  // whole
  // Reads of a BAM file: training and validation on whole reads.
  TempDir dir;
  auto o = base_options(dir, "reads");
  o.inputs = {test::data_file("edge/ex1.bam")};
  o.holdout = 0.1;
  o.holdout_records = true;
  o.steps = 2;
  o.chunk = 32;
  const auto res = pipelines::train(o, {});
  CHECK(std::isfinite(res.last_valid_bpb));
  auto no = base_options(dir, "reads2");
  no.holdout = 0;
  no.holdout_records = true;
  CHECK_THROWS_WITH(pipelines::train(no, {}), Catch::Contains("--holdout-records needs --holdout"));
}

TEST_CASE("train: the step shape is chosen from the records where it is not given", "[pipelines][train]") {
  auto segs = [](int64_t count, int64_t length) {
    std::vector<pipelines::Segment> v;
    for (int64_t i = 0; i < count; ++i) v.push_back(pipelines::Segment{0, i, "r", 0, length});
    return v;
  };
  // Short reads: a chunk a read (35 rounded up to 40), and 16,384 / 40 streams.
  auto s = pipelines::resolve_step_shape(0, 0, segs(1000, 35));
  CHECK(s.short_records);
  CHECK(s.p99 == 35);
  CHECK(s.chunk == 40);
  CHECK(s.streams == 410);
  // 99% of the records decide: one long record among 101 does not.
  auto mixed = segs(100, 150);
  mixed.push_back(pipelines::Segment{0, 100, "long", 0, 10000});
  s = pipelines::resolve_step_shape(0, 0, mixed);
  CHECK(s.p99 == 150);
  CHECK(s.chunk == 152);
  CHECK(s.streams == 101);  // no more streams than records (16,384 / 152 would be 108)
  // A genome: the defaults.
  s = pipelines::resolve_step_shape(0, 0, segs(1, 48502));
  CHECK_FALSE(s.short_records);
  CHECK_FALSE(s.whole_records);  // shares of the token space
  CHECK(s.chunk == 2048);
  CHECK(s.streams == 8);
  s = pipelines::resolve_step_shape(0, 0, {});
  CHECK(s.chunk == 2048);
  CHECK(s.streams == 8);
  // What is given is kept; -L given: the default streams.
  s = pipelines::resolve_step_shape(0, 64, segs(1000, 35));
  CHECK_FALSE(s.short_records);
  CHECK(s.whole_records);  // they fit in a chunk: taken whole from one reader
  CHECK(s.chunk == 64);
  CHECK(s.streams == 8);
  s = pipelines::resolve_step_shape(3, 0, segs(1000, 35));
  CHECK(s.chunk == 40);
  CHECK(s.streams == 3);
  // Very short records: at least 16 tokens; no more streams than records, nor than 512.
  s = pipelines::resolve_step_shape(0, 0, segs(5, 3));
  CHECK(s.chunk == 16);
  CHECK(s.streams == 5);
  CHECK(s.whole_records);
  CHECK_FALSE(pipelines::resolve_step_shape(8, 0, segs(5, 3)).whole_records);  // fewer records than streams
  s = pipelines::resolve_step_shape(0, 0, segs(5000, 3));
  CHECK(s.chunk == 16);
  CHECK(s.streams == 512);  // 16,384 / 16 would be 1,024
  CHECK(s.whole_records);

  // Reads of a BAM file with the defaults: most of every step trains (it was ~2% with chunks of
  // 2048), and the run keeps the shape it chose in its checkpoint.
  TempDir dir;
  auto o = base_options(dir, "reads");
  o.inputs = {test::data_file("edge/ex1.bam")};
  o.streams = o.chunk = 0;
  o.holdout = 0;
  o.steps = 2;
  o.warmup = 1;
  std::vector<std::string> notices;
  const auto res = pipelines::train(o, {}, nullptr, [&](const std::string& line) { notices.push_back(line); });
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].find("step shape -b ") == 0);
  {  // each read's tail held out (3-4 bases), and validation asked for with nothing to validate
    auto w = o;
    w.run_dir = dir.file("warned");
    w.holdout = 0.1;
    w.steps = 1;
    std::vector<std::string> said;
    pipelines::train(w, {}, nullptr, [&](const std::string& line) { said.push_back(line); });
    auto has = [&](const std::string& text) {
      return std::any_of(said.begin(), said.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
    };
    CHECK(has("warning: --holdout 0.1 holds out each record's last 10%: on these records at most "));
    CHECK(has("--holdout-records holds out whole records"));
    w.run_dir = dir.file("warned2");
    w.holdout = 0;
    w.valid_every = 1;
    said.clear();
    pipelines::train(w, {}, nullptr, [&](const std::string& line) { said.push_back(line); });
    CHECK(has("warning: --valid-every 1 with no validation set"));
  }
  const io::H5File f = io::H5File::open_read(res.checkpoint);
  const int64_t B = f.attr_i64("/train", "streams"), L = f.attr_i64("/train", "chunk");
  CHECK(L >= 35);
  CHECK(L <= 48);
  CHECK(B * L >= 16000);
  CHECK(B * L <= 16800);
  // Positions with a target, of all: at most 34.3 / 40 for these reads (35-40 bases, the last
  // without one). With -L 2048 it is ~0.017.
  CHECK(double(res.tokens) / double(2 * B * L) > 0.8);

  // Validation takes the reads whole, each from a zero state: the same figure whatever -b (a
  // model that does not move: lr 0).
  auto v = base_options(dir, "valid");
  v.inputs = {test::data_file("edge/ex1.bam")};
  v.steps = 1;
  v.lr = v.min_lr = 0;
  v.holdout_records = true;
  v.valid_tokens = 0;
  v.chunk = 40;
  double bpb[2];
  for (int i = 0; i < 2; ++i) {
    v.streams = i == 0 ? 7 : 64;
    v.run_dir = dir.file("valid" + std::to_string(i));
    bpb[i] = pipelines::train(v, {}).last_valid_bpb;
  }
  CHECK(std::isfinite(bpb[0]));
  CHECK(bpb[0] == Approx(bpb[1]).epsilon(1e-9));

  // Records with nothing to predict.
  const std::string ones = dir.file("ones.fa");
  {
    std::ofstream f(ones);
    for (int i = 0; i < 40; ++i) f << ">r" << i << "\nA\n";
  }
  auto n = base_options(dir, "ones");
  n.inputs = {ones};
  n.holdout = 0;
  n.streams = n.chunk = 0;
  CHECK_THROWS_WITH(pipelines::train(n, {}), Catch::Contains("no training record has two bases"));
}

TEST_CASE("train: a run on reads resumes where it stopped", "[pipelines][train]") {
  TempDir dir;
  auto reads = [&](const std::string& run) {
    auto o = base_options(dir, run);
    o.inputs = {test::data_file("edge/ex1.bam")};
    o.streams = 0, o.chunk = 0;  // whole reads, -b chosen; a pass is ~8 steps
    o.steps = 12;
    o.holdout_records = true;
    o.valid_tokens = 0;
    o.reader.as_sequenced = true;  // kept by the checkpoint: the resumed half reads as the first
    return o;
  };
  auto o = reads("whole");
  pipelines::train(o, {});
  const auto whole = metric_rows(o.run_dir);
  REQUIRE(whole.size() == 12);
  auto p = reads("parts");
  std::atomic<bool> stop{false};
  auto res = pipelines::train(p, [&](const pipelines::StepReport& r) {
    if (r.step == 5) stop = true;
  }, &stop);
  REQUIRE(res.steps == 5);
  CHECK(io::H5File::open_read(res.checkpoint).attr_i64("/train", "whole_records") == 1);
  CHECK(io::H5File::open_read(res.checkpoint).attr_i64("/train", "as_sequenced") == 1);
  resume_matches(p.run_dir, whole);
}

TEST_CASE("train: non-finite steps are skipped, and repeated ones stop the run", "[pipelines][train]") {
  TempDir dir;
  auto o = base_options(dir, "run");
  // A model whose final norm scales by ~FLT_MAX: the logits overflow and every loss is
  // non-finite (a NaN weight would not load).
  auto ck = model::load_checkpoint(o.init_model);
  const model::ParamSpec& norm_f = ck.table.specs.back();
  std::fill_n(ck.params.begin() + norm_f.offset, norm_f.size, 3e38f);
  o.init_model = dir.file("nan.h5");
  model::save_checkpoint(o.init_model, ck.config, ck.table, ck.params.data(), "test");
  o.max_bad_steps = 3;
  std::vector<bool> skipped;
  CHECK_THROWS_WITH(pipelines::train(o, [&](const pipelines::StepReport& r) { skipped.push_back(r.skipped); }),
                    "training diverged: 3 non-finite steps in a row, to step 3 (last good checkpoint: none: no "
                    "weights of this run gave a finite step)");
  CHECK(skipped == std::vector<bool>{true, true, true});  // the third reported, then the throw
  // Failed before its first checkpoint: nothing to resume, and no metrics.tsv (nor the directory
  // it made) to stop the same command running again.
  CHECK_FALSE(fs::exists(o.run_dir));
  // Fewer than the limit, up to the last step: the run ends with a warning, and its model, whose
  // log-probabilities are not finite, is refused by score and vep rather than scored as nan.
  auto o2 = base_options(dir, "run2");
  o2.init_model = o.init_model;
  o2.steps = 2;
  o2.holdout = 0;
  std::vector<std::string> notices;
  pipelines::train(o2, {}, nullptr, [&](const std::string& n) { notices.push_back(n); });
  CHECK(std::count_if(notices.begin(), notices.end(), [](const std::string& n) {
          return n.find("warning: the run ended after 2 non-finite steps in a row") == 0;
        }) == 1);
  auto ck2 = model::load_checkpoint(o2.run_dir + "/model.h5");
  model::Mamba<float> m(ck2.config, std::move(ck2.params));
  pipelines::ScoreOptions so;
  so.inputs = o2.inputs;
  so.model_path = o2.run_dir + "/model.h5";
  so.chunk = 256;
  CHECK_THROWS_WITH(pipelines::score(m, so, {}),
                    Catch::StartsWith(so.model_path + ": gives non-finite log-probabilities (record '"));
}

TEST_CASE("train: a diverged run names the last weights that gave a finite step, and keeps them", "[pipelines][train]") {
  // A learning rate of 1e30: step 1 (the initial weights) is finite, its update sends every
  // step after it to inf. The initial model is the last good one; no checkpoint is written in
  // the run of non-finite steps, so --keep 2 cannot rotate a good one out for the bad weights.
  TempDir dir;
  auto o = base_options(dir, "run");
  o.lr = 1e30, o.warmup = 0, o.min_lr = o.lr, o.clip = 0, o.holdout = 0;
  o.ckpt_every = 1, o.keep = 2, o.max_bad_steps = 3;
  std::vector<bool> skipped;
  CHECK_THROWS_WITH(pipelines::train(o, [&](const pipelines::StepReport& r) { skipped.push_back(r.skipped); }),
                    "training diverged: 3 non-finite steps in a row, to step 4 (last good checkpoint: " +
                        o.init_model + ")");
  CHECK(skipped == std::vector<bool>{false, true, true, true});
  CHECK(metric_rows(o.run_dir).size() == 4);
  CHECK(fs::exists(o.run_dir + "/checkpoint-00000001.h5"));  // the weights after step 1's update
  CHECK_FALSE(fs::exists(o.run_dir + "/checkpoint-00000002.h5"));
}

TEST_CASE("train: no checkpoint or model holds weights that are not finite, NaN moments or states are refused on resume",
          "[pipelines][train]") {
  // --lr 1e38: step 1 is finite, and its update (weight decay: 1e38 · 0.1 · w) sends the weights
  // past float's range. The run ended (fewer than five non-finite steps) writing a model.h5 of
  // inf that score and the checkpoint reader refuse.
  TempDir dir;
  auto o = base_options(dir, "run");
  o.lr = 1e38, o.warmup = 0, o.min_lr = o.lr, o.clip = 0, o.holdout = 0, o.steps = 3;
  CHECK_THROWS_WITH(pipelines::train(o, {}), "training diverged: the weights at step 3 are not finite (last good "
                                             "checkpoint: " + o.init_model + ")");
  CHECK_FALSE(fs::exists(o.run_dir + "/model.h5"));
  CHECK_FALSE(fs::exists(o.run_dir + "/checkpoint-00000003.h5"));
  // A checkpoint whose AdamW moments hold a NaN: its first update would make every weight NaN.
  auto p = base_options(dir, "run2");
  std::atomic<bool> stop{true};
  const auto res = pipelines::train(p, {}, &stop);
  REQUIRE(res.interrupted);
  // Nor may the states carried to the next step be non-finite (NaN losses from the first step).
  for (const char* name : {"train/exp_avg", "train/exp_avg_sq", "train/state/ssm", "train/state/conv"}) {
    INFO(name);
    const hid_t f = H5Fopen(res.checkpoint.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    std::vector<float> v(size_t(H5Sget_simple_extent_npoints(H5Dget_space(d))));
    CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    const float was = v[5];
    const std::string n(name);
    v[5] = n == "train/exp_avg" ? NAN : n == "train/exp_avg_sq" ? -1.0f : INFINITY;  // (a second moment is never negative)
    CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    pipelines::TrainOptions r;
    r.run_dir = p.run_dir, r.resume = true;
    H5Dclose(d), H5Fclose(f);
    CHECK_THROWS_WITH(pipelines::train(r, {}), res.checkpoint + ": " + name + "[5] = " +
                                                   (n == "train/exp_avg" ? "nan" : n == "train/exp_avg_sq" ? "-1" : "inf") +
                                                   ": not a checkpoint as train writes them (corrupt or edited?)");
    const hid_t f2 = H5Fopen(res.checkpoint.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t d2 = H5Dopen2(f2, name, H5P_DEFAULT);
    v[5] = was;
    CHECK(H5Dwrite(d2, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Dclose(d2), H5Fclose(f2);
  }
}

TEST_CASE("train: a record of k·L + 1 bases takes k chunks, steps with no update leave AdamW's count alone",
          "[pipelines][train]") {
  // -b 1 -L 64 over records of 65, 192 (all N) and 193 bases: 1 + 3 + 3 steps, the N run's 3
  // with nothing to predict. Without the N record the same 4 updates come in 4 steps: at a
  // constant learning rate the weights must be the same bits (torch.optim.AdamW's step count
  // is the updates made), and no step may hold a record's last base alone.
  TempDir dir;
  std::string acgt;
  for (int i = 0; i < 258; ++i) acgt += "ACGTTGCAAGGC"[(i * 7 + i / 5) % 12];
  const std::string r1 = acgt.substr(0, 65), r3 = acgt.substr(65, 193);
  auto o = base_options(dir, "with_n");
  o.inputs = {dir.write("n.fa", ">r1\n" + r1 + "\n>r2\n" + std::string(192, 'N') + "\n>r3\n" + r3 + "\n")};
  o.streams = 1, o.chunk = 64, o.steps = 7, o.holdout = 0, o.rc_augment = false, o.block = 1 << 20;
  o.warmup = 0, o.min_lr = o.lr;
  std::vector<bool> empty;
  pipelines::train(o, [&](const pipelines::StepReport& r) { empty.push_back(r.empty); });
  CHECK(empty == std::vector<bool>{false, true, true, true, false, false, false});
  auto without = o;
  without.run_dir = dir.file("without_n");
  without.inputs = {dir.write("no_n.fa", ">r1\n" + r1 + "\n>r3\n" + r3 + "\n")};
  without.steps = 4;
  empty.clear();
  pipelines::train(without, [&](const pipelines::StepReport& r) { empty.push_back(r.empty); });
  CHECK(empty == std::vector<bool>(4, false));
  CHECK(model::load_checkpoint(o.run_dir + "/model.h5").params ==
        model::load_checkpoint(without.run_dir + "/model.h5").params);
  const auto last = io::H5File::open_read(o.run_dir + "/checkpoint-00000007.h5");
  CHECK(last.attr_i64("/train", "updates") == 4);
  CHECK(last.attr_i64("/train", "tokens") == 64 + 3 * 64);  // positions trained on
  // Where the last base would be a block of its own (17 bases, blocks of 16, chunks of 8), the
  // block before takes it: two chunks, then the next pass.
  const std::string r17 = dir.write("r17.fa", ">r\n" + acgt.substr(0, 17) + "\n");
  io::ReaderOptions ro;
  for (const bool rc : {false, true}) {
    INFO((rc ? "reverse complements" : "forward"));
    pipelines::DataStreams ds({r17}, ro, pipelines::index_segments({r17}, ro), 1, 16, rc, 3);
    pipelines::StreamChunk c;
    for (int pass = 0; pass < 4; ++pass) {
      ds.next(0, 8, c);
      CHECK(c.reset);
      CHECK(c.n == 8);
      ds.next(0, 8, c);
      CHECK(c.n == 8);
      CHECK(c.consumed == 9);
    }
  }
}

TEST_CASE("train: a step with nothing to predict makes no update, an input with no A/C/G/T is refused",
          "[pipelines][train]") {
  // An N run (chr20's first 60 kb) gives steps with no target: their loss and gradient are NA,
  // and the weights stay as they were (a zero gradient would still move them by the moments
  // and the weight decay).
  TempDir dir;
  auto o = base_options(dir, "run");
  std::string seq(640, 'N');
  for (int i = 0; i < 200; ++i) seq += "ACGTTGCA"[i % 8];
  o.inputs = {dir.write("n.fa", ">n\n" + seq + "\n")};
  o.streams = 1, o.chunk = 64, o.steps = 4, o.holdout = 0, o.block = 1 << 20, o.rc_augment = false;
  std::vector<bool> empty;
  pipelines::train(o, [&](const pipelines::StepReport& r) { empty.push_back(r.empty); });
  CHECK(empty == std::vector<bool>(4, true));
  {  // A held-out tail that is all N: said once, not left to NA rows alone.
    auto held = o;
    held.run_dir = dir.file("held");
    held.inputs = {dir.write("tail.fa", ">t\n" + std::string(450, 'C') + std::string(450, 'G') + std::string(100, 'N') + "\n")};
    held.holdout = 0.1, held.valid_every = 2, held.steps = 4;
    std::vector<std::string> notices;
    pipelines::train(held, {}, nullptr, [&](const std::string& n) { notices.push_back(n); });
    CHECK(std::count(notices.begin(), notices.end(),
                     "warning: the validation set has no A/C/G/T base to predict (an N run held out?): valid_bpb is NA") == 1);
  }
  for (const std::string& row : metric_rows(o.run_dir)) CHECK(row.find("\t0\tNA\tNA\tNA\t") != std::string::npos);
  const auto before = model::load_checkpoint(o.init_model), after = model::load_checkpoint(o.run_dir + "/model.h5");
  CHECK(after.params == before.params);
  // Past the N run the steps learn.
  o.run_dir = dir.file("run2"), o.steps = 14;
  empty.clear();
  pipelines::train(o, [&](const pipelines::StepReport& r) { empty.push_back(r.empty); });
  CHECK(empty.back() == false);
  CHECK(model::load_checkpoint(o.run_dir + "/model.h5").params != before.params);
  // Nothing to predict anywhere: refused, for training and validation alike.
  o.run_dir = dir.file("run3");
  const std::string all_n = dir.write("alln.fa", ">a\n" + std::string(500, 'N') + "\n>b\nNNRYNN\n");
  o.inputs = {all_n};
  CHECK_THROWS_WITH(pipelines::train(o, {}), all_n + ": no A, C, G or T base to predict (506 bases, none of them)");
  o.inputs = {dir.file("n.fa")};
  o.valid_inputs = {all_n};
  CHECK_THROWS_WITH(pipelines::train(o, {}), all_n + ": --valid: no A, C, G or T base (nothing to predict)");
}

TEST_CASE("train: a resumed run refuses an input that changed", "[pipelines][train]") {
  // The checkpoint's data positions are places in the files as they were: another file under
  // the same name would be read from the wrong places.
  TempDir dir;
  const std::string copy = dir.file("lambda.fa.gz");
  const auto o = stopped_run_on_copy(dir, "run", copy);
  pipelines::TrainOptions r;
  r.run_dir = o.run_dir;
  r.resume = true;
  dir.write("lambda.fa.gz", ">gi|9626243|ref|NC_001416.1|\nACGTACGTAC\n");
  CHECK_THROWS_WITH(pipelines::train(r, {}), copy + ": changed since the run began (records 1, bases 48502 then; "
                                                    "records 1, bases 10 now): the checkpoint's data positions are "
                                                    "in the old file; start a new run");
}

TEST_CASE("train: a checkpoint with impossible numbers is refused by name, and metrics.tsv kept",
          "[pipelines][train]") {
  // Edited or corrupt: a data position of 10^15 had the replay of the streams run for minutes
  // (deaf to the first SIGTERM), a negative step reached AdamW as a negative learning rate after
  // metrics.tsv had been cut to its header.
  TempDir dir;
  auto o = base_options(dir, "run");
  std::atomic<bool> stop{true};
  REQUIRE(pipelines::train(o, {}, &stop).interrupted);
  struct Edit {
    const char* name;
    bool attr;
    double value;
    std::string message;
  };
  int k = 0;
  for (const Edit& e : {Edit{"train/data_consumed", false, 1e15, "train/data_consumed[0] = 1000000000000000 (at step"},
                        Edit{"step", true, -5, "/train step -5, updates"},
                        Edit{"step", true, 4.6e18, "/train step 4600000000000000000, updates"},  // no overflow
                        Edit{"step", true, 25, "/train step 25 past the run's 12 steps"},  // was "finished"
                        Edit{"min_lr", true, 1.0, ""},  // above --lr: refused for a new run only
                        // accepted, and the run diverges: it names the checkpoint it resumed from
                        Edit{"lr", true, 1e30, "training diverged"},
                        Edit{"lr", true, NAN, "its options: train: --lr nan"}}) {
    INFO(e.name);
    const std::string run = dir.file("run" + std::to_string(++k));
    fs::copy(o.run_dir, run);
    std::string ck;
    for (const auto& entry : fs::directory_iterator(run))
      if (entry.path().filename().string().rfind("checkpoint-", 0) == 0) ck = entry.path().string();
    REQUIRE(!ck.empty());
    const hid_t f = H5Fopen(ck.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    if (e.attr) {  // replaced, as the library's writes do (HDF5 1.10 cannot rewrite these in place)
      const bool real = std::string(e.name).find("lr") != std::string::npos;
      const int64_t i = int64_t(e.value);
      CHECK(H5Adelete_by_name(f, "/train", e.name, H5P_DEFAULT) >= 0);
      const hid_t space = H5Screate(H5S_SCALAR);
      const hid_t a = H5Acreate_by_name(f, "/train", e.name, real ? H5T_IEEE_F64LE : H5T_STD_I64LE, space,
                                        H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      CHECK(H5Awrite(a, real ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64,
                     real ? static_cast<const void*>(&e.value) : &i) >= 0);
      H5Aclose(a);
      H5Sclose(space);
    } else {
      const hid_t d = H5Dopen2(f, e.name, H5P_DEFAULT);
      std::vector<int64_t> v(size_t(o.streams));
      CHECK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
      v[0] = int64_t(e.value);
      CHECK(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
      H5Dclose(d);
    }
    H5Fclose(f);
    const auto metrics = [&] {
      std::ifstream in(run + "/metrics.tsv");
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string before = metrics();
    pipelines::TrainOptions r;
    r.run_dir = run, r.resume = true;
    if (e.message.empty()) {  // a checkpoint of an earlier version could hold it: resumed
      CHECK(pipelines::train(r, {}).steps == o.steps);
      continue;
    }
    if (e.message == "training diverged") {
      CHECK_THROWS_WITH(pipelines::train(r, {}), Catch::StartsWith("training diverged: 5 non-finite steps") &&
                                                     Catch::EndsWith(", to step 7 (last good checkpoint: " + ck + ")"));
      continue;
    }
    CHECK_THROWS_WITH(pipelines::train(r, {}), Catch::StartsWith(ck + ": ") && Catch::Contains(e.message) &&
                                                   Catch::Contains("corrupt or edited"));
    CHECK(metrics() == before);
  }
}

TEST_CASE("train: --resume removes the temporaries of a run that was killed", "[pipelines][train]") {
  // SIGKILL while a checkpoint was being written leaves "<name>.tmp.<pid>", as big as a
  // checkpoint; the resumed run removes those whose process is gone, and no other file.
  TempDir dir;
  auto o = base_options(dir, "run");
  std::atomic<bool> stop{true};
  REQUIRE(pipelines::train(o, {}, &stop).interrupted);
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  REQUIRE(gone > 0);
  REQUIRE(waitpid(gone, nullptr, 0) == gone);
  const std::string stale = dir.write("run/checkpoint-00000009.h5.tmp." + std::to_string(gone), "x");
  const std::string stale2 = dir.write("run/metrics.tsv.tmp." + std::to_string(gone) + ".0badcafe", "x");
  const std::string alive = dir.write("run/checkpoint-00000009.h5.tmp." + std::to_string(getpid()), "x");
  const std::string other = dir.write("run/notes.tmp.txt", "x");
  pipelines::TrainOptions r;
  r.run_dir = o.run_dir, r.resume = true;
  std::vector<std::string> notices;
  pipelines::train(r, {}, nullptr, [&](const std::string& line) { notices.push_back(line); });
  CHECK_FALSE(fs::exists(stale));
  CHECK_FALSE(fs::exists(stale2));
  CHECK(fs::exists(alive));
  CHECK(fs::exists(other));
  CHECK(std::count_if(notices.begin(), notices.end(), [](const std::string& n) { return n.rfind("removed ", 0) == 0; }) == 2);
}

TEST_CASE("train: --resume finds the inputs where the project moved", "[pipelines][train]") {
  // Inputs are saved as absolute paths; a project moved as a whole (renamed, mounted elsewhere
  // on another node) has them at the same place relative to the run directory.
  TempDir dir;
  fs::create_directories(dir.file("before"));
  const std::string copy = dir.file("before/lambda.fa.gz");
  const auto o = stopped_run_on_copy(dir, "before/run", copy);
  fs::rename(dir.file("before"), dir.file("after"));
  pipelines::TrainOptions r;
  r.run_dir = dir.file("after/run"), r.resume = true;
  std::vector<std::string> notices;
  const auto res = pipelines::train(r, {}, nullptr, [&](const std::string& n) { notices.push_back(n); });
  CHECK(res.steps == o.steps);
  REQUIRE(!notices.empty());
  CHECK(notices[0] == copy + " is not there; the run directory moved from " + dir.file("before/run") + ": reading " +
                          dir.file("after/lambda.fa.gz"));
}

TEST_CASE("train: a signal during the last validation cuts it short, and the run is complete", "[pipelines][train]") {
  // The last step validates on the whole set (here S. aureus' 2.8 Mb, several seconds): a
  // signal then must not wait for it. The step is done, so the run ends complete: a
  // checkpoint, model.h5, and NA for the validation.
  TempDir dir;
  auto o = base_options(dir, "run");
  o.steps = 2, o.holdout = 0, o.valid_tokens = 0;
  o.valid_inputs = {test::data_file("genomes/saureus_nctc8325.fa.gz")};
  std::atomic<bool> stop{false};
  std::thread signal([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = pipelines::train(o, {}, &stop);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  signal.join();
  CHECK(res.signal_at_end);
  CHECK_FALSE(res.interrupted);
  CHECK(res.steps == 2);
  CHECK(fs::exists(o.run_dir + "/model.h5"));
  CHECK(fs::exists(o.run_dir + "/checkpoint-00000002.h5"));
  const auto rows = metric_rows(o.run_dir);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].find("\tNA\t") != std::string::npos);
  CHECK(seconds < 6);  // the signal at 1.5 s, not the whole validation
}

// ---- on a CUDA device ------------------------------------------------------------------------

#include "tests/cuda_testing.h"
#include "tests/test_paths.h"

TEST_CASE("train: the loss curve on a CUDA device follows the CPU run's in fp32 and bf16", "[pipelines][train][cuda]") {
  if (kernels::testing::cuda_unavailable()) return;
  TempDir dir;
  auto o = base_options(dir, "cpu");
  o.steps = 8;
  std::vector<double> cpu, gpu, cpu_norm, gpu_norm;
  pipelines::train(o, [&](const pipelines::StepReport& r) {
    cpu.push_back(r.loss);
    cpu_norm.push_back(r.grad_norm);
  });
  auto g = base_options(dir, "cuda");
  g.steps = 8;
  g.device = model::Device{true, 0};
  pipelines::train(g, [&](const pipelines::StepReport& r) {
    gpu.push_back(r.loss);
    gpu_norm.push_back(r.grad_norm);
  });
  REQUIRE(cpu.size() == 8);
  REQUIRE(gpu.size() == 8);
  // Same data, same initial weights, fp32 products: the first step's loss and gradient norm
  // differ only by summation order (~1e-6 relative; 1e-5 allowed). After it, AdamW can turn a
  // rounding-sized difference in a near-zero gradient entry into a different sign of that
  // entry's step (m / sqrt(v) is ±1 there), so later steps drift more: 1e-3 relative still
  // catches any real difference (a wrong kernel moves the loss by far more within a step).
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("step " << i + 1 << " cpu " << cpu[i] << " cuda " << gpu[i]);
    const double tol = i == 0 ? 1e-5 : 1e-3;
    CHECK(std::fabs(cpu[i] - gpu[i]) <= tol * std::fabs(cpu[i]));
    CHECK(std::fabs(cpu_norm[i] - gpu_norm[i]) <= 10 * tol * std::fabs(cpu_norm[i]));
  }
  // The checkpoint the device run wrote holds the device's parameters, readable on the CPU.
  auto ck = model::load_checkpoint(g.run_dir + "/model.h5");
  CHECK(ck.config.d_model == 32);

  // --precision bf16: activations and weight copies in bf16, fp32 master weights. The curve
  // follows the CPU's to under 1e-4 relative on the emulator (which rounds as the GPU does;
  // 6.9e-5 at most); 1e-3 allowed, which a wrong gradient leaves within a step or two (steps
  // move the loss by 1e-2). The gradient norms within 1e-2 (bf16 gradients: ~2e-2 of a
  // tensor's largest entry at worst on the golden model, far less in the norm).
  kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::bf16);
  auto h = base_options(dir, "cuda-bf16");
  h.steps = 8;
  h.device = model::Device{true, 0};
  std::vector<double> b16, b16_norm;
  try {
    pipelines::train(h, [&](const pipelines::StepReport& r) {
      b16.push_back(r.loss);
      b16_norm.push_back(r.grad_norm);
    });
  } catch (...) {
    kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::fp32);
    throw;
  }
  kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::fp32);
  REQUIRE(b16.size() == 8);
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("step " << i + 1 << " cpu " << cpu[i] << " cuda bf16 " << b16[i]);
    CHECK(std::fabs(cpu[i] - b16[i]) <= 1e-3 * std::fabs(cpu[i]));
    CHECK(std::fabs(cpu_norm[i] - b16_norm[i]) <= 1e-2 * std::fabs(cpu_norm[i]));
  }
  CHECK(b16 != gpu);  // the precision reached the run
  CHECK(b16.back() < b16.front());

  // The backward's weight-gradient products on the side stream: the same curve (the same
  // products; on an H200 the two runs drifted apart by the device's atomic sums and AdamW's
  // amplification of them to 4.8e-6 relative by step 8, so 1e-4, where a race on a gradient
  // buffer moves the gradient by a tenth of its size and the loss by far more).
  kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::bf16);
  kernels::cuda::set_side_stream_overlap(true);
  auto o2 = base_options(dir, "cuda-bf16-overlap");
  o2.steps = 8;
  o2.device = model::Device{true, 0};
  std::vector<double> overlapped;
  try {
    pipelines::train(o2, [&](const pipelines::StepReport& r) { overlapped.push_back(r.loss); });
  } catch (...) {
    kernels::cuda::set_side_stream_overlap(false);
    kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::fp32);
    throw;
  }
  kernels::cuda::set_side_stream_overlap(false);
  kernels::cuda::set_matmul_precision(kernels::cuda::MatmulPrecision::fp32);
  REQUIRE(overlapped.size() == 8);
  for (size_t i = 0; i < b16.size(); ++i) {
    INFO("step " << i + 1 << " bf16 " << b16[i] << " bf16 on two streams " << overlapped[i]);
    CHECK(std::fabs(overlapped[i] - b16[i]) <= 1e-4 * std::fabs(b16[i]));
  }
}
