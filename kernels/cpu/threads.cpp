#include "kernels/threads.h"

#include <cblas.h>
#include <tbb/global_control.h>

#include <algorithm>

namespace mambadna::kernels {

struct CpuThreads::Impl {
  tbb::global_control tbb;
  explicit Impl(int n) : tbb(tbb::global_control::max_allowed_parallelism, size_t(n)) {}
};

CpuThreads::CpuThreads(int threads) : impl_(std::make_unique<Impl>(std::max(1, threads))) {
  // Matrix products are split across TBB's workers (cpu/matmul.cpp): OpenBLAS itself runs one
  // thread per call, so that the two pools never spin against each other.
  openblas_set_num_threads(1);
}

CpuThreads::~CpuThreads() = default;

}  // namespace mambadna::kernels
