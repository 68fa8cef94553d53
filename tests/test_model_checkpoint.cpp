// Checkpoints: round trip, the mamba_ssm/Hugging Face names, initialisation, and clear errors
// for files that are not checkpoints or whose datasets are missing or misshapen.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <hdf5.h>
#include <sys/resource.h>
#include <unistd.h>

#include "io/error.h"
#include "io/h5.h"
#include "model/checkpoint.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;

namespace {
model::Config tiny_config() {
  model::Config c = model::preset("tiny");
  c.d_model = 16;
  return c;
}

// Copies every dataset and root attribute of `src` to a new file, applying `edit` first.
void rewrite(const std::string& src, const std::string& dst,
             const std::function<void(std::string&, std::vector<float>&, io::Shape&)>& edit) {
  auto in = io::H5File::open_read(src);
  auto out = io::H5File::create(dst);
  for (const auto& name : in.list("/")) {
    std::string n = name;
    io::Shape shape = in.shape(n);
    std::vector<float> v = in.read_f32(n);
    edit(n, v, shape);
    if (!n.empty()) out.write(n, v.data(), shape);
  }
  for (const char* key : {"d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "dt_rank",
                          "pad_vocab_size_multiple"})
    out.set_attr("/", key, in.attr_i64("/", key));
  out.set_attr("/", "norm_epsilon", in.attr_f64("/", "norm_epsilon"));
  out.commit();
}

// The tiny checkpoint (seed 3) as save_checkpoint writes it, changed by `edit` before it is
// committed (attributes replaced or dropped, datasets added or replaced).
std::string edited(const TempDir& dir, const std::string& name, const std::function<void(io::H5File&)>& edit) {
  auto c = tiny_config();
  auto table = model::ParamTable::build(c);
  auto params = model::init_params(c, table, 3);
  const std::string path = dir.file(name);
  model::save_checkpoint(path, c, table, params.data(), "test", edit);
  return path;
}

void drop_attr(io::H5File& f, const char* key) { REQUIRE(H5Adelete(f.id(), key) >= 0); }

// The config's flat root attributes (all but the JSON, norm_epsilon and the tokenizer's).
const char* const kFlatKeys[] = {"d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand",
                                 "dt_rank", "pad_vocab_size_multiple", "tie_embeddings", "d_intermediate",
                                 "rms_norm"};

// The tiny model's mamba_ssm_config with `from` replaced by `to`.
std::string json_with(const std::string& from, const std::string& to) {
  std::string json = model::mamba_ssm_config_json(tiny_config());
  const auto at = json.find(from);
  REQUIRE(at != std::string::npos);
  return json.replace(at, from.size(), to);
}
}  // namespace

