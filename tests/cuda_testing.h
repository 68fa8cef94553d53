// Utilities for the CUDA kernel tests: the visible skip when no device can run them (ctest
// reports a test that prints "SKIPPED: no CUDA" as skipped, see tests/CMakeLists.txt) and
// host <-> device copies of test vectors.
#pragma once
#include <iostream>
#include <vector>

#include "kernels/device.h"

namespace mambadna::kernels::testing {

// True, after saying why on stdout, when this build or this machine cannot run CUDA kernels.
inline bool cuda_unavailable() {
  if (!cuda::built()) {
    std::cout << "SKIPPED: no CUDA backend in this build\n";
    return true;
  }
  if (cuda::device_count() == 0) {
    std::cout << "SKIPPED: no CUDA device on this machine\n";
    return true;
  }
  return false;
}

// A device copy of a host vector; pointer() is nullptr for an empty one (an absent input).
template <typename T>
struct DeviceCopy {
  cuda::Buffer<T> buf;
  explicit DeviceCopy(const std::vector<T>& host) : buf(host) {}
  T* pointer() { return buf.empty() ? nullptr : buf.data(); }
  // Copies the device values back into `host` (same size).
  void to(std::vector<T>& host) const {
    if (!host.empty()) buf.download(host.data(), host.size());
  }
};

}  // namespace mambadna::kernels::testing
