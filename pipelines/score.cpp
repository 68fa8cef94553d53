#include "pipelines/score.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "io/error.h"
#include "io/h5.h"

namespace mambadna::pipelines {

double RecordScore::bits_per_base() const { return scored ? -mean() / std::log(2.0) : NAN; }
double RecordScore::perplexity() const { return scored ? std::exp(-mean()) : NAN; }

void write_score_header(std::ostream& out) {
  out << "#input\trecord\tstart\tlength\tscored\tloglik\tmean_loglik\tbits_per_base\tperplexity\n";
}

void write_score_line(std::ostream& out, const RecordScore& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "\t%lld\t%lld\t%lld\t%.6f\t%.6f\t%.6f\t%.6f\n",
                (long long)std::max<int64_t>(r.region_begin, 0), (long long)r.length,
                (long long)r.scored, r.loglik, r.mean(), r.bits_per_base(), r.perplexity());
  out << r.input << '\t' << r.name << buf;
}

namespace {

// Hands out (input, record) pairs in increasing order to the streams.
struct Claims {
  size_t input = 0;
  int64_t record = 0;
};

struct Stream {
  std::unique_ptr<io::SequenceReader> reader;
  size_t reader_input = SIZE_MAX;
  std::optional<io::Chunk> pending;  // a chunk read ahead
  bool active = false;
  io::Chunk cur;
  std::optional<io::Chunk> nxt;  // the next chunk of the same record
  RecordScore rec;
  int64_t row = -1;      // row in the records table
  int64_t tokens = 0;    // tokens of the record consumed so far
  std::optional<io::H5Appender> lp_out, ent_out;
  bool eof = false;
};

}  // namespace

