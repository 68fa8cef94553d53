// Checkpoints: round trip, the mamba_ssm/Hugging Face names, initialisation, and clear errors
// for files that are not checkpoints or whose datasets are missing or misshapen.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

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
}
