#include "pipelines/train_data.h"

#include <algorithm>
#include <cmath>

#include "io/error.h"
#include "io/fasta_index.h"
#include "pipelines/stats.h"

namespace mambadna::pipelines {

std::vector<Segment> index_segments(const std::vector<std::string>& inputs,
                                    const io::ReaderOptions& options, int64_t* acgt) {
  std::vector<Segment> segs;
  if (acgt) *acgt = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    StatsOptions so;
    so.reader = options;
    StatsCallbacks cb;
    cb.on_record = [&](const RecordCounts& r) {
      if (r.counts.length > 0)
        segs.push_back(Segment{i, r.record_index, r.record, 0, r.counts.length});
      if (acgt) *acgt += r.counts.a + r.counts.c + r.counts.g + r.counts.t;
    };
    count_bases({inputs[i]}, so, cb);
  }
  return segs;
}

void split_holdout(const std::vector<Segment>& all, double fraction, std::vector<Segment>& train,
                   std::vector<Segment>& valid, bool by_record) {
  if (!(fraction >= 0 && fraction < 1)) throw UsageError("--holdout must be in [0, 1)");
  if (by_record) {
    const size_t k = size_t(std::llround(double(all.size()) * fraction));
    train.assign(all.begin(), all.end() - std::ptrdiff_t(k));
    valid.assign(all.end() - std::ptrdiff_t(k), all.end());
    return;
  }
  for (const Segment& s : all) {
    const int64_t cut = s.end - int64_t(double(s.length()) * fraction);
    if (cut > s.begin) train.push_back(Segment{s.input, s.record_index, s.record, s.begin, cut});
    if (s.end > cut) valid.push_back(Segment{s.input, s.record_index, s.record, cut, s.end});
  }
}

namespace {

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser: a stateless, reproducible coin
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Reads token ranges of records from one input, moving forward through the file (reopening it
// to go back), and serving a range from the chunk in memory when it holds it (a stream that
// wraps around to the start of a short record, or of the last one, finds it there).
class Cursor {
 public:
  void read(const std::string& path, const io::ReaderOptions& opt, size_t input, int64_t record,
            int64_t t0, int64_t n, std::vector<int32_t>& out) {
    const bool behind = has_ && (chunk_.record_index > record ||
                                 (chunk_.record_index == record && base_ > t0));
    if (input_ != input || !has_ || behind) {
      reader_ = std::make_unique<io::SequenceReader>(path, opt);
      input_ = input;
      has_ = false;
    }
    int64_t want = t0;
    const int64_t stop = t0 + n;
    while (want < stop) {
      if (has_ && chunk_.record_index == record) {
        const int64_t end = base_ + int64_t(chunk_.tokens.size());
        if (want < end) {  // base_ <= want: the chunk holds it
          const int64_t to = std::min(stop, end);
          for (int64_t t = want; t < to; ++t)
            out.push_back(int32_t(chunk_.tokens[size_t(t - base_)]));
          want = to;
          continue;
        }
      } else if (has_ && chunk_.record_index > record) {
        throw InputError(path + ": record " + std::to_string(record) + " is shorter than indexed");
      }
      const bool same_record_next = has_ && !chunk_.end_of_record;
      const int64_t next_base = has_ ? base_ + int64_t(chunk_.tokens.size()) : 0;
      if (!reader_->next(chunk_, 1 << 16))
        throw InputError(path + ": ended before record " + std::to_string(record) + " position " +
                         std::to_string(want + 1) + " (did the file change during training?)");
      has_ = true;
      base_ = (chunk_.begin_of_record || !same_record_next) ? 0 : next_base;
    }
  }

 private:
  std::unique_ptr<io::SequenceReader> reader_;
  size_t input_ = SIZE_MAX;
  io::Chunk chunk_;
  bool has_ = false;
  int64_t base_ = 0;  // token index of chunk_.tokens[0] within its record
};

}  // namespace

struct DataStreams::Block {
  Cursor cursor;
  std::vector<int32_t> tokens;  // the block, plus one look-ahead token when it continues
  int64_t start = 0;            // token-space position of the block's first token (whole
                                // records: the take number)
  int64_t len = 0;              // tokens handed out as inputs
  int64_t cur = 0;              // next input within the block
  int64_t number = 0;           // blocks loaded by this stream
  bool rc = false;
  bool fresh_state = true;      // the first chunk of this block must reset the state
  bool loaded = false;
};

// Whole records: a reader of a contiguous range of the segments, a window of them in memory.
struct DataStreams::Reader {
  Cursor cursor;
  std::vector<int64_t> windows;  // first segment of each window, relative to the range; + its end
  int64_t window = -1;           // the window in memory
  std::vector<uint8_t> tokens;   // its segments' tokens, end to end
  std::vector<int64_t> offsets;  // where each begins in tokens (+ the end)
  int64_t window_of(int64_t j) const;  // the window of the range's segment j
};

namespace {
void reverse_complement(std::vector<int32_t>& tokens) {
  std::reverse(tokens.begin(), tokens.end());
  for (auto& t : tokens) t = int32_t(io::complement_base(uint8_t(t)));
}

// A bijection of [0, n) keyed by `key`: a 4-round Feistel network on the smallest even number
// of bits that holds n, walked back into [0, n) (fewer than 4 steps expected).
int64_t permute(int64_t i, int64_t n, uint64_t key) {
  if (n <= 1) return 0;
  int bits = 2;
  while ((int64_t(1) << bits) < n) bits += 2;
  const int half = bits / 2;
  const uint64_t mask = (uint64_t(1) << half) - 1;
  uint64_t x = uint64_t(i);
  do {
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t f = mix64(r ^ mix64(key + round)) & mask;
      const uint64_t nl = r;
      r = l ^ f;
      l = nl;
    }
    x = (l << half) | r;
  } while (x >= uint64_t(n));
  return int64_t(x);
}
}  // namespace

