#include "model/checkpoint.h"

#include <cmath>
#include <random>
#include <set>

#include "io/error.h"

namespace mambadna::model {

Config read_config(const io::H5File& f) {
  const std::string& path = f.path();
  if (!f.has_attr("/", "d_model") || !f.has_attr("/", "n_layer"))
    throw InputError(path + ": not a mambadna/mamba_ssm checkpoint (no d_model/n_layer attributes)");
  if (f.has_attr("/", "format")) {
    std::string fmt = f.attr_str("/", "format");
    if (fmt != kCheckpointFormat)
      throw InputError(path + ": checkpoint format '" + fmt + "' is not '" + kCheckpointFormat + "'");
  }
  Config c;
  auto geti = [&](const char* key, int64_t dflt) {
    return f.has_attr("/", key) ? f.attr_i64("/", key) : dflt;
  };
  c.d_model = f.attr_i64("/", "d_model");
  c.n_layer = f.attr_i64("/", "n_layer");
  c.vocab_size = geti("vocab_size", 256);
  c.d_state = geti("d_state", 16);
  c.d_conv = geti("d_conv", 4);
  c.expand = geti("expand", 2);
  c.dt_rank = geti("dt_rank", -1);
  c.pad_vocab_size_multiple = geti("pad_vocab_size_multiple", 8);
  c.norm_epsilon = f.has_attr("/", "norm_epsilon") ? f.attr_f64("/", "norm_epsilon") : 1e-5;
  c.tie_embeddings = geti("tie_embeddings", 1) != 0;
  if (geti("d_intermediate", 0) != 0)
    throw InputError(path + ": d_intermediate != 0 (MLP blocks) is not supported");
  if (geti("rms_norm", 1) != 1) throw InputError(path + ": LayerNorm models (rms_norm 0) are not supported");
  // A state_dict written from PyTorch carries no tokenizer settings: tokens are raw bytes.
  c.tokenizer = f.has_attr("/", "tokenizer") ? f.attr_str("/", "tokenizer") : "byte";
  c.tokenizer_case = f.has_attr("/", "tokenizer_case") ? f.attr_str("/", "tokenizer_case") : "keep";
  if (c.tokenizer != "byte") throw InputError(path + ": unknown tokenizer '" + c.tokenizer + "'");
  try {
    c.validate();
  } catch (const UsageError& e) {
    throw InputError(path + ": " + e.what());
  }
  return c;
}

Checkpoint load_checkpoint(const std::string& path) {
  io::H5File f = io::H5File::open_read(path);
  Checkpoint ck;
  ck.config = read_config(f);
  ck.table = ParamTable::build(ck.config);
  ck.params.assign(size_t(ck.table.total), 0.0f);
  std::set<std::string> expected;
  for (const ParamSpec& s : ck.table.specs) {
    std::string name = s.name;
    if (s.kind == ParamKind::embedding && !f.exists(name) && f.exists("backbone.embeddings.weight"))
      name = "backbone.embeddings.weight";
    expected.insert(name);
    auto v = f.read_f32(name, s.shape);  // names the dataset and both shapes on mismatch
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw InputError(path + ": " + name + " holds a non-finite value (" + std::to_string(v[i]) +
                         ") at element " + std::to_string(i));
    std::copy(v.begin(), v.end(), ck.params.begin() + s.offset);
  }
  // A model's weights that the config does not use (more layers than n_layer, say) mean the
  // config and the weights disagree: refuse rather than score with part of the model.
  for (const std::string& name : f.list("/"))
    if (name.rfind("backbone.", 0) == 0 && !expected.count(name))
      throw InputError(path + ": dataset " + name + " is not a weight of the model its attributes " +
                       "describe (d_model " + std::to_string(ck.config.d_model) + ", n_layer " +
                       std::to_string(ck.config.n_layer) + ")");
  if (f.exists("lm_head.weight")) {
    const ParamSpec& emb = ck.table.specs.front();
    auto head = f.read_f32("lm_head.weight", emb.shape);
    for (int64_t i = 0; i < emb.size; ++i)
      if (head[size_t(i)] != ck.params[size_t(emb.offset + i)])
        throw InputError(path + ": lm_head.weight differs from the embedding; only tied heads are supported");
  }
  return ck;
}

void save_checkpoint(const std::string& path, const Config& c, const ParamTable& table,
                     const float* params, const std::string& command_line,
                     const std::function<void(io::H5File&)>& extra,
                     const std::vector<std::string>& inputs) {
  io::H5File f = io::H5File::create(path);
  for (const ParamSpec& s : table.specs) f.write(s.name, params + s.offset, s.shape);
  f.set_provenance(kCheckpointFormat, command_line, inputs);
  f.set_attr("/", "d_model", c.d_model);
  f.set_attr("/", "n_layer", c.n_layer);
  f.set_attr("/", "vocab_size", c.vocab_size);
  f.set_attr("/", "d_state", c.d_state);
  f.set_attr("/", "d_conv", c.d_conv);
  f.set_attr("/", "expand", c.expand);
  f.set_attr("/", "dt_rank", c.rank());
  f.set_attr("/", "pad_vocab_size_multiple", c.pad_vocab_size_multiple);
  f.set_attr("/", "norm_epsilon", c.norm_epsilon);
  f.set_attr("/", "tie_embeddings", int64_t(c.tie_embeddings ? 1 : 0));
  f.set_attr("/", "d_intermediate", int64_t(0));
  f.set_attr("/", "rms_norm", int64_t(1));
  f.set_attr("/", "tokenizer", c.tokenizer);
  f.set_attr("/", "tokenizer_case", c.tokenizer_case);
  f.set_attr("/", "mamba_ssm_config", mamba_ssm_config_json(c));
  if (extra) extra(f);
  f.commit();
}

std::string mamba_ssm_config_json(const Config& c) {
  auto n = [](int64_t v) { return std::to_string(v); };
  return "{\"d_model\": " + n(c.d_model) + ", \"d_intermediate\": 0, \"n_layer\": " + n(c.n_layer) +
         ", \"vocab_size\": " + n(c.vocab_size) + ", \"ssm_cfg\": {\"layer\": \"Mamba1\", \"d_state\": " +
         n(c.d_state) + ", \"d_conv\": " + n(c.d_conv) + ", \"expand\": " + n(c.expand) +
         ", \"dt_rank\": " + n(c.rank()) +
         "}, \"attn_layer_idx\": [], \"attn_cfg\": {}, \"rms_norm\": true, \"residual_in_fp32\": true, "
         "\"fused_add_norm\": true, \"pad_vocab_size_multiple\": " + n(c.pad_vocab_size_multiple) +
         ", \"tie_embeddings\": " + (c.tie_embeddings ? "true" : "false") + "}";
}

std::vector<float> init_params(const Config& c, const ParamTable& table, uint64_t seed) {
  // mamba_ssm: MambaLMHeadModel._init_weights + Mamba.__init__ (nn.Linear / nn.Conv1d defaults).
  std::mt19937_64 rng(seed);
  std::vector<float> p(size_t(table.total), 0.0f);
  const int64_t N = c.d_state, R = c.rank();
  auto uniform = [&](const ParamSpec& s, double bound) {
    std::uniform_real_distribution<double> u(-bound, bound);
    for (int64_t i = 0; i < s.size; ++i) p[size_t(s.offset + i)] = float(u(rng));
  };
  for (const ParamSpec& s : table.specs) {
    float* w = p.data() + s.offset;
    const int64_t fan_in = s.shape.size() >= 2 ? s.shape.back() * (s.shape.size() == 3 ? s.shape[1] : 1) : 1;
    switch (s.kind) {
      case ParamKind::embedding: {
        std::normal_distribution<double> nd(0.0, 0.02);
        for (int64_t i = 0; i < s.size; ++i) w[i] = float(nd(rng));
        break;
      }
      case ParamKind::norm:
      case ParamKind::norm_f:
      case ParamKind::D:
        std::fill(w, w + s.size, 1.0f);
        break;
      case ParamKind::in_proj:
      case ParamKind::x_proj:
      case ParamKind::conv_w:
        // kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        uniform(s, 1.0 / std::sqrt(double(fan_in)));
        break;
      case ParamKind::conv_b:
        uniform(s, 1.0 / std::sqrt(double(c.d_conv)));  // Conv1d bias: fan_in = 1 * d_conv
        break;
      case ParamKind::out_proj:
        // kaiming_uniform, then rescaled by 1/sqrt(n_residuals_per_layer * n_layer) (GPT-2 style)
        uniform(s, 1.0 / std::sqrt(double(fan_in)) / std::sqrt(double(c.n_layer)));
        break;
      case ParamKind::dt_w:
        uniform(s, std::pow(double(R), -0.5));  // dt_init "random", dt_scale 1
        break;
      case ParamKind::dt_b: {
        // dt log-uniform in [1e-3, 1e-1], floored at 1e-4; bias = softplus^{-1}(dt)
        std::uniform_real_distribution<double> u(0.0, 1.0);
        const double lo = std::log(1e-3), hi = std::log(1e-1);
        for (int64_t i = 0; i < s.size; ++i) {
          double dt = std::max(std::exp(u(rng) * (hi - lo) + lo), 1e-4);
          w[i] = float(dt + std::log(-std::expm1(-dt)));
        }
        break;
      }
      case ParamKind::A_log:
        for (int64_t e = 0; e < s.shape[0]; ++e)
          for (int64_t n = 0; n < N; ++n) w[e * N + n] = float(std::log(double(n + 1)));
        break;
    }
  }
  return p;
}

}  // namespace mambadna::model
