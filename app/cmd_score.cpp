// `mambadna score`: log-likelihood of sequences under a model, per record and per base.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "app/cli.h"
#include "app/device_options.h"
#include "app/input_options.h"
#include "io/error.h"
#include "io/sequence_reader.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "pipelines/score.h"

namespace mambadna::app {

int cmd_score(int argc, char** argv) {
  CommonOptions common;
  InputOptions input;
  pipelines::ScoreOptions opt;
  std::string model_path, strand = "fwd";
  po::options_description model_opts("Model");
  model_opts.add_options()("model,m", po::value(&model_path)->required(), "checkpoint (.h5)");
  po::options_description in_opts("Input");
  add_input_options(in_opts, input);
  po::options_description out("Output");
  out.add_options()                                                                        //
      ("output,o", po::value(&opt.h5_output), "HDF5 file with the records table (and per-base data)")
      ("per-position", po::bool_switch(&opt.per_position), "write per-base log-probs to the HDF5 file")
      ("entropy", po::bool_switch(&opt.entropy), "also write the entropy of each prediction")
      ("bedgraph", po::value(&opt.bedgraph), "per-base log-likelihood as a bedGraph track, in record order (A/C/G/T positions only, N runs are gaps)")
      ("strand", po::value(&strand)->default_value(strand),
       "fwd, or both: also score the reverse complement (each base given its right-hand context); "
       "needs an indexed FASTA");
  po::options_description run("Run");
  run.add_options()                                                                       //
      ("chunk,L", po::value(&opt.chunk)->default_value(0),
       "tokens per stream per step; 0: about 2048 rows per step on the CPU, 4096 on a GPU, "
       "and for short records (reads) with -b left at its default, their length and more of "
       "them side by side")  //
      ("batch,b", po::value(&opt.streams)->default_value(8), "records scored side by side");
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
                                "Usage: mambadna score -m model.h5 [options] INPUT... [-o out.h5]\n"
                                "Prints one TSV line per record (or region) on stdout.",
                                {&model_opts, &in_opts, &out, &run, &general}, hidden, "inputs", -1, vm))
          return kHelpShown;
        if (opt.per_position && opt.h5_output.empty())
          throw UsageError("--per-position needs -o/--output FILE.h5");
        if (opt.entropy && !opt.per_position) throw UsageError("--entropy needs --per-position");
        // Standard output carries the TSV.
        if (opt.h5_output == "-") throw UsageError("-o -: standard output carries the TSV; give -o a file");
        if (opt.bedgraph == "-") throw UsageError("--bedgraph -: standard output carries the TSV; give a file");
        opt.both_strands = parse_strand(strand);
        refuse_same_files({{"-o", opt.h5_output}, {"--bedgraph", opt.bedgraph}, {"the TSV", "-"}},
                          input_files(input, opt.inputs, {{"-m", model_path}}));
        const model::Device dev = apply_device_options(device, common.verbosity);
        kernels::CpuThreads threads(common.threads);
        model::Mamba<float> m = load_model(model_path, dev);
        opt.reader = reader_options("score", input, common, m.config());
        opt.reader.threads = 0;  // one reader per stream; the model is the bottleneck
        if (!opt.both_strands)
          warn_unused_strands("score", input, opt.reader, "--strand both scores the reverse complement too");
        if (opt.chunk < 0)
          throw UsageError("-L/--chunk " + std::to_string(opt.chunk) + ": give 1 or more, or 0 to choose");
        if (opt.chunk == 0) {
          const int64_t streams = pipelines::score_streams(opt);
          // Fewer records than streams (one region, one genome): the chunk of as many streams as
          // there are records, so that a call still has ~2,048 rows (a single region ran 256).
          const int64_t known = pipelines::records_known(opt, streams);
          opt.chunk = auto_chunk(dev, known > 0 ? std::min(streams, known) : streams);
          bool shaped = false;
          if (streams > 1 && vm["batch"].defaulted()) {  // reads: a chunk a record, more of them
            const auto shape = pipelines::short_record_shape(opt, streams * opt.chunk);
            if (shape.chunk > 0) {
              shaped = true;
              opt.chunk = shape.chunk;
              opt.streams = shape.streams;
              if (common.verbosity >= 1)
                std::fprintf(stderr, "[score] step shape -b %lld -L %lld: 99%% of the first %s are at most %s long\n",
                             (long long)shape.streams, (long long)shape.chunk,
                             count_of(shape.sampled, "record", "records").c_str(),
                             count_of(shape.p99, "base", "bases").c_str());
            }
          }
          // Where a record longer than the chunk runs alone (a bedGraph, an input read once), it
          // gets one stream's chunk: 256 made a 200-kb region 1.8x slower than 2,048.
          if (!shaped && pipelines::score_holds(opt)) opt.chunk = auto_chunk(dev, 1);
        }
        opt.command_line = command_line();
        opt.model_path = model_path;
        // Each strand's bases are counted, as the run makes its way through them.
        int64_t total = common.verbosity > 0 ? io::known_total_length(opt.inputs, opt.reader) : -1;
        if (total > 0 && opt.both_strands) total *= 2;
        Progress progress("bases", total, common.verbosity);
        // The header goes out with the first record, so that a run that fails at once prints
        // nothing on stdout.
        bool header = false;
        auto put_header = [&] {
          if (!header)
            pipelines::write_score_header(std::cout, opt.both_strands, !opt.reader.regions.empty());
          header = true;
        };
        // Standard output that fails (a full disk, a reader gone with SIGPIPE ignored) stops
        // the run at once, and before the output files are put in place: none of them stays.
        auto check_stdout = [&](bool flush) {
          if (flush) std::cout.flush();
          if (!std::cout || std::ferror(stdout) || (flush && std::fflush(stdout) != 0))
            throw Error(std::string("standard output: write failed: ") + std::strerror(errno));
        };
        opt.before_publish = [&] {
          put_header();
          check_stdout(true);
        };
        pipelines::score(
            m, opt,
            [&](const pipelines::RecordScore& r) {
              put_header();
              pipelines::write_score_line(std::cout, r, opt.both_strands, !opt.reader.regions.empty());
              check_stdout(false);
            },
            [&](int64_t done) { progress.update(done); });
        progress.finish();
        put_header();
        check_stdout(true);
        return 0;
      },
      common);
}

}  // namespace mambadna::app
