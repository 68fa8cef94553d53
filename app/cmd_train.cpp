// `mambadna train`: pretrain a model on genomes or reads with truncated BPTT.
#include <atomic>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <set>
#include <string>

#include "app/cli.h"
#include "app/device_options.h"
#include "app/input_options.h"
#include "io/error.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "pipelines/train.h"

namespace mambadna::app {

namespace {
std::atomic<bool> g_stop{false};
volatile std::sig_atomic_t g_signal = 0;
// SIGPIPE: standard error was a pipe whose reader ended (`2>&1 | head`, a log shipper gone):
// the run stops as for the others, with a checkpoint, rather than die with the hours since the
// last one.
// SIGXCPU, SIGUSR1, SIGUSR2: what batch schedulers send before they end a job (a CPU-time limit,
// SLURM's --signal, SGE's and LSF's warnings): a checkpoint, then the exit.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGXCPU, SIGUSR1, SIGUSR2};
// The first stop signal's sender and time: the same signal from the same sender within a
// second is that signal sent twice (GNU timeout sends it to the program, then to its process
// group), not a second one.
volatile std::sig_atomic_t g_first_pid = 0, g_first_code = 0;
timespec g_first_at{};
extern "C" void on_signal(int sig, siginfo_t* info, void*) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  if (g_signal == 0) {
    g_signal = sig;
    g_first_pid = info ? info->si_pid : 0, g_first_code = info ? info->si_code : 0;
    g_first_at = now;
    g_stop.store(true);
    // SIGPIPE comes again with every line written to the closed pipe: from now on those
    // writes just fail.
    std::signal(SIGPIPE, SIG_IGN);
    return;
  }
  const double since = double(now.tv_sec - g_first_at.tv_sec) + 1e-9 * double(now.tv_nsec - g_first_at.tv_nsec);
  if (sig == g_signal && info && info->si_pid == g_first_pid && info->si_code == g_first_code && since < 1.0)
    return;
  // A second signal ends the run at once, without a checkpoint (and without the one being
  // written, if any).
  remove_outputs_and_die(sig);
}
}  // namespace

