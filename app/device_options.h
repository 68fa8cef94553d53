// --device and --precision, shared by the commands that run the model (train, score, embed, vep).
#pragma once
#include <string>

#include "app/cli.h"
#include "model/device.h"

namespace mambadna::app {

struct DeviceOptions {
  std::string device = "cpu";
  std::string precision = "fp32";
};

void add_device_options(po::options_description& group, DeviceOptions& options);

// Parses both, sets the CUDA matrix-product precision and checks that the device exists.
// Throws UsageError naming the option.
model::Device apply_device_options(const DeviceOptions& options);

}  // namespace mambadna::app
