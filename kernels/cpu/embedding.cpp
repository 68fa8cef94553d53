// CPU token embedding: rows copied in parallel; the backward splits the vocabulary among tasks
// so that no two tasks add into the same row of dW.
#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

namespace mambadna::kernels::cpu {

void embedding_forward(float* out, const int32_t* tokens, const float* W,
                       const EmbeddingParams& p) {
  embedding_sizes_check("embedding_forward", "out", out, tokens, "W", W, p);
  embedding_tokens_check("embedding_forward", tokens, p);
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, p.M, 64), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t m = r.begin(); m < r.end(); ++m)
          std::memcpy(out + m * p.D, W + int64_t(tokens[m]) * p.D, sizeof(float) * p.D);
      });
}

void embedding_backward(float* dW, const float* dout, const int32_t* tokens,
                        const EmbeddingParams& p) {
  embedding_sizes_check("embedding_backward", "dW", dW, tokens, "dout", dout, p);
  embedding_tokens_check("embedding_backward", tokens, p);
  const int64_t blocks = std::min<int64_t>(p.V, 4 * tbb::this_task_arena::max_concurrency());
  tbb::parallel_for(int64_t(0), blocks, [&](int64_t blk) {
    const int64_t v0 = p.V * blk / blocks, v1 = p.V * (blk + 1) / blocks;
    for (int64_t m = 0; m < p.M; ++m) {
      const int64_t v = tokens[m];
      if (v < v0 || v >= v1) continue;
      float* dst = dW + v * p.D;
      const float* src = dout + m * p.D;
      for (int64_t d = 0; d < p.D; ++d) dst[d] += src[d];
    }
  });
}

}  // namespace mambadna::kernels::cpu
