#include "app/cli.h"

#include <htslib/hts_log.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <new>
#include <set>

#include "io/error.h"
#include "io/temp_files.h"

namespace mambadna::app {

namespace {
std::string g_command_line;
// When the program started (static initialisation), for the run summary's real time: the CPU
// time it prints counts from there too.
const auto g_start = std::chrono::steady_clock::now();
std::string format_rate(double r) {
  char buf[32];
  if (r >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", r / 1e6);
  else if (r >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk", r / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.1f", r);
  return buf;
}
}  // namespace

void add_common_options(po::options_description& group, CommonOptions& common) {
  group.add_options()                                                                     //
      ("threads,@", po::value<int>(&common.threads)->default_value(1), "worker threads")  //
      ("verbosity,v", po::value<int>(&common.verbosity)->default_value(1),
       "0 warnings and errors only, 1 summary, 2 progress details, 3 debug")  //
      ("help,h", "print this help and exit");
}

bool parse_command_line(int argc, char** argv, const std::string& usage,
                        const std::vector<po::options_description*>& groups,
                        const po::options_description& hidden, const std::string& positional,
                        int max_positional, po::variables_map& vm) {
  po::options_description visible;
  for (auto* g : groups) visible.add(*g);
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description pos;
  if (!positional.empty()) pos.add(positional.c_str(), max_positional);
  // A command with no arguments at all: its usage on stderr, as samtools and bcftools give it.
  if (argc <= 1) {
    std::cerr << usage << "\n" << visible << "\n";
    throw UsageError(std::string("no arguments given: the options are above"));
  }
  std::map<std::string, std::pair<bool, bool>> given;  // each option: given as an option, as an argument
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).positional(pos).run();
    // An option given again takes its last value, as samtools and bcftools take it (a wrapper
    // appends -v 2 to a command line that had -v 0); repeatable ones (-r, --layer, the inputs)
    // keep every value.
    // Options that name a file to read (a model, a reference, a BED file, vep's VCF) are the
    // exception: a second, other file would be dropped unread, so it is refused.
    static const std::set<std::string> kReadFiles = {"model", "fasta-ref", "reference", "regions-file", "input"};
    std::map<std::string, size_t> last;
    for (size_t i = 0; i < parsed.options.size(); ++i) {
      const po::option& o = parsed.options[i];
      const auto seen = last.find(o.string_key);
      const po::option_description* d = all.find_nothrow(o.string_key, false);
      if (seen != last.end() && kReadFiles.count(o.string_key) && d && !d->semantic()->is_composing() &&
          o.position_key < 0 && parsed.options[seen->second].position_key < 0 &&
          parsed.options[seen->second].value != o.value)
        throw UsageError("--" + o.string_key + " is given twice (" + parsed.options[seen->second].value.at(0) +
                         ", " + o.value.at(0) + "): it reads one file; give one" +
                         (o.string_key == "regions-file" ? " (cat the BED files together, or add -r regions)" : ""));
      last[o.string_key] = i;
      (o.position_key >= 0 ? given[o.string_key].second : given[o.string_key].first) = true;
    }
    // ... but one value given both ways (info -m A.h5 B.h5) is two, not a correction.
    for (const auto& [key, ways] : given) {
      const po::option_description* d = all.find_nothrow(key, false);
      if (ways.first && ways.second && d && !d->semantic()->is_composing())
        throw UsageError("--" + key + " is given both as an option and as an argument: give one");
    }
    std::vector<po::option> kept;
    for (size_t i = 0; i < parsed.options.size(); ++i) {
      const po::option& o = parsed.options[i];
      const po::option_description* d = all.find_nothrow(o.string_key, false);
      if (o.position_key >= 0 || !d || d->semantic()->is_composing() || last[o.string_key] == i) kept.push_back(o);
    }
    parsed.options = std::move(kept);
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << visible << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::required_option& e) {
    if (!positional.empty() && e.get_option_name() == "--" + positional)  // not an option to the user
      throw UsageError(std::string("no input file given (see 'mambadna ") + argv[0] + " --help')");
    throw UsageError(std::string(e.what()) + " (see 'mambadna " + argv[0] + " --help')");
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError(std::string("too many arguments: 'mambadna ") + argv[0] + "' takes " +
                     (max_positional == 0   ? std::string("no file name without an option before it")
                      : max_positional == 1 ? std::string("one file name without an option before it")
                                            : "at most " + std::to_string(max_positional) + " file names") +
                     " (see 'mambadna " + argv[0] + " --help')");
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see 'mambadna " + argv[0] + " --help')");
  }
  // An empty value (an unset shell variable, -o "$OUT") names no file: refused before any work,
  // for every option alike (some ignored it, others failed after the work).
  for (const auto& [name, value] : vm) {
    if (value.defaulted() || value.empty()) continue;
    const auto* text = boost::any_cast<std::string>(&value.value());
    const auto* list = boost::any_cast<std::vector<std::string>>(&value.value());
    const bool empty = (text && text->empty()) ||
                       (list && std::any_of(list->begin(), list->end(), [](const std::string& v) { return v.empty(); }));
    // (vep's VCF is an argument or -i: the message names the way it came)
    const bool as_argument = name == positional && name.rfind("input", 0) == 0 && !given[name].first;
    if (empty)
      throw UsageError((as_argument ? std::string("an input") : "--" + name) +
                       " is an empty string (an unset variable?): give a file name or value");
  }
  if (vm.count("verbosity")) {
    const int v = vm["verbosity"].as<int>();
    if (v < 0 || v > 3) throw UsageError("-v/--verbosity " + std::to_string(v) + ": give 0 to 3");
  }
  if (vm.count("threads")) {
    const int t = vm["threads"].as<int>();
    if (t < 1 || t > 4096) throw UsageError("-@/--threads " + std::to_string(t) + ": give 1 to 4096");
  }
  // -L and -b past what any machine holds: refused here rather than as "out of memory" later.
  constexpr int64_t kMaxChunk = int64_t(1) << 26, kMaxStreams = int64_t(1) << 20;
  if (vm.count("chunk") && vm["chunk"].as<int64_t>() > kMaxChunk)
    throw UsageError("--chunk " + std::to_string(vm["chunk"].as<int64_t>()) + ": at most " +
                     std::to_string(kMaxChunk) + " tokens");
  for (const char* name : {"batch", "streams"})
    if (vm.count(name) && vm[name].as<int64_t>() > kMaxStreams)
      throw UsageError(std::string("-b/--") + name + " " + std::to_string(vm[name].as<int64_t>()) +
                       ": at most " + std::to_string(kMaxStreams));
  // -b: streams side by side (train's 0 chooses them from the records)
  for (const auto& [name, least] : {std::pair<const char*, int64_t>{"batch", 1}, {"streams", 0}})
    if (vm.count(name) && vm[name].as<int64_t>() < least)
      throw UsageError(std::string("-b/--") + name + " " + std::to_string(vm[name].as<int64_t>()) +
                       ": give at least " + std::to_string(least) + (least == 0 ? " (0: chosen from the records)" : ""));
  // htslib's own messages, as samtools and bcftools show them: its errors and warnings by default
  // (detail ours lacks, such as why a CRAM slice failed to decode; an INFO tag or contig a VCF
  // header does not declare, an index older than its file), its notes at -v 3, nothing with -v 0.
  const int v = vm.count("verbosity") ? vm["verbosity"].as<int>() : 1;
  hts_set_log_level(v <= 0 ? HTS_LOG_OFF : v <= 2 ? HTS_LOG_WARNING : HTS_LOG_INFO);
  return true;
}

