// mambadna: DNA language modelling with Mamba. `mambadna <command> [options]`.
#include <cstdio>
#include <cstring>
#include <string>

#include "app/cli.h"
#include "app/commands.h"

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
}  // namespace

int main(int argc, char** argv) {
  mambadna::app::set_command_line(argc, argv);
  if (argc < 2) {
    print_usage(stderr);
    return 1;
  }
  std::string cmd = argv[1];
  if (cmd == "help" && argc > 2) {  // `mambadna help train`, as `git help commit`
    for (const auto& c : mambadna::app::kCommands)
      if (argv[2] == std::string(c.name)) {
        char help[] = "--help";
        char* args[] = {argv[2], help, nullptr};
        return c.main(2, args);
      }
    std::fprintf(stderr, "mambadna: unknown command '%s' (see 'mambadna --help')\n", argv[2]);
    return 1;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage(stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("mambadna %s\n", MAMBADNA_VERSION);
    return 0;
  }
  mambadna::app::install_signal_cleanup();
  for (const auto& c : mambadna::app::kCommands)
    if (cmd == c.name) return c.main(argc - 1, argv + 1);
  std::fprintf(stderr, "mambadna: unknown command '%s' (see 'mambadna --help')\n", cmd.c_str());
  return 1;
}
