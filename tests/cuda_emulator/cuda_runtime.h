// A CPU emulator of the part of the CUDA runtime that mambadna uses, so that kernels/cuda/*.cu and
// the CUDA model are tested on machines without a GPU (the build option MAMBADNA_CUDA_EMULATOR;
// see README.md, "Building by hand"). It stands in for <cuda_runtime.h>: the .cu files compile
// unchanged as C++ with this folder first on the include path.
//
// What it emulates faithfully enough to catch bugs:
// - every thread of a block runs as a fiber; __syncthreads and the warp shuffles are real
//   rendezvous, so a kernel whose threads depend on each other's values through shared memory
//   or shuffles computes what the GPU computes when it is race-free; each warp runs as far
//   ahead of the others as the barriers allow, and lanes and warps run in reverse order in
//   every other block, so a missing barrier changes the result;
// - threads of a block waiting at different __syncthreads calls, or some at a barrier and some
//   at a shuffle, and shuffles whose lanes are at different call sites, give different masks
//   or widths, or read a lane that has exited or lies outside the mask are reported (the GPU
//   would hang or return garbage);
// - device memory is host memory filled with NaN bytes when allocated (as uninitialised device
//   memory is garbage), with a guard zone after each allocation checked after every launch and
//   at every free and synchronisation (a write past the end is reported with the allocation's
//   size), and copies that would run past an allocation are refused; built
//   with AddressSanitizer (scripts/memcheck.sh), allocations are exact, so that reads and
//   writes past the end are reported where they happen;
// - pointer arguments of kernels must be null or device memory;
// - launch configurations are checked as the GPU checks them (threads per block, grid size,
//   dynamic shared memory against the limit set with cudaFuncSetAttribute).
// - a created stream's work is deferred until the default stream waits for it, and work put
//   there without waiting for the default stream is reported (see "streams and events");
// What it does not: timing, asynchrony of the default stream (its launches run to completion
// at once, so the host never sees a half-done kernel), memory ordering
// between blocks (blocks run one after another), garbage in static __shared__ arrays (they
// start zeroed, and keep the previous block's values), pointers to host memory inside struct
// arguments, and (without AddressSanitizer) reads past the end of an allocation.
#pragma once
#include <math.h>

#include <source_location>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Blocks run one at a time and their threads share the kernel's statics: the block's shared
// memory. (Dynamic shared memory: cuda_emulator::dynamic_shared, see common.cuh.)
#define __shared__ static

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr { cudaDevAttrMaxThreadsPerBlock = 1, cudaDevAttrMultiProcessorCount = 16 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major, minor;
};

// ---- streams and events ----------------------------------------------------------------------
// The legacy default stream (0) runs every launch, copy and set at once. A created stream is
// non-blocking, and its work is deferred: it runs only when the default stream waits on an
// event recorded after it (cudaStreamWaitEvent), at cudaStreamSynchronize,
// cudaDeviceSynchronize or cudaFree (which synchronises on the GPU too). So a buffer that the
// default stream overwrites before it waits for the created stream's reader is read overwritten,
// and the results change. The other way, work submitted to a created stream must follow a wait
// for everything submitted to the default stream so far, or the emulator reports it.
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
enum : unsigned { cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2 };
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemset2D(void* dst, size_t pitch, int value, size_t width, size_t height);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);

namespace cuda_emulator {

// The emulated device: memory and the per-function dynamic shared memory limits.
cudaError_t set_max_dynamic_shared(const void* fn, int bytes);

// A kernel launch: checks the configuration, then runs `thread` once per thread, block after
// block, threads of a block as fibers. A bad configuration is reported by cudaGetLastError.
void run_grid(const void* fn, dim3 grid, dim3 block, size_t shared_bytes,
              const std::function<void()>& thread);

// Kernel-side state of the running thread.
struct ThreadState {
  uint3 thread_idx{0, 0, 0}, block_idx{0, 0, 0};
  dim3 block_dim, grid_dim;
  unsigned char* dynamic_shared = nullptr;
};
extern thread_local ThreadState current;

void syncthreads(const char* file, unsigned line);
// Rendezvous of the lanes in `mask` of the calling thread's warp: each gives `value`, gets the
// value of lane `src_lane` (64 bits carried, the caller converts). `site` names the call in
// the kernel: every lane of the rendezvous must be at the same one with the same mask and width.
uint64_t shuffle(unsigned mask, uint64_t value, int src_lane, int width, const char* file,
                 unsigned line);

template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(current.dynamic_shared);
}

