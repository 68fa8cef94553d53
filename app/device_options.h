// --device and --precision, shared by the commands that run the model (train, score, embed, vep).
#pragma once
#include <string>

#include "app/cli.h"
#include "model/device.h"
#include "model/mamba.h"

namespace mambadna::app {

struct DeviceOptions {
  std::string device = "cpu";
  std::string precision = "fp32";
};

void add_device_options(po::options_description& group, DeviceOptions& options);

// Parses both, sets the CUDA matrix-product precision and checks that the device exists; at
// verbosity 2 and more names the device in use on stderr ("device cuda:0 (NAME), fp32 matrix
// products"). Throws UsageError naming the option.
model::Device apply_device_options(const DeviceOptions& options, int verbosity);

// Tokens per stream per model call when -L is 0 (auto): on the CPU about 2048 rows (streams x
// tokens) per call, where larger calls fall out of the caches and run up to 40% slower; on a
// GPU 4096 tokens per stream, where larger calls fill the device.
int64_t auto_chunk(const model::Device& device, int64_t streams);

// The checkpoint at `path` as a float model on `device`.
model::Mamba<float> load_model(const std::string& path, const model::Device& device);

}  // namespace mambadna::app
