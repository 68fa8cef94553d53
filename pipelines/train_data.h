// The training data: B streams walking disjoint shares of the training sequences, each handing
// out chunks of L input tokens with their next-token targets, in memory bounded by a block.
//
// The training sequences are segments [begin, end) of the records of the inputs (whole records,
// or what is left of them after a held-out tail). Their tokens, laid end to end, form one token
// space of T tokens; stream s of B owns [s*T/B, (s+1)*T/B) and walks it again and again. A stream
// reads up to `block` tokens at a time from its own reader (streaming the file from the start
// and skipping, so plain gzip works); with reverse-complement augmentation a block is, by a
// coin flip fixed by (seed, stream, block number), handed out reverse-complemented.
// A stream's recurrent state must be reset when a chunk starts a new segment or a new block that
// does not continue the previous one (Chunk::reset).
//
// With whole records (reads: segments that fit in a chunk), the streams instead take whole
// segments in turn: a stream that has handed out its segment takes the next one. Take t is
// take j = t mod P of epoch t / P, and goes to reader j % R (R = kWholeReaders, fewer for fewer
// segments), each of which walks its own contiguous range of the segments, so that every epoch
// (takes eP .. eP + P − 1) takes each of the P segments once, and a step's B takes come from R places in the file: R/2 passes over the file to reach them
// (where B shares cost B/2, hundreds of passes for the hundreds of streams that short reads
// call for), then one pass per epoch. A reader loads its range a window at a time (up to
// kWindowPieces segments and kWindowTokens tokens, in file order) and hands the window's
// segments out in an order shuffled by (seed, reader, window, epoch), so that the reads of a
// step are not neighbours in a coordinate-sorted BAM but drawn from R windows of it.
// A segment longer than `piece` tokens is taken in pieces, each from a zero state (memory:
// B pieces and R windows); the reverse-complement coin is drawn per take.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/sequence_reader.h"

namespace mambadna::pipelines {

// The items with `sep` between them (file lists in messages, '\n'-joined attributes).
inline std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

struct Segment {
  size_t input = 0;           // index into the inputs
  int64_t record_index = 0;   // record within the input
  std::string record;         // its name
  int64_t begin = 0, end = 0; // 0-based half-open within the record
  int64_t length() const { return end - begin; }
};

// The bases of all the segments.
inline int64_t total_length(const std::vector<Segment>& segments) {
  int64_t n = 0;
  for (const Segment& g : segments) n += g.length();
  return n;
}

// Record lengths of every input (one streaming pass), as whole-record segments; `acgt` (when
// given) gets the number of A/C/G/T bases (either case) of all of them: the targets there are.
// With options.regions_elsewhere, an input without the regions gives no segment (the caller has
// checked that some input has them: io::check_inputs).
std::vector<Segment> index_segments(const std::vector<std::string>& inputs,
                                    const io::ReaderOptions& options, int64_t* acgt = nullptr);

// Splits each segment into its first (1 - fraction) for training and its tail for validation;
// by_record: the last round(fraction · segments) segments, whole, for validation (reads).
void split_holdout(const std::vector<Segment>& all, double fraction, std::vector<Segment>& train,
                   std::vector<Segment>& valid, bool by_record = false);

// One training step's data for one stream.
struct StreamChunk {
  std::vector<int32_t> tokens;   // (L): inputs; padded with 'N' after n
  std::vector<int32_t> targets;  // (L): next tokens; -1 where there is none (padding, segment
                                 // end) or it is not A/C/G/T (an N run is context, not a target)
  int64_t n = 0;                 // real tokens
  int64_t consumed = 0;          // the stream's data moved past: n, and a last base that was a
                                 // target only (never an input of its own)
  bool reset = false;            // reset the stream's state before this chunk
};

class DataStreams {
 public:
  static constexpr int64_t kPieceTokens = 1 << 16;  // whole records: the longest piece taken
  static constexpr int64_t kWholeReaders = 8;        // whole records: readers R
  static constexpr int64_t kWindowPieces = 1 << 16;  // ... segments a window holds at most
  static constexpr int64_t kWindowTokens = 1 << 22;  // ... and tokens (one byte each)
  DataStreams(std::vector<std::string> inputs, io::ReaderOptions options,
              std::vector<Segment> segments, int64_t streams, int64_t block, bool rc_augment,
              uint64_t seed, bool whole_records = false, int64_t piece = kPieceTokens,
              int64_t window_pieces = kWindowPieces);
  ~DataStreams();
  int64_t streams() const { return int64_t(blocks_.size()); }
  int64_t total_tokens() const { return total_; }
  bool whole_records() const { return whole_; }

  // Fills `out` with the next chunk of L tokens of stream s: fewer (padded with N, no targets)
  // only where the walk does not carry the state on (a segment's end, the share's wrap, a
  // reverse-complemented block), never at a block boundary that it crosses. Whole records:
  // the rest of the stream's segment, or the next segment not yet taken.
  void next(int64_t s, int64_t L, StreamChunk& out);

  // Whole records: segments (pieces) taken so far, over all streams and passes; whether
  // stream s holds tokens of its segment not yet handed out.
  int64_t taken() const { return taken_; }
  int64_t pieces() const { return int64_t(segments_.size()); }
  int64_t piece_of_take(int64_t take) const;  // the segment (piece) that take number holds
  int64_t reader_of_take(int64_t take) const; // ... and the reader that reads it
  bool in_record(int64_t s) const;

  // Where the streams are, for checkpoints; set_positions() puts them back there. Shares: the
  // tokens each stream consumed since the start of the run (B values). Whole records: each
  // stream's take (its number, -1 for none) and tokens handed out of it, then the takes so far
  // (2 B + 1 values).
  std::vector<int64_t> positions() const;
  void set_positions(const std::vector<int64_t>& positions);

 private:
  struct Block;
  void take_record(int64_t s);      // whole records: the next segment into stream s
  void read_take(Block& b, int64_t take);  // ... piece_of_take(take), through its reader
  bool take_coin(int64_t take) const;
  void load_block(int64_t s);
  int64_t block_length(int64_t s, int64_t p, size_t k) const;  // of the block at p, in segment k
  bool continues(int64_t s) const;  // stream s's block is done and the next carries its state on
  bool coin(int64_t s, int64_t block_number) const;  // reverse-complement this block?
  std::vector<std::string> inputs_;
  io::ReaderOptions options_;
  std::vector<Segment> segments_;
  std::vector<int64_t> seg_start_;  // token-space offset of each segment
  int64_t total_ = 0, block_ = 0;
  bool rc_ = false;
  uint64_t seed_ = 0;
  std::vector<int64_t> begin_, end_;  // each stream's share of the token space
  std::vector<int64_t> pos_;          // next token-space position each stream hands out
  std::vector<int64_t> consumed_;     // tokens handed out by each stream (shares: for resume)
  std::vector<std::unique_ptr<Block>> blocks_;
  bool whole_ = false;
  int64_t taken_ = 0;                            // whole records: segments taken
  struct Reader;
  std::vector<std::unique_ptr<Reader>> readers_;  // whole records: R readers
  std::vector<int64_t> reader_begin_;             // ... the first segment of each (R + 1)
};

}  // namespace mambadna::pipelines
