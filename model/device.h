// Where the model's passes run: the CPU (kernels/cpu) or one CUDA device (kernels/cuda).
// Text form as in PyTorch: "cpu", "cuda" (device 0) or "cuda:N".
#pragma once
#include <string>

namespace mambadna::model {

struct Device {
  bool cuda = false;
  int index = 0;  // CUDA device index
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// Throws UsageError naming --device for anything else.
Device parse_device(const std::string& text);

}  // namespace mambadna::model
