// One entry point per `mambadna <command>`; each lives in app/cmd_<name>.cpp.
#pragma once

namespace mambadna::app {

struct Command {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);  // argv[0] is the command name
};

int cmd_stats(int argc, char** argv);
int cmd_init(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_embed(int argc, char** argv);
int cmd_vep(int argc, char** argv);

// The table `mambadna --help` lists, in this order.
inline constexpr Command kCommands[] = {
    {"stats", "stream sequences through the tokenizer and count bases", cmd_stats},
    {"init", "create a model checkpoint from a preset and options", cmd_init},
    {"info", "print a checkpoint's config, parameter count and tokenizer", cmd_info},
    {"train", "pretrain a model on sequences (truncated BPTT, AdamW)", cmd_train},
    {"score", "log-likelihood of sequences per record and per base", cmd_score},
    {"embed", "hidden states of regions or records to HDF5", cmd_embed},
    {"vep", "zero-shot variant effect scores (log-likelihood ratios) into a VCF", cmd_vep},
};

}  // namespace mambadna::app