Progress::Progress(std::string unit, int64_t total, int verbosity, std::FILE* out, double every)
    : unit_(std::move(unit)), total_(total), out_(out), terminal_(isatty(fileno(out))), every_(every),
      enabled_(terminal_ ? verbosity > 0 : verbosity > 1) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < (terminal_ ? 0.25 : every_)) return;
  last_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double rate = el > 0 ? done / el : 0;
  std::string line = std::string(terminal_ ? "\r" : "") + "[mambadna] " + format_rate(double(done)) + " " + unit_ + ", " +
                     format_rate(rate) + " " + unit_ + "/s, elapsed " + format_seconds(el);
  if (total_ > 0) {
    double frac = double(done) / double(total_);
    char pct[16];
    std::snprintf(pct, sizeof pct, " %5.1f%%", 100 * frac);
    line += pct;
    if (rate > 0) line += ", ETA " + format_seconds((total_ - done) / rate);
  }
  std::fprintf(out_, terminal_ ? "%s\033[K" : "%s\n", line.c_str());
  std::fflush(out_);
  drawn_ = terminal_;
}

void Progress::finish() {
  if (drawn_) std::fprintf(out_, "\r\033[K");
  drawn_ = false;
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

std::string command_line() { return g_command_line; }

std::string format_seconds(double s) {
  char buf[32];
  if (s < 0 || s > 1e7) return "?";
  int h = int(s / 3600), m = int(s / 60) % 60, sec = int(s) % 60;
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%dh%02dm%02ds", h, m, sec);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", m, sec);
  return buf;
}

