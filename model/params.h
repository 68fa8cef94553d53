// The parameter table: one list of {name, shape} from which the flat parameter buffer, the
// gradient buffer, optimiser moments and checkpoint I/O all derive. Names are exactly
// mamba_ssm's state_dict keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace mambadna::model {

enum class ParamKind { embedding, norm, in_proj, conv_w, conv_b, x_proj, dt_w, dt_b, A_log, D, out_proj, norm_f };

struct ParamSpec {
  std::string name;    // mamba_ssm state_dict key
  std::vector<int64_t> shape;  // PyTorch shape (an io::Shape for the checkpoint's datasets)
  int64_t offset = 0;  // into the flat buffer, in elements
  int64_t size = 0;    // number of elements
  int layer = -1;      // -1 for embedding and norm_f
  ParamKind kind;
  bool weight_decay = false;  // AdamW decays matrices only (not A_log, D, norms, biases)
};

struct ParamTable {
  std::vector<ParamSpec> specs;
  int64_t total = 0;  // elements in the flat buffer
  static ParamTable build(const Config& c);
  const ParamSpec& find(const std::string& name) const;  // throws UsageError
  const ParamSpec& of(int layer, ParamKind kind) const;
  int per_layer = 0;  // specs per layer
};

// Pointers of one layer's tensors into a flat buffer (T = float or double).
template <typename T>
struct LayerWeights {
  T* norm;      // (D)
  T* in_proj;   // (2E, D)
  T* conv_w;    // (E, 1, K) = (E, K)
  T* conv_b;    // (E)
  T* x_proj;    // (R + 2N, E)
  T* dt_w;      // (E, R)
  T* dt_b;      // (E)
  T* A_log;     // (E, N)
  T* D;         // (E)
  T* out_proj;  // (D, E)
};

template <typename T>
LayerWeights<T> layer_weights(const ParamTable& t, T* flat, int layer) {
  auto p = [&](ParamKind k) { return flat + t.of(layer, k).offset; };
  return {p(ParamKind::norm),  p(ParamKind::in_proj), p(ParamKind::conv_w), p(ParamKind::conv_b),
          p(ParamKind::x_proj), p(ParamKind::dt_w),   p(ParamKind::dt_b),   p(ParamKind::A_log),
          p(ParamKind::D),     p(ParamKind::out_proj)};
}

}  // namespace mambadna::model