DataStreams::DataStreams(std::vector<std::string> inputs, io::ReaderOptions options,
                         std::vector<Segment> segments, int64_t streams, int64_t block,
                         bool rc_augment, uint64_t seed, bool whole_records, int64_t piece,
                         int64_t window_pieces)
    : inputs_(std::move(inputs)), options_(std::move(options)), segments_(std::move(segments)),
      block_(block), rc_(rc_augment), seed_(seed), whole_(whole_records) {
  if (streams < 1) throw UsageError("training needs at least one stream");
  if (block < 2) throw UsageError("training block must hold at least 2 tokens");
  if (whole_) {  // pieces of at most `piece` tokens; R readers, the first P % R with one more
    if (piece < 1 || window_pieces < 1)
      throw UsageError("whole records need pieces of at least 1 token and windows of at least 1 piece");
    std::vector<Segment> pieces;
    for (const Segment& g : segments_)
      for (int64_t b = g.begin; b < g.end; b += piece)
        pieces.push_back(Segment{g.input, g.record_index, g.record, b, std::min(g.end, b + piece)});
    segments_ = std::move(pieces);
    const int64_t P = int64_t(segments_.size()), R = std::max<int64_t>(1, std::min(kWholeReaders, P));
    reader_begin_.push_back(0);
    for (int64_t r = 0; r < R; ++r) {
      readers_.push_back(std::make_unique<Reader>());
      reader_begin_.push_back(reader_begin_.back() + P / R + (r < P % R ? 1 : 0));
      // Its windows: whole segments, up to kWindowPieces and kWindowTokens (at least one).
      Reader& rd = *readers_.back();
      const int64_t b0 = reader_begin_[size_t(r)], len = reader_begin_[size_t(r + 1)] - b0;
      int64_t count = 0, toks = 0;
      for (int64_t q = 0; q < len; ++q) {
        const int64_t n = segments_[size_t(b0 + q)].length();
        if (count == 0 || count == window_pieces || toks + n > kWindowTokens) {
          rd.windows.push_back(q);
          count = toks = 0;
        }
        ++count;
        toks += n;
      }
      rd.windows.push_back(len);
    }
  }
  for (const Segment& s : segments_) {
    seg_start_.push_back(total_);
    total_ += s.length();
  }
  if (total_ < 2 * streams)
    throw InputError(join(inputs_, ", ") + ": not enough data: " + std::to_string(total_) +
                     " tokens for " + std::to_string(streams) + " streams (two each at least)");
  options_.threads = 0;
  for (int64_t s = 0; s < streams; ++s) {
    begin_.push_back(total_ * s / streams);
    end_.push_back(total_ * (s + 1) / streams);
    pos_.push_back(begin_.back());
    consumed_.push_back(0);
    blocks_.push_back(std::make_unique<Block>());
  }
}

