#include "model/params.h"

#include "io/error.h"

namespace mambadna::model {

ParamTable ParamTable::build(const Config& c) {
  c.validate();
  const int64_t D = c.d_model, E = c.d_inner(), N = c.d_state, K = c.d_conv, R = c.rank(),
                V = c.vocab_padded();
  ParamTable t;
  auto add = [&](std::string name, std::vector<int64_t> shape, int layer, ParamKind kind, bool decay) {
    ParamSpec s{std::move(name), std::move(shape), t.total, 1, layer, kind, decay};
    for (auto d : s.shape) s.size *= d;
    t.total += s.size;
    t.specs.push_back(std::move(s));
  };
  add("backbone.embedding.weight", {V, D}, -1, ParamKind::embedding, true);
  for (int i = 0; i < int(c.n_layer); ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    add(p + "norm.weight", {D}, i, ParamKind::norm, false);
    add(p + "mixer.in_proj.weight", {2 * E, D}, i, ParamKind::in_proj, true);
    add(p + "mixer.conv1d.weight", {E, 1, K}, i, ParamKind::conv_w, true);
    add(p + "mixer.conv1d.bias", {E}, i, ParamKind::conv_b, false);
    add(p + "mixer.x_proj.weight", {R + 2 * N, E}, i, ParamKind::x_proj, true);
    add(p + "mixer.dt_proj.weight", {E, R}, i, ParamKind::dt_w, true);
    add(p + "mixer.dt_proj.bias", {E}, i, ParamKind::dt_b, false);
    add(p + "mixer.A_log", {E, N}, i, ParamKind::A_log, false);
    add(p + "mixer.D", {E}, i, ParamKind::D, false);
    add(p + "mixer.out_proj.weight", {D, E}, i, ParamKind::out_proj, true);
  }
  t.per_layer = 10;
  add("backbone.norm_f.weight", {D}, -1, ParamKind::norm_f, false);
  return t;
}

const ParamSpec& ParamTable::find(const std::string& name) const {
  for (auto& s : specs)
    if (s.name == name) return s;
  throw UsageError("no parameter named '" + name + "'");
}

const ParamSpec& ParamTable::of(int layer, ParamKind kind) const {
  const ParamSpec& s = specs[size_t(1 + layer * per_layer + int(kind) - int(ParamKind::norm))];
  if (s.layer != layer || s.kind != kind) throw UsageError("parameter table out of order");
  return s;
}

}  // namespace mambadna::model
