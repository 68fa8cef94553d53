// The command-line frame shared by every `mambadna <command>`: common options, the progress
// display, the end-of-run report and the one place where errors become messages and exit codes.
#pragma once
#include <boost/program_options.hpp>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mambadna::app {

namespace po = boost::program_options;

// Options every command takes.
struct CommonOptions {
  int threads = 1;    // -@/--threads
  int verbosity = 1;  // -v/--verbosity: 0 warnings and errors only, 1 summary, 2 progress details, 3 debug
};

// Adds -@/--threads, -v/--verbosity and -h/--help to `group`.
void add_common_options(po::options_description& group, CommonOptions& common);

// Parses argv for one command. Prints help and returns false when --help was given.
// `positional` names the option that takes the positional arguments ("" for none).
bool parse_command_line(int argc, char** argv, const std::string& usage,
                        const std::vector<po::options_description*>& groups,
                        const po::options_description& hidden, const std::string& positional,
                        int max_positional, po::variables_map& vm);

// Progress on `out` (stderr): bases or records done, the rate and, where the total is known,
// the fraction and ETA. On a terminal, from verbosity 1, one line redrawn a few times a second;
// elsewhere (a log file, a batch job's standard error), from verbosity 2, a line of its own every
// `every` seconds.
class Progress {
 public:
  Progress(std::string unit, int64_t total = -1, int verbosity = 1, std::FILE* out = stderr, double every = 30);
  ~Progress();
  void update(int64_t done);  // absolute count of units done
  void finish();

 private:
  std::string unit_;
  int64_t total_;
  std::FILE* out_;
  bool terminal_;  // redraw one line; else write a line every every_ seconds
  double every_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// Peak resident set size of this process in bytes.
int64_t peak_rss_bytes();

// "1 region", "2 regions": a count and its noun, for messages.
std::string count_of(int64_t n, const std::string& one, const std::string& many);

// The whole command line as one string, for reports and file attributes.
std::string command_line();
// A duration as 5m03s or 2h05m03s; "?" when negative or past 10^7 s (no estimate yet).
std::string format_seconds(double s);
void set_command_line(int argc, char** argv);

// (option, path) pairs, for messages that name both.
using NamedPaths = std::vector<std::pair<std::string, std::string>>;

// Refuses (UsageError naming both options) an output that is the same file as an input or as
// another output, through links and relative paths too: its temporary file would be renamed
// over that file when the run ends. "-" and empty paths are skipped; "-" given twice among the
// inputs is refused (standard input can be read once).
void refuse_same_files(const NamedPaths& outputs, const NamedPaths& inputs);

// Refuses (UsageError naming the option) binary data (`what`: "an HDF5 file", "BCF") bound for
// standard output ("-") when that is a terminal, as bgzip refuses compressed data there.
void refuse_binary_to_terminal(const std::string& option, const std::string& path, const std::string& what);

// SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT (Ctrl-\), SIGXCPU (a CPU-time limit), SIGALRM,
// SIGUSR1, SIGUSR2 and SIGABRT (a library's assertion) end the program as they would, after
// removing the temporary files of outputs not yet complete (io/temp_files.h) and, but for
// SIGPIPE (a reader that stopped reading), saying so on stderr.
// install_signal_cleanup() sets the handler for all of them; `train` catches the first
// SIGINT/SIGTERM/SIGHUP/SIGPIPE itself and hands the second to it.
// A signal that was ignored when the program started (nohup, `cmd &` in a script) stays so.
extern "C" void remove_outputs_and_die(int sig);
void install_signal_cleanup();
bool catch_signal(int sig, void (*handler)(int));  // false (and nothing set) if `sig` is ignored
// The same with a handler told who sent the signal (SA_SIGINFO).
bool catch_signal(int sig, void (*handler)(int, siginfo_t*, void*));

// What a command body returns after printing --help: run_command exits 0 without a report.
inline constexpr int kHelpShown = -100;

// What sets the memory a command holds, for its out-of-memory message.
inline constexpr const char* kStepMemory = "the step's shape, -b streams of -L tokens, sets what a run holds: give smaller ones";
inline constexpr const char* kModelMemory = "the model's shape, d_model and n_layer, sets what it holds";
inline constexpr const char* kChunkMemory = "the chunk, -L tokens, sets what a run holds: give a smaller one";
inline constexpr const char* kStatsMemory = "the chunk, --chunk bases, sets what a run holds: give a smaller one";

// Runs a command: maps exceptions to one line on stderr and an exit code, then (verbosity > 0,
// read after the body ran) prints the version, command line, wall time and peak memory.
int run_command(const std::function<int()>& body, const CommonOptions& common,
                const char* memory = kStepMemory);

}  // namespace mambadna::app