TEST_CASE("checkpoint: save then load gives the same config and parameters", "[model][checkpoint]") {
  TempDir dir;
  auto c = tiny_config();
  c.tokenizer_case = "upper";
  auto table = model::ParamTable::build(c);
  auto params = model::init_params(c, table, 7);
  const std::string path = dir.file("m.h5");
  model::save_checkpoint(path, c, table, params.data(), "test");
  auto ck = model::load_checkpoint(path);
  CHECK(ck.config.d_model == 16);
  CHECK(ck.config.n_layer == 2);
  CHECK(ck.config.rank() == 1);
  CHECK(ck.config.tokenizer_case == "upper");
  CHECK(ck.params == params);
  // mamba_ssm's MambaConfig, for MambaLMHeadModel(MambaConfig(**json.loads(...))).
  CHECK(io::H5File::open_read(path).attr_str("/", "mamba_ssm_config") ==
        "{\"d_model\": 16, \"d_intermediate\": 0, \"n_layer\": 2, \"vocab_size\": 256, \"ssm_cfg\": "
        "{\"layer\": \"Mamba1\", \"d_state\": " + std::to_string(c.d_state) + ", \"d_conv\": " +
        std::to_string(c.d_conv) + ", \"expand\": " + std::to_string(c.expand) + ", \"dt_rank\": 1}, "
        "\"attn_layer_idx\": [], \"attn_cfg\": {}, \"rms_norm\": true, \"residual_in_fp32\": true, "
        "\"fused_add_norm\": true, \"pad_vocab_size_multiple\": " + std::to_string(c.pad_vocab_size_multiple) +
        ", \"tie_embeddings\": true}");
  // No temporary file is left beside it.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.file(""))) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("checkpoint: initialisation follows mamba_ssm and is reproducible", "[model][checkpoint]") {
  auto c = model::preset("small");
  auto table = model::ParamTable::build(c);
  CHECK(table.total == 3569920);  // `mambadna info` of the small preset; PyTorch counts the same
  auto a = model::init_params(c, table, 1), b = model::init_params(c, table, 1),
       d = model::init_params(c, table, 2);
  CHECK(a == b);
  CHECK(a != d);
  const auto& alog = table.find("backbone.layers.3.mixer.A_log");
  for (int n = 0; n < 16; ++n) CHECK(a[size_t(alog.offset + 5 * 16 + n)] == Approx(std::log(n + 1.0)));
  const auto& D = table.find("backbone.layers.0.mixer.D");
  CHECK(a[size_t(D.offset)] == 1.0f);
  const auto& dtb = table.find("backbone.layers.0.mixer.dt_proj.bias");
  for (int64_t i = 0; i < dtb.size; ++i) {
    const double dt = std::log1p(std::exp(double(a[size_t(dtb.offset + i)])));  // softplus
    CHECK(dt >= 1e-3 * 0.999);
    CHECK(dt <= 1e-1 * 1.001);
  }
  // Embedding N(0, 0.02): the sample std over 65k values is within 2% of 0.02.
  const auto& emb = table.find("backbone.embedding.weight");
  double sq = 0;
  for (int64_t i = 0; i < emb.size; ++i) sq += double(a[size_t(emb.offset + i)]) * a[size_t(emb.offset + i)];
  CHECK(std::sqrt(sq / double(emb.size)) == Approx(0.02).epsilon(0.02));
  // out_proj: U(+-1/sqrt(E)) / sqrt(n_layer).
  const auto& op = table.find("backbone.layers.0.mixer.out_proj.weight");
  float mx = 0;
  for (int64_t i = 0; i < op.size; ++i) mx = std::max(mx, std::fabs(a[size_t(op.offset + i)]));
  CHECK(mx <= float(1.0 / std::sqrt(512.0) / std::sqrt(8.0)));
  CHECK(mx > float(0.9 / std::sqrt(512.0) / std::sqrt(8.0)));
}