DataStreams::~DataStreams() = default;

std::vector<int64_t> DataStreams::positions() const {
  if (!whole_) return consumed_;
  std::vector<int64_t> v;
  for (const auto& b : blocks_) {
    v.push_back(b->loaded ? b->start : -1);
    v.push_back(b->loaded ? b->cur : 0);
  }
  v.push_back(taken_);
  return v;
}

bool DataStreams::in_record(int64_t s) const {
  const Block& b = *blocks_[size_t(s)];
  return b.loaded && b.cur < b.len;
}

bool DataStreams::take_coin(int64_t take) const {
  return rc_ && (mix64(seed_ ^ mix64(uint64_t(take) + 0x632be59bd9b4e019ull)) & 1);
}

int64_t DataStreams::Reader::window_of(int64_t j) const {
  return int64_t(std::upper_bound(windows.begin(), windows.end(), j) - windows.begin()) - 1;
}

int64_t DataStreams::reader_of_take(int64_t take) const {
  return take % pieces() % int64_t(readers_.size());
}

int64_t DataStreams::piece_of_take(int64_t take) const {
  // Epoch e = take / P takes each of the P segments once: its take j goes to reader j % R, as
  // its (j / R)-th; reader r's range holds as many segments as there are such j (P / R, one
  // more for the first P % R readers). (Counting takes per reader across epochs instead gave
  // each reader 1/R of the takes however many segments it holds: a reader of P/R segments
  // drew each 1 + R/P times as often as one of P/R + 1.)
  const int64_t P = pieces(), R = int64_t(readers_.size()), epoch = take / P, r = reader_of_take(take);
  const int64_t j = take % P / R;
  const int64_t begin = reader_begin_[size_t(r)];
  const std::vector<int64_t>& ws = readers_[size_t(r)]->windows;
  const int64_t w = readers_[size_t(r)]->window_of(j);
  const uint64_t key = mix64(seed_ ^ mix64(uint64_t(r) * 0x100000001b3ull ^ mix64(uint64_t(w) * 0x9e3779b97f4a7c15ull + uint64_t(epoch))));
  return begin + ws[size_t(w)] + permute(j - ws[size_t(w)], ws[size_t(w + 1)] - ws[size_t(w)], key);
}

void DataStreams::read_take(Block& b, int64_t take) {
  const int64_t r = reader_of_take(take), p = piece_of_take(take);
  Reader& rd = *readers_[size_t(r)];
  const int64_t begin = reader_begin_[size_t(r)];
  const int64_t w = rd.window_of(p - begin);
  if (rd.window != w) {  // the window's segments in file order, one pass of the cursor
    rd.window = -1;
    rd.tokens.clear();
    rd.offsets.assign(1, 0);
    std::vector<int32_t> one;
    for (int64_t q = rd.windows[size_t(w)]; q < rd.windows[size_t(w + 1)]; ++q) {
      const Segment& seg = segments_[size_t(begin + q)];
      one.clear();
      rd.cursor.read(inputs_[seg.input], options_, seg.input, seg.record_index, seg.begin, seg.length(), one);
      for (int32_t t : one) rd.tokens.push_back(uint8_t(t));
      rd.offsets.push_back(int64_t(rd.tokens.size()));
    }
    rd.window = w;
  }
  const int64_t i = p - begin - rd.windows[size_t(w)];
  b.tokens.assign(rd.tokens.begin() + rd.offsets[size_t(i)], rd.tokens.begin() + rd.offsets[size_t(i + 1)]);
  const Segment& seg = segments_[size_t(p)];
  b.rc = take_coin(take);
  if (b.rc) reverse_complement(b.tokens);
  b.start = take;
  b.len = seg.length();
  b.cur = 0;
  b.loaded = true;
}