int cmd_train(int argc, char** argv) {
  CommonOptions common;
  InputOptions input;
  pipelines::TrainOptions o;
  int64_t seed = 1;  // (signed: Boost reads -1 into an unsigned type as 2^64 - 1)
  std::string max_time;
  po::options_description run("Run");
  run.add_options()                                                                       //
      ("model,m", po::value(&o.init_model), "initial checkpoint (from 'mambadna init')")   //
      ("output,o", po::value(&o.run_dir)->required(), "run directory: metrics.tsv, checkpoint-*.h5, model.h5")
      ("resume", po::bool_switch(&o.resume), "continue the run in the -o directory from its last checkpoint")
      ("steps", po::value(&o.steps)->default_value(0), "optimiser steps (or give --tokens)")
      ("tokens", po::value(&o.tokens)->default_value(0),
       "training token slots; steps = tokens / (b * L), rounded down, at least 1 (metrics.tsv's "
       "tokens counts the positions trained on: no padding, no N)")
      ("max-time", po::value(&o.max_seconds)->default_value(0), "stop after this many seconds, with a checkpoint (0: no limit)");
  DeviceOptions device;
  add_device_options(run, device);
  po::options_description data("Data");
  data.add_options()                                                                      //
      ("streams,b", po::value(&o.streams)->default_value(0),
       "B: streams walking the data side by side (0: 8, or with records chosen short by -L 0, "
       "enough for B * L to be about 16,384 tokens, at most 512 and the number of records)")
      ("chunk,L", po::value(&o.chunk)->default_value(0),
       "L: tokens per stream per step (0: 2048, or where 99% of the training records are shorter "
       "(reads), their length rounded up to 8, at least 16: a chunk a record)")
      ("valid", po::value(&o.valid_inputs)->composing(), "validation input (repeatable)")
      ("holdout", po::value(&o.holdout)->default_value(0.0, "0"),
       "validate on the last fraction of each training record instead")
      ("holdout-records", po::bool_switch(&o.holdout_records),
       "--holdout takes the last fraction of the records, whole, not each record's tail (for reads)")
      ("valid-tokens", po::value(&o.valid_tokens)->default_value(0),
       "cap on the validation tokens of each evaluation but the last (the run's end, --steps or "
       "--max-time, reads all) (0: all); records up to 65,536 bases (reads) are scored whole, "
       "longer ones in 8 shares, each from a zero state")
      ("rc-augment", po::bool_switch(&o.rc_augment), "reverse-complement each block on a coin toss (seeded by --seed)")
      ("block", po::value(&o.block)->default_value(1 << 20), "tokens a stream buffers; state is carried across blocks");
  add_input_options(data, input, InputsFor::training);
  po::options_description optim("Optimiser (AdamW, warm-up then cosine decay)");
  optim.add_options()                                                                       //
      ("lr", po::value(&o.lr)->default_value(2e-3, "2e-3"), "peak learning rate")                    //
      ("min-lr", po::value(&o.min_lr)->default_value(2e-4, "--lr/10"), "learning rate at the end (at most --lr)")  //
      ("warmup", po::value(&o.warmup)->default_value(100), "linear warm-up steps")          //
      ("beta1", po::value(&o.beta1)->default_value(0.9, "0.9"), "AdamW decay of the gradient's running mean")  //
      ("beta2", po::value(&o.beta2)->default_value(0.95, "0.95"), "AdamW decay of its running square")        //
      ("eps", po::value(&o.eps)->default_value(1e-8, "1e-8"), "AdamW term added to the root of that")        //
      ("weight-decay", po::value(&o.weight_decay)->default_value(0.1, "0.1"), "on the weight matrices, conv1d kernels and the embedding; not A_log, D, norms or biases (as mamba_ssm sets it)")
      ("clip", po::value(&o.clip)->default_value(1.0, "1"), "global gradient-norm clipping (0: off)")
      ("seed", po::value(&seed)->default_value(1), "data seed: reverse-complement coins, the order reads are taken in");
  po::options_description book("Bookkeeping");
  book.add_options()                                                                        //
      ("valid-every", po::value(&o.valid_every)->default_value(0), "validate every N steps (0: at the end)")
      ("ckpt-every", po::value(&o.ckpt_every)->default_value(1000),
       "checkpoint every N steps (0: only at the end or when stopped)")
      ("keep", po::value(&o.keep)->default_value(3), "checkpoints kept (at least 1)");
  po::options_description general("General");
  add_common_options(general, common);
  po::options_description hidden;
  hidden.add_options()("inputs", po::value(&o.inputs), "inputs");
  po::variables_map vm;
  return run_command(
      [&] {
        if (!parse_command_line(
                argc, argv,
                "Usage: mambadna train -m init.h5 -o run/ [options] INPUT...\n"
                "       mambadna train --resume -o run/\n"
                "SIGINT/SIGTERM/SIGHUP/SIGPIPE, and SIGXCPU/SIGUSR1/SIGUSR2 (a batch scheduler's\n"
                "warnings), finish the step, write a checkpoint and exit.",
                {&run, &data, &optim, &book, &general}, hidden, "inputs", -1, vm))
          return kHelpShown;
        kernels::CpuThreads threads(common.threads);
        if (o.resume) {  // the run's options are in its checkpoint: refuse others than these
          for (const auto& [name, value] : vm) {
            static const std::set<std::string> kResumeOptions = {
                "output", "resume", "max-time", "device", "precision", "threads", "verbosity"};
            if (!value.defaulted() && !kResumeOptions.count(name))
              throw UsageError(
                  (name == "inputs" ? std::string("input files") : std::string("--").append(name))
                      .append(": a resumed run keeps the options it was started with (only "
                              "--max-time, --device, --precision, -@ and -v may be given); to train "
                              "further, start a new run with -m ")
                      .append(o.run_dir)
                      .append("/model.h5 (a run stopped early: its last checkpoint-*.h5)"));
          }
        }
        if (!o.resume) {
          if (o.init_model.empty()) throw UsageError("give -m init.h5 for a new run, or --resume");
          if (vm["min-lr"].defaulted()) o.min_lr = o.lr / 10;  // a tenth of the peak, whatever it is
          if (seed < 0) throw UsageError("--seed " + std::to_string(seed) + ": give 0 or more");
          o.seed = uint64_t(seed);
          auto cfg = model::read_config(io::H5File::open_read(o.init_model));
          o.reader = reader_options("train", input, common, cfg, true);
        } else {  // the checkpoint gives the reader options, but not where warnings go
          o.reader.on_regions_skipped = warn_skipped_regions("train");
        }
        while (o.run_dir.size() > 1 && o.run_dir.back() == '/') o.run_dir.pop_back();  // (rq/ names rq/model.h5)
        o.command_line = command_line();
        o.max_seconds_set = !vm["max-time"].defaulted();
        o.device = apply_device_options(device, common.verbosity);
        for (int s : kStopSignals) catch_signal(s, on_signal);  // (a signal from here on: no step, or a checkpoint)
        auto res = pipelines::train(
            o,
            [&](const pipelines::StepReport& r) {
              if (common.verbosity < 1) return;
              char line[320];
              if (r.empty) {
                std::snprintf(line, sizeof line, "[train] step %lld/%lld  no A/C/G/T target (an N run): no update  lr %.2e",
                              (long long)r.step, (long long)r.steps, r.lr);
                std::fprintf(stderr, "%s\n", line);
                return;
              }
              std::snprintf(line, sizeof line,
                            "[train] step %lld/%lld  loss %s  bpb %s  lr %.2e  gnorm %s  %.0f tok/s  ETA %s%s%s",
                            (long long)r.step, (long long)r.steps, pipelines::metric_text(r.loss, "%.4f").c_str(),
                            pipelines::metric_text(r.bits_per_base, "%.4f").c_str(), r.lr,
                            pipelines::metric_text(r.grad_norm, "%.3f").c_str(),
                            r.tokens_per_s, format_seconds(r.eta_s).c_str(),
                            r.valid_bpb >= 0 ? ("  valid bpb " + std::to_string(r.valid_bpb)).c_str() : "",
                            r.skipped ? "  SKIPPED (non-finite)" : "");
              std::fprintf(stderr, "%s\n", line);
            },
            &g_stop,
            [&](const std::string& line) {  // the shape it chose; warnings (shown at -v 0 too)
              if (common.verbosity >= 1 || line.rfind("warning", 0) == 0)
                std::fprintf(stderr, "[train] %s\n", line.c_str());
            });
        if (o.resume && res.first_step >= res.steps_planned && common.verbosity >= 1)
          std::fprintf(stderr, "[train] the run had already finished (step %lld of %lld): nothing to do\n",
                       (long long)res.first_step, (long long)res.steps_planned);
        if (res.interrupted) {  // resumable, but not finished: 128 + the signal, as a shell reports it
          if (res.checkpoint.empty())  // a new run, stopped before its first step
            std::fprintf(stderr, "[train] stopped by a signal before the first step: nothing written\n");
          else
            std::fprintf(stderr, "[train] interrupted at step %lld; resume from checkpoint %s\n",
                         (long long)res.steps, res.checkpoint.c_str());
          return 128 + (g_signal ? int(g_signal) : SIGINT);
        }
        if (res.signal_at_end) {  // complete, but stopped as asked
          std::fprintf(stderr, "[train] a signal came at the last step: the run is complete (%s/model.h5), its last "
                               "validation capped (--valid-tokens) or cut short\n",
                       o.run_dir.c_str());
          return 128 + (g_signal ? int(g_signal) : SIGINT);
        }
        if (res.time_up && common.verbosity >= 1)
          std::fprintf(stderr, "[train] --max-time reached at step %lld of %lld; model %s/model.h5, checkpoint %s\n",
                       (long long)res.steps, (long long)res.steps_planned, o.run_dir.c_str(),
                       res.checkpoint.c_str());
        return 0;
      },
      common);
}

}  // namespace mambadna::app
