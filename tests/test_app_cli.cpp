// The program as a user runs it: help and version, exit codes, and each command end to end on
// small inputs (init -> info -> train -> score -> embed -> vep through files and pipes).
#include <catch2/catch.hpp>
#include <csignal>
#include <htslib/faidx.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/isa.h"
#include "io/fasta_index.h"
#include "io/h5.h"
#include "kernels/cpu_variant.h"
#include "kernels/device.h"
#include "test_golden.h"
#include "test_io_util.h"
#include "tests/cuda_testing.h"
#include "tests/test_paths.h"

using mambadna::test::TempDir;
using mambadna::test::kGolden;
using mambadna::test::run_shell;

namespace {
const std::string kBin = "'" + mambadna::test::binary_path() + "'";

// `mambadna init` of a tiny model (D 32) into dir; returns its path.
std::string init_tiny(const TempDir& dir, const std::string& extra = "") {
  int st = -1;
  const std::string m = dir.file("m.h5");
  run_shell(kBin + " init -v0 -p tiny --d-model 32 " + extra + " -o '" + m + "'", st);
  REQUIRE(st == 0);
  return m;
}
}

TEST_CASE("cli: refusals say one line and leave nothing behind (train -o -, a directory, nothing to validate, -v 0)", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string lambda = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  const std::string empty = dir.write("empty.fa", "");
  const std::string in_dir = dir.file("indir");
  std::filesystem::create_directories(in_dir);
  const std::string train = kBin + " train -v0 -@ 1 -m '" + m + "' -b 2 -L 64 --steps 2 ";
  struct Case {
    std::string args, message;
    int status;
  };
  for (const Case& c : {Case{"-o - '" + lambda + "'", "train: -o -: a run is a directory", 2},
                        Case{"-o '" + dir.file("r1") + "' '" + in_dir + "'", in_dir + ": cannot read: is a directory", 1},
                        Case{"-o '" + dir.file("r2") + "' '" + empty + "'", empty + ": not enough data: 0 tokens", 1},
                        Case{"-o '" + dir.file("r3") + "' '" + lambda + "' --valid '" + empty + "'",
                             empty + ": --valid: no record has two bases", 1}}) {
    INFO(c.args);
    const std::string err = run_shell(train + c.args + " 2>&1", st);
    CHECK(st == c.status);
    CHECK(err.find(c.message) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);  // -v 0: the error alone
  }
  for (const char* run : {"-", "r1", "r2", "r3"}) CHECK_FALSE(std::filesystem::exists(dir.file(run)));
  // A command line refused by the option parser honours -v 0 too: no end-of-run lines.
  for (const std::string& cmd : {std::string(" init -v 0 -p tiny --d-model abc -o x.h5"), std::string(" init -v0 --bogus"),
                                 std::string(" info --verbosity=0 a.h5 b.h5")}) {
    INFO(cmd);
    const std::string err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("[mambadna]") == std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  // An HDF5 file for standard output is written in $TMPDIR first: one that is not there is named.
  const std::string err = run_shell("TMPDIR=/nonexistent " + kBin + " embed -v0 -m '" + m + "' '" + lambda +
                                        "' -o - 2>&1 >/dev/null", st);
  CHECK(st == 1);
  CHECK(err.find("TMPDIR=/nonexistent: not a directory (the temporary directory") != std::string::npos);
  // stats writes its header with the first line: a refusal at the first input leaves stdout empty.
  const std::string out = run_shell("printf '>a\\nACGT\\n' | " + kBin + " stats -v0 -r a:1-2 - 2>/dev/null", st);
  CHECK(st == 2);
  CHECK(out.empty());
}

TEST_CASE("cli: help, version and exit codes", "[app]") {
  int st = -1;
  auto out = run_shell(kBin + " --version", st);
  CHECK(st == 0);
  CHECK(out.find("mambadna ") == 0);
  // The CPU kernels: the widest this processor runs, or those MAMBADNA_CPU_KERNELS names; one it
  // cannot run, or that the build lacks, is refused before anything else.
  const auto variants = mambadna::kernels::cpu::variants();
  for (const auto& v : variants)
    if (v.supported) {
      CHECK(out.find("\nCPU kernels: " + v.name + " (built: ") != std::string::npos);
      break;
    }
  out = run_shell("MAMBADNA_CPU_KERNELS=" + variants.back().name + " " + kBin + " --version", st);
  CHECK(st == 0);
  CHECK(out.find("\nCPU kernels: " + variants.back().name + " (built: ") != std::string::npos);
  std::string err = run_shell("MAMBADNA_CPU_KERNELS=sse9 " + kBin + " score -m x.h5 x.fa 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("MAMBADNA_CPU_KERNELS=sse9: no such CPU kernels in this build (built: ") == 10);
  out = run_shell(kBin + " --help", st);
  CHECK(st == 0);
  for (const char* cmd : {"stats", "init", "info", "train", "score", "embed", "vep"}) {
    INFO(cmd);
    CHECK(out.find(std::string("  ") + cmd + " ") != std::string::npos);
    auto help = run_shell(kBin + " " + cmd + " --help", st);
    CHECK(st == 0);
    CHECK(help.find("Usage: mambadna " + std::string(cmd)) != std::string::npos);
    CHECK(help.find("-@ [ --threads ] arg (=1)") != std::string::npos);  // grouped, with defaults
  }
  run_shell(kBin + " nonsense 2>/dev/null", st);
  CHECK(st == 2);  // usage errors are 2, a command's or the program's
  run_shell(kBin + " 2>/dev/null", st);
  CHECK(st == 2);
  // A command with no arguments prints its usage on stderr, as samtools does, and exits 2.
  for (const char* cmd : {"stats", "init", "info", "train", "score", "embed", "vep"}) {
    INFO(cmd);
    const std::string usage = run_shell(kBin + " " + cmd + " 2>&1 >/dev/null", st);
    CHECK(st == 2);
    CHECK(usage.find("Usage: mambadna " + std::string(cmd)) != std::string::npos);
    CHECK(usage.find("no arguments given") != std::string::npos);
  }
  out = run_shell(kBin + " help train", st);  // as train --help
  CHECK(st == 0);
  CHECK(out.find("Usage: mambadna train") == 0);
  // What goes to standard output must get there: a full device is an error, said.
  err = run_shell(kBin + " --version 2>&1 >/dev/full", st);
  CHECK(st == 1);
  CHECK(err.find("standard output: write failed") != std::string::npos);
  TempDir dir;
  const std::string m = init_tiny(dir);
  err = run_shell(kBin + " info -v0 '" + m + "' 2>&1 >/dev/full", st);
  CHECK(st == 1);
  CHECK(err == "mambadna: standard output: write failed: No space left on device\n");
  // Numbers past what any machine holds are usage errors, not "out of memory" later.
  const std::vector<std::string> too_big = {" score -m '" + m + "' x.fa -L 99999999999", " score -m '" + m + "' x.fa -b 99999999999",
                                            " stats --chunk 99999999999 x.fa", " stats --chunk -1 x.fa", " info -v 9 '" + m + "'"};
  for (const std::string& cmd : too_big) {
    INFO(cmd);
    err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);  // the message alone: no run summary
  }
  run_shell(kBin + " score --no-such-option x 2>/dev/null", st);
  CHECK(st == 2);  // usage error
  run_shell(kBin + " score -m /nonexistent/model.h5 x.fa 2>/dev/null", st);
  CHECK(st == 1);  // input error
}

TEST_CASE("cli: init, info, train, score, embed and vep end to end", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir, "--seed 3");
  auto info = run_shell(kBin + " info -v0 '" + m + "'", st);
  CHECK(st == 0);
  CHECK(info.find("d_model\t32\n") != std::string::npos);
  CHECK(info.find("n_layer\t2\n") != std::string::npos);
  CHECK(info.find("tokenizer_case\tupper\n") != std::string::npos);

  const std::string lambda = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  const std::string run = dir.file("run");
  run_shell(kBin + " train -v0 -@2 -m '" + m + "' -o '" + run + "' '" + lambda +
                "' --steps 4 -b 2 -L 128 --holdout 0.1 --valid-tokens 1000 --warmup 1",
            st);
  REQUIRE(st == 0);
  CHECK(std::filesystem::exists(run + "/model.h5"));
  CHECK(std::filesystem::exists(run + "/checkpoint-00000004.h5"));

  // score from standard input to standard output
  auto tsv = run_shell("zcat '" + lambda + "' | " + kBin + " score -v0 -m '" + run + "/model.h5' -", st);
  CHECK(st == 0);
  CHECK(tsv.find("#input\trecord") == 0);
  CHECK(tsv.find("-\tgi|9626243|ref|NC_001416.1|\t0\t48502\t48501\t") != std::string::npos);

  // embed to HDF5, read back by h5dump (an independent reader)
  const std::string e = dir.file("e.h5");
  run_shell(kBin + " embed -v0 -m '" + run + "/model.h5' '" + lambda + "' -o '" + e + "' --pool mean", st);
  CHECK(st == 0);
  auto dump = run_shell("h5dump -H '" + e + "'", st);
  CHECK(st == 0);
  CHECK(dump.find("DATASET \"final\"") != std::string::npos);
  CHECK(dump.find("( 1, 32 )") != std::string::npos);

  // vep: VCF on stdin, VCF on stdout, against an indexed copy of the golden input
  const std::string fa = dir.copy(kGolden + "input.fa", "ref.fa");
  REQUIRE(fai_build(fa.c_str()) == 0);
  mambadna::io::FastaIndex idx(fa);
  const std::string r100 = idx.fetch("lambda_10001_11500", 99, 100), r200 = idx.fetch("lambda_10001_11500", 199, 200);
  const std::string alt100 = r100 == "A" ? "G" : "A", alt200 = r200 == "C" ? "T" : "C";
  const std::string vcf = dir.write("in.vcf",
      "##fileformat=VCFv4.2\n##contig=<ID=lambda_10001_11500,length=1500>\n"
      "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
      "lambda_10001_11500\t100\t.\t" + r100 + "\t" + alt100 + "\t.\t.\t.\n"
      "lambda_10001_11500\t200\t.\t" + r200 + "\t" + alt200 + ",<DEL>\t.\t.\t.\n");
  auto out = run_shell("cat '" + vcf + "' | " + kBin + " vep -v0 -m '" + m + "' -f '" + fa +
                           "' -i - -o - --window 256 | grep -v '^##'",
                       st);
  CHECK(st == 0);
  CHECK(out.find("MAMBADNA_STATUS=") != std::string::npos);
  CHECK(out.find("MAMBADNA_STATUS=ok\n") != std::string::npos);
  CHECK(out.find("MAMBADNA_STATUS=ok,symbolic") != std::string::npos);
  // Two records in, two records out.
  size_t records = 0;
  for (size_t p = out.find('\n'); p != std::string::npos && p + 1 < out.size(); p = out.find('\n', p + 1))
    ++records;
  CHECK(records == 2);
  // The VCF as an argument, as bcftools takes it: the same output as -i.
  const auto positional = run_shell(kBin + " vep -v0 -m '" + m + "' -f '" + fa + "' -o - --window 256 '" + vcf +
                                        "' | grep -v '^##'",
                                    st);
  CHECK(st == 0);
  CHECK(positional == out);
}

TEST_CASE("cli: --device and --precision", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string lambda = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  for (const char* cmd : {"score", "embed", "train", "vep"}) {
    INFO(cmd);
    auto help = run_shell(kBin + " " + cmd + " --help", st);
    CHECK(help.find("--device arg (=cpu)") != std::string::npos);
    CHECK(help.find("--precision arg (=fp32)") != std::string::npos);
  }
  // Bad values are usage errors naming the option, before any input is read.
  auto err = run_shell(kBin + " score -v0 -m '" + m + "' --device gpu '" + lambda + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--device: 'gpu' is not cpu, cuda or cuda:N") != std::string::npos);
  err = run_shell(kBin + " score -v0 -m '" + m + "' --precision bf16 '" + lambda + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--precision bf16 applies to --device cuda only") != std::string::npos);
  // A device that is not there: a clear error (on a machine with GPUs, one past the last).
  err = run_shell(kBin + " score -v0 -m '" + m + "' --device cuda:99 '" + lambda + "' 2>&1", st);
  // (no backend or no device: the machine's, exit 1; an index past those there: the command's)
  CHECK(st == (mambadna::kernels::cuda::built() && mambadna::kernels::cuda::device_count() > 0 ? 2 : 1));
  CHECK((err.find("cuda:99: no such device") != std::string::npos ||
         err.find("no CUDA backend") != std::string::npos));
  // The CPU device by name gives the same scores as the default.
  const auto a = run_shell(kBin + " score -v0 -m '" + m + "' '" + lambda + "'", st);
  REQUIRE(st == 0);
  const auto b = run_shell(kBin + " score -v0 -m '" + m + "' --device cpu '" + lambda + "'", st);
  REQUIRE(st == 0);
  CHECK(a == b);
}

TEST_CASE("cli: the quick start's variants score as documented", "[app]") {
  // data/lambda_variants.vcf against a bgzipped, indexed copy of the bundled genome, as
  // scripts/quickstart.sh runs it: 14 ALTs scored, one REF that does not match.
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string src = mambadna::test::source_dir() + "/data/";
  const std::string fa = dir.file("lambda.fa.gz");
  run_shell("zcat '" + src + "lambda_phage.fa.gz' | bgzip -c > '" + fa + "' && samtools faidx '" + fa + "'", st);
  REQUIRE(st == 0);
  const std::string err = run_shell(kBin + " vep -m '" + m + "' -f '" + fa + "' -i '" + src +
                                        "lambda_variants.vcf' --window 2048 -o '" + dir.file("out.vcf.gz") +
                                        "' 2>&1 >/dev/null",
                                    st);
  CHECK(st == 0);
  CHECK(err.find("13 records read, 15 ALTs, 14 scored") != std::string::npos);
  CHECK(err.find("ref_mismatch=1") != std::string::npos);
  const std::string recs = run_shell("bcftools view -H '" + dir.file("out.vcf.gz") + "' | wc -l", st);
  CHECK(std::stoi(recs) == 13);
}

TEST_CASE("cli: standard output, refused options and training stops", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string lambda = mambadna::test::source_dir() + "/data/lambda_phage.fa.gz";
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCA\n");
  // HDF5 to standard output: written whole once complete.
  run_shell(kBin + " embed -v0 -m '" + m + "' '" + fa + "' -o - > '" + dir.file("emb.h5") + "'", st);
  CHECK(st == 0);
  CHECK(mambadna::io::H5File::open_read(dir.file("emb.h5")).exists("pooled/final"));
  // score's TSV is on standard output: its HDF5 and bedGraph may not go there too.
  std::string err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' -o - 2>&1 >/dev/null", st);
  CHECK(st == 2);
  CHECK(err.find("standard output carries the TSV") != std::string::npos);
  run_shell(kBin + " score -m '" + m + "' '" + fa + "' --bedgraph - 2>/dev/null", st);
  CHECK(st == 2);
  // A record with no scored position: its per-base figures are NA.
  const std::string one = dir.write("one.fa", ">one\nA\n");
  const std::string tsv = run_shell(kBin + " score -v0 -m '" + m + "' '" + one + "'", st);
  CHECK(st == 0);
  CHECK(tsv.find("one\t0\t1\t0\t0.000000\tNA\tNA\tNA\n") != std::string::npos);
  // No input, and an input that is no sequence format: said in those words.
  err = run_shell(kBin + " score -m '" + m + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("no input file given") != std::string::npos);
  const std::string binary = dir.write("nul.fa", std::string(">a\nAC\0\x01\x02GT\n", 12));
  err = run_shell(kBin + " score -m '" + m + "' '" + binary + "' 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find("nul.fa: not a sequence file") != std::string::npos);
  // Outputs that cannot be created name the reason, not an internal error.
  err = run_shell(kBin + " embed -m '" + m + "' '" + fa + "' -o '" + dir.file("no/such/dir/e.h5") + "' 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find("cannot create HDF5 file (no directory ") != std::string::npos);
  err = run_shell(kBin + " train -m '" + m + "' -o '" + fa + "/run' '" + fa + "' --steps 1 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find("cannot create the run directory: Not a directory") != std::string::npos);
  CHECK(err.find("internal error") == std::string::npos);
  // Values no run can use.
  for (const std::string& bad : {std::string("-@ 0"), std::string("-@ -1"), std::string("-b 0")}) {
    INFO(bad);
    err = run_shell(kBin + " score " + bad + " -m '" + m + "' '" + fa + "' 2>&1 >/dev/null", st);
    CHECK(st == 2);
    CHECK(err.find(bad.substr(0, 2)) != std::string::npos);
  }
  // train's -b 0 and -L 0 choose from the records; below 0 is refused.
  err = run_shell(kBin + " train -b -1 -m '" + m + "' -o '" + dir.file("neg") + "' '" + fa + "' --steps 1 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("-b/--streams -1: give at least 0") != std::string::npos);
  // A region past the contig's end (another assembly's coordinates?) or on a contig the
  // reference lacks is an error, not an empty result, when it is the only one; beside others
  // it is skipped with a warning (as samtools faidx does) and the others are scored.
  const std::string bgz = dir.file("lambda.fa.gz");
  run_shell("zcat '" + lambda + "' | bgzip -c > '" + bgz + "' && samtools faidx '" + bgz + "'", st);
  REQUIRE(st == 0);
  const std::string contig = "'gi|9626243|ref|NC_001416.1|";
  err = run_shell(kBin + " score -m '" + m + "' '" + bgz + "' -r " + contig + ":60000-70000' 2>&1 >/dev/null", st);
  CHECK(st == 1);
  CHECK(err.find("starts after the end of contig") != std::string::npos);
  err = run_shell(kBin + " score -m '" + m + "' '" + bgz + "' -r " + contig + ":60000-70000' -r " + contig +
                      ":1-100' 2>&1 > '" + dir.file("past.tsv") + "'",
                  st);
  CHECK(st == 0);
  CHECK(err.find("[score] warning: 1 region starts past the end of its contig in " + bgz) != std::string::npos);
  CHECK(err.find(":60000-70000); skipped there") != std::string::npos);
  {
    std::ifstream tsv(dir.file("past.tsv"));
    std::string header, line, extra;
    std::getline(tsv, header);
    std::getline(tsv, line);
    CHECK(line.find("\t0\t100\t") != std::string::npos);  // start 0, 100 bases
    CHECK_FALSE(std::getline(tsv, extra));
  }
  err = run_shell(kBin + " vep -m '" + m + "' -f '" + bgz + "' -i '" + mambadna::test::source_dir() +
                      "/data/lambda_variants.vcf' -r chrNope:1-10 -o - 2>&1 >/dev/null",
                  st);
  CHECK(st == 1);
  CHECK(err.find("unknown contig 'chrNope'") != std::string::npos);
  err = run_shell(kBin + " vep -m '" + m + "' -f '" + bgz + "' -i '" + mambadna::test::source_dir() +
                      "/data/lambda_variants.vcf' --h5 - 2>&1 >/dev/null",
                  st);
  CHECK(st == 2);
  CHECK(err.find("standard output carries the VCF") != std::string::npos);
  // An empty interval at the contig's very end is an empty region, not an error.
  const std::string at_end = dir.write("end.bed", "gi|9626243|ref|NC_001416.1|\t48502\t48502\n");
  const std::string empty = run_shell(kBin + " score -v0 -m '" + m + "' '" + bgz + "' -R '" + at_end + "'", st);
  CHECK(st == 0);
  CHECK(empty.find("\t48502\t0\t0\t0.000000\tNA\t") != std::string::npos);

  // Training: more steps than one pass over the data without --holdout; --max-time says it
  // stopped and exits 0 with a model; a resumed run refuses new options and says when there
  // is nothing left to do.
  const std::string run = dir.file("run");
  run_shell(kBin + " train -v0 -m '" + m + "' -o '" + run + "' '" + fa + "' -b 2 -L 8 --steps 5 --warmup 1", st);
  CHECK(st == 0);
  CHECK(std::filesystem::exists(run + "/model.h5"));
  const std::string info = run_shell(kBin + " info -v0 '" + run + "/checkpoint-00000005.h5'", st);
  CHECK(st == 0);
  CHECK(info.find("train_step\t5\ntrain_steps\t5\n") != std::string::npos);
  CHECK(info.find("\ninput\t" + std::filesystem::absolute(fa).lexically_normal().string() + "\n") != std::string::npos);
  CHECK(info.find("format\tmamba_ssm-state_dict-h5/1\n") != std::string::npos);
  err = run_shell(kBin + " train --resume -o '" + run + "' --steps 9 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--steps: a resumed run keeps the options it was started with") != std::string::npos);
  err = run_shell(kBin + " train --resume -o '" + run + "' 2>&1", st);
  CHECK(st == 0);
  CHECK(err.find("already finished (step 5 of 5)") != std::string::npos);
  const std::string timed = dir.file("timed");
  err = run_shell(kBin + " train -v1 -m '" + m + "' -o '" + timed + "' '" + lambda +
                      "' -b 2 -L 64 --steps 1000000 --warmup 1 --max-time 1 2>&1",
                  st);
  CHECK(st == 0);
  CHECK(err.find("--max-time reached at step") != std::string::npos);  // (-v 0: not said; it is no warning)
  CHECK(std::filesystem::exists(timed + "/model.h5"));
  // Standard error piped to a reader that ends (a log pipe gone): SIGPIPE stops the run as the
  // other signals do, with a checkpoint to resume from, instead of killing it.
  const std::string piped = dir.file("piped");
  run_shell("(" + kBin + " train -v1 -m '" + m + "' -o '" + piped + "' '" + lambda +
                "' -b 2 -L 64 --steps 1000000 --warmup 1 2>&1; echo $? > '" + dir.file("rc.txt") + "') | head -1 >/dev/null",
            st);
  std::ifstream rc(dir.file("rc.txt"));
  int code = -1;
  rc >> code;
  CHECK(code == 128 + SIGPIPE);
  int checkpoints = 0;  // at the step whose line met the closed pipe
  for (const auto& e : std::filesystem::directory_iterator(piped)) checkpoints += e.path().filename().string().rfind("checkpoint-", 0) == 0;
  CHECK(checkpoints == 1);
  CHECK_FALSE(std::filesystem::exists(piped + "/model.h5"));
  run_shell(kBin + " train -v0 --resume -o '" + piped + "' --max-time 0.5", st);
  CHECK(st == 0);
  // The same signal twice from one sender at once (GNU timeout sends it to the program, then
  // to its process group, the second after the first was taken, within the step of ~0.4 s that
  // the run finishes) is one signal: the run stops with its checkpoint, not at once.
  const std::string twice = dir.file("twice");
  const std::string out = run_shell("(" + kBin + " train -v1 -m '" + m + "' -o '" + twice + "' '" + lambda +
                                        "' -b 8 -L 2048 --steps 1000000 --warmup 1 2>'" + dir.file("twice.txt") +
                                        "' & pid=$!; sleep 1.5; kill -TERM $pid; sleep 0.1; kill -TERM $pid; wait $pid; echo $?)",
                                    st);
  CHECK(out == "143\n");
  std::ifstream t(dir.file("twice.txt"));
  const std::string told((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
  CHECK(told.find("stopped by a signal") == std::string::npos);
  checkpoints = 0;
  for (const auto& e : std::filesystem::directory_iterator(twice)) checkpoints += e.path().filename().string().rfind("checkpoint-", 0) == 0;
  CHECK(checkpoints == 1);
}

TEST_CASE("cli: outputs over inputs, empty BED files, --case, unusable numbers, stdin regions, unknown contigs", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);  // tokenizer: upper
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAacgtacgt\n");
  std::ifstream model_in(m, std::ios::binary);
  const std::string model_bytes((std::istreambuf_iterator<char>(model_in)), std::istreambuf_iterator<char>());
  // An output that is an input (by another spelling too) would be renamed over it at the end.
  const std::string sub = dir.file("sub");
  std::filesystem::create_directories(sub);
  const std::string other_spelling = sub + "/../m.h5";
  for (const std::string& cmd :
       {" score -m '" + m + "' '" + fa + "' -o '" + other_spelling + "'",
        " embed -m '" + m + "' '" + fa + "' -o '" + fa + "'",
        " stats '" + fa + "' -o '" + fa + "'",
        " score -m '" + m + "' '" + fa + "' -o '" + dir.file("s.h5") + "' --bedgraph '" + dir.file("s.h5") + "'"}) {
    INFO(cmd);
    const std::string err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find(" is the same file as ") != std::string::npos);
  }
  // Standard input named twice: the second would read nothing.
  for (const std::string& cmd : {" score -m '" + m + "' - -", " stats - '" + fa + "' -", " stats - '" + fa + "' /dev/stdin"}) {
    INFO(cmd);
    const std::string err = run_shell("cat '" + fa + "' | " + kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("standard input (-) is given twice as input; it can be read only once") != std::string::npos);
  }
  {  // ... and as an input and a -R file: both named
    const std::string err = run_shell("cat '" + fa + "' | " + kBin + " score -m '" + m + "' - -R - 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("standard input (-) is given twice, as input and as -R; it can be read only once") != std::string::npos);
  }
  {  // A bedGraph line needs a contig name: a bare '>' record has none.
    const std::string bare = dir.write("bare.fa", ">\nACGTACGTAC\n");
    const std::string err = run_shell(kBin + " score -v0 -m '" + m + "' '" + bare + "' --bedgraph '" + dir.file("bare.bg") + "' 2>&1", st);
    CHECK(st == 1);
    CHECK(err.find(bare + ": record 1 of the run has an empty name ('>' alone): a bedGraph line (--bedgraph) needs its "
                   "contig's name") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("bare.bg")));
  }
  {  // Several inputs are each opened before any work, so a later one without its index stops
     // the run before a line is written; one with none of the regions is skipped there.
    const std::string x = dir.write("x.fa", ">x\nACGTACGTACGTAAAC\n"), y = dir.write("y.fa", ">y\nGGGGCCCCAAAATTTT\n");
    REQUIRE(fai_build(x.c_str()) == 0);
    std::string out = run_shell(kBin + " score -v0 -m '" + m + "' -r y:1-8 '" + x + "' '" + y + "' 2>&1", st);
    CHECK(st == 1);
    CHECK(out.find("#input") == std::string::npos);
    CHECK(out.find("y.fa.fai not found") != std::string::npos);
    REQUIRE(fai_build(y.c_str()) == 0);
    out = run_shell(kBin + " score -v0 -m '" + m + "' -r y:1-8 '" + x + "' '" + y + "'", st);
    CHECK(st == 0);
    CHECK(out.find(y + "\ty\t0\t8\t") != std::string::npos);
  }
  // A model cannot come from standard input (HDF5 reads by position).
  {
    const std::string err = run_shell("cat '" + m + "' | " + kBin + " info - 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("cannot be read from standard input") != std::string::npos);
  }
  std::ifstream model_after(m, std::ios::binary);
  CHECK(std::string((std::istreambuf_iterator<char>(model_after)), std::istreambuf_iterator<char>()) == model_bytes);
  CHECK(!std::filesystem::exists(dir.file("s.h5")));
  // A BED file with no region is an error, not the whole input.
  const std::string none = dir.write("none.bed", "# nothing here\n");
  std::string err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' -R '" + none + "' 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find("none.bed: no regions in this BED file") != std::string::npos);
  // Regions of standard input: said in those words by every command.
  for (const std::string& cmd : {" score -m '" + m + "' - -r a:1-5", " embed -m '" + m + "' - -r a:1-5 -o '" +
                                      dir.file("e.h5") + "'"}) {
    INFO(cmd);
    err = run_shell("cat '" + fa + "' | " + kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("an indexed file, not standard input") != std::string::npos);
  }
  // vep says when VCF contigs are not in the FASTA, whatever the verbosity.
  const std::string vcf = dir.write("v.vcf", "##fileformat=VCFv4.2\n##contig=<ID=chr9>\n"
                                             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                             "chr9\t3\t.\tG\tA\t.\t.\t.\n");
  run_shell("samtools faidx '" + fa + "'", st);
  REQUIRE(st == 0);
  err = run_shell(kBin + " vep -v0 -m '" + m + "' -f '" + fa + "' -i '" + vcf + "' -o '" + dir.file("v.out.vcf") + "' 2>&1", st);
  CHECK(st == 0);
  CHECK(err.find("warning: all 1 ALT is on contigs that") != std::string::npos);
  CHECK(err.find("(the first: 'chr9')") != std::string::npos);
  // Regions that select no record (a 1-based 'CHROM POS POS' line read as BED) are warned of.
  const std::string vcf_a = dir.write("va.vcf", "##fileformat=VCFv4.2\n##contig=<ID=a>\n"
                                                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                                "a\t3\t.\tG\tA\t.\t.\t.\n");
  const std::string one = dir.write("one.txt", "a\t3\t3\n");
  err = run_shell(kBin + " vep -v0 -m '" + m + "' -f '" + fa + "' -i '" + vcf_a + "' -R '" + one + "' -o '" +
                      dir.file("va.out.vcf") + "' 2>&1", st);
  CHECK(st == 0);
  CHECK(err.find("warning: no record is in the regions (-r/-R, --regions-overlap)") != std::string::npos);
  // Regions on contigs one input lacks are skipped there with a warning that names the input,
  // the region and its BED line (as samtools view goes on past an unknown reference); every
  // command and path alike. An input with none of the regions' contigs stops the run.
  const std::string fb = dir.write("b.fa", ">b\nTTGACCAACGTACGTACG\n");
  run_shell("samtools faidx '" + fb + "'", st);
  REQUIRE(st == 0);
  const std::string ab = dir.write("ab.bed", "a\t0\t12\tra\nb\t2\t10\trb\n");
  const auto rows = [](const std::string& tsv) {
    return std::count(tsv.begin(), tsv.end(), '\n') - 1;  // less the header
  };
  err = run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' '" + fb + "' -R '" + ab +
                      "' 2>&1 >'" + dir.file("ab.tsv") + "'", st);
  CHECK(st == 0);
  CHECK(err.find("[score] warning: 1 region is on contigs that " + fa + " lacks (b:3-10 (BED line 2)); skipped there") !=
        std::string::npos);
  CHECK(err.find("that " + fb + " lacks (a:1-12 (BED line 1))") != std::string::npos);
  std::ifstream ab_in(dir.file("ab.tsv"));
  const std::string ab_tsv((std::istreambuf_iterator<char>(ab_in)), std::istreambuf_iterator<char>());
  CHECK(rows(ab_tsv) == 2);
  CHECK(ab_tsv.find("\tra\n") != std::string::npos);
  CHECK(ab_tsv.find("\trb\n") != std::string::npos);
  for (const std::string& cmd : {" score -v0 -m '" + m + "' --strand both '" + fa + "' -R '" + ab + "'",
                                 " embed -v0 -m '" + m + "' '" + fa + "' -R '" + ab + "' -o '" + dir.file("ab.h5") + "'",
                                 " stats -v0 '" + fa + "' -R '" + ab + "'"}) {
    INFO(cmd);
    const std::string out = run_shell(kBin + cmd + " 2>'" + dir.file("ab.err") + "'", st);
    CHECK(st == 0);
    std::ifstream e_in(dir.file("ab.err"));
    const std::string e((std::istreambuf_iterator<char>(e_in)), std::istreambuf_iterator<char>());
    CHECK(e.find("1 region is on contigs that " + fa + " lacks (b:3-10 (BED line 2)); skipped there") !=
          std::string::npos);
    if (cmd.find(" score") != std::string::npos) CHECK(rows(out) == 1);
    if (cmd.find(" stats") != std::string::npos) CHECK(rows(out) == 2);  // and the total
  }
  const std::string only_b = dir.write("b.bed", "b\t2\t10\n");
  err = run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -R '" + only_b + "' 2>&1 >/dev/null", st);
  CHECK(st == 1);
  CHECK(err.find(fa + ": region 'b:3-10 (BED line 1)': unknown contig 'b'") != std::string::npos);
  // --case: upper folds for any model; keep needs a model that keeps case; nothing else.
  const std::string keep_m = dir.file("keep.h5");
  run_shell(kBin + " init -v0 -p tiny --d-model 32 --case keep -o '" + keep_m + "'", st);
  REQUIRE(st == 0);
  const std::string folded = run_shell(kBin + " score -v0 -m '" + keep_m + "' '" + fa + "' --case upper", st);
  CHECK(st == 0);
  const std::string kept = run_shell(kBin + " score -v0 -m '" + keep_m + "' '" + fa + "'", st);
  CHECK(st == 0);
  CHECK(folded != kept);  // the soft-masked tail was folded
  err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' --case keep 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--case keep: the model's tokenizer folds case") != std::string::npos);
  err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' --case lower 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--case lower: choose upper or keep") != std::string::npos);
  err = run_shell(kBin + " train -m '" + keep_m + "' -o '" + dir.file("run_case") + "' '" + fa + "' --steps 1 --case upper 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("a run trains with its model's tokenizer setting (keep)") != std::string::npos);
  // Numbers no run can use: named with the value given, before a run directory is made.
  for (const std::string& bad : {std::string("--lr -1"), std::string("--clip -1"), std::string("--warmup -1"),
                                 std::string("--weight-decay -5"), std::string("--max-time -1"),
                                 std::string("--beta2 1")}) {
    INFO(bad);
    const std::string run = dir.file("run_bad");
    err = run_shell(kBin + " train -m '" + m + "' -o '" + run + "' '" + fa + "' --steps 2 " + bad + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("train: " + bad + ": give") != std::string::npos);
    CHECK(!std::filesystem::exists(run));
  }
  // The decay ends at --min-lr, a tenth of --lr unless given, and never above --lr (a rate
  // that climbed to twice a fine-tuning --lr of 1e-4, the old fixed 2e-4).
  err = run_shell(kBin + " train -m '" + m + "' -o '" + dir.file("run_min") + "' '" + fa +
                      "' --steps 2 --lr 1e-3 --min-lr 5e-3 2>&1",
                  st);
  CHECK(st == 2);
  CHECK(err.find("train: --min-lr 0.005 is above --lr 0.001") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("run_min")));
  run_shell(kBin + " train -v0 -m '" + m + "' -o '" + dir.file("run_ft") + "' '" + fa +
                "' -b 2 -L 8 --steps 3 --warmup 1 --lr 1e-4",
            st);
  REQUIRE(st == 0);
  {
    std::ifstream metrics(dir.file("run_ft") + "/metrics.tsv");
    std::string header, line, last;
    std::getline(metrics, header);
    while (std::getline(metrics, line)) last = line;
    std::vector<std::string> names, values;
    for (auto [text, out] : {std::pair{&header, &names}, std::pair{&last, &values}}) {
      std::istringstream fields(*text);
      for (std::string f; std::getline(fields, f, '\t');) out->push_back(f);
    }
    const auto at = std::find(names.begin(), names.end(), "lr") - names.begin();
    REQUIRE(size_t(at) < values.size());
    CHECK(std::stod(values[size_t(at)]) == Approx(1e-5));
  }
  // A run that fails on its data leaves no empty run directory behind.
  const std::string run = dir.file("run_missing");
  run_shell(kBin + " train -m '" + m + "' -o '" + run + "' '" + dir.file("absent.fa") + "' --steps 2 2>/dev/null", st);
  CHECK(st == 1);
  CHECK(!std::filesystem::exists(run));
  std::filesystem::create_directories(run);  // one the user made stays
  run_shell(kBin + " train -m '" + m + "' -o '" + run + "' '" + dir.file("absent.fa") + "' --steps 2 2>/dev/null", st);
  CHECK(st == 1);
  CHECK(std::filesystem::is_directory(run));
  err = run_shell(kBin + " init -p tiny --n-layer 0 -o '" + dir.file("x.h5") + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--n-layer 0: give 1 or more") != std::string::npos);
}

TEST_CASE("cli: an option given again takes its last value, repeatable ones keep every value", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGT\n");
  // -v 0 then -v 1: the summary shows (a wrapper appending options, as samtools takes them).
  std::string err = run_shell(kBin + " embed -v 0 -@ 2 -m '" + m + "' '" + fa + "' -o '" + dir.file("a.h5") +
                                  "' -o '" + dir.file("b.h5") + "' --layer 0 --layer 1 -v 1 -@ 1 2>&1 >/dev/null",
                              st);
  CHECK(st == 0);
  CHECK(err.find("[embed] 1 record") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("a.h5")));  // the last -o
  CHECK(mambadna::io::H5File::open_read(dir.file("b.h5")).attr_str("/", "layers") == "layer_0,layer_1");
  // The last value is checked as any: -v 7 after a good one is refused.
  err = run_shell(kBin + " score -v 1 -v 7 -m '" + m + "' '" + fa + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("-v/--verbosity 7: give 0 to 3") != std::string::npos);
  // A value given both as an option and as an argument is two values: info -m A B reported B.
  err = run_shell(kBin + " info -m '" + m + "' '" + fa + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--model is given both as an option and as an argument: give one") != std::string::npos);
  // A file to read given twice is refused: the first one would be dropped unread (a pipeline's
  // -R a.bed -R b.bed embedded b's regions alone). The same file twice is one.
  const std::string bed_a = dir.write("a.bed", "a\t0\t10\n"), bed_b = dir.write("b.bed", "a\t5\t20\n");
  REQUIRE(fai_build(fa.c_str()) == 0);
  err = run_shell(kBin + " embed -m '" + m + "' '" + fa + "' -R '" + bed_a + "' -R '" + bed_b + "' -o '" +
                      dir.file("r.h5") + "' 2>&1",
                  st);
  CHECK(st == 2);
  CHECK(err.find("--regions-file is given twice (" + bed_a + ", " + bed_b + "): it reads one file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("r.h5")));
  err = run_shell(kBin + " score -m '" + m + "' -m '" + dir.file("other.h5") + "' '" + fa + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--model is given twice") != std::string::npos);
  run_shell(kBin + " embed -m '" + m + "' '" + fa + "' -R '" + bed_a + "' -R '" + bed_a + "' -o '" +
                dir.file("r.h5") + "' 2>&1",
            st);
  CHECK(st == 0);
  // An argument a command does not take: said so, not "too many positional options".
  err = run_shell(kBin + " init -p tiny -o '" + dir.file("i.h5") + "' extra 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("too many arguments: 'mambadna init' takes no file name without an option before it") !=
        std::string::npos);
}

TEST_CASE("cli: runs, layers, tracks and strands that cannot work are refused up front", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGT\n>b\nTTGACCAACGTACGTACGTTGCA\n");
  run_shell("samtools faidx '" + fa + "'", st);
  REQUIRE(st == 0);
  const std::string bam = mambadna::test::data_file("edge/ex1.bam");
  auto refused = [&](const std::string& cmd, const std::string& why, int code = 2) {
    INFO(cmd);
    const std::string err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == code);
    CHECK(err.find(why) != std::string::npos);
  };
  // A new run in a directory that holds a model or metrics (its own -m, say) would replace them.
  const std::string exp = dir.file("exp");
  std::filesystem::create_directories(exp);
  std::filesystem::copy_file(m, exp + "/model.h5");
  refused(" train -m '" + exp + "/model.h5' -o '" + exp + "' '" + fa + "' -b 2 -L 8 --steps 1",
          "already holds model.h5");
  CHECK(std::filesystem::file_size(exp + "/model.h5") == std::filesystem::file_size(m));
  refused(" embed -m '" + m + "' '" + fa + "' -o '" + dir.file("l.h5") + "' --layer -1 --layer -1",
          "--layer -1 is given twice");
  refused(" embed -m '" + m + "' '" + fa + "' --strand bed -o '" + dir.file("s.h5") + "'",
          "--strand bed takes each region's strand from the -R BED file");
  {  // Binary output to a terminal (script(1) gives the run one), as bgzip refuses it; the same
     // to a file is written.
    const std::string vcf = dir.write("t.vcf", "##fileformat=VCFv4.2\n##contig=<ID=a>\n"
                                               "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
    run_shell("script -qec true /dev/null", st);
    const bool have_tty = st == 0;
    if (!have_tty) WARN("no pseudo-terminal for script(1): binary output to a terminal is not tested here");
    for (const std::string& cmd :
         {" embed -m '" + m + "' '" + fa + "' -o -", " vep -m '" + m + "' -f '" + fa + "' -O b '" + vcf + "'",
          " vep -m '" + m + "' -f '" + fa + "' -o '" + dir.file("t.out.vcf") + "' --h5 - '" + vcf + "'"}) {
      INFO(cmd);
      if (have_tty) {
        const std::string err = run_shell("script -qec \"" + kBin + cmd + "\" /dev/null 2>&1", st);
        CHECK(st == 2);
        CHECK(err.find("standard output is a terminal, and ") != std::string::npos);
      }
      run_shell(kBin + cmd + " 2>/dev/null > '" + dir.file("piped.out") + "'", st);
      CHECK(st == 0);
    }
  }
  refused(" embed -m '" + m + "' '" + bam + "' --flank 5 -o '" + dir.file("b.h5") + "'",
          "--flank reads an indexed FASTA; reads (SAM/BAM/CRAM) are embedded whole");
  refused(" score -m '" + m + "' '" + bam + "' --bedgraph '" + dir.file("b.bg") + "'",
          "holds reads: they may overlap, and a track needs non-overlapping positions");
  refused(" score -m '" + m + "' '" + fa + "' -r a:1-10 -r b:1-5 -r a:8-12 --bedgraph '" + dir.file("o.bg") + "'",
          "regions a:1-10 and a:8-12 overlap");
  // A run of --max-time alone: the schedule needs its end.
  refused(" train -m '" + m + "' -o '" + dir.file("mt") + "' '" + fa + "' --max-time 5",
          "give --steps or --tokens (the learning-rate schedule runs to them; --max-time stops a run before its end)");
  CHECK_FALSE(std::filesystem::exists(dir.file("mt")));
  // ... from a BED file: the file's lines are input (exit 1), named by line.
  refused(" score -m '" + m + "' '" + fa + "' -R '" + dir.write("ov.bed", "a\t0\t10\na\t7\t12\n") + "' --bedgraph '" +
              dir.file("o.bg") + "'",
          "regions a:1-10 (BED line 1) and a:8-12 (BED line 2) overlap", 1);
  // Minus-strand BED regions read on the forward strand: said.
  const std::string minus = dir.write("minus.bed", "a\t0\t10\tx\t0\t-\na\t0\t10\ty\t0\t+\n");
  std::string err = run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -R '" + minus + "' 2>&1 >/dev/null", st);
  CHECK(st == 0);
  CHECK(err.find("has 1 region on the minus strand; it is read on the forward strand") != std::string::npos);
  err = run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -R '" + minus + "' --strand both 2>&1 >/dev/null", st);
  CHECK(err.find("minus strand") == std::string::npos);
  refused(" score -m '" + m + "' '" + fa + "' -L -1", "-L/--chunk -1: give 1 or more, or 0 to choose");
  refused(" vep -m '" + m + "' -f '" + fa + "' -i - -L -5 </dev/null", "-L/--chunk -5: give 1 or more");
  {  // info takes -m as every other command
    const std::string out = run_shell(kBin + " info -v0 -m '" + m + "'", st);
    CHECK(st == 0);
    CHECK(out.find("d_model\t32\n") != std::string::npos);
  }
  // Regions that only touch are one track; so are regions that overlap only where nothing is
  // scored: on a contig the FASTA lacks (skipped), or past a contig's end (a is 26 bases).
  run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -r a:1-10 -r a:11-20 --bedgraph '" + dir.file("t.bg") + "' >/dev/null", st);
  CHECK(st == 0);
  run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -r a:1-10 -r z:1-10 -r z:5-15 -r a:20-40 -r a:30-35 --bedgraph '" +
                dir.file("t.bg") + "' >/dev/null 2>&1", st);
  CHECK(st == 0);
  refused(" score -m '" + m + "' '" + fa + "' -r a:1-10 -r a:20-40 -r a:26-35 --bedgraph '" + dir.file("o.bg") + "'",
          "regions a:20-26 and a:26-26 overlap");
  // A trained model names its data, and a resumed run's the command that started it.
  const std::string run = dir.file("run");
  run_shell(kBin + " train -v0 -m '" + m + "' -o '" + run + "' '" + fa + "' -b 2 -L 8 --steps 2 --ckpt-every 1 --warmup 0", st);
  REQUIRE(st == 0);
  const std::string fa_abs = std::filesystem::absolute(fa).lexically_normal().string();
  CHECK(mambadna::io::H5File::open_read(run + "/model.h5").attr_str("/", "inputs") == fa_abs);
  std::filesystem::remove(run + "/model.h5");
  std::filesystem::remove(run + "/checkpoint-00000002.h5");
  run_shell(kBin + " train -v0 --resume -o '" + run + "'", st);
  REQUIRE(st == 0);
  const std::string cmd = mambadna::io::H5File::open_read(run + "/model.h5").attr_str("/", "command_line");
  CHECK(cmd.find(" train -v0 -m ") != std::string::npos);
  CHECK(cmd.find(" [resumed by: ") != std::string::npos);
  CHECK(cmd.find("--resume") != std::string::npos);
}

TEST_CASE("cli: a signal removes the outputs not yet complete", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  // 8 Mb: ~10 s to score here with one thread, well past the signal at 1.5 s.
  const std::string big = dir.file("big.fa");
  {
    std::ofstream f(big);
    f << ">big\n";
    uint64_t x = 88172645463325252ull;
    std::string line(100, 'A');
    for (int i = 0; i < 80000; ++i) {
      for (char& c : line) x ^= x << 13, x ^= x >> 7, x ^= x << 17, c = "ACGT"[x & 3];
      f << line << '\n';
    }
  }
  // A shell without job control starts background commands with SIGINT ignored (as a program
  // started so keeps it): env gives this one the default back.
  const std::string score = "env --default-signal=INT,QUIT " + kBin + " score -@1 -m '" + m + "' '" + big + "' -o '" + dir.file("sc.h5") +
                            "' --per-position --bedgraph '" + dir.file("sc.bg") + "' 2>'" + dir.file("err.txt") +
                            "' >/dev/null";
  auto listed = [&] {  // the outputs' names in the directory, final or temporary
    int64_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.file("")))
      n += e.path().filename().string().rfind("sc.", 0) == 0;
    return n;
  };
  for (const std::string& sig :
       {std::string("INT"), std::string("TERM"), std::string("QUIT"), std::string("USR1"), std::string("SEGV")}) {
    INFO(sig);
    // Both temporaries exist when the signal comes; none is left after it.
    const std::string out = run_shell("cd '" + dir.file("") + "' && (" + score + " & pid=$!; sleep 1.5; ls | grep -c '^sc\\..*\\.tmp\\.'; kill -" +
                                          sig + " $pid; wait $pid; echo $?)",
                                      st);
    CHECK(out == "2\n" +
                     std::to_string(sig == "INT"    ? 130
                                    : sig == "TERM" ? 143
                                    : sig == "QUIT" ? 131
                                    : sig == "USR1" ? 138
                                                    : 139) +
                     "\n");
    std::ifstream e(dir.file("err.txt"));
    const std::string err((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
    CHECK(err.find(sig == "SEGV" ? "crashed (a fault signal); incomplete output files removed"
                                 : "stopped by a signal; incomplete output files removed") != std::string::npos);
    CHECK(listed() == 0);
  }
  // A signal ignored when the program starts (nohup) stays ignored: the run goes on.
  const std::string out = run_shell("(trap '' HUP; exec " + score + ") & pid=$!; sleep 1; kill -HUP $pid; sleep 0.5; "
                                    "kill -0 $pid && echo alive; kill -INT $pid; wait $pid; echo $?",
                                    st);
  CHECK(out == "alive\n130\n");
  CHECK(listed() == 0);
}

TEST_CASE("cli: a file that cannot be written whole (a full disk) is an error with the system's reason", "[app]") {
  // A file size limit stands in for a full disk: past it a write fails (EFBIG, as ENOSPC would),
  // the program ignoring SIGXFSZ itself (it had died of it, silently, leaving its temporaries).
  // HDF5 then kept the file open, and closing it at exit crashed the program (exit 139) after
  // the message.
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGTACGTACGTTTGACCAACG\n");
  const std::string limit = "ulimit -f 100; ";  // 100 KB
  for (const std::string& cmd : {" init -p small -o '" + dir.file("big.h5") + "'",
                                 " train -m '" + m + "' -o '" + dir.file("run") + "' '" + fa + "' -b 1 -L 16 --steps 1"}) {
    INFO(cmd);
    const std::string err = run_shell("bash -c \"" + limit + kBin + cmd + " -v0\" 2>&1", st);
    CHECK(st == 1);
    CHECK(err.find(": File too large") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("big.h5")));
  std::string err = run_shell("bash -c \"" + limit + kBin + " init -p small -o - -v0 > '" + dir.file("out.h5") + "'\" 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find("File too large") != std::string::npos);
}

// The commands on a CUDA device against the same commands on the CPU (on a GPU, or on the CUDA
// emulator of the emulator build): the whole path from the command line through the pipelines
// to the device model. Only the program and this test's own readers are used, so that it runs
// on a GPU machine that has neither samtools nor the HDF5 tools.
TEST_CASE("cli: score embed vep and train on --device cuda agree with the CPU", "[app][cuda]") {
  if (mambadna::kernels::testing::cuda_unavailable()) return;
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir, "--seed 5");
  const std::string src = mambadna::test::source_dir() + "/data/";
  const std::string fa = dir.file("lambda.fa");
  mambadna::test::decompress(src + "lambda_phage.fa.gz", fa);
  REQUIRE(fai_build(fa.c_str()) == 0);
  const std::string region = " -r 'gi|9626243|ref|NC_001416.1|:20001-23000' ";
  const std::string cuda = " --device cuda -v2";  // -v2: the device in use is named on stderr
  const auto file_text = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Runs a command with stdout and stderr to files; returns stdout and checks the device line.
  const auto run = [&](const std::string& args, const std::string& name) {
    const std::string out = dir.file(name + ".out"), err = dir.file(name + ".err");
    run_shell(kBin + " " + args + " > '" + out + "' 2> '" + err + "'", st);
    INFO(args << "\n" << file_text(err));
    REQUIRE(st == 0);
    if (args.find("--device cuda") != std::string::npos)
      CHECK(file_text(err).find("device cuda:0 (") != std::string::npos);
    return file_text(out);
  };
  // score: the loglik column of the TSV's last line.
  const auto loglik = [&](const std::string& opts, const std::string& name) {
    const std::string tsv = run("score -m '" + m + "'" + region + opts + " '" + fa + "'", name);
    std::istringstream last(tsv.substr(tsv.rfind('\n', tsv.size() - 2) + 1));
    std::string field;
    for (int i = 0; i < 6; ++i) std::getline(last, field, '\t');
    return std::stod(field);
  };
  const double cpu = loglik("", "s_cpu"), gpu = loglik(cuda, "s_gpu"),
               bf16 = loglik(cuda + " --precision bf16", "s_bf16");
  INFO("loglik cpu " << cpu << " cuda " << gpu << " cuda bf16 " << bf16);
  // 2,999 float32 log-probs: the sums agree to float32 rounding (relative 1e-5 with a margin).
  CHECK(std::abs(gpu - cpu) <= 1e-5 * std::abs(cpu));
  // bf16 products (8-bit mantissas) move each log-prob by ~1e-3 relative, not more.
  CHECK(std::abs(bf16 - cpu) <= 1e-2 * std::abs(cpu));
  CHECK(bf16 != gpu);  // the precision reached the products

  // embed: mean-pooled final hidden states.
  const auto embedding = [&](const std::string& opts, const std::string& name) {
    const std::string out = dir.file(name + ".h5");
    run("embed -m '" + m + "'" + region + opts + " '" + fa + "' -o '" + out + "' --pool mean", name);
    return mambadna::io::H5File::open_read(out).read_f32("pooled/final");
  };
  const auto ecpu = embedding("", "e_cpu"), egpu = embedding(cuda, "e_gpu");
  REQUIRE(ecpu.size() == 32);
  REQUIRE(egpu.size() == ecpu.size());
  for (size_t i = 0; i < ecpu.size(); ++i) CHECK(std::abs(egpu[i] - ecpu[i]) <= 1e-4);

  // Reads: score's chosen shape (hundreds of streams of a chunk each) and embed's passes of
  // records side by side, on the device as on the CPU.
  std::string reads;
  uint64_t x = 11;
  for (int i = 0; i < 200; ++i) {
    reads += ">r" + std::to_string(i) + "\n";
    for (int j = 0; j < 30 + i % 8; ++j) reads += "ACGT"[(x = x * 6364136223846793005ull + 1442695040888963407ull) >> 62];
    reads += "\n";
  }
  const std::string rfa = dir.write("reads.fa", reads);
  const auto read_logliks = [&](const std::string& opts, const std::string& name) {
    std::istringstream tsv(run("score -m '" + m + "' '" + rfa + "'" + opts, name));
    CHECK(file_text(dir.file(name + ".err")).find("step shape -b ") != std::string::npos);
    std::vector<double> v;
    for (std::string line; std::getline(tsv, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string f;
      for (int i = 0; i < 6; ++i) std::getline(fields, f, '\t');
      v.push_back(std::stod(f));
    }
    return v;
  };
  const auto rcpu = read_logliks("", "rs_cpu"), rgpu = read_logliks(cuda, "rs_gpu");
  REQUIRE(rcpu.size() == 200);
  REQUIRE(rgpu.size() == rcpu.size());
  for (size_t i = 0; i < rcpu.size(); ++i) CHECK(std::abs(rgpu[i] - rcpu[i]) <= 1e-5 * std::abs(rcpu[i]) + 1e-5);
  const auto read_embeddings = [&](const std::string& opts, const std::string& name) {
    const std::string out = dir.file(name + ".h5");
    run("embed -m '" + m + "' '" + rfa + "' -o '" + out + "'" + opts, name);
    return mambadna::io::H5File::open_read(out).read_f32("pooled/final");
  };
  const auto recpu = read_embeddings("", "re_cpu"), regpu = read_embeddings(cuda, "re_gpu");
  REQUIRE(recpu.size() == 200 * 32);
  REQUIRE(regpu.size() == recpu.size());
  for (size_t i = 0; i < recpu.size(); ++i) CHECK(std::abs(regpu[i] - recpu[i]) <= 1e-4);

  // vep: every LLR of the bundled variants, from the INFO fields of a plain VCF.
  const auto llrs = [&](const std::string& opts, const std::string& name) {
    const std::string out = dir.file(name + ".vcf");
    run("vep -m '" + m + "' -f '" + fa + "' -i '" + src + "lambda_variants.vcf' --window 1024 -O v" +
            opts + " -o '" + out + "'",
        name);
    std::istringstream in(file_text(out));
    std::vector<double> v;
    for (std::string line; std::getline(in, line);) {
      const size_t at = line.find("MAMBADNA_LLR=");
      if (line[0] == '#' || at == std::string::npos) continue;
      std::istringstream values(line.substr(at + 13, line.find(';', at) - at - 13));
      for (std::string x; std::getline(values, x, ',');)
        if (x != ".") v.push_back(std::stod(x));
    }
    return v;
  };
  const auto lcpu = llrs("", "v_cpu"), lgpu = llrs(cuda, "v_gpu");
  REQUIRE(lcpu.size() == 14);
  REQUIRE(lgpu.size() == lcpu.size());
  for (size_t i = 0; i < lcpu.size(); ++i) CHECK(std::abs(lgpu[i] - lcpu[i]) <= 1e-4);

  // train: two steps on the device write a model (its losses against the CPU's: the
  // "train: the loss curve on a CUDA device" test).
  const std::string runs = dir.file("run");
  run("train -m '" + m + "' -o '" + runs + "' '" + fa + "'" + cuda +
          " --steps 2 -b 2 -L 64 --holdout 0.1 --valid-tokens 256 --warmup 1",
      "t_gpu");
  CHECK(std::filesystem::exists(runs + "/model.h5"));
}

// Weights move both ways with PyTorch: bench/torch_mamba.py (mamba_ssm's model written out in
// PyTorch) reads a checkpoint from `mambadna init` and gives the log-probs `mambadna score`
// gives; it then moves every weight (as training would) and writes the state_dict back, and
// mambadna scores the new weights as PyTorch does. Skipped without a Python with torch.
TEST_CASE("cli: weights move both ways with PyTorch", "[app][torch]") {
  int st = -1;
  const std::string py = "'" + mambadna::test::python() + "'";
  run_shell(py + " -c 'import torch, h5py' 2>/dev/null", st);
  if (st != 0) {
    std::cout << "SKIPPED: no PyTorch (python3 with torch and h5py; MAMBADNA_PYTHON names another)\n";
    return;
  }
  TempDir dir;
  const std::string m = init_tiny(dir, "--seed 9");
  const std::string torch = py + " '" + mambadna::test::source_dir() + "/bench/torch_mamba.py'";
  const std::string fa = kGolden + "input.fa";
  // compare's "max |torch - mambadna| = X" for a model and mambadna's per-position scores of it.
  const auto max_diff = [&](const std::string& model, const std::string& scores) {
    const std::string out = run_shell(torch + " compare '" + model + "' '" + fa + "' '" + scores + "'", st);
    INFO(out);
    const size_t at = out.find("= ");
    REQUIRE(at != std::string::npos);
    return std::stod(out.substr(at + 2));
  };
  const auto score = [&](const std::string& model, const std::string& out) {
    run_shell(kBin + " score -v0 -m '" + model + "' '" + fa + "' --per-position -o '" + out + "' > /dev/null", st);
    REQUIRE(st == 0);
    return out;
  };
  // Both sides in float32 over 1,499 positions: log-softmax sums in different orders differ by
  // ~1e-6 (1.5e-6 measured for the small shape); 1e-5 leaves a margin.
  const std::string s1 = score(m, dir.file("s1.h5"));
  CHECK(max_diff(m, s1) <= 1e-5);
  const std::string moved = dir.file("moved.h5");
  run_shell(torch + " export '" + m + "' '" + moved + "'", st);
  REQUIRE(st == 0);
  const std::string s2 = score(moved, dir.file("s2.h5"));
  CHECK(max_diff(moved, s2) <= 1e-5);
  CHECK(max_diff(m, s2) > 1e-2);  // the weights did move, and mambadna used the moved ones
}

TEST_CASE("cli: a processor without the build's instruction sets is told so before main", "[app]") {
  // The check itself (app/isa_check.cpp) cannot be given another processor here: its logic is
  // tested with a made-up one, its table against the compiler's own macros.
  const mambadna::app::IsaFeature built[] = {{"avx2", true}, {"avx512f", true}, {"fma", false}, {"avx512bw", true}};
  auto only_avx2 = [](const char* name) { return std::string(name) == "avx2"; };
  CHECK(mambadna::app::missing_isa(built, 4, only_avx2) == "avx512f,avx512bw");
  CHECK(mambadna::app::missing_isa(built, 4, [](const char*) { return true; }).empty());
  // This build runs here: nothing it was built for is missing.
  CHECK(mambadna::app::missing_isa(mambadna::app::kIsaBuilt, mambadna::app::kIsaBuiltCount, mambadna::app::cpu_supports).empty());
  auto built_for = [](const std::string& name) {
    for (int i = 0; i < mambadna::app::kIsaBuiltCount; ++i)
      if (name == mambadna::app::kIsaBuilt[i].name) return mambadna::app::kIsaBuilt[i].built;
    FAIL("no feature " << name);
    return false;
  };
#ifdef __AVX2__
  CHECK(built_for("avx2"));
#else
  CHECK_FALSE(built_for("avx2"));
#endif
#ifdef __AVX512F__
  CHECK(built_for("avx512f"));
#else
  CHECK_FALSE(built_for("avx512f"));
#endif
#ifdef __FMA__
  CHECK(built_for("fma"));
#else
  CHECK_FALSE(built_for("fma"));
#endif
  CHECK_FALSE(mambadna::app::cpu_supports("no-such-feature"));
#if defined(__x86_64__)
  CHECK(mambadna::app::cpu_supports("sse4.2") == bool(__builtin_cpu_supports("sse4.2")));
#endif
}

TEST_CASE("cli: a checkpoint whose string in the HDF5 global heap is corrupt is refused, not a crash", "[app]") {
  // The heap object's 8-byte size, just before its text (the config's JSON), made huge: HDF5
  // faults reading it (SIGSEGV); the program reads its strings first in a child process.
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  std::string bytes;
  {
    std::ifstream in(m, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find("{\"d_model\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(at >= 8);
  for (size_t i = at - 8; i < at; ++i) bytes[i] = char(0x55);
  std::ofstream(m, std::ios::binary) << bytes;
  for (const std::string cmd : {" info -v0 '" + m + "'", " score -v0 -m '" + m + "' /dev/null"}) {
    INFO(cmd);
    const std::string err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == 1);
    CHECK(err == "mambadna: " + m + ": attribute 'mamba_ssm_config' cannot be read: the file is corrupt (its "
                                  "string's length or place in the file's global heap is wrong)\n");
  }
}

TEST_CASE("cli: a checkpoint loads in a program that is its container's first process", "[app]") {
  // As PID 1 (a container's entry point) the program's child sees a parent of pid 1: the string
  // probe compares its parent with the program's pid rather than take 1 for an ended program.
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  run_shell("unshare -pf --mount-proc true 2>/dev/null", st);
  if (st != 0) {
    WARN("unshare -p is not permitted here (not root?): the first-process case is not run");
    return;
  }
  const std::string out = run_shell("unshare -pf --mount-proc sh -c 'echo $$; exec " + kBin + " info -v0 \"$0\"' '" + m + "'", st);
  CHECK(st == 0);
  CHECK(out.rfind("1\nfile\t" + m + "\n", 0) == 0);
}

TEST_CASE("cli: progress off a terminal is a line every interval from -v 2", "[app]") {
  // A log file (a batch job's standard error): nothing at -v 1; at -v 2 a line of its own (no
  // carriage return or erase sequence) once the interval has passed, none before it.
  auto written = [](int verbosity, double every, const std::vector<int64_t>& updates) {
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    {
      mambadna::app::Progress p("bases", 1000, verbosity, f, every);
      for (int64_t done : updates) p.update(done);
      p.finish();
    }
    std::rewind(f);
    std::string text;
    for (int c; (c = std::fgetc(f)) != EOF;) text += char(c);
    std::fclose(f);
    return text;
  };
  CHECK(written(1, 0, {100, 200}) == "");
  CHECK(written(2, 3600, {100, 200}) == "");
  const std::string lines = written(2, 0, {100, 250});
  CHECK(lines.find('\r') == std::string::npos);
  CHECK(lines.find('\033') == std::string::npos);
  CHECK(lines.rfind("[mambadna] 100.0 bases, ", 0) == 0);
  CHECK(lines.find(" 10.0%") != std::string::npos);
  CHECK(lines.find("\n[mambadna] 250.0 bases, ") != std::string::npos);
  CHECK(lines.find(" 25.0%") != std::string::npos);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 2);
  CHECK(lines.back() == '\n');
}

TEST_CASE("cli: a run that fails puts none of its outputs in place, whichever failed", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGT\n>b\nTTGACCAACGTACGTACGTTGCA\n");
  REQUIRE(fai_build(fa.c_str()) == 0);
  auto none_of = [&](const std::vector<std::string>& names) {
    for (const std::string& n : names) CHECK_FALSE(std::filesystem::exists(dir.file(n)));
  };
  // score: the TSV's standard output fails after the files are complete.
  std::string err = run_shell(kBin + " score -v0 -m '" + m + "' '" + fa + "' -o '" + dir.file("s.h5") + "' --bedgraph '" +
                                  dir.file("s.bg") + "' 2>&1 >/dev/full",
                              st);
  CHECK(st == 1);
  CHECK(err == "mambadna: standard output: write failed: No space left on device\n");
  none_of({"s.h5", "s.bg"});
  // ... or its reader went away with SIGPIPE ignored: the run stops there.
  err = run_shell("(trap '' PIPE; " + kBin + " score -v0 -m '" + m + "' '" + mambadna::test::data_file("edge/ex1.bam") +
                      "' -o '" + dir.file("p.h5") + "' 2>'" + dir.file("p.err") + "' | head -c 1 >/dev/null)",
                  st);
  std::ifstream perr(dir.file("p.err"));
  const std::string p_err((std::istreambuf_iterator<char>(perr)), std::istreambuf_iterator<char>());
  CHECK(p_err.find("standard output: write failed: Broken pipe") != std::string::npos);
  none_of({"p.h5"});
  // vep: its HDF5 table (~20 KB) cannot be written whole (a file size limit stands in for a full disk),
  // so the VCF, complete, is not put in place either.
  err = run_shell("bash -c \"ulimit -f 8; trap '' XFSZ; " + kBin + " vep -v0 -m '" + m + "' -f '" + fa + "' -i '" +
                      dir.write("v.vcf", "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\na\t5\t.\tA\tG\t.\t.\t.\n") +
                      "' -o '" + dir.file("o.vcf") + "' --h5 '" + dir.file("o.h5") + "'\" 2>&1",
                  st);
  CHECK(st == 1);
  CHECK(err.find("o.h5: ") != std::string::npos);
  CHECK(err.find("File too large") != std::string::npos);
  none_of({"o.vcf", "o.h5"});
  // ... or its table goes to a device, written only when the run is done (a full one here):
  // the VCF stays where it was.
  const std::string kept = dir.write("k.vcf", "kept\n");
  err = run_shell(kBin + " vep -v0 -m '" + m + "' -f '" + fa + "' -i '" + dir.file("v.vcf") + "' -o '" + kept +
                      "' --h5 /dev/full 2>&1",
                  st);
  CHECK(st == 1);
  CHECK(err.find("/dev/full: write failed") != std::string::npos);
  std::ifstream k(kept);
  CHECK(std::string((std::istreambuf_iterator<char>(k)), std::istreambuf_iterator<char>()) == "kept\n");
}

TEST_CASE("cli: empty names, an input's index and standard output are refused as outputs", "[app]") {
  TempDir dir;
  int st = -1;
  const std::string m = init_tiny(dir);
  const std::string fa = dir.write("a.fa", ">a\nACGTACGTTTGACCAACGTTGCAGGT\n");
  REQUIRE(fai_build(fa.c_str()) == 0);
  // An empty value (an unset variable) names nothing: refused before any work, every option.
  for (const std::string& cmd : {" score -m '" + m + "' '" + fa + "' -o ''", " score -m '" + m + "' '" + fa + "' --bedgraph ''",
                                 " stats '" + fa + "' -o ''", std::string(" init -o ''"), " score -m '" + m + "' ''",
                                 " score -m '" + m + "' '" + fa + "' -r ''"}) {
    INFO(cmd);
    const std::string err = run_shell(kBin + cmd + " 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("is an empty string (an unset variable?)") != std::string::npos);
  }
  // vep's VCF, an argument or -i: the message names the way it came.
  std::string err = run_shell(kBin + " vep -m '" + m + "' -f '" + fa + "' -i '' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--input is an empty string") != std::string::npos);
  err = run_shell(kBin + " vep -m '" + m + "' -f '" + fa + "' '' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("an input is an empty string") != std::string::npos);
  // vep reads its windows by position: a dropped character would move them.
  const std::string vcf = dir.write("in.vcf", "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
  err = run_shell(kBin + " vep -m '" + m + "' -f '" + fa + "' --invalid skip '" + vcf + "' 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("--invalid skip: vep reads its windows by position") != std::string::npos);
  // An input's index is read with it; standard output sent to a named output would be mixed in.
  err = run_shell(kBin + " vep -m '" + m + "' -f '" + fa + "' -i - -o '" + fa + ".fai' </dev/null 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("is the same file as -f's index") != std::string::npos);
  {  // ... also under its other name: ex1.bai for ex1.bam
    const std::string bam = dir.copy(mambadna::test::data_file("edge/ex1.bam"), "r.bam");
    run_shell("samtools index '" + bam + "' '" + dir.file("r.bai") + "'", st);
    REQUIRE(st == 0);
    err = run_shell(kBin + " stats '" + bam + "' -r seq1 -o '" + dir.file("r.bai") + "' 2>&1", st);
    CHECK(st == 2);
    CHECK(err.find("is the same file as input's index") != std::string::npos);
  }
  err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' --bedgraph '" + dir.file("t.bg") + "' > '" + dir.file("t.bg") + "' 2>&1", st);
  CHECK(st == 2);
  std::ifstream t(dir.file("t.bg"));
  const std::string said((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
  CHECK(said.find("is where standard output goes, which the run writes too") != std::string::npos);
  err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' --bedgraph /dev/stdout 2>&1 | cat", st);
  CHECK(err.find("--bedgraph /dev/stdout is where standard output goes") != std::string::npos);
  // Only where the run writes on standard output: stats -o /dev/stdout is its only writer.
  run_shell(kBin + " stats -v0 '" + fa + "' -o /dev/stdout > '" + dir.file("s.tsv") + "'", st);
  CHECK(st == 0);
  // Two spellings of one new file are one file.
  err = run_shell(kBin + " score -m '" + m + "' '" + fa + "' -o ./n.h5 --bedgraph n.h5 2>&1", st);
  CHECK(st == 2);
  CHECK(err.find("is the same file as -o ./n.h5") != std::string::npos);
  // A name too long for its temporary beside it (up to 255 bytes): a short temporary instead.
  const std::string long_name = dir.file(std::string(250, 'x') + ".tsv");
  run_shell(kBin + " stats -v0 '" + fa + "' -o '" + long_name + "'", st);
  CHECK(st == 0);
  CHECK(std::filesystem::file_size(long_name) > 0);
  const std::string too_long = dir.file(std::string(253, 'x') + ".tsv");  // 257 bytes: said before the work
  err = run_shell(kBin + " stats -v0 '" + fa + "' -o '" + too_long + "' 2>&1", st);
  CHECK(st == 1);
  CHECK(err.find(": cannot create: File name too long") != std::string::npos);
  // The same HDF5 output twice is the same bytes (HDF5 stamps objects with times unless told not to).
  const std::string init = kBin + " init -v0 -p tiny -o '" + dir.file("i.h5") + "'";
  run_shell(init + " && mv '" + dir.file("i.h5") + "' '" + dir.file("i1.h5") + "' && sleep 1.1 && " + init + " && cmp -s '" +
                dir.file("i.h5") + "' '" + dir.file("i1.h5") + "'",
            st);
  CHECK(st == 0);
}
