// Parts of kernels/device.h that are the same with or without the CUDA backend.
#include "kernels/device.h"

#include "io/error.h"

namespace mambadna::kernels::cuda {

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "tf32") return MatmulPrecision::tf32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw UsageError("--precision: '" + name + "' is not one of fp32, tf32, bf16");
}

}  // namespace mambadna::kernels::cuda
