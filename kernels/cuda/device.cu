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
  // None at all is the machine's (exit 1); one past those present, the command line's (exit 2).
  if (n == 0) throw Error("cuda:" + std::to_string(index) + ": no such device (no CUDA device present)");
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

int multiprocessor_count() {  // asked once per device
  static int counts[64] = {};
  const int d = current_device();
  if (d < 0 || d >= 64) throw UsageError("cuda: device index out of range");
  if (!counts[d]) {
    int n = 0;
    MAMBADNA_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d));
    counts[d] = n > 0 ? n : 1;
  }
  return counts[d];
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

// Copies, fills and the workspace are ordered with the main stream alone (the legacy stream;
// the side stream is non-blocking): asked for while the side stream is current, they refuse
// rather than race with its kernels.
void main_stream_only(const char* what);

void copy_to_device(void* dst, const void* src, size_t bytes) {
  main_stream_only("copy_to_device");
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  main_stream_only("copy_to_host");
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  main_stream_only("copy_on_device");
  MAMBADNA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
void fill_bytes(void* dst, int value, size_t bytes) {
  main_stream_only("fill_bytes");
  MAMBADNA_CUDA_CHECK(cudaMemset(dst, value, bytes));
}
void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
             size_t rows) {
  main_stream_only("copy_2d");
  if (width && rows)
    MAMBADNA_CUDA_CHECK(cudaMemcpy2D(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDefault));
}
void fill_bytes_2d(void* dst, size_t pitch, int value, size_t width, size_t rows) {
  main_stream_only("fill_bytes_2d");
  if (width && rows) MAMBADNA_CUDA_CHECK(cudaMemset2D(dst, pitch, value, width, rows));
}
void synchronize() { MAMBADNA_CUDA_CHECK(cudaDeviceSynchronize()); }

namespace {
thread_local Stream g_stream = Stream::main;
bool g_overlap = false;
// The side stream of each device, and the two events that order it with the main stream;
// created on first use and kept for the process.
struct Side {
  cudaStream_t stream = nullptr;
  cudaEvent_t main_mark = nullptr, side_mark = nullptr;
};
Side& side() {
  static Side sides[64];
  const int d = current_device();
  if (d < 0 || d >= 64) throw UsageError("cuda: device index out of range");
  Side& s = sides[d];
  if (!s.stream) {
    MAMBADNA_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    MAMBADNA_CUDA_CHECK(cudaEventCreateWithFlags(&s.main_mark, cudaEventDisableTiming));
    MAMBADNA_CUDA_CHECK(cudaEventCreateWithFlags(&s.side_mark, cudaEventDisableTiming));
  }
  return s;
}
}  // namespace

void main_stream_only(const char* what) {
  if (g_stream == Stream::side)
    throw Error(std::string("cuda::") + what + ": called with the side stream current (main stream only)");
}

cudaStream_t current_stream() { return g_stream == Stream::side ? side().stream : nullptr; }
void set_stream(Stream s) { g_stream = s; }
Stream current_stream_kind() { return g_stream; }
void side_waits_for_main() {
  Side& s = side();
  MAMBADNA_CUDA_CHECK(cudaEventRecord(s.main_mark, nullptr));
  MAMBADNA_CUDA_CHECK(cudaStreamWaitEvent(s.stream, s.main_mark, 0));
}
void main_waits_for_side() {
  Side& s = side();
  MAMBADNA_CUDA_CHECK(cudaEventRecord(s.side_mark, s.stream));
  MAMBADNA_CUDA_CHECK(cudaStreamWaitEvent(nullptr, s.side_mark, 0));
}
void set_side_stream_overlap(bool on) { g_overlap = on; }
bool side_stream_overlap() { return g_overlap; }

void* workspace(size_t bytes) {
  main_stream_only("workspace");  // one buffer, ordered by the main stream's kernels alone
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