void DataStreams::take_record(int64_t s) { read_take(*blocks_[size_t(s)], taken_++); }

void DataStreams::set_positions(const std::vector<int64_t>& consumed) {
  if (whole_) {
    const size_t B = blocks_.size();
    if (consumed.size() != 2 * B + 1)
      throw InputError("checkpoint has whole-record data positions for " + std::to_string(consumed.size() / 2) +
                       " streams, the run has " + std::to_string(B));
    taken_ = consumed[2 * B];
    // Each stream's segment again, read in file order (each reader moves forward).
    std::vector<size_t> order;
    for (size_t s = 0; s < B; ++s) {
      *blocks_[s] = Block{};
      const int64_t take = consumed[2 * s], cur = consumed[2 * s + 1];
      if (take < 0) continue;
      if (take >= taken_ || cur < 0)
        throw InputError("checkpoint's whole-record data positions are inconsistent (stream " +
                         std::to_string(s) + ")");
      order.push_back(s);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return piece_of_take(consumed[2 * a]) < piece_of_take(consumed[2 * b]);
    });
    for (size_t s : order) {
      Block& b = *blocks_[s];
      read_take(b, consumed[2 * s]);
      b.cur = std::min(b.len, consumed[2 * s + 1]);
    }
    return;
  }
  if (consumed.size() != pos_.size())
    throw InputError("checkpoint has data positions for " + std::to_string(consumed.size()) +
                     " streams, the run has " + std::to_string(pos_.size()));
  // Replay each stream's walk block by block (no file reading): same blocks, same coins.
  for (size_t s = 0; s < pos_.size(); ++s) {
    Block& b = *blocks_[s];
    pos_[s] = begin_[s];
    consumed_[s] = 0;
    b = Block{};
    int64_t left = consumed[s];
    while (left > 0) {
      // The block load_block would make at pos_[s]:
      size_t k = size_t(std::upper_bound(seg_start_.begin(), seg_start_.end(), pos_[s]) - seg_start_.begin() - 1);
      const int64_t len = block_length(int64_t(s), pos_[s], k);
      if (left >= len) {  // a block consumed whole: remember it as load_block would
        b.rc = coin(int64_t(s), b.number);
        b.start = pos_[s], b.len = len, b.cur = len, b.loaded = true;
        left -= len;
        consumed_[s] += len;
        ++b.number;
        pos_[s] += len;
        if (pos_[s] >= end_[s]) pos_[s] = begin_[s];
      } else {
        load_block(int64_t(s));
        b.cur = left;
        b.fresh_state = false;  // the checkpoint carries the state of this walk
        consumed_[s] += left;
        left = 0;
      }
    }
  }
}

bool DataStreams::coin(int64_t s, int64_t block_number) const {
  return rc_ && (mix64(seed_ ^ mix64(uint64_t(s) * 0x100000001b3ull + uint64_t(block_number))) & 1);
}

int64_t DataStreams::block_length(int64_t s, int64_t p, size_t k) const {
  const int64_t seg_end = seg_start_[k] + segments_[k].length();
  int64_t len = std::min({block_, seg_end - p, end_[size_t(s)] - p});
  // A segment's last base left for a block of its own would be a position with nothing to
  // predict (a record of k·block + 1 bases): this block takes it.
  if (seg_end - (p + len) == 1 && seg_end <= end_[size_t(s)]) ++len;
  return len;
}

