// mambadna stats: stream sequence files through the tokenizer and write base counts per record
// and in total as TSV.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "app/input_options.h"
#include "io/error.h"
#include "io/output_file.h"
#include "pipelines/stats.h"

namespace mambadna::app {

namespace {

struct StatsArgs {
  CommonOptions common;
  InputOptions input;
  std::vector<std::string> inputs;
  int64_t chunk = 65536;
  std::string output = "-";
};

// Returns false when --help was printed.
bool parse_stats_args(int argc, char** argv, StatsArgs& a) {
  po::options_description input("Input");
  add_input_options(input, a.input, InputsFor::no_model);
  input.add_options()  //
      ("chunk", po::value<int64_t>(&a.chunk)->default_value(65536),
       "tokens per chunk read (a debugging knob; the counts do not depend on it)");
  po::options_description output("Output");
  output.add_options()  //
      ("output,o", po::value<std::string>(&a.output)->default_value("-"),
       "TSV file ('-' for standard output)");
  po::options_description general("General");
  add_common_options(general, a.common);
  po::options_description hidden;
  hidden.add_options()("input", po::value<std::vector<std::string>>(&a.inputs), "input files");

  const std::string usage =
      "Usage: mambadna stats [options] INPUT...\n\n"
      "Counts the bases of each record of FASTA, FASTQ (plain, gzip or bgzip), SAM, BAM or CRAM\n"
      "files ('-' reads standard input) as the model's tokenizer sees them, and writes a TSV:\n"
      "input, record, length, A, C, G, T, N, lower, other_iupac, gc; the last line, input '.',\n"
      "record 'total', is the sum.\n"
      "lower counts soft-masked bases with --case keep (the default, upper, folds them first).\n"
      "-@ N (N > 1) decompresses BGZF/BAM/CRAM input with N threads.";
  po::variables_map vm;
  if (!parse_command_line(argc, argv, usage, {&input, &output, &general}, hidden, "input", -1, vm))
    return false;
  if (a.inputs.empty()) throw UsageError("no input file given (see 'mambadna stats --help')");
  if (a.chunk < 1) throw UsageError("--chunk " + std::to_string(a.chunk) + ": give 1 or more");
  refuse_same_files({{"-o", a.output}}, input_files(a.input, a.inputs));
  return true;
}

std::string tsv_line(const std::string& input, const std::string& name, const pipelines::BaseCounts& c) {
  char gc[32];
  double v = c.gc();
  if (std::isnan(v))
    std::snprintf(gc, sizeof gc, "NA");
  else
    std::snprintf(gc, sizeof gc, "%.6f", v);
  std::string s = input;
  s.append("\t").append(name);
  for (int64_t x : {c.length, c.a, c.c, c.g, c.t, c.n, c.lower, c.other_iupac})
    s.append("\t").append(std::to_string(x));
  s.append("\t").append(gc).append("\n");
  return s;
}

int run_stats(const StatsArgs& a) {
  pipelines::StatsOptions opt;
  opt.chunk = size_t(a.chunk);
  opt.reader = reader_options("stats", a.input, a.common, nullptr);
  const io::ReaderOptions& r = opt.reader;

  Progress progress("bases", io::known_total_length(a.inputs, r), a.common.verbosity);
  io::TextOutput out(a.output);  // '-' is stdout; a file appears only when complete
  // The header goes out with the first line: standard output keeps what is written, and a
  // refusal when the first input opens (regions of standard input, say) must leave it empty.
  bool started = false;
  auto write = [&](const std::string& line) {
    if (!started) out.write("#input\trecord\tlength\tA\tC\tG\tT\tN\tlower\tother_iupac\tgc\n");
    started = true;
    out.write(line);
  };
  pipelines::StatsCallbacks cb;
  // A region is named as score and embed name it (its BED name, else contig:start-end), as
  // samtools faidx names the records it writes for regions.
  cb.on_record = [&](const pipelines::RecordCounts& rc) {
    write(tsv_line(rc.input, rc.region.empty() ? rc.record : rc.region, rc.counts));
  };
  cb.on_progress = [&](int64_t done) { progress.update(done); };
  pipelines::BaseCounts total = pipelines::count_bases(a.inputs, opt, cb);
  progress.finish();
  write(tsv_line(".", "total", total));
  out.commit();
  return 0;
}

}  // namespace

int cmd_stats(int argc, char** argv) {
  StatsArgs args;
  return run_command(
      [&] {
        if (!parse_stats_args(argc, argv, args)) return kHelpShown;
        return run_stats(args);
      },
      args.common, kStatsMemory);
}

}  // namespace mambadna::app
