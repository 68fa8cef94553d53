// Writing an HDF5 table row by row, as score and embed write their regions/, records/ and reads/
// tables (io::H5ReadColumns: the five reads/ columns, a string and four int64, through
// io::H5Appender), side by side with the same columns written whole (io::H5File::write), the
// fastest way to write them.
//
//   bench_h5 [ROWS...] [-d DIR]
//
// ROWS defaults to 100000 and 1000000; the files go to DIR (default: the temporary directory)
// and are removed. Prints seconds and rows per second for each.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/h5.h"
#include "io/temp_files.h"

using namespace mambadna;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

io::Alignment read_at(int64_t i) {
  io::Alignment a;
  a.contig = i % 3 == 0 ? "chr1" : "chr2";
  a.pos = i * 7;
  a.end = a.pos + 150;
  a.flag = i % 2 ? 99 : 147;
  a.mapq = 60;
  return a;
}

double by_rows(const std::string& path, int64_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  auto f = io::H5File::create(path);
  {
    io::H5ReadColumns reads(f);
    for (int64_t i = 0; i < n; ++i) reads.append(read_at(i));
  }
  f.commit();
  return seconds_since(t0);
}

double whole(const std::string& path, int64_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  auto f = io::H5File::create(path);
  std::vector<std::string> contig;
  std::vector<int64_t> pos, end, flag, mapq;
  for (int64_t i = 0; i < n; ++i) {
    const io::Alignment a = read_at(i);
    contig.push_back(a.contig), pos.push_back(a.pos), end.push_back(a.end), flag.push_back(a.flag);
    mapq.push_back(a.mapq);
  }
  f.write_strings("reads/contig", contig);
  f.write("reads/pos", pos.data(), {n});
  f.write("reads/end", end.data(), {n});
  f.write("reads/flag", flag.data(), {n});
  f.write("reads/mapq", mapq.data(), {n});
  f.commit();
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes;
  std::string dir = io::temp_directory();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i], &end, 10);
      if (!end || *end || v < 1) {
        std::fprintf(stderr, "Usage: %s [ROWS...] [-d DIR]\n", argv[0]);
        return 2;
      }
      sizes.push_back(v);
    }
  }
  if (sizes.empty()) sizes = {100000, 1000000};
  try {
    const std::string path = (std::filesystem::path(dir) / ("bench_h5." + std::to_string(::getpid()) + ".h5")).string();
    std::printf("%-10s %-28s %10s %14s\n", "rows", "how", "seconds", "rows/s");
    for (const int64_t n : sizes) {
      const double a = by_rows(path, n);
      std::filesystem::remove(path);
      const double b = whole(path, n);
      std::filesystem::remove(path);
      std::printf("%-10lld %-28s %10.3f %14.0f\n", (long long)n, "reads/ row by row (appender)", a, double(n) / a);
      std::printf("%-10lld %-28s %10.3f %14.0f\n", (long long)n, "reads/ whole columns", b, double(n) / b);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_h5: %s\n", e.what());
    return 1;
  }
  return 0;
}
