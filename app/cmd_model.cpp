// `mambadna init`: create a model from a preset and options; `mambadna info`: describe one.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "app/cli.h"
#include "io/error.h"
#include "io/h5.h"
#include "model/checkpoint.h"

namespace mambadna::app {

int cmd_init(int argc, char** argv) {
  CommonOptions common;
  std::string output, preset = "small", tok_case = "upper";
  int64_t d_model = 0, n_layer = 0, d_state = 16, d_conv = 4, expand = 2, dt_rank = -1;
  int64_t seed = 1;  // (signed: Boost reads -1 into an unsigned type as 2^64 - 1)
  po::options_description shape("Model shape (override the preset)");
  shape.add_options()                                                                       //
      ("preset,p", po::value(&preset)->default_value(preset), "tiny (D 64, 2 layers), small (D 256, 8 layers), 130m (D 768, 24 layers)")
      ("d-model", po::value(&d_model), "width D [preset]")                                 //
      ("n-layer", po::value(&n_layer), "number of Mamba blocks [preset]")                  //
      ("d-state", po::value(&d_state)->default_value(d_state), "SSM state size N")         //
      ("d-conv", po::value(&d_conv)->default_value(d_conv), "conv kernel width K")         //
      ("expand", po::value(&expand)->default_value(expand), "E = expand * D")              //
      ("dt-rank", po::value(&dt_rank)->default_value(dt_rank), "R; -1 = ceil(D/16)")      //
      ("case", po::value(&tok_case)->default_value(tok_case), "tokenizer case: upper|keep") //
      ("seed", po::value(&seed)->default_value(seed), "initialisation seed");
  po::options_description out("Output");
  out.add_options()("output,o", po::value(&output)->required(), "checkpoint to write (.h5)");
  po::options_description general("General");
  add_common_options(general, common);
  po::variables_map vm;
  return run_command(
      [&] {
        if (!parse_command_line(argc, argv, "Usage: mambadna init [options] -o model.h5",
                                {&shape, &out, &general}, {}, "", 0, vm))
          return kHelpShown;
        model::Config c = model::preset(preset);
        if (vm.count("d-model")) {
          if (d_model < 1) throw UsageError("--d-model " + std::to_string(d_model) + ": give 1 or more");
          c.d_model = d_model;
        }
        if (vm.count("n-layer")) {
          if (n_layer < 1) throw UsageError("--n-layer " + std::to_string(n_layer) + ": give 1 or more");
          c.n_layer = n_layer;
        }
        if (seed < 0) throw UsageError("--seed " + std::to_string(seed) + ": give 0 or more");
        c.d_state = d_state, c.d_conv = d_conv, c.expand = expand, c.dt_rank = dt_rank;
        c.tokenizer_case = tok_case;
        refuse_binary_to_terminal("-o", output, "an HDF5 file");
        auto table = model::ParamTable::build(c);
        auto params = model::init_params(c, table, uint64_t(seed));
        model::save_checkpoint(output, c, table, params.data(), command_line());
        if (common.verbosity > 0)
          std::fprintf(stderr, "[mambadna] wrote %s: %lld parameters\n", output.c_str(),
                       (long long)table.total);
        return 0;
      },
      common, kModelMemory);
}

int cmd_info(int argc, char** argv) {
  CommonOptions common;
  std::string input;
  po::options_description general("General");
  add_common_options(general, common);
  po::options_description in("Input");
  in.add_options()("model,m", po::value(&input)->required(), "checkpoint (.h5; or give it as the argument)");
  po::options_description hidden;
  po::variables_map vm;
  return run_command(
      [&] {
        if (!parse_command_line(argc, argv, "Usage: mambadna info [options] model.h5", {&in, &general},
                                hidden, "model", 1, vm))
          return kHelpShown;
        auto ck = model::load_checkpoint(input);
        const auto& c = ck.config;
        std::printf("file\t%s\n", input.c_str());
        std::printf("d_model\t%lld\nn_layer\t%lld\nd_inner\t%lld\nd_state\t%lld\nd_conv\t%lld\n",
                    (long long)c.d_model, (long long)c.n_layer, (long long)c.d_inner(),
                    (long long)c.d_state, (long long)c.d_conv);
        std::printf("expand\t%lld\ndt_rank\t%lld\nvocab_size\t%lld\nvocab_padded\t%lld\n",
                    (long long)c.expand, (long long)c.rank(), (long long)c.vocab_size,
                    (long long)c.vocab_padded());
        std::printf("norm_epsilon\t%g\ntie_embeddings\t%d\n", c.norm_epsilon, int(c.tie_embeddings));
        std::printf("tokenizer\t%s\ntokenizer_case\t%s\n", c.tokenizer.c_str(), c.tokenizer_case.c_str());
        std::printf("pad_vocab_size_multiple\t%lld\n", (long long)c.pad_vocab_size_multiple);
        std::printf("parameters\t%lld\n", (long long)ck.table.total);
        // Provenance, and a training checkpoint's place in its run.
        const io::H5File f = io::H5File::open_read(input);
        for (const char* key : {"format", "mambadna_version", "command_line"})
          if (f.has_attr("/", key)) std::printf("%s\t%s\n", key, f.attr_str("/", key).c_str());
        if (f.has_attr("/", "inputs")) {  // the training data, one a line
          const std::string inputs = f.attr_str("/", "inputs");
          for (size_t at = 0; at < inputs.size();) {
            const size_t end = std::min(inputs.find('\n', at), inputs.size());
            std::printf("input\t%s\n", inputs.substr(at, end - at).c_str());
            at = end + 1;
          }
        }
        if (f.exists("train/exp_avg"))
          for (const char* key : {"step", "steps", "tokens"})
            if (f.has_attr("/train", key))
              std::printf("train_%s\t%lld\n", key, (long long)f.attr_i64("/train", key));
        if (common.verbosity > 1)
          for (auto& s : ck.table.specs)
            std::printf("tensor\t%s\t%s\n", s.name.c_str(), io::shape_str(s.shape).c_str());
        return 0;
      },
      common, kModelMemory);
}

}  // namespace mambadna::app
