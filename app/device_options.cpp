#include "app/device_options.h"

#include <algorithm>
#include <iostream>

#include "io/error.h"
#include "kernels/device.h"
#include "model/checkpoint.h"

namespace mambadna::app {

void add_device_options(po::options_description& group, DeviceOptions& o) {
  group.add_options()  //
      ("device", po::value(&o.device)->default_value(o.device),
       "where the model runs: cpu, cuda (device 0) or cuda:N")  //
      ("precision", po::value(&o.precision)->default_value(o.precision),
       "CUDA precision: fp32, tf32 (tensor-core products of fp32 values) or bf16 (activations "
       "and a weight copy stored in bf16; fp32 master weights, states and sums)");
}

model::Device apply_device_options(const DeviceOptions& o, int verbosity) {
  const model::Device d = model::parse_device(o.device);
  kernels::cuda::set_matmul_precision(kernels::cuda::parse_matmul_precision(o.precision));
  if (d.cuda) {
    if (!kernels::cuda::built())
      throw Error("--device " + o.device + ": this build of mambadna has no CUDA backend (rebuild with nvcc present)");
    kernels::cuda::set_device(d.index);  // names the index and the device count when absent
    const int cc = kernels::cuda::compute_capability(d.index);
    if (o.precision != "fp32" && cc < 80)  // tf32 and bf16 tensor cores came with sm_80
      throw UsageError("--precision " + o.precision + " needs a GPU of compute capability 8.0 or "
                       "newer; cuda:" + std::to_string(d.index) + " (" +
                       kernels::cuda::device_name(d.index) + ") is " + std::to_string(cc / 10) +
                       "." + std::to_string(cc % 10) + ": use --precision fp32");
    if (verbosity >= 2)
      std::cerr << "mambadna: device cuda:" << d.index << " (" << kernels::cuda::device_name(d.index)
                << "), " << o.precision << " matrix products\n";
  } else if (o.precision != "fp32") {
    throw UsageError("--precision " + o.precision + " applies to --device cuda only");
  }
  return d;
}

model::Mamba<float> load_model(const std::string& path, const model::Device& device) {
  auto ck = model::load_checkpoint(path);
  model::Mamba<float> m(ck.config, std::move(ck.params));
  m.to_device(device);
  return m;
}

int64_t auto_chunk(const model::Device& d, int64_t streams) {
  if (d.cuda) return 4096;
  return std::max<int64_t>(256, 2048 / std::max<int64_t>(1, streams));
}

}  // namespace mambadna::app