std::vector<RecordScore> score(model::Mamba<float>& m, const ScoreOptions& opt,
                               const std::function<void(const RecordScore&)>& on_record,
                               const std::function<void(int64_t)>& progress) {
  if (opt.inputs.empty()) throw UsageError("score: no input");
  if (opt.chunk < 1) throw UsageError("score: chunk length must be >= 1");
  bool any_stdin = false;
  for (auto& in : opt.inputs) any_stdin |= in == "-";
  // One reader per stream, each skipping to its record; stdin can be read only once, and a
  // bedGraph must come out in record order: both use a single stream.
  const int64_t B = (any_stdin || !opt.bedgraph.empty()) ? 1 : std::max<int64_t>(1, opt.streams);
  const int64_t L = opt.chunk;

  std::optional<io::H5File> h5;
  if (!opt.h5_output.empty()) {
    h5.emplace(io::H5File::create(opt.h5_output));
    h5->set_provenance("mambadna-score/1", opt.command_line, opt.inputs);
    h5->set_attr("/", "model", opt.model_path);
    h5->set_attr("/", "chunk", L);
  }
  std::string bg_tmp;
  std::unique_ptr<std::ofstream> bg;
  if (!opt.bedgraph.empty()) {
    bg_tmp = opt.bedgraph + ".tmp." + std::to_string(::getpid());
    bg = std::make_unique<std::ofstream>(bg_tmp);
    if (!*bg) throw InputError(opt.bedgraph + ": cannot create file");
  }
  struct BgGuard {
    std::string path;
    ~BgGuard() { if (!path.empty()) std::remove(path.c_str()); }
  } bg_guard{bg_tmp};

  std::vector<Stream> streams(static_cast<size_t>(B));
  model::State<float> state(m.config(), B);
  model::Activations<float> acts;
  std::vector<int32_t> tokens(size_t(B * L)), targets(size_t(B * L));
  std::vector<float> lp(size_t(B * L)), ent(opt.entropy ? size_t(B * L) : 0);
  Claims claims;
  int64_t rows_started = 0, bases_done = 0;
  std::vector<RecordScore> done;
  std::map<int64_t, RecordScore> finished;  // by row, waiting for earlier rows
  int64_t next_row_out = 0;

  auto flush = [&]() {
    while (!finished.empty() && finished.begin()->first == next_row_out) {
      RecordScore r = std::move(finished.begin()->second);
      finished.erase(finished.begin());
      if (on_record) on_record(r);
      done.push_back(std::move(r));
      ++next_row_out;
    }
  };

  // Reads the next chunk of a stream's reader, honouring a read-ahead chunk.
  auto read_chunk = [&](Stream& s, io::Chunk& c) -> bool {
    if (s.pending) {
      c = std::move(*s.pending);
      s.pending.reset();
      return true;
    }
    return s.reader->next(c, size_t(L));
  };

  // Starts the next unclaimed record on stream s; false when every input is exhausted.
  auto start = [&](Stream& s) -> bool {
    while (claims.input < opt.inputs.size()) {
      const size_t in = claims.input;
      const int64_t want = claims.record++;
      if (s.reader_input != in) {
        s.reader = std::make_unique<io::SequenceReader>(opt.inputs[in], opt.reader);
        s.reader_input = in;
        s.pending.reset();
      }
      io::Chunk c;
      bool found = false;
      while (read_chunk(s, c)) {
        if (c.record_index > want) {  // cannot happen with increasing claims; keep it safe
          s.pending = std::move(c);
          break;
        }
        if (c.record_index == want && c.begin_of_record) {
          found = true;
          break;
        }
      }
      if (!found) {  // this input has no record `want`: move every stream on to the next input
        if (claims.input == in) {
          ++claims.input;
          claims.record = 0;
        }
        continue;
      }
      s.active = true;
      s.cur = std::move(c);
      s.nxt.reset();
      s.tokens = 0;
      s.row = rows_started++;
      s.rec = RecordScore{};
      s.rec.input = opt.inputs[in];
      s.rec.name = s.cur.record;
      s.rec.index = want;
      s.rec.region_begin = s.cur.offset;
      if (h5 && opt.per_position) {
        std::string g = "per_position/" + std::to_string(s.row);
        s.lp_out.emplace(*h5, g + "/logprob", io::H5Type::f32, io::Shape{}, 65536);
        if (opt.entropy) s.ent_out.emplace(*h5, g + "/entropy", io::H5Type::f32, io::Shape{}, 65536);
      }
      return true;
    }
    return false;
  };

  auto finish = [&](Stream& s) {
    s.active = false;
    if (h5 && opt.per_position) {
      std::string g = "/per_position/" + std::to_string(s.row);
      h5->set_attr(g, "name", s.rec.name);
      h5->set_attr(g, "input", s.rec.input);
      h5->set_attr(g, "start", std::max<int64_t>(s.rec.region_begin, 0));
      s.lp_out.reset();
      s.ent_out.reset();
    }
    finished.emplace(s.row, s.rec);
  };

  const float nan = NAN;
  int64_t active = 0;  // streams [0, active) hold a record; the batch runs only over them
  for (;;) {
    for (int64_t b = 0; b < B; ++b) {
      Stream& s = streams[size_t(b)];
      while (!s.active && start(s)) {
        state.reset_stream(b);
        if (s.cur.tokens.empty()) finish(s);  // an empty record: nothing to score
      }
    }
    // Keep the active streams first (moving their state along) so that no row is wasted.
    active = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (!streams[size_t(b)].active) continue;
      if (b != active) {
        std::swap(streams[size_t(b)], streams[size_t(active)]);
        state.copy_stream(active, state, b);
      }
      ++active;
    }
    if (active == 0) break;

    // Assemble the batch: (active, L) tokens, targets = the next token of the same record.
    for (int64_t b = 0; b < active; ++b) {
      Stream& s = streams[size_t(b)];
      int32_t* tok = tokens.data() + b * L;
      int32_t* tgt = targets.data() + b * L;
      std::fill(tok, tok + L, int32_t('N'));
      std::fill(tgt, tgt + L, -1);
      if (!s.active) continue;
      const int64_t n = int64_t(s.cur.tokens.size());
      if (!s.cur.end_of_record && !s.nxt) {
        io::Chunk c;
        if (!read_chunk(s, c) || c.record_index != s.cur.record_index)
          throw InputError(s.rec.input + ": record '" + s.rec.name + "' ended without its last chunk");
        s.nxt = std::move(c);
      }
      for (int64_t t = 0; t < n; ++t) tok[t] = s.cur.tokens[size_t(t)];
      for (int64_t t = 0; t + 1 < n; ++t) tgt[t] = tok[t + 1];
      if (s.nxt && !s.nxt->tokens.empty()) tgt[n - 1] = s.nxt->tokens[0];
    }

    m.score(tokens.data(), targets.data(), active, L, state, acts, lp.data(),
            opt.entropy ? ent.data() : nullptr);

    for (int64_t b = 0; b < active; ++b) {
      Stream& s = streams[size_t(b)];
      const int64_t n = int64_t(s.cur.tokens.size());
      const float* l = lp.data() + b * L;
      const int32_t* tgt = targets.data() + b * L;
      // Output at token t scores token t+1; token 0 of the record has no score.
      if (s.tokens == 0) {
        if (s.lp_out) s.lp_out->append(&nan, 1);
        if (s.ent_out) s.ent_out->append(&nan, 1);
      }
      const int64_t m_out = s.nxt ? n : n - 1;  // predictions that land inside the record
      for (int64_t t = 0; t < m_out; ++t)
        if (io::is_acgt(tgt[t])) {
          s.rec.loglik += double(l[t]);
          ++s.rec.scored;
        }
      if (s.lp_out && m_out > 0) s.lp_out->append(l, m_out);
      if (s.ent_out && m_out > 0) s.ent_out->append(ent.data() + b * L, m_out);
      if (bg) {
        const int64_t base = std::max<int64_t>(s.rec.region_begin, 0) + s.tokens + 1;
        char buf[64];
        for (int64_t t = 0; t < m_out; ++t) {
          std::snprintf(buf, sizeof buf, "\t%lld\t%lld\t%.4f\n", (long long)(base + t),
                        (long long)(base + t + 1), double(l[t]));
          *bg << s.rec.name << buf;
        }
      }
      s.tokens += n;
      bases_done += n;
      if (s.cur.end_of_record) {
        s.rec.length = s.tokens;
        finish(s);
      } else {
        s.cur = std::move(*s.nxt);
        s.nxt.reset();
      }
    }
    flush();
    if (progress) progress(bases_done);
  }
  flush();

  if (h5) {
    std::vector<std::string> names, inputs;
    std::vector<int64_t> start, length, scored;
    std::vector<double> loglik, bpb;
    for (auto& r : done) {
      names.push_back(r.name);
      inputs.push_back(r.input);
      start.push_back(std::max<int64_t>(r.region_begin, 0));
      length.push_back(r.length);
      scored.push_back(r.scored);
      loglik.push_back(r.loglik);
      bpb.push_back(r.bits_per_base());
    }
    const io::Shape n{int64_t(done.size())};
    h5->write_strings("records/name", names);
    h5->write_strings("records/input", inputs);
    h5->write("records/start", start.data(), n);
    h5->write("records/length", length.data(), n);
    h5->write("records/scored", scored.data(), n);
    h5->write("records/loglik", loglik.data(), n);
    h5->write("records/bits_per_base", bpb.data(), n);
    h5->commit();
  }
  if (bg) {
    bg->close();
    if (!*bg) throw InputError(opt.bedgraph + ": write failed");
    if (std::rename(bg_tmp.c_str(), opt.bedgraph.c_str()) != 0)
      throw InputError(opt.bedgraph + ": cannot rename the temporary file into place");
    bg_guard.path.clear();
  }
  return done;
}

}  // namespace mambadna::pipelines
