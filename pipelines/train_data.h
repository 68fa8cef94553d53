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
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/sequence_reader.h"

namespace mambadna::pipelines {

struct Segment {
  size_t input = 0;           // index into the inputs
  int64_t record_index = 0;   // record within the input
  std::string record;         // its name
  int64_t begin = 0, end = 0; // 0-based half-open within the record
  int64_t length() const { return end - begin; }
};

// Record lengths of every input (one streaming pass), as whole-record segments.
std::vector<Segment> index_segments(const std::vector<std::string>& inputs,
                                    const io::ReaderOptions& options);

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
  bool reset = false;            // reset the stream's state before this chunk
};

class DataStreams {
 public:
  DataStreams(std::vector<std::string> inputs, io::ReaderOptions options,
              std::vector<Segment> segments, int64_t streams, int64_t block, bool rc_augment,
              uint64_t seed);
  ~DataStreams();
  int64_t streams() const { return int64_t(pos_.size()); }
  int64_t total_tokens() const { return total_; }

  // Fills `out` with the next chunk of L tokens of stream s: fewer (padded with N, no targets)
  // only where the walk does not carry the state on (a segment's end, the share's wrap, a
  // reverse-complemented block), never at a block boundary that it crosses.
  void next(int64_t s, int64_t L, StreamChunk& out);

  // Position of each stream in its share (tokens consumed since the start of the run, per
  // stream), for checkpoints; set_positions() puts the streams back there.
  std::vector<int64_t> positions() const { return consumed_; }
  void set_positions(const std::vector<int64_t>& consumed);

 private:
  struct Block;
  void load_block(int64_t s);
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
  std::vector<int64_t> consumed_;     // tokens handed out by each stream (for resume)
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace mambadna::pipelines
