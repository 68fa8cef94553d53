// Utilities for the CUDA kernel tests: the visible skip when no device can run them (ctest
// reports a test that prints "SKIPPED: no CUDA" as skipped, see tests/CMakeLists.txt) and
// host <-> device copies of test vectors.
#pragma once
#include <iostream>
#include <vector>

#include "kernels/bf16.h"
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

// bf16 storage (kernels/bf16.h) for the tests of the bf16 paths: inputs rounded to bf16 (so that
// the double reference sees exactly what the device reads), conversions, NaN poisoning.
inline std::vector<double> bf16_exact(std::vector<double> v) {
  for (auto& x : v) x = double(from_bf16(to_bf16(float(x))));
  return v;
}
inline std::vector<bf16> bf16_vec(const std::vector<double>& v) {
  std::vector<bf16> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = to_bf16(float(v[i]));
  return b;
}
inline std::vector<float> floats_of(const std::vector<bf16>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = from_bf16(v[i]);
  return f;
}
inline std::vector<bf16> poisoned_bf16(size_t n) { return std::vector<bf16>(n, bf16{0x7FC0}); }

}  // namespace mambadna::kernels::testing
