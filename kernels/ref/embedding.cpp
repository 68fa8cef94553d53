// Reference token embedding: plain loops, the spec for the other backends.
#include "kernels/embedding.h"

namespace mambadna::kernels::ref {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* W, const EmbeddingParams& p) {
  embedding_sizes_check("embedding_forward", "out", out, tokens, "W", W, p);
  embedding_tokens_check("embedding_forward", tokens, p);
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t d = 0; d < p.D; ++d) out[m * p.D + d] = W[tokens[m] * p.D + d];
}

template <typename T>
void embedding_backward(T* dW, const T* dout, const int32_t* tokens, const EmbeddingParams& p) {
  embedding_sizes_check("embedding_backward", "dW", dW, tokens, "dout", dout, p);
  embedding_tokens_check("embedding_backward", tokens, p);
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t d = 0; d < p.D; ++d) dW[tokens[m] * p.D + d] += dout[m * p.D + d];
}

template void embedding_forward<float>(float*, const int32_t*, const float*,
                                       const EmbeddingParams&);
template void embedding_forward<double>(double*, const int32_t*, const double*,
                                        const EmbeddingParams&);
template void embedding_backward<float>(float*, const float*, const int32_t*,
                                        const EmbeddingParams&);
template void embedding_backward<double>(double*, const double*, const int32_t*,
                                         const EmbeddingParams&);

}  // namespace mambadna::kernels::ref
