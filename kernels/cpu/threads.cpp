#include "kernels/threads.h"

#include <cblas.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <string>

#include "io/error.h"

namespace mambadna::kernels {

struct CpuThreads::Impl {
  tbb::global_control tbb;
  explicit Impl(int n) : tbb(tbb::global_control::max_allowed_parallelism, size_t(n)) {}
};

namespace {
int checked(int threads) {
  if (threads < 1) throw UsageError("CpuThreads: threads must be at least 1 (got " + std::to_string(threads) + ")");
  return threads;
}
}  // namespace

CpuThreads::CpuThreads(int threads) : impl_(std::make_unique<Impl>(checked(threads))) {
  // Matrix products are split across TBB's workers (cpu/matmul.cpp): OpenBLAS itself runs one
  // thread per call, so that the two pools never spin against each other.
  openblas_set_num_threads(1);
}

CpuThreads::~CpuThreads() = default;

}  // namespace mambadna::kernels