void DataStreams::load_block(int64_t s) {
  Block& b = *blocks_[size_t(s)];
  const int64_t p = pos_[size_t(s)];
  const size_t k = size_t(std::upper_bound(seg_start_.begin(), seg_start_.end(), p) - seg_start_.begin() - 1);
  const Segment& seg = segments_[k];
  const int64_t seg_end = seg_start_[k] + seg.length();
  const int64_t len = block_length(s, p, k);
  const bool prev_continues = b.loaded && !b.rc && b.start + b.len == p && p > seg_start_[k];
  const bool rc = coin(s, b.number);
  // One look-ahead token gives the block's last input a target, when the segment goes on.
  const int64_t extra = (!rc && p + len < seg_end) ? 1 : 0;
  b.tokens.clear();
  b.cursor.read(inputs_[seg.input], options_, seg.input, seg.record_index, seg.begin + (p - seg_start_[k]),
                len + extra, b.tokens);
  if (rc) reverse_complement(b.tokens);
  b.fresh_state = rc || !prev_continues;
  b.start = p;
  b.len = len;
  b.cur = 0;
  b.rc = rc;
  b.loaded = true;
  ++b.number;
  pos_[size_t(s)] = p + len >= end_[size_t(s)] ? begin_[size_t(s)] : p + len;
}

bool DataStreams::continues(int64_t s) const {
  const Block& b = *blocks_[size_t(s)];
  const int64_t p = pos_[size_t(s)];
  if (!b.loaded || b.cur < b.len || b.rc || b.start + b.len != p) return false;
  const size_t k = size_t(std::upper_bound(seg_start_.begin(), seg_start_.end(), p) - seg_start_.begin() - 1);
  return p > seg_start_[k] && !coin(s, b.number);
}

void DataStreams::next(int64_t s, int64_t L, StreamChunk& out) {
  Block& b = *blocks_[size_t(s)];
  out.tokens.assign(size_t(L), int32_t('N'));
  out.targets.assign(size_t(L), -1);
  if (whole_) {  // the rest of this stream's segment, or the next one
    if (!b.loaded || b.cur >= b.len) take_record(s);
    out.reset = b.cur == 0;
    const int64_t take = std::min(L, b.len - b.cur);
    for (int64_t t = 0; t < take; ++t) {
      const int64_t i = b.cur + t;
      out.tokens[size_t(t)] = b.tokens[size_t(i)];
      if (i + 1 < b.len && io::is_acgt(b.tokens[size_t(i + 1)])) out.targets[size_t(t)] = b.tokens[size_t(i + 1)];
    }
    b.cur += take;
    out.n = take;
    out.consumed = take;
    if (b.len - b.cur == 1) {  // its last base is a target only (as below)
      b.cur = b.len;
      ++out.consumed;
    }
    return;
  }
  if (!b.loaded || b.cur >= b.len) load_block(s);
  out.reset = b.cur == 0 && b.fresh_state;
  const int64_t consumed_before = consumed_[size_t(s)];
  int64_t n = 0;
  for (;;) {
    const int64_t take = std::min(L - n, b.len - b.cur);
    const int64_t avail = int64_t(b.tokens.size());
    for (int64_t t = 0; t < take; ++t) {
      out.tokens[size_t(n + t)] = b.tokens[size_t(b.cur + t)];
      if (b.cur + t + 1 < avail) {  // a base to predict: A/C/G/T (N runs are context alone)
        const int32_t next = b.tokens[size_t(b.cur + t + 1)];
        if (io::is_acgt(next)) out.targets[size_t(n + t)] = next;
      }
    }
    b.cur += take;
    consumed_[size_t(s)] += take;
    n += take;
    // A block's last base with none after it (a record's end, a reverse-strand block's) is a
    // target only: left for the next chunk, it would be a position alone with nothing to
    // predict (a record of k·L + 1 bases gave a chunk of one base).
    if (b.len - b.cur == 1 && int64_t(b.tokens.size()) == b.len) {
      ++b.cur;
      ++consumed_[size_t(s)];
    }
    // A block that the next one continues (same segment, same strand, the state carried on)
    // does not end the chunk: padding run through the model would be carried on in the state.
    if (n == L || !continues(s)) break;
    load_block(s);
  }
  out.n = n;
  out.consumed = consumed_[size_t(s)] - consumed_before;
}

}  // namespace mambadna::pipelines
