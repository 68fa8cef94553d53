// The step shape for short records (reads), shared by train and score: the length 99% of the
// records fit in, and the chunk that holds one of them.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace mambadna::pipelines {

// Streams a shape chosen for short records has at most: their carried states (layers, B, E, N)
// grow with B (~0.45 GB for the small shape in training at B 410).
constexpr int64_t kMaxShortStreams = 512;

// The smallest length that at least 99% of `lengths` do not exceed (0 for none).
inline int64_t percentile99(std::vector<int64_t> lengths) {
  if (lengths.empty()) return 0;
  const size_t k = size_t(std::ceil(0.99 * double(lengths.size()))) - 1;
  std::nth_element(lengths.begin(), lengths.begin() + std::ptrdiff_t(k), lengths.end());
  return lengths[k];
}

// A chunk for records of up to `length` tokens: rounded up to a multiple of 8, at least 16.
inline int64_t chunk_for_records(int64_t length) { return std::max<int64_t>(16, (length + 7) / 8 * 8); }

}  // namespace mambadna::pipelines
