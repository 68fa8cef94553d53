// `mambadna embed`: hidden states of regions or records to HDF5.
#include <cstdio>

#include "app/cli.h"
#include "app/device_options.h"
#include "app/input_options.h"
#include "io/error.h"
#include "io/sequence_reader.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "pipelines/embed.h"

namespace mambadna::app {

int cmd_embed(int argc, char** argv) {
  CommonOptions common;
  InputOptions input;
  pipelines::EmbedOptions opt;
  std::string model_path, pool = "mean", dtype = "f32", strand = "fwd";
  std::vector<int64_t> layers;
  po::options_description model_opts("Model");
  model_opts.add_options()                                                             //
      ("model,m", po::value(&model_path)->required(), "checkpoint (.h5)")              //
      ("layer", po::value(&layers)->composing(),
       "layer whose output to write, repeatable: 0..n_layer-1 (residual stream after it) or -1 (after the final norm) [-1]");
  po::options_description in_opts("Input");
  add_input_options(in_opts, input, InputsFor::embedding);
  in_opts.add_options()                                                                 //
      ("flank", po::value(&opt.flank)->default_value(0), "bases run before each region for context, not written")
      ("strand", po::value(&strand)->default_value(strand),
       "fwd; both: average with the reverse complement's states; bed: a BED region on the '-' "
       "strand (column 6) is read as its reverse complement, rows 5' to 3' (bedtools' -s)");
  po::options_description out("Output");
  out.add_options()                                                                      //
      ("output,o", po::value(&opt.output)->required(), "HDF5 file")                     //
      ("pool", po::value(&pool)->default_value(pool), "none (per position), mean, max, last, or bin:K")
      ("dtype", po::value(&dtype)->default_value(dtype), "f32 or f16");
  po::options_description run("Run");
  run.add_options()("chunk,L", po::value(&opt.chunk)->default_value(4096),
                    "tokens per step; records and regions that fit in it (with a flank) run side by side, up to 128 "
                    "and about L tokens a step");
  DeviceOptions device;
  add_device_options(run, device);
  po::options_description general("General");
  add_common_options(general, common);
  po::options_description hidden;
  hidden.add_options()("inputs", po::value(&opt.inputs)->required(), "inputs");
  po::variables_map vm;
  return run_command(
      [&] {
        if (!parse_command_line(argc, argv,
                                "Usage: mambadna embed -m model.h5 [options] INPUT... -o emb.h5\n"
                                "Regions (-r/-R) read an indexed FASTA, or the reads of an indexed SAM/BAM/CRAM that\n"
                                "overlap them (each whole); --flank and --strand both read an indexed FASTA.",
                                {&model_opts, &in_opts, &out, &run, &general}, hidden, "inputs", -1, vm))
          return kHelpShown;
        pipelines::parse_pool(pool, opt.pool, opt.bin);
        if (dtype != "f32" && dtype != "f16") throw UsageError("--dtype " + dtype + ": choose f32 or f16");
        opt.f16 = dtype == "f16";
        if (strand != "fwd" && strand != "both" && strand != "bed")
          throw UsageError("--strand " + strand + ": choose fwd, both or bed");
        opt.stranded = strand == "bed";
        if (opt.stranded && input.regions_file.empty())
          throw UsageError("--strand bed takes each region's strand from the -R BED file; give one");
        opt.both_strands = strand == "both";
        refuse_binary_to_terminal("-o", opt.output, "an HDF5 file");
        if (!layers.empty()) opt.layers = layers;
        refuse_same_files({{"-o", opt.output}}, input_files(input, opt.inputs, {{"-m", model_path}}));
        const model::Device dev = apply_device_options(device, common.verbosity);
        kernels::CpuThreads threads(common.threads);
        model::Mamba<float> m = load_model(model_path, dev);
        opt.reader = reader_options("embed", input, common, m.config());
        if (!opt.stranded && !opt.both_strands)
          warn_unused_strands("embed", input, opt.reader, "--strand bed embeds each on its own strand");
        opt.command_line = command_line();
        opt.model_path = model_path;
        Progress progress("bases", common.verbosity > 0 ? io::known_total_length(opt.inputs, opt.reader) : -1,
                          common.verbosity);
        auto s = pipelines::embed(m, opt, [&](int64_t done) { progress.update(done); });
        progress.finish();
        if (common.verbosity > 0)
          std::fprintf(stderr, "[embed] %s, %s -> %s\n",
                       (s.reads == s.regions && s.reads > 0 ? count_of(s.regions, "read", "reads")
                        : opt.reader.regions.empty()        ? count_of(s.regions, "record", "records")
                                                            : count_of(s.regions, "region", "regions")).c_str(),
                       count_of(s.bases, "base", "bases").c_str(), opt.output.c_str());
        return 0;
      },
      common, kChunkMemory);
}

}  // namespace mambadna::app
