#include "model/checkpoint.h"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "io/error.h"

namespace mambadna::model {

namespace {

// The root attribute mamba_ssm_config, mamba_ssm's MambaConfig as JSON, parsed; none if absent.
std::optional<boost::property_tree::ptree> read_mamba_ssm_config(const io::H5File& f) {
  if (!f.has_attr("/", "mamba_ssm_config")) return std::nullopt;
  std::istringstream text(f.attr_str("/", "mamba_ssm_config"));
  boost::property_tree::ptree json;
  try {
    boost::property_tree::read_json(text, json);
  } catch (const boost::property_tree::json_parser_error& e) {
    throw InputError(f.path() + ": attribute mamba_ssm_config is not JSON (line " + std::to_string(e.line()) +
                     ": " + e.message() + ")");
  }
  // (PropertyTree reads an array's members with empty keys, a lone value as the root's data)
  if (!json.data().empty() ||
      std::any_of(json.begin(), json.end(), [](const auto& member) { return member.first.empty(); }))
    throw InputError(f.path() + ": attribute mamba_ssm_config is JSON but not an object of MambaConfig's fields "
                                "({\"d_model\": ..., \"n_layer\": ...})");
  return json;
}

// A config value and where it came from, for messages: "attribute d_model" or
// "mamba_ssm_config ssm_cfg.d_state" (or "default"), and its text there ("16", "auto", "false").
struct ConfigValue {
  int64_t v = 0;
  std::string from, text;
};

// A JSON number that is an integer in 64 bits: 16, or 16.0 / 1e1 as Python's json may write a
// whole float; not 1e30 (past int64), 2.5 or text.
bool json_integer(const std::string& s, int64_t& v) {
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (!s.empty() && ptr == end && ec == std::errc()) return true;
  double d = 0;
  const auto [dptr, dec] = std::from_chars(s.data(), end, d);
  if (s.empty() || dptr != end || dec != std::errc() || !(d == std::trunc(d)) || !(std::fabs(d) < 9.2e18)) return false;
  v = int64_t(d);
  return true;
}

}  // namespace

Config read_config(const io::H5File& f) {
  const std::string& path = f.path();
  const auto json = read_mamba_ssm_config(f);
  if (!json && (!f.has_attr("/", "d_model") || !f.has_attr("/", "n_layer")))
    throw InputError(path + ": not a mambadna/mamba_ssm checkpoint (no d_model/n_layer attributes, no "
                            "mamba_ssm_config)");
  if (f.has_attr("/", "format")) {
    std::string fmt = f.attr_str("/", "format");
    if (fmt != kCheckpointFormat)
      throw InputError(path + ": checkpoint format '" + fmt + "' is not '" + kCheckpointFormat + "'");
  }
  Config c;
  // A value from its root attribute `attr`, from mamba_ssm_config at `key`, or from both (they
  // must agree), else `dflt` (none: required). A flag is 0 or 1 (a bool, true or false in the
  // JSON); dt_rank may be "auto" (-1: ceil(D / 16), so -1 and 1 agree for D 16).
  enum class Kind { integer, flag, rank };
  auto value = [&](const char* attr, const char* key, std::optional<int64_t> dflt,
                   Kind kind = Kind::integer) -> ConfigValue {
    std::optional<ConfigValue> flat, js;
    if (f.has_attr("/", attr)) {
      flat = ConfigValue{0, std::string("attribute ") + attr, "auto"};
      if (kind == Kind::rank && f.attr_is_string("/", attr)) {
        const std::string s = f.attr_str("/", attr);
        if (s != "auto") throw InputError(path + ": " + flat->from + " is '" + s + "', not a number or auto");
        flat->v = -1;
      } else {
        flat->v = f.attr_i64("/", attr);
        flat->text = std::to_string(flat->v);
      }
    }
    boost::optional<const boost::property_tree::ptree&> node;
    if (json) node = json->get_child_optional(key);
    if (node) {
      js = ConfigValue{0, std::string("mamba_ssm_config ") + key, node->data()};
      const std::string& s = js->text;
      if (kind == Kind::flag && (s == "true" || s == "false"))
        js->v = s == "true";
      else if (kind == Kind::rank && s == "auto")
        js->v = -1;
      else if (!json_integer(s, js->v))
        throw InputError(path + ": " + js->from + " is '" + s + "', not " +
                         (kind == Kind::flag   ? "true or false"
                          : kind == Kind::rank ? "an integer or auto"
                                               : "an integer"));
    }
    for (const auto& got : {flat, js})
      if (got && kind == Kind::flag && got->v != 0 && got->v != 1)
        throw InputError(path + ": " + got->from + " is " + got->text + ": give 0 or 1 (or a bool)");
    if (flat && js) {
      auto resolved = [&](int64_t v) { return kind == Kind::rank && v == -1 ? (c.d_model + 15) / 16 : v; };
      if (resolved(flat->v) != resolved(js->v))
        throw InputError(path + ": " + flat->from + " (" + flat->text + ") contradicts " + js->from + " (" +
                         js->text + ")");
    }
    // With the JSON, a key it leaves out is MambaConfig's default: the model the JSON builds.
    if (flat && !js && json && dflt) {
      auto resolved = [&](int64_t v) { return kind == Kind::rank && v == -1 ? (c.d_model + 15) / 16 : v; };
      if (resolved(flat->v) != resolved(*dflt))
        throw InputError(path + ": " + flat->from + " (" + flat->text + ") contradicts mamba_ssm_config, which leaves " +
                         key + " out (mamba_ssm's default: " +
                         (kind == Kind::rank && *dflt == -1 ? std::string("auto") : std::to_string(*dflt)) + ")");
    }
    if (flat) return *flat;
    if (js) return *js;
    if (!dflt) throw InputError(path + ": no " + attr + ": neither a root attribute nor in mamba_ssm_config");
    return ConfigValue{*dflt, "default", std::to_string(*dflt)};
  };
  c.d_model = value("d_model", "d_model", {}).v;
  c.n_layer = value("n_layer", "n_layer", {}).v;
  // With the JSON, a value in neither place is MambaConfig's default, what MambaLMHeadModel
  // builds from it; a state_dict alone is byte-level.
  c.vocab_size = value("vocab_size", "vocab_size", json ? 50277 : 256).v;
  c.d_state = value("d_state", "ssm_cfg.d_state", 16).v;
  c.d_conv = value("d_conv", "ssm_cfg.d_conv", 4).v;
  c.expand = value("expand", "ssm_cfg.expand", 2).v;
  c.dt_rank = value("dt_rank", "ssm_cfg.dt_rank", -1, Kind::rank).v;
  c.pad_vocab_size_multiple = value("pad_vocab_size_multiple", "pad_vocab_size_multiple", 8).v;
  c.norm_epsilon = f.has_attr("/", "norm_epsilon") ? f.attr_f64("/", "norm_epsilon") : 1e-5;
  const ConfigValue tie = value("tie_embeddings", "tie_embeddings", 1, Kind::flag);
  if (tie.v != 1) throw InputError(path + ": " + tie.from + " " + tie.text + ": untied LM heads are not supported");
  c.tie_embeddings = true;
  const ConfigValue rms = value("rms_norm", "rms_norm", 1, Kind::flag);
  if (rms.v != 1) throw InputError(path + ": " + rms.from + " " + rms.text + ": LayerNorm models are not supported");
  const ConfigValue mlp = value("d_intermediate", "d_intermediate", 0);
  if (mlp.v != 0)
    throw InputError(path + ": " + mlp.from + " " + mlp.text + ": MLP blocks (d_intermediate != 0) are not supported");
  // What the JSON alone can say: the mixer, and attention layers.
  if (json) {
    const std::string layer = json->get("ssm_cfg.layer", std::string("Mamba1"));
    if (layer != "Mamba1")
      throw InputError(path + ": mamba_ssm_config ssm_cfg.layer '" + layer + "': only Mamba1 models are supported");
    // The biases a Mamba1 mixer may be built with or without: mambadna's has the conv's only.
    const auto truthy = [](const std::string& v) {
      int64_t n = 0;
      return v == "true" || (json_integer(v, n) && n != 0);
    };
    if (const std::string v = json->get("ssm_cfg.conv_bias", std::string("true")); !truthy(v))
      throw InputError(path + ": mamba_ssm_config ssm_cfg.conv_bias " + v +
                       ": a conv1d without a bias is not supported");
    if (const std::string v = json->get("ssm_cfg.bias", std::string("false")); truthy(v))
      throw InputError(path + ": mamba_ssm_config ssm_cfg.bias " + v +
                       ": in_proj and out_proj biases are not supported");
    // [] or null (PropertyTree keeps null as the text "null")
    if (const auto attn = json->get_child_optional("attn_layer_idx");
        attn && (!attn->empty() || (!attn->data().empty() && attn->data() != "null")))
      throw InputError(path + ": mamba_ssm_config attn_layer_idx is not empty: attention layers are not supported");
  }
  // A state_dict written from PyTorch carries no tokenizer settings: tokens are raw bytes.
  if (json) c.mamba_ssm_config = f.attr_str("/", "mamba_ssm_config");
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
  // Each weight's dataset: its state_dict key, or Hugging Face's for the embedding.
  std::vector<std::string> names;
  for (const ParamSpec& s : ck.table.specs)
    names.push_back(s.kind == ParamKind::embedding && !f.exists(s.name) && f.exists("backbone.embeddings.weight")
                        ? "backbone.embeddings.weight"
                        : s.name);
  // Every object at the root is one mambadna reads: a weight, lm_head.weight (checked tied below)
  // or a training checkpoint's train/ group. Another (lm_head.bias, more layers than n_layer, a
  // key with a prefix) would be left out of the model and the scores silently wrong: refused.
  const std::set<std::string> known(names.begin(), names.end());
  std::string unknown;
  int64_t n_unknown = 0;
  for (const std::string& name : f.list("/")) {
    const bool group = f.is_group(name);
    if (group ? name == "train" : known.count(name) || name == "lm_head.weight") continue;
    if (++n_unknown <= 5) unknown += (unknown.empty() ? "" : ", ") + name + (group ? "/" : "");
  }
  if (n_unknown > 0)
    throw InputError(path + ": " + (n_unknown == 1 ? "dataset " : "datasets ") + unknown +
                     (n_unknown > 5 ? " and " + std::to_string(n_unknown - 5) + " more" : "") +
                     " at the root: not a weight of the model its config describes (d_model " +
                     std::to_string(ck.config.d_model) + ", n_layer " + std::to_string(ck.config.n_layer) +
                     "), a tied lm_head.weight or train/: refused rather than left out");
  // Every weight's shape before any is read: a config that overstates the model (a corrupt
  // d_model) is refused before memory for the model it describes is taken.
  for (size_t k = 0; k < names.size(); ++k) f.check_shape(names[k], ck.table.specs[k].shape);
  ck.params.assign(size_t(ck.table.total), 0.0f);
  for (size_t k = 0; k < names.size(); ++k) {
    const ParamSpec& s = ck.table.specs[k];
    const std::string& name = names[k];
    auto v = f.read_f32(name, s.shape);  // names the dataset and both shapes on mismatch
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) {
        const double d = f.read_f64(name)[i];  // float64 past float32's range reads as inf
        throw InputError(path + ": " + name +
                         (std::isfinite(d) ? " holds " + number_text(d) + ", out of float32 range,"
                                           : " holds a non-finite value (" + number_text(d) + ")") +
                         " at element " + std::to_string(i));
      }
    std::copy(v.begin(), v.end(), ck.params.begin() + s.offset);
  }
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
  f.set_attr("/", "mamba_ssm_config", c.mamba_ssm_config.empty() ? mamba_ssm_config_json(c) : c.mamba_ssm_config);
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
