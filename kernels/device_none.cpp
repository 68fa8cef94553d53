// kernels/device.h in a build without the CUDA backend: no device is ever available, and the
// calls that need one say that this build has none.
#ifndef MAMBADNA_HAVE_CUDA
#include "io/error.h"
#include "kernels/device.h"

namespace mambadna::kernels::cuda {

namespace {
[[noreturn]] void no_cuda() {
  throw Error("this build of mambadna has no CUDA backend (rebuild with nvcc present)");
}
MatmulPrecision g_precision = MatmulPrecision::fp32;
}  // namespace

bool built() { return false; }
int device_count() { return 0; }
void set_device(int) { no_cuda(); }
int current_device() { no_cuda(); }
std::string device_name(int) { no_cuda(); }
int compute_capability(int) { no_cuda(); }
int multiprocessor_count() { no_cuda(); }
void* device_alloc(size_t) { no_cuda(); }
void device_free(void*) noexcept {}
void copy_to_device(void*, const void*, size_t) { no_cuda(); }
void copy_to_host(void*, const void*, size_t) { no_cuda(); }
void copy_on_device(void*, const void*, size_t) { no_cuda(); }
void fill_bytes(void*, int, size_t) { no_cuda(); }
void copy_2d(void*, size_t, const void*, size_t, size_t, size_t) { no_cuda(); }
void fill_bytes_2d(void*, size_t, int, size_t, size_t) { no_cuda(); }
void synchronize() { no_cuda(); }
void set_stream(Stream) { no_cuda(); }
Stream current_stream_kind() { return Stream::main; }
void side_waits_for_main() { no_cuda(); }
void main_waits_for_side() { no_cuda(); }
void set_side_stream_overlap(bool) {}
bool side_stream_overlap() { return false; }
void* workspace(size_t) { no_cuda(); }
void set_matmul_precision(MatmulPrecision p) { g_precision = p; }
MatmulPrecision matmul_precision() { return g_precision; }

}  // namespace mambadna::kernels::cuda
#endif
