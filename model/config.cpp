#include "model/config.h"

#include <cmath>
#include <utility>

#include "io/error.h"

namespace mambadna::model {

void Config::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError("invalid model config: " + what);
  };
  need(d_model > 0, "d_model must be positive (got " + std::to_string(d_model) + ")");
  need(n_layer > 0, "n_layer must be positive (got " + std::to_string(n_layer) + ")");
  need(vocab_size >= 256, "vocab_size must be at least 256 for byte tokens (got " +
                              std::to_string(vocab_size) + ")");
  need(d_state > 0, "d_state must be positive");
  need(d_conv >= 1, "d_conv must be at least 1");
  need(expand > 0, "expand must be positive");
  need(std::isfinite(norm_epsilon) && norm_epsilon > 0,
       "norm_epsilon must be a finite positive number (got " + number_text(norm_epsilon) + ")");
  need(tie_embeddings, "untied LM heads are not supported (tie_embeddings must be 1)");
  need(tokenizer_case == "upper" || tokenizer_case == "keep",
       "tokenizer_case must be upper or keep (got '" + tokenizer_case + "')");
  need(dt_rank == -1 || dt_rank >= 1,
       "dt_rank must be -1 (ceil(d_model / 16)) or positive (got " + std::to_string(dt_rank) + ")");
  need(pad_vocab_size_multiple >= 1,
       "pad_vocab_size_multiple must be at least 1 (got " + std::to_string(pad_vocab_size_multiple) + ")");
  // Sizes past these are a corrupt file or a typo, not a model: refuse them before allocating.
  const std::pair<const char*, std::pair<int64_t, int64_t>> bounds[] = {
      {"d_model", {d_model, 1 << 17}}, {"n_layer", {n_layer, 1 << 12}},
      {"vocab_size", {vocab_size, 1 << 20}}, {"d_state", {d_state, 1 << 12}},
      {"d_conv", {d_conv, 1 << 10}}, {"expand", {expand, 64}}, {"dt_rank", {dt_rank, 1 << 17}},
      {"pad_vocab_size_multiple", {pad_vocab_size_multiple, 1 << 16}}};
  for (const auto& [name, vb] : bounds)
    need(vb.first <= vb.second, std::string(name) + " " + std::to_string(vb.first) + " is past the limit " +
                                    std::to_string(vb.second));
  // The parameters must fit in memory: at most 2^34 floats (64 GiB).
  const double D = double(d_model), E = double(d_inner()), R = double(rank()), N = double(d_state);
  const double params = double(vocab_padded()) * D + D +
                        double(n_layer) * (D + D * 2 * E + E * double(d_conv) + E + E * (R + 2 * N) +
                                           R * E + E + E * N + E + E * D);
  need(params <= double(int64_t(1) << 34),
       "the model would have " + std::to_string(int64_t(params)) + " parameters (limit 2^34)");
}

Config preset(const std::string& name) {
  Config c;
  if (name == "tiny") {
    c.d_model = 64;
    c.n_layer = 2;
  } else if (name == "small") {
    c.d_model = 256;
    c.n_layer = 8;
  } else if (name == "130m") {
    c.d_model = 768;
    c.n_layer = 24;
  } else {
    throw UsageError("unknown preset '" + name + "' (choose from " + preset_names() + ")");
  }
  return c;
}

const char* preset_names() { return "tiny, small, 130m"; }

}  // namespace mambadna::model