// A pointer handed to a kernel must be null or point into device memory (a host pointer would
// fault on the GPU; here it would silently work). Pointers inside struct arguments are not seen.
void check_kernel_pointer(const void* p, int index);
template <typename T>
void check_kernel_argument(const T& v, int index) {
  if constexpr (std::is_pointer_v<T>) check_kernel_pointer(static_cast<const void*>(v), index);
}

// Runs `job` in `stream`'s order: now on the default stream, later on a created one.
void submit(cudaStream_t stream, std::function<void()> job);

template <typename... P, typename... A>
void launch_on(cudaStream_t stream, void (*kernel)(P...), dim3 grid, dim3 block,
               size_t shared_bytes, A&&... args) {
  // Arguments are converted once to the kernel's parameter types (as the launch copies them),
  // and every thread gets its own copy, as on the device.
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  std::apply([](const auto&... v) {
    int i = 0;
    (check_kernel_argument(v, i++), ...);
  }, params);
  submit(stream, [kernel, grid, block, shared_bytes, params] {
    run_grid(reinterpret_cast<const void*>(kernel), grid, block, shared_bytes,
             [&] { std::apply(kernel, params); });
  });
}
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes, A&&... args) {
  launch_on(nullptr, kernel, grid, block, shared_bytes, std::forward<A>(args)...);
}

}  // namespace cuda_emulator

template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  return cuda_emulator::set_max_dynamic_shared(reinterpret_cast<const void*>(fn), value);
}

// ---- kernel-side builtins ----------------------------------------------------------------------
#define threadIdx (::cuda_emulator::current.thread_idx)
#define blockIdx (::cuda_emulator::current.block_idx)
#define blockDim (::cuda_emulator::current.block_dim)
#define gridDim (::cuda_emulator::current.grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads(const std::source_location at = std::source_location::current()) {
  cuda_emulator::syncthreads(at.file_name(), unsigned(at.line()));
}

namespace cuda_emulator {
template <typename T>
T shuffle_as(unsigned mask, T v, int src, int width, const std::source_location& at) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shuffle(mask, bits, src, width, at.file_name(), unsigned(at.line()));
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}
inline int lane_id() { return int(current.thread_idx.x + current.block_dim.x *
                                  (current.thread_idx.y + current.block_dim.y * current.thread_idx.z)) & 31; }
}  // namespace cuda_emulator

// The source lane as the hardware computes it within segments of `width` lanes (a lane that
// would read a later segment gets its own value). The call site is recorded for the checks.
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                  const std::source_location at = std::source_location::current()) {
  const int lane = cuda_emulator::lane_id(), src = lane ^ lane_mask;
  return cuda_emulator::shuffle_as(mask, v, src > (lane | (width - 1)) ? lane : src, width, at);
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32,
              const std::source_location at = std::source_location::current()) {
  const int lane = cuda_emulator::lane_id();
  return cuda_emulator::shuffle_as(mask, v, (lane & ~(width - 1)) + (src_lane & (width - 1)),
                                   width, at);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                   const std::source_location at = std::source_location::current()) {
  const int lane = cuda_emulator::lane_id();
  const int seg = lane & (width - 1);
  return cuda_emulator::shuffle_as(mask, v, seg + int(delta) < width ? lane + int(delta) : lane,
                                   width, at);
}

template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                 const std::source_location at = std::source_location::current()) {
  const int lane = cuda_emulator::lane_id();
  const int seg = lane & (width - 1);
  return cuda_emulator::shuffle_as(mask, v, seg >= int(delta) ? lane - int(delta) : lane, width, at);
}

// Fibers of one block never run at the same time: a read-modify-write is atomic.
template <typename T>
T atomicAdd(T* address, T v) {
  const T old = *address;
  *address = old + v;
  return old;
}

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }

// CUDA's integer min and max overloads.
#define MAMBADNA_EMU_MINMAX(T)                   \
  inline T min(T a, T b) { return a < b ? a : b; } \
  inline T max(T a, T b) { return a < b ? b : a; }
MAMBADNA_EMU_MINMAX(int)
MAMBADNA_EMU_MINMAX(unsigned)
MAMBADNA_EMU_MINMAX(long)
MAMBADNA_EMU_MINMAX(unsigned long)
MAMBADNA_EMU_MINMAX(long long)
MAMBADNA_EMU_MINMAX(unsigned long long)
#undef MAMBADNA_EMU_MINMAX