TEST_CASE("checkpoint: the Hugging Face embedding name and a tied lm_head load", "[model][checkpoint]") {
  TempDir dir;
  auto c = tiny_config();
  auto table = model::ParamTable::build(c);
  auto params = model::init_params(c, table, 3);
  const std::string ours = dir.file("ours.h5"), hf = dir.file("hf.h5");
  model::save_checkpoint(ours, c, table, params.data(), "test");
  std::vector<float> emb;
  io::Shape emb_shape;
  rewrite(ours, hf, [&](std::string& n, std::vector<float>& v, io::Shape& s) {
    if (n == "backbone.embedding.weight") n = "backbone.embeddings.weight", emb = v, emb_shape = s;
  });
  {
    auto f = io::H5File::open_read(hf);
    REQUIRE(f.exists("backbone.embeddings.weight"));
  }
  CHECK(model::load_checkpoint(hf).params == params);
  // lm_head.weight equal to the embedding is accepted; a different one is refused.
  (void)emb_shape;
  const std::string with_head = dir.file("head.h5"), bad_head = dir.file("badhead.h5");
  rewrite(ours, with_head, [](std::string&, std::vector<float>&, io::Shape&) {});
  auto add_head = [&](const std::string& path, float delta) {
    auto tmp = dir.file("tmp.h5");
    rewrite(path, tmp, [](std::string&, std::vector<float>&, io::Shape&) {});
    auto f = io::H5File::open_read(tmp);
    auto out = io::H5File::create(path);
    for (const auto& name : f.list("/")) out.write(name, f.read_f32(name).data(), f.shape(name));
    auto e = f.read_f32("backbone.embedding.weight");
    e[0] += delta;
    out.write("lm_head.weight", e.data(), f.shape("backbone.embedding.weight"));
    for (const char* key : {"d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "dt_rank"})
      out.set_attr("/", key, f.attr_i64("/", key));
    out.commit();
  };
  add_head(with_head, 0.0f);
  CHECK(model::load_checkpoint(with_head).params == params);
  rewrite(ours, bad_head, [](std::string&, std::vector<float>&, io::Shape&) {});
  add_head(bad_head, 0.5f);
  CHECK_THROWS_WITH(model::load_checkpoint(bad_head), Catch::Contains("lm_head.weight differs"));
}

TEST_CASE("checkpoint: errors name the file, the dataset and both shapes", "[model][checkpoint]") {
  TempDir dir;
  auto c = tiny_config();
  auto table = model::ParamTable::build(c);
  auto params = model::init_params(c, table, 3);
  const std::string ours = dir.file("ours.h5");
  model::save_checkpoint(ours, c, table, params.data(), "test");

  const std::string text = dir.write("not.h5", "this is not HDF5\n");
  CHECK_THROWS_AS(model::load_checkpoint(text), InputError);
  CHECK_THROWS_WITH(model::load_checkpoint(text), Catch::Contains("not.h5") && Catch::Contains("not an HDF5 file"));
  CHECK_THROWS_WITH(model::load_checkpoint(dir.file("absent.h5")), Catch::Contains("no such file"));
  // Standard input cannot hold one (HDF5 reads by position): said so, not "no such file".
  CHECK_THROWS_WITH(model::load_checkpoint("-"), Catch::Contains("cannot be read from standard input"));
  // Nor a pipe or a device (/dev/stdin, <(...)): said so, not "not an HDF5 file".
  CHECK_THROWS_WITH(model::load_checkpoint("/dev/null"),
                    Catch::StartsWith("/dev/null: not a regular file: an HDF5 file (a model, a checkpoint) needs random access"));
  // A run's directory: said so, with the model it holds.
  std::filesystem::create_directories(dir.file("run"));
  CHECK_THROWS_WITH(model::load_checkpoint(dir.file("run")), Catch::EndsWith("run: a directory, not an HDF5 file"));
  std::filesystem::copy_file(ours, dir.file("run/model.h5"));
  CHECK_THROWS_WITH(model::load_checkpoint(dir.file("run")),
                    Catch::Contains("a directory, not an HDF5 file (a training run? its model is " + dir.file("run") +
                                    "/model.h5)"));

  {
    auto f = io::H5File::create(dir.file("empty.h5"));
    f.commit();
  }
  CHECK_THROWS_WITH(model::load_checkpoint(dir.file("empty.h5")), Catch::Contains("not a mambadna/mamba_ssm checkpoint"));

  const std::string missing = dir.file("missing.h5");
  rewrite(ours, missing, [](std::string& n, std::vector<float>&, io::Shape&) {
    if (n == "backbone.layers.1.mixer.x_proj.weight") n.clear();
  });
  CHECK_THROWS_WITH(model::load_checkpoint(missing),
                    Catch::Contains("missing.h5") && Catch::Contains("missing dataset 'backbone.layers.1.mixer.x_proj.weight'"));

  const std::string wrong = dir.file("wrong.h5");
  rewrite(ours, wrong, [](std::string& n, std::vector<float>& v, io::Shape& s) {
    if (n == "backbone.layers.0.mixer.conv1d.weight") {  // (E, 1, K) saved as (E, K)
      s = {s[0], s[2]};
      (void)v;
    }
  });
  CHECK_THROWS_WITH(model::load_checkpoint(wrong),
                    Catch::Contains("backbone.layers.0.mixer.conv1d.weight") &&
                        Catch::Contains("(32, 4)") && Catch::Contains("(32, 1, 4)"));

  // A NaN weight would turn every score into NaN: refused, naming the dataset and the element.
  const std::string nan = dir.file("nan.h5");
  rewrite(ours, nan, [](std::string& n, std::vector<float>& v, io::Shape&) {
    if (n == "backbone.layers.0.mixer.in_proj.weight") v[5] = NAN;
  });
  CHECK_THROWS_WITH(model::load_checkpoint(nan),
                    Catch::Contains("nan.h5") && Catch::Contains("backbone.layers.0.mixer.in_proj.weight") &&
                        Catch::Contains("non-finite") && Catch::Contains("element 5"));

  // Attributes that describe fewer layers than the file holds: the config and the weights
  // disagree, and scoring with the first layers alone would be silently wrong.
  const std::string extra = dir.file("extra.h5");
  model::Config one = c;
  one.n_layer = 1;
  auto t1 = model::ParamTable::build(one);
  auto p1 = model::init_params(one, t1, 3);
  model::save_checkpoint(extra, one, t1, p1.data(), "test", [&](io::H5File& f) {
    const std::vector<float> w(size_t(c.d_model), 1.0f);
    f.write("backbone.layers.1.norm.weight", w.data(), {c.d_model});
  });
  CHECK_THROWS_WITH(model::load_checkpoint(extra),
                    Catch::Contains("extra.h5") && Catch::Contains("backbone.layers.1.norm.weight") &&
                        Catch::Contains("n_layer 1"));

  // Sizes no model has (a corrupt attribute): refused before anything is allocated.
  model::Config huge = c;
  huge.d_model = 4000000000;
  CHECK_THROWS_WITH(huge.validate(), Catch::Contains("d_model 4000000000 is past the limit"));
  huge = c;
  huge.d_model = 100000, huge.n_layer = 4000;
  CHECK_THROWS_WITH(huge.validate(), Catch::Contains("parameters (limit 2^34)"));
  huge = c;
  huge.dt_rank = 0;
  CHECK_THROWS_WITH(huge.validate(), Catch::Contains("dt_rank must be -1"));

  // A size a model may have, but not this file's (a corrupt d_model and n_layer: 1.6 G
  // parameters, 6.5 GB, over weights of 16 wide): refused by the weights' shapes before memory
  // for that model is taken. Run under an address-space limit 1 GB above what the test holds,
  // where taking it would fail as out of memory.
  const std::string big = edited(dir, "big.h5", [](io::H5File& f) {
    drop_attr(f, "mamba_ssm_config");
    f.set_attr("/", "d_model", int64_t(4096));
    f.set_attr("/", "n_layer", int64_t(16));
  });
  struct rlimit was {};
  REQUIRE(getrlimit(RLIMIT_AS, &was) == 0);
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  REQUIRE(pages > 0);
  struct rlimit cap = was;
  cap.rlim_cur = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (rlim_t(1) << 30);
  if (was.rlim_cur != RLIM_INFINITY && was.rlim_cur < cap.rlim_cur) cap.rlim_cur = was.rlim_cur;
  REQUIRE(setrlimit(RLIMIT_AS, &cap) == 0);
  std::string got;
  try {
    model::load_checkpoint(big);
  } catch (const std::exception& e) {
    got = e.what();
  }
  REQUIRE(setrlimit(RLIMIT_AS, &was) == 0);
  CHECK(got == big + ": dataset 'backbone.embedding.weight' has shape (256, 16), expected (256, 4096)");
}

TEST_CASE("checkpoint: attributes as h5py writes them load", "[model][checkpoint]") {
  TempDir dir;
  // np.bytes_ strings (fixed length, NULLPAD: no terminator), numpy bools (an enum), dt_rank "auto".
  const std::string path = edited(dir, "h5py.h5", [](io::H5File& f) {
    test::set_fixed_str_attr(f.id(), "format", model::kCheckpointFormat, H5T_STR_NULLPAD);
    test::set_fixed_str_attr(f.id(), "tokenizer", "byte", H5T_STR_NULLPAD);
    test::set_fixed_str_attr(f.id(), "tokenizer_case", "upper", H5T_STR_NULLPAD);
    test::set_bool_attr(f.id(), "tie_embeddings", true);
    test::set_bool_attr(f.id(), "rms_norm", true);
    f.set_attr("/", "dt_rank", std::string("auto"));
  });
  const auto ck = model::load_checkpoint(path);
  CHECK(ck.config.tokenizer_case == "upper");
  CHECK(ck.config.dt_rank == -1);
  CHECK(ck.config.rank() == 1);
  CHECK(ck.params == model::load_checkpoint(edited(dir, "plain.h5", {})).params);
  // A string dt_rank other than auto: refused, naming it.
  const std::string bad = edited(dir, "rank.h5", [](io::H5File& f) { f.set_attr("/", "dt_rank", std::string("big")); });
  CHECK_THROWS_WITH(model::load_checkpoint(bad),
                    Catch::StartsWith(bad + ": attribute dt_rank is 'big', not a number or auto"));
}

TEST_CASE("checkpoint: a root dataset mambadna does not read is refused, naming it", "[model][checkpoint]") {
  TempDir dir;
  const std::vector<float> bias(256, 0.5f);
  // An LM head's bias, a near miss of lm_head.weight, keys of another tool: each would be left out.
  for (const std::string name : {"lm_head.bias", "lm_headx", "foo", "model.backbone.embedding.weight"}) {
    const std::string path = edited(dir, "extra.h5", [&](io::H5File& f) { f.write(name, bias.data(), {256}); });
    CHECK_THROWS_WITH(model::load_checkpoint(path),
                      Catch::StartsWith(path + ": dataset " + name + " at the root: not a weight of the model"));
  }
  const std::string group = edited(dir, "group.h5", [&](io::H5File& f) {
    f.write("lm_head/weight", bias.data(), {256});
    f.write("foo", bias.data(), {256});
  });
  CHECK_THROWS_WITH(model::load_checkpoint(group), Catch::StartsWith(group + ": datasets foo, lm_head/ at the root"));
  // Both embedding names: one of them would be left out.
  const std::string both = edited(dir, "both.h5", [&](io::H5File& f) {
    const auto e = f.read_f32("backbone.embedding.weight");
    f.write("backbone.embeddings.weight", e.data(), f.shape("backbone.embedding.weight"));
  });
  CHECK_THROWS_WITH(model::load_checkpoint(both), Catch::Contains("dataset backbone.embeddings.weight at the root"));
  // What mambadna writes loads: a training checkpoint's train/ group, and a tied lm_head.weight.
  const std::string train = edited(dir, "train.h5", [&](io::H5File& f) {
    f.write("train/exp_avg", bias.data(), {256});
    f.set_attr("/train", "step", int64_t(5));
    const auto e = f.read_f32("backbone.embedding.weight");
    f.write("lm_head.weight", e.data(), f.shape("backbone.embedding.weight"));
  });
  CHECK(model::load_checkpoint(train).config.d_model == 16);
  // A dataset named train is not the group.
  const std::string not_group =
      edited(dir, "train_ds.h5", [&](io::H5File& f) { f.write("train", bias.data(), {256}); });
  CHECK_THROWS_WITH(model::load_checkpoint(not_group), Catch::Contains("dataset train at the root"));
}

TEST_CASE("checkpoint: mamba_ssm_config builds the model and must agree with the attributes", "[model][checkpoint]") {
  TempDir dir;
  const auto plain = model::load_checkpoint(edited(dir, "plain.h5", {}));
  // Only the JSON, as a state_dict written from PyTorch with its MambaConfig: the same model.
  const std::string json_only = edited(dir, "json.h5", [](io::H5File& f) {
    for (const char* key : kFlatKeys) drop_attr(f, key);
  });
  const auto ck = model::load_checkpoint(json_only);
  CHECK(ck.config.d_model == 16);
  CHECK(ck.config.n_layer == 2);
  CHECK(ck.config.rank() == 1);
  CHECK(ck.config.d_state == plain.config.d_state);
  CHECK(ck.params == plain.params);
  // mamba_ssm's default dt_rank "auto"; a key absent is MambaConfig's default (vocab_size 50277).
  auto only = [&](const std::string& name, const std::string& json) {
    return edited(dir, name, [&](io::H5File& f) {
      for (const char* key : kFlatKeys) drop_attr(f, key);
      f.set_attr("/", "mamba_ssm_config", json);
    });
  };
  const std::string auto_rank = json_with("\"dt_rank\": 1", "\"dt_rank\": \"auto\"");
  CHECK(model::load_checkpoint(only("auto.h5", auto_rank)).config.rank() == 1);
  CHECK_THROWS_WITH(model::load_checkpoint(only("vocab.h5", json_with("\"vocab_size\": 256, ", ""))),
                    Catch::Contains("'backbone.embedding.weight' has shape (256, 16), expected (50280, 16)"));
  const std::string no_d = only("nod.h5", json_with("\"d_model\": 16, ", ""));
  CHECK_THROWS_WITH(model::load_checkpoint(no_d),
                    Catch::StartsWith(no_d + ": no d_model: neither a root attribute nor in mamba_ssm_config"));
  // Both: they must agree.
  auto with_json = [&](const std::string& name, const std::string& json) {
    return edited(dir, name, [&](io::H5File& f) { f.set_attr("/", "mamba_ssm_config", json); });
  };
  const std::string wide = with_json("wide.h5", json_with("\"d_model\": 16", "\"d_model\": 32"));
  CHECK_THROWS_WITH(model::load_checkpoint(wide),
                    Catch::StartsWith(wide + ": attribute d_model (16) contradicts mamba_ssm_config d_model (32)"));
  const std::string state = with_json("state.h5", json_with("\"d_state\": 16", "\"d_state\": 8"));
  CHECK_THROWS_WITH(model::load_checkpoint(state),
                    Catch::StartsWith(state + ": attribute d_state (16) contradicts mamba_ssm_config "
                                              "ssm_cfg.d_state (8)"));
  CHECK(model::load_checkpoint(with_json("rank.h5", auto_rank)).config.rank() == 1);
  // A key the JSON leaves out is mamba_ssm's default, what MambaConfig(**json) builds: an
  // attribute that differs contradicts it (ssm_cfg null: d_state 16, not the attributes' 8).
  {
    auto c8 = tiny_config();
    c8.d_state = 8;
    auto t8 = model::ParamTable::build(c8);
    const auto p8 = model::init_params(c8, t8, 3);
    const std::string null_cfg = dir.file("nullcfg.h5");
    std::string json = model::mamba_ssm_config_json(c8);
    const size_t from = json.find("{\"layer\"");
    json.replace(from, json.find('}') + 1 - from, "null");
    model::save_checkpoint(null_cfg, c8, t8, p8.data(), "test",
                           [&](io::H5File& f) { f.set_attr("/", "mamba_ssm_config", json); });
    CHECK_THROWS_WITH(model::load_checkpoint(null_cfg),
                      null_cfg + ": attribute d_state (8) contradicts mamba_ssm_config, which leaves ssm_cfg.d_state "
                                 "out (mamba_ssm's default: 16)");
  }
  // The JSON is kept as it was written: keys mambadna does not read (an initialisation range,
  // residual_in_fp32 false) come back unchanged from a load and a save (train's model.h5).
  {
    std::string torch_json = json_with("\"layer\": \"Mamba1\"", "\"layer\": \"Mamba1\", \"dt_min\": 0.0005");
    const std::string fp32 = "\"residual_in_fp32\": true";
    torch_json.replace(torch_json.find(fp32), fp32.size(), "\"residual_in_fp32\": false");
    const auto ck = model::load_checkpoint(with_json("torch.h5", torch_json));
    CHECK(ck.config.mamba_ssm_config == torch_json);
    const std::string again = dir.file("again.h5");
    model::save_checkpoint(again, ck.config, ck.table, ck.params.data(), "test");
    CHECK(io::H5File::open_read(again).attr_str("/", "mamba_ssm_config") == torch_json);
  }
  // As Python's json may write them: a whole float for an integer, null for no attention layers.
  CHECK(model::load_checkpoint(only("float.h5", json_with("\"expand\": 2", "\"expand\": 2.0"))).config.expand == 2);
  CHECK(model::load_checkpoint(only("null.h5", json_with("\"attn_layer_idx\": []", "\"attn_layer_idx\": null")))
            .params == plain.params);
  // What mambadna cannot run, or cannot read: refused, naming the file and the key (with the
  // attributes too, a value they contradict is refused as a contradiction).
  const std::pair<std::string, std::string> refused[] = {
      {json_with("}", ""), ": attribute mamba_ssm_config is not JSON (line 1: "},
      {"[1, 2, 3]", ": attribute mamba_ssm_config is JSON but not an object of MambaConfig's fields"},
      {json_with("\"layer\": \"Mamba1\"", "\"layer\": \"Mamba2\""),
       ": mamba_ssm_config ssm_cfg.layer 'Mamba2': only Mamba1 models are supported"},
      {json_with("\"attn_layer_idx\": []", "\"attn_layer_idx\": [1]"),
       ": mamba_ssm_config attn_layer_idx is not empty: attention layers are not supported"},
      {json_with("\"d_intermediate\": 0", "\"d_intermediate\": 64"),
       ": mamba_ssm_config d_intermediate 64: MLP blocks (d_intermediate != 0) are not supported"},
      {json_with("\"rms_norm\": true", "\"rms_norm\": false"),
       ": mamba_ssm_config rms_norm false: LayerNorm models are not supported"},
      {json_with("\"tie_embeddings\": true", "\"tie_embeddings\": false"),
       ": mamba_ssm_config tie_embeddings false: untied LM heads are not supported"},
      {json_with("\"d_conv\": 4", "\"d_conv\": 4.5"), ": mamba_ssm_config ssm_cfg.d_conv is '4.5', not an integer"},
      // past 64 bits: not read as 0 (which would pass as "no MLP blocks")
      {json_with("\"d_intermediate\": 0", "\"d_intermediate\": 100000000000000000000"),
       ": mamba_ssm_config d_intermediate is '100000000000000000000', not an integer"},
      {json_with("\"rms_norm\": true", "\"rms_norm\": \"yes\""),
       ": mamba_ssm_config rms_norm is 'yes', not true or false"},
      // Biases the mixer is built with or without (mamba_ssm would build another model)
      {json_with("\"layer\": \"Mamba1\"", "\"layer\": \"Mamba1\", \"conv_bias\": false"),
       ": mamba_ssm_config ssm_cfg.conv_bias false: a conv1d without a bias is not supported"},
      {json_with("\"layer\": \"Mamba1\"", "\"layer\": \"Mamba1\", \"bias\": true"),
       ": mamba_ssm_config ssm_cfg.bias true: in_proj and out_proj biases are not supported"}};
  for (const auto& [json, message] : refused) {
    const std::string path = only("refused.h5", json);
    CHECK_THROWS_WITH(model::load_checkpoint(path), Catch::StartsWith(path + message));
  }
}

TEST_CASE("checkpoint: values no model has are refused, naming the attribute", "[model][checkpoint]") {
  TempDir dir;
  // Without the JSON, so that the attribute itself is judged (not its contradiction of the JSON).
  auto flat = [&](const std::string& name, const std::function<void(io::H5File&)>& edit) {
    return edited(dir, name, [&](io::H5File& f) {
      drop_attr(f, "mamba_ssm_config");
      edit(f);
    });
  };
  // norm_epsilon inf would score every base log(1/256).
  for (const double eps : {double(INFINITY), double(NAN), 0.0, -1e-5}) {
    const std::string path = flat("eps.h5", [&](io::H5File& f) { f.set_attr("/", "norm_epsilon", eps); });
    CHECK_THROWS_WITH(model::load_checkpoint(path),
                      Catch::StartsWith(path + ": invalid model config: norm_epsilon must be a finite positive "
                                               "number (got " + number_text(eps) + ")"));
  }
  // Flags are 0 or 1.
  for (const char* key : {"rms_norm", "tie_embeddings"}) {
    const std::string path = flat("flag.h5", [&](io::H5File& f) { f.set_attr("/", key, int64_t(5)); });
    CHECK_THROWS_WITH(model::load_checkpoint(path),
                      Catch::StartsWith(path + ": attribute " + key + " is 5: give 0 or 1 (or a bool)"));
  }
  const std::string untied =
      flat("untied.h5", [](io::H5File& f) { test::set_bool_attr(f.id(), "tie_embeddings", false); });
  CHECK_THROWS_WITH(model::load_checkpoint(untied),
                    Catch::StartsWith(untied + ": attribute tie_embeddings 0: untied LM heads are not supported"));
  // An integer given as 1e300: %g, not 300 digits.
  const std::string huge = flat("huge.h5", [](io::H5File& f) { f.set_attr("/", "d_model", 1e300); });
  CHECK_THROWS_WITH(model::load_checkpoint(huge),
                    Catch::StartsWith(huge + ": attribute 'd_model' is not an integer (1e+300)"));
  const std::string pad = flat("pad.h5", [](io::H5File& f) { f.set_attr("/", "pad_vocab_size_multiple", int64_t(0)); });
  CHECK_THROWS_WITH(model::load_checkpoint(pad),
                    Catch::StartsWith(pad + ": invalid model config: pad_vocab_size_multiple must be at least 1 "
                                            "(got 0)"));
  // A float64 weight past float32's range: said so, not "non-finite".
  const std::string wide = flat("wide.h5", [](io::H5File& f) {
    const std::string name = "backbone.layers.0.mixer.D";
    std::vector<double> v(size_t(f.shape(name)[0]), 1.0);
    v[3] = 1e39;
    REQUIRE(H5Ldelete(f.id(), name.c_str(), H5P_DEFAULT) >= 0);
    f.write(name, v.data(), {int64_t(v.size())});
  });
  CHECK_THROWS_WITH(model::load_checkpoint(wide),
                    Catch::StartsWith(wide + ": backbone.layers.0.mixer.D holds 1e+39, out of float32 range, at "
                                             "element 3"));
}
