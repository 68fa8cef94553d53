// mambadna: DNA language modelling with Mamba. `mambadna <command> [options]`.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "io/error.h"
#include "io/h5.h"
#include "kernels/cpu_variant.h"

namespace {
void print_usage(FILE* out) {
  std::fprintf(out,
               "mambadna %s: DNA language modelling with Mamba selective state-space models\n\n"
               "Usage: mambadna <command> [options]\n\nCommands:\n",
               MAMBADNA_VERSION);
  for (const auto& c : mambadna::app::kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n'mambadna <command> --help' lists a command's options.\n"
               "'mambadna --version' prints the version.\n");
}

// A command's exit status, unless what it wrote on standard output did not all get there (a
// full disk, /dev/full): then 1, said.
int finish(int status) {
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    if (status == 0) {
      std::fprintf(stderr, "mambadna: standard output: write failed: %s\n", std::strerror(errno));
      return 1;
    }
  }
  return status;
}
}  // namespace

int main(int argc, char** argv) {
  mambadna::app::set_command_line(argc, argv);
  mambadna::io::set_string_probe(true);  // files are read here while nothing else runs
  if (argc < 2) {  // a usage error, as every other (exit 2)
    print_usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  const std::string topic = argc > 2 ? argv[2] : "";
  if (cmd == "help" && argc > 2 && topic != "help" && topic != "-h" && topic != "--help") {  // `mambadna help train`
    for (const auto& c : mambadna::app::kCommands)
      if (argv[2] == std::string(c.name)) {
        char help[] = "--help";
        char* args[] = {argv[2], help, nullptr};
        return finish(c.main(2, args));
      }
    std::fprintf(stderr, "mambadna: unknown command '%s' (see 'mambadna --help')\n", argv[2]);
    return 2;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage(stdout);
    return finish(0);
  }
  // The CPU kernels to run (kernels/cpu_variant.h): chosen now, so that a MAMBADNA_CPU_KERNELS
  // this processor cannot run is refused before a command opens anything.
  std::string kernels;
  try {
    kernels = mambadna::kernels::cpu::active_variant();
  } catch (const mambadna::UsageError& e) {
    std::fprintf(stderr, "mambadna: %s\n", e.what());
    return 2;
  }
  if (cmd == "--version" || cmd == "version") {
    std::string built;
    for (const auto& v : mambadna::kernels::cpu::variants())
      built += (built.empty() ? "" : ", ") + v.name + (v.supported ? "" : " (not on this CPU)");
    std::printf("mambadna %s\nCPU kernels: %s (built: %s; MAMBADNA_CPU_KERNELS chooses)\n",
                MAMBADNA_VERSION, kernels.c_str(), built.c_str());
    return finish(0);
  }
  mambadna::app::install_signal_cleanup();
  for (const auto& c : mambadna::app::kCommands)
    if (cmd == c.name) return finish(c.main(argc - 1, argv + 1));
  std::fprintf(stderr, "mambadna: unknown command '%s' (see 'mambadna --help')\n", cmd.c_str());
  return 2;
}