namespace {
std::atomic<bool> g_dying{false};  // a signal sent to the process group reaches several threads
}  // namespace

extern "C" void remove_outputs_and_die(int sig) {
  if (g_dying.exchange(true)) return;  // the first thread removes, says and ends
  const int removed = mambadna::io::remove_temp_files();
  const bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;
  if (fault) {  // (a bug, or a library's on input it did not expect)
    static const char crashed[] = "mambadna: crashed (a fault signal); incomplete output files removed\n";
    static const char crashed_bare[] = "mambadna: crashed (a fault signal)\n";
    if (removed > 0) (void)!::write(2, crashed, sizeof crashed - 1);
    else (void)!::write(2, crashed_bare, sizeof crashed_bare - 1);
  } else if (sig != SIGPIPE) {
    static const char stopped[] = "mambadna: stopped by a signal\n";
    static const char cleaned[] = "mambadna: stopped by a signal; incomplete output files removed\n";
    if (removed > 0) (void)!::write(2, cleaned, sizeof cleaned - 1);
    else (void)!::write(2, stopped, sizeof stopped - 1);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

bool catch_signal(int sig, void (*handler)(int)) {
  struct sigaction now {};
  if (::sigaction(sig, nullptr, &now) != 0 || now.sa_handler == SIG_IGN) return false;
  std::signal(sig, handler);
  return true;
}

bool catch_signal(int sig, void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction now {};
  if (::sigaction(sig, nullptr, &now) != 0 || now.sa_handler == SIG_IGN) return false;
  struct sigaction act {};
  act.sa_sigaction = handler;
  act.sa_flags = SA_SIGINFO;
  sigemptyset(&act.sa_mask);
  return ::sigaction(sig, &act, nullptr) == 0;
}

void install_signal_cleanup() {
  // SIGABRT: an assertion of a library (htslib's, on data it did not expect) ends the program
  // as a signal would.
  // SIGSEGV, SIGBUS, SIGFPE, SIGILL: a crash (a bug, or a library's on data it did not expect)
  // leaves no half file either; the handler then ends the program with the same signal.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGXCPU, SIGABRT, SIGALRM, SIGUSR1, SIGUSR2, SIGSEGV,
                  SIGBUS, SIGFPE, SIGILL})
    catch_signal(sig, remove_outputs_and_die);
  // A file-size limit (ulimit -f): the write past it fails with EFBIG, which the writer reports
  // ("File too large") and the outputs' temporaries go, instead of a silent SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
}

namespace {
bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ea, eb;
  if (fs::exists(a, ea) && fs::exists(b, eb)) return fs::equivalent(a, b, ea) && !ea;
  // Absolute first: a path none of whose parts exists stays relative (x.h5 against ./x.h5).
  const fs::path ca = fs::weakly_canonical(fs::absolute(a, ea), ea), cb = fs::weakly_canonical(fs::absolute(b, eb), eb);
  return !ea && !eb && ca == cb;
}
}  // namespace

