// Streaming throughput and peak memory of io::SequenceReader.
//
//   bench_io GENOME.fa.gz [WORKDIR]
//
// GENOME.fa.gz should be a bgzip FASTA (human_grch37_chr20.fa.gz from the shared data: 63 Mbp).
// The benchmark writes into WORKDIR (default: a new directory under $TMPDIR, removed at the end)
// a plain (decompressed) copy and a 1 Mbp single-record FASTA cut from the genome, then streams:
// the bgzip file with 0, 1 and 2 decompression threads, the plain copy, and the 1 Mbp file.
// Each case runs in a fresh process so that its peak RSS (getrusage) is its own; the 1 Mbp and
// 63 Mbp cases show that memory does not grow with the record length.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <htslib/bgzf.h>
#include <string>
#include <vector>

#include "io/sequence_reader.h"

namespace fs = std::filesystem;
using namespace mambadna;

namespace {

constexpr size_t kChunk = 65536;

// Child process: streams `path` and prints "BASES RECORDS SECONDS" on stdout.
int run_case(const std::string& path, int threads) {
  io::ReaderOptions opt;
  opt.threads = threads;
  auto t0 = std::chrono::steady_clock::now();
  io::SequenceReader reader(path, opt);
  io::Chunk chunk;
  int64_t bases = 0;
  uint64_t checksum = 0;
  while (reader.next(chunk, kChunk)) {
    bases += int64_t(chunk.tokens.size());
    if (!chunk.tokens.empty()) checksum += chunk.tokens.back();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%lld %lld %.6f %llu\n", (long long)bases, (long long)reader.records(), s,
              (unsigned long long)checksum);
  return 0;
}

struct Result {
  int64_t bases = 0, records = 0;
  double wall = 0, cpu = 0;
  int64_t peak_rss = 0;  // bytes
};

// Runs `self --run PATH THREADS` and collects its output and resource usage.
Result spawn_case(const std::string& self, const std::string& path, int threads) {
  int fd[2];
  if (pipe(fd) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    std::string t = std::to_string(threads);
    execl(self.c_str(), self.c_str(), "--run", path.c_str(), t.c_str(), (char*)nullptr);
    _exit(127);
  }
  close(fd[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fd[0]);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("the case for " + path + " failed");
  Result r;
  long long bases = 0, records = 0;
  if (std::sscanf(out.c_str(), "%lld %lld %lf", &bases, &records, &r.wall) != 3)
    throw std::runtime_error("unexpected output: " + out);
  r.bases = bases;
  r.records = records;
  r.cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  r.peak_rss = int64_t(ru.ru_maxrss) * 1024;
  return r;
}

void decompress(const std::string& in, const std::string& out) {
  BGZF* fp = bgzf_open(in.c_str(), "r");
  if (!fp) throw std::runtime_error("cannot open " + in);
  std::ofstream o(out, std::ios::binary);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = bgzf_read(fp, buf.data(), buf.size())) > 0) o.write(buf.data(), n);
  bgzf_close(fp);
  if (n < 0 || !o) throw std::runtime_error("cannot decompress " + in + " to " + out);
}

// A single-record FASTA of `bases` bases taken from the first record of `plain`, 60 per line.
void write_slice(const std::string& plain, const std::string& out, int64_t bases) {
  std::ifstream in(plain, std::ios::binary);
  std::ofstream o(out, std::ios::binary);
  o << ">slice first " << bases << " bases of " << fs::path(plain).filename().string() << "\n";
  std::string line;
  int64_t done = 0;
  std::getline(in, line);  // header
  while (done < bases && std::getline(in, line)) {
    if (!line.empty() && line[0] == '>') break;
    size_t take = size_t(std::min<int64_t>(int64_t(line.size()), bases - done));
    o.write(line.data(), std::streamsize(take)) << "\n";
    done += int64_t(take);
  }
  if (!o) throw std::runtime_error("cannot write " + out);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::strcmp(argv[1], "--run") == 0) return run_case(argv[2], std::atoi(argv[3]));
    if (argc < 2 || argc > 3) {
      std::fprintf(stderr, "Usage: %s GENOME.fa.gz [WORKDIR]\n", argv[0]);
      return 1;
    }
    const std::string genome = argv[1];
    const std::string self = fs::canonical("/proc/self/exe").string();
    bool own_dir = argc < 3;
    std::string dir;
    if (own_dir) {
      std::string tmpl = (fs::temp_directory_path() / "bench_io-XXXXXX").string();
      if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
      dir = tmpl;
    } else {
      dir = argv[2];
      fs::create_directories(dir);
    }
    const std::string plain = (fs::path(dir) / "genome.fa").string();
    const std::string slice = (fs::path(dir) / "slice_1mbp.fa").string();
    decompress(genome, plain);
    write_slice(plain, slice, 1000000);

    struct Case {
      std::string name, path;
      int threads;
    };
    const std::vector<Case> cases = {
        {"1 Mbp plain FASTA, 1 record", slice, 0},
        {"plain FASTA (decompressed copy)", plain, 0},
        {"bgzip FASTA, 0 decompression threads", genome, 0},
        {"bgzip FASTA, 1 decompression thread", genome, 1},
        {"bgzip FASTA, 2 decompression threads", genome, 2},
    };
    std::printf("# bench_io: io::SequenceReader::next(chunk, L = %zu), best of 3 runs per case\n", kChunk);
    std::printf("# input: %s\n", genome.c_str());
    std::printf("%-40s %12s %9s %9s %12s %12s %10s\n", "case", "bases", "wall_s", "cpu_s",
                "Mbases/s", "Mbases/cpu_s", "peak_RSS_MiB");
    for (const Case& c : cases) {
      Result best;
      for (int rep = 0; rep < 3; ++rep) {
        Result r = spawn_case(self, c.path, c.threads);
        if (rep == 0 || r.wall < best.wall) best = r;
      }
      std::printf("%-40s %12lld %9.3f %9.3f %12.1f %12.1f %10.1f\n", c.name.c_str(),
                  (long long)best.bases, best.wall, best.cpu, best.bases / best.wall / 1e6,
                  best.bases / best.cpu / 1e6, best.peak_rss / 1048576.0);
    }
    if (own_dir) fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_io: %s\n", e.what());
    return 1;
  }
}
