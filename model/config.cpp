#include "model/config.h"

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
  need(norm_epsilon > 0, "norm_epsilon must be positive");
  need(tie_embeddings, "untied LM heads are not supported (tie_embeddings must be 1)");
  need(tokenizer_case == "upper" || tokenizer_case == "keep",
       "tokenizer_case must be upper or keep (got '" + tokenizer_case + "')");
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
