// The model's configuration: the root attributes of a checkpoint (mamba_ssm's MambaConfig plus
// the tokenizer settings).
#pragma once
#include <cstdint>
#include <string>

namespace mambadna::model {

struct Config {
  int64_t d_model = 256;                 // D
  int64_t n_layer = 8;
  int64_t vocab_size = 256;              // before padding; byte-level tokens
  int64_t d_state = 16;                  // N
  int64_t d_conv = 4;                    // K
  int64_t expand = 2;                    // E = expand * D
  int64_t dt_rank = -1;                  // R; -1 = ceil(D / 16)
  int64_t pad_vocab_size_multiple = 8;
  double norm_epsilon = 1e-5;
  bool tie_embeddings = true;
  // Tokenizer: a token is the byte of the base after case folding.
  std::string tokenizer = "byte";        // byte-level, token = byte value
  std::string tokenizer_case = "upper";  // upper | keep
  // The checkpoint's mamba_ssm_config JSON as it was read (it describes this model: read_config
  // checks that), written back as it is so that the keys mambadna does not read (dt_min,
  // residual_in_fp32, ...) stay as PyTorch wrote them; empty: made from the fields above.
  std::string mamba_ssm_config;

  int64_t d_inner() const { return expand * d_model; }  // E
  int64_t rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }  // R
  int64_t vocab_padded() const {                                                 // V
    int64_t m = pad_vocab_size_multiple > 0 ? pad_vocab_size_multiple : 1;
    return (vocab_size + m - 1) / m * m;
  }
  void validate() const;  // throws UsageError naming the bad field
};

// Named shapes: "tiny" (D 64, 2 layers), "small" (D 256, 8 layers), "130m" (D 768, 24 layers).
Config preset(const std::string& name);
const char* preset_names();

}  // namespace mambadna::model
