// A State<float>'s values in the memory of a CUDA device, where passes on that device leave
// them (model/mamba.h's State keeps one; model/cuda_runner.cpp's passes read and write it).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/device.h"

namespace mambadna::model {

struct DeviceState {
  int device = 0;
  bool holds = false;                  // the values are here (the host copy may be stale)
  kernels::cuda::Buffer<float> conv;   // (n_layer, B, E, K-1), as State's host copy
  kernels::cuda::Buffer<float> ssm;    // (n_layer, B, E, N)
  std::vector<uint8_t> zero;           // (B): streams to zero before the values are next used
  bool zero_pending = false;           // some of `zero` is set
};

}  // namespace mambadna::model
