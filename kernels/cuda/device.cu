// The host side of the CUDA backend: devices, memory, copies, the workspace and the matrix-product
// precision (see kernels/device.h).
#include <cuda_runtime.h>

#include "kernels/cuda/common.cuh"

namespace mambadna::kernels::cuda {

void fail_cuda(const std::string& what, cudaError_t e) {
  throw Error("cuda: " + what + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}

bool built() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return n;
}

void set_device(int index) {
  const int n = device_count();
  if (index < 0 || index >= n)
    throw UsageError("cuda:" + std::to_string(index) + ": no such device (" + std::to_string(n) +
                     " CUDA device" + (n == 1 ? "" : "s") + " present)");
  MAMBADNA_CUDA_CHECK(cudaSetDevice(index));
}

int current_device() {
  int d = 0;
  MAMBADNA_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

std::string device_name(int index) {
  cudaDeviceProp prop{};
  MAMBADNA_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

int compute_capability(int index) {
  cudaDeviceProp prop{};
  MAMBADNA_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.major * 10 + prop.minor;
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error("cuda: cannot allocate " + std::to_string(bytes >> 20) + " MiB on device " +
                std::to_string(current_device()) + " (" + std::to_string(free_b >> 20) + " of " +
                std::to_string(total_b >> 20) + " MiB free): " + cudaGetErrorString(e));
  }
  return p;
}

void device_free(void* p) noexcept {
  if (p) cudaFree(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
void fill_bytes(void* dst, int value, size_t bytes) {
  MAMBADNA_CUDA_CHECK(cudaMemset(dst, value, bytes));
}
void synchronize() { MAMBADNA_CUDA_CHECK(cudaDeviceSynchronize()); }

void* workspace(size_t bytes) {
  static Buffer<unsigned char> ws;
  if (ws.size() < bytes) {
    ws = Buffer<unsigned char>();  // free first: the old and new blocks need not fit together
    ws = Buffer<unsigned char>(bytes + bytes / 4);
  }
  return ws.data();
}

namespace {
MatmulPrecision g_precision = MatmulPrecision::fp32;
}
void set_matmul_precision(MatmulPrecision p) { g_precision = p; }
MatmulPrecision matmul_precision() { return g_precision; }

}  // namespace mambadna::kernels::cuda
