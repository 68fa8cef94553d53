// Shared by the CUDA kernels: the error check that names the failing call, launch helpers and
// the device-side activation functions (the definitions of kernels/activations.h, computed with
// the special-function unit's approximations: see dev_sigmoid).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "io/error.h"
#include "kernels/bf16.h"
#include "kernels/check.h"
#include "kernels/device.h"

namespace mambadna::kernels::cuda {

// Throws mambadna::Error "cuda: <what>: <CUDA's message> (<error name>)".
[[noreturn]] void fail_cuda(const std::string& what, cudaError_t e);

#define MAMBADNA_CUDA_CHECK(stmt)                                         \
  do {                                                                    \
    const cudaError_t mambadna_err_ = (stmt);                             \
    if (mambadna_err_ != cudaSuccess)                                     \
      ::mambadna::kernels::cuda::fail_cuda(#stmt, mambadna_err_);         \
  } while (0)

// After a kernel launch: a bad configuration is reported with the op's name.
inline void check_launch(const char* fn) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail_cuda(std::string(fn) + ": kernel launch", e);
}

// launch(kernel, grid, block, shared_bytes, args...) runs kernel<<<grid, block, shared_bytes>>>;
// dynamic_shared<T>() is the block's dynamic shared memory. Both are spelled as functions so that
// the CPU emulator (tests/cuda_emulator, which compiles these files as C++) can provide them.
// Launches go to the stream set_stream chose (kernels/device.h): null is the legacy default one.
cudaStream_t current_stream();
#ifdef MAMBADNA_CUDA_EMULATOR
using ::cuda_emulator::dynamic_shared;
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes, A&&... args) {
  ::cuda_emulator::launch_on(current_stream(), kernel, grid, block, shared_bytes,
                             std::forward<A>(args)...);
}
#else
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
  extern __shared__ float4 mambadna_dynamic_shared[];  // float4: 16-byte aligned
  return reinterpret_cast<T*>(mambadna_dynamic_shared);
}
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes, A&&... args) {
  kernel<<<grid, block, shared_bytes, current_stream()>>>(std::forward<A>(args)...);
}
#endif

inline unsigned grid_for(int64_t n, int threads) {
  const int64_t g = (n + threads - 1) / threads;
  return unsigned(g < 1 ? 1 : g);
}

// Rows per block for kernels that give each block of grid.y `rows` of M rows: `base`, or more
// where M / base blocks would pass grid.y's limit of 65535.
inline int64_t rows_per_block(int64_t M, int64_t base) {
  return std::max(base, (M + 65534) / 65535);
}

// ---- storage types ---------------------------------------------------------------------------
// Activations are stored as float or bf16 (kernels/bf16.h); kernels templated on the storage
// type T read with ld() and write with st<T>(), computing in float either way.
__device__ __forceinline__ float ld(float x) { return x; }
__device__ __forceinline__ float ld(bf16 x) {
  uint32_t u = uint32_t(x.bits) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
template <typename T>
__device__ __forceinline__ T st(float x);
template <>
__device__ __forceinline__ float st<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 st<bf16>(float x) {
  return bf16{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
}

// ---- device functions ------------------------------------------------------------------------

// Brings the line holding global address p into L1 ahead of its load, without a register or a
// wait (a hint; p must lie inside an allocation). The emulator has no caches: a no-op there.
__device__ __forceinline__ void dev_prefetch_l1(const void* p) {
#ifdef MAMBADNA_CUDA_EMULATOR
  (void)p;
#else
  asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
#endif
}

// 2^x by the special-function unit alone, flushing subnormal results to zero (exp2f adds a
// rescaling for them: four instructions instead of one). For the scan's decays exp(dt·A) <= 1,
// where a subnormal decay and zero differ by less than 2^-126.
__device__ __forceinline__ float dev_exp2_ftz(float x) {
#ifdef MAMBADNA_CUDA_EMULATOR
  const float y = exp2f(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.0f : y;
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

constexpr float kLog2e = 1.4426950408889634f;  // exp(x) = exp2(x · log2 e)

// e^x by the special-function unit alone (ex2.approx of x·log2 e, documented at 2 + 1.17·|x|
// ulp: ~2e-6 relative at |x| = 16), subnormal results flushed to zero: __expf's rescaling of
// them costs three more instructions a call, and every use below adds the result to 1 or to a
// number past 2^-126, where a subnormal and zero give the same float.
__device__ __forceinline__ float dev_exp_ftz(float x) { return dev_exp2_ftz(x * kLog2e); }
// With __fdividef (2 ulp). The limits hold: 1/(1 + inf) is 0, and __fdividef's 0 for divisors
// past 2^126 makes sigmoid 0 from x ~ -87 rather than -88.7 (where it is below 1e-38 anyway).
// The accurate expf and IEEE division took ~20 instructions per call, in kernels that call it
// for every element; the tests' large-input case bounds the error.
//
// These activations are straight-line code, with no branch on the input: a branch puts each
// call of an unrolled loop in its own region, so that the calls run one after another (their
// chains serialised on warps that have few others to switch to); straight code lets the
// compiler interleave them.
__device__ __forceinline__ float dev_sigmoid(float x) {
  return __fdividef(1.0f, 1.0f + dev_exp_ftz(-x));
}
// log(1 + t) for t in [0, 1], as kernels/cpu/simd.h's log1p_unit: 2 atanh(s), s = t / (2 + t)
// <= 1/3, by its series to s^15 (the next term is below 2e-9 relative), no cancellation near 0.
__device__ __forceinline__ float dev_log1p_unit(float t) {
  const float s = __fdividef(t, 2.0f + t), s2 = s * s;
  float p = 1.0f / 15;
  p = fmaf(p, s2, 1.0f / 13);
  p = fmaf(p, s2, 1.0f / 11);
  p = fmaf(p, s2, 1.0f / 9);
  p = fmaf(p, s2, 1.0f / 7);
  p = fmaf(p, s2, 1.0f / 5);
  p = fmaf(p, s2, 1.0f / 3);
  p = fmaf(p, s2, 1.0f);
  return (s + s) * p;
}
// max(x, 0) + log1p(e^-|x|), as the CPU's: ~18 instructions where log1pf(__expf(x)) took ~35
// (the scan computes it once per channel-step in each direction). The exponential's relative
// error carries over to the result at most one to one (t / ((1 + t) log1p(t)) <= 1). The CPU's
// x > 20 shortcut (softplus = x, its derivative 1) needs no branch here: from there on
// e^-|x| < 2.1e-9 is below half an ulp of x and of 1, so the formula rounds to the same floats.
__device__ __forceinline__ float dev_softplus(float x) {
  return fmaxf(x, 0.0f) + dev_log1p_unit(dev_exp_ftz(-fabsf(x)));
}
__device__ __forceinline__ float dev_softplus_grad(float x) { return dev_sigmoid(x); }
__device__ __forceinline__ float dev_silu(float x) { return x * dev_sigmoid(x); }
// s (1 + x (1 − s)); for x > 0, 1 − s = e s with e = exp(−x), without 1 − s's cancellation
// (which grows with x as the approximate s rounds near 1).
__device__ __forceinline__ float dev_silu_grad(float x) {
  const float e = dev_exp_ftz(-x), s = __fdividef(1.0f, 1.0f + e);
  return s * (1.0f + x * (x > 0.0f ? e * s : 1.0f - s));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` holds 32 floats. Calls __syncthreads: every thread of the block must call it.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace mambadna::kernels::cuda
