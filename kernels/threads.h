// Thread control for the CPU backend: TBB's worker count and OpenBLAS's own pool, set together
// so that they do not compete for cores. Lives as long as the returned object.
#pragma once
#include <memory>

namespace mambadna::kernels {

class CpuThreads {
 public:
  explicit CpuThreads(int threads);  // threads >= 1
  ~CpuThreads();
  CpuThreads(const CpuThreads&) = delete;
  CpuThreads& operator=(const CpuThreads&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mambadna::kernels