std::string count_of(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void refuse_binary_to_terminal(const std::string& option, const std::string& path, const std::string& what) {
  if (path == "-" && ::isatty(STDOUT_FILENO))
    throw UsageError(option + " -: standard output is a terminal, and " + what +
                     " is binary: give a file name, or redirect standard output (> file)");
}

void refuse_same_files(const NamedPaths& outputs, const NamedPaths& inputs) {
  // Standard input can be read once: named twice ("-", or its names under /dev and /proc), the
  // second would read nothing.
  const std::string* first_stdin = nullptr;
  for (const auto& [in_opt, in_path] : inputs) {
    if (in_path != "-" && in_path != "/dev/stdin" && in_path != "/dev/fd/0" && in_path != "/proc/self/fd/0")
      continue;
    if (first_stdin && *first_stdin == in_opt)
      throw UsageError("standard input (-) is given twice as " + in_opt + "; it can be read only once");
    if (first_stdin)
      throw UsageError("standard input (-) is given twice, as " + *first_stdin + " and as " + in_opt +
                       "; it can be read only once");
    first_stdin = &in_opt;
  }
  auto skip = [](const std::string& p) { return p.empty() || p == "-"; };
  // An input's index is read with it (vep -o ref.fa.fai replaced the reference's index), also
  // under its other name (ex1.bai for ex1.bam).
  NamedPaths read = inputs;
  for (const auto& [in_opt, in_path] : inputs) {
    if (skip(in_path)) continue;
    const std::filesystem::path p(in_path);
    std::vector<std::string> indexes;
    for (const char* ext : {".fai", ".gzi", ".bai", ".csi", ".crai", ".tbi"}) indexes.push_back(in_path + ext);
    if (p.extension() == ".bam") indexes.push_back(std::filesystem::path(p).replace_extension(".bai").string());
    if (p.extension() == ".cram") indexes.push_back(std::filesystem::path(p).replace_extension(".crai").string());
    for (const std::string& index : indexes) {
      std::error_code ec;
      if (std::filesystem::exists(index, ec)) read.push_back({in_opt + "'s index", index});
    }
  }
  // Where the run writes on standard output ("-" among the outputs), a named output that is
  // where standard output goes (score ... --bedgraph f > f, --bedgraph /dev/stdout) would be
  // mixed with it.
  struct stat out_st {};
  const bool stdout_used = std::any_of(outputs.begin(), outputs.end(), [](const auto& o) { return o.second == "-"; });
  const bool stdout_known = stdout_used && ::fstat(STDOUT_FILENO, &out_st) == 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [opt, path] = outputs[i];
    if (skip(path)) continue;
    struct stat st {};
    // (Character devices, /dev/null the most often, mix nothing: only files and pipes count.)
    if (stdout_known && ::stat(path.c_str(), &st) == 0 && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino &&
        !S_ISCHR(st.st_mode))
      throw UsageError(opt + " " + path + " is where standard output goes, which the run writes too: the "
                       "two would be mixed; give another output name");
    for (const auto& [in_opt, in_path] : read)
      if (!skip(in_path) && same_file(path, in_path))
        throw UsageError(opt + " " + path + " is the same file as " + in_opt + " " + in_path +
                         ": writing it would replace it; give another output name");
    for (size_t j = 0; j < i; ++j)
      if (!skip(outputs[j].second) && same_file(path, outputs[j].second))
        throw UsageError(opt + " " + path + " is the same file as " + outputs[j].first + " " +
                         outputs[j].second + "; give each output its own name");
  }
}

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) g_command_line += ' ';
    g_command_line += argv[i];
  }
}

int run_command(const std::function<int()>& body, const CommonOptions& common, const char* memory) {
  int rc = 0;
  try {
    rc = body();
    if (rc == kHelpShown) return 0;
  } catch (const UsageError& e) {
    std::cerr << "mambadna: " << e.what() << "\n";
    rc = 2;
  } catch (const Error& e) {
    std::cerr << "mambadna: " << e.what() << "\n";
    rc = 1;
  } catch (const std::filesystem::filesystem_error& e) {  // a file system refusal, not a bug
    std::cerr << "mambadna: " << (e.path1().empty() ? std::string() : e.path1().string() + ": ")
              << e.code().message() << "\n";
    rc = 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "mambadna: out of memory (" << memory << ")\n";
    rc = 1;
  } catch (const std::exception& e) {
    std::cerr << "mambadna: internal error: " << e.what() << "\n";
    rc = 1;
  }
  // The run's summary, as minimap2 prints it; not after a usage error, which ran nothing.
  if (rc != 2 && common.verbosity > 0) {
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
    std::fprintf(stderr, "[mambadna] Version: %s\n", MAMBADNA_VERSION);
    std::fprintf(stderr, "[mambadna] CMD: %s\n", g_command_line.c_str());
    std::fprintf(stderr, "[mambadna] Real time: %.3f sec; CPU: %.3f sec; Peak RSS: %.3f GB\n", el,
                 double(std::clock()) / CLOCKS_PER_SEC, peak_rss_bytes() / 1e9);
  }
  return rc;
}

}  // namespace mambadna::app
