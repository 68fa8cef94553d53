// CUDA Linear layer (see kernels/matmul.h): the products through cuBLAS, the bias and its
// gradient in small kernels. Row-major (M, K) · (N, K)ᵀ is, in cuBLAS's column-major terms,
// outᵀ (N, M) = W (N, K) · inᵀ (K, M), so no operand is ever transposed in memory.
// fp32 operands: the precision of the products follows set_matmul_precision (fp32 by default).
// bf16 operands (--precision bf16 keeps the activations and a weight copy in bf16): tensor cores
// with fp32 accumulation, the result stored in fp32 or bf16.
//
// cuBLAS is opened on first use (dlopen) rather than linked: linking it maps about 200 MB into
// every process, CPU-only runs included; opened, it costs only the runs that multiply on a GPU.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <climits>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"

namespace mambadna::kernels::cuda {

namespace {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

void check_cublas(const char* fn, const char* what, cublasStatus_t s) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuda: ") + fn + ": " + what + ": " + cublas_status_name(s));
}

// The two cuBLAS entry points used here, from the library opened at first use.
struct CublasApi {
  using Create = cublasStatus_t (*)(cublasHandle_t*);
  using SetStream = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const void*, const void*, cudaDataType, int, const void*,
                                    cudaDataType, int, const void*, void*, cudaDataType, int,
                                    cublasComputeType_t, cublasGemmAlgo_t);
  Create create = nullptr;
  SetStream set_stream = nullptr;
  GemmEx gemm_ex = nullptr;
  std::string error;  // why it could not be loaded
};

const CublasApi& cublas(const char* fn) {
  static CublasApi api;
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef MAMBADNA_CUDA_EMULATOR  // the CPU emulator's cuBLAS is linked in (tests/cuda_emulator)
    api.create = &cublasCreate_v2;
    api.set_stream = &cublasSetStream_v2;
    api.gemm_ex = &cublasGemmEx;
#else
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {  // beside the CUDA runtime this program loaded
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(&cudaGetDeviceCount), &info) && info.dli_fname) {
        std::string dir = info.dli_fname;
        dir = dir.substr(0, dir.rfind('/') + 1);
        lib = dlopen((dir + name).c_str(), RTLD_NOW | RTLD_LOCAL);
      }
    }
    if (!lib) {
      const char* e = dlerror();
      api.error = "cannot load " + name + " (" + (e ? e : "not found") +
                  "); put the CUDA toolkit's library folder on LD_LIBRARY_PATH";
      return;
    }
    api.create = reinterpret_cast<CublasApi::Create>(dlsym(lib, "cublasCreate_v2"));
    api.set_stream = reinterpret_cast<CublasApi::SetStream>(dlsym(lib, "cublasSetStream_v2"));
    api.gemm_ex = reinterpret_cast<CublasApi::GemmEx>(dlsym(lib, "cublasGemmEx"));
    if (!api.create || !api.set_stream || !api.gemm_ex)
      api.error = name + " lacks cublasCreate_v2, cublasSetStream_v2 or cublasGemmEx";
#endif
  });
  if (!api.error.empty()) throw Error(std::string("cuda: ") + fn + ": " + api.error);
  return api;
}

// One handle per device and stream (main, side), created on first use and bound to its stream:
// products on the two streams may run at once, and a handle's workspace serves one at a time.
cublasHandle_t handle(const char* fn) {
  static cublasHandle_t handles[64][2] = {};
  const int d = current_device();
  if (d < 0 || d >= 64) throw UsageError(std::string(fn) + ": device index out of range");
  const int s = current_stream_kind() == Stream::side ? 1 : 0;
  cublasHandle_t& h = handles[d][s];
  if (!h) {
    check_cublas(fn, "cublasCreate", cublas(fn).create(&h));
    check_cublas(fn, "cublasSetStream", cublas(fn).set_stream(h, current_stream()));
  }
  return h;
}

cublasComputeType_t compute_type() {
  switch (matmul_precision()) {
    case MatmulPrecision::tf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::bf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
  }
}

// cuBLAS's name for a storage type.
constexpr cudaDataType data_type(const float*) { return CUDA_R_32F; }
constexpr cudaDataType data_type(const bf16*) { return CUDA_R_16BF; }

// Column-major C (m, n) = alpha op(A) op(B) + beta C. A and B share a storage type: fp32 (the
// compute type follows set_matmul_precision) or bf16 (tensor cores, fp32 accumulation); C is
// fp32 or bf16 (rounded once, from the fp32 sum).
template <typename TI, typename TO>
void gemm(const char* fn, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
          int64_t k, const TI* A, int64_t lda, const TI* B, int64_t ldb, float beta, TO* C,
          int64_t ldc) {
  // cublasGemmEx takes int sizes: a larger one would wrap into a wrong (or refused) product.
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"m", m}, {"n", n}, {"k", k},
                                {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}})
    check::at_most(fn, name, v, INT32_MAX, "INT32_MAX");
  const float alpha = 1.0f;
  const cublasComputeType_t compute =
      std::is_same_v<TI, float> ? compute_type() : CUBLAS_COMPUTE_32F;
  check_cublas(fn, "cublasGemmEx",
               cublas(fn).gemm_ex(handle(fn), ta, tb, int(m), int(n), int(k), &alpha, A,
                                  data_type(A), int(lda), B, data_type(B), int(ldb), &beta, C,
                                  data_type(C), int(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

// ---- kernels ---------------------------------------------------------------------------------

// out (M, N) row stride ldo += bias (N)
template <typename T>
__global__ void add_bias_kernel(T* out, const float* bias, int64_t M, int64_t N, int64_t ldo) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * N) return;
  const int64_t m = i / N, n = i - m * N;
  out[m * ldo + n] = st<T>(ld(out[m * ldo + n]) + bias[n]);
}

// dbias (N) += Σ_m dout (M, N) row stride ldo: a thread per column, a block per range of rows.
template <typename T>
__global__ void bias_grad_kernel(float* dbias, const T* dout, int64_t M, int64_t N,
                                 int64_t ldo, int64_t rows_per_block) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int64_t m0 = int64_t(blockIdx.y) * rows_per_block, m1 = min(M, m0 + rows_per_block);
  float acc = 0.0f;
  for (int64_t m = m0; m < m1; ++m) acc += ld(dout[m * ldo + n]);
  atomicAdd(&dbias[n], acc);
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

namespace {

template <typename TO, typename TI>
void forward(TO* out, const TI* in, const TI* W, const float* bias, const MatmulParams& p) {
  const char* fn = "cuda::matmul_forward";
  matmul_forward_check(fn, out, in, W, p);
  // outᵀ (N, M) = W (col-major (K, N), transposed) · inᵀ (col-major (K, M))
  gemm(fn, CUBLAS_OP_T, CUBLAS_OP_N, p.N, p.M, p.K, W, p.K, in, p.ldi, p.accumulate ? 1.0f : 0.0f,
       out, p.ldo);
  if (bias) {
    launch(add_bias_kernel<TO>, grid_for(p.M * p.N, 256), 256, 0, out, bias, p.M, p.N, p.ldo);
    check_launch(fn);
  }
}

// din = dout · W (or +=): dinᵀ (K, M) = W (col-major (K, N)) · doutᵀ (col-major (N, M)).
template <typename TD, typename TI>
void backward_input(const char* fn, TD* din, const TI* dout, const TI* W, const MatmulParams& p) {
  gemm(fn, CUBLAS_OP_N, CUBLAS_OP_N, p.K, p.M, p.N, W, p.K, dout, p.ldo,
       p.accumulate_din ? 1.0f : 0.0f, din, p.ldi);
}

// dW += doutᵀ · in, dbias += Σ dout.
template <typename TI>
void backward_weight(const char* fn, float* dW, float* dbias, const TI* dout, const TI* in,
                     const MatmulParams& p) {
  // dWᵀ (K, N) += inᵀ (col-major (K, M)) · dout (col-major (N, M), transposed)
  gemm(fn, CUBLAS_OP_N, CUBLAS_OP_T, p.K, p.N, p.M, in, p.ldi, dout, p.ldo, 1.0f, dW, p.K);
  if (dbias) {
    const int64_t rows = rows_per_block(p.M, 256);
    const dim3 grid(grid_for(p.N, 128), unsigned((p.M + rows - 1) / rows));
    launch(bias_grad_kernel<TI>, grid, 128, 0, dbias, dout, p.M, p.N, p.ldo, rows);
    check_launch(fn);
  }
}

template <typename TD, typename TI>
void backward(TD* din, float* dW, float* dbias, const TI* dout, const TI* in, const TI* W,
              const MatmulParams& p) {
  const char* fn = "cuda::matmul_backward";
  matmul_backward_check(fn, dW, dout, in, W, p);
  if (din) backward_input(fn, din, dout, W, p);
  backward_weight(fn, dW, dbias, dout, in, p);
}

template <typename TD, typename TI>
void backward_input_checked(TD* din, const TI* dout, const TI* W, const MatmulParams& p) {
  const char* fn = "cuda::matmul_backward_input";
  matmul_check(fn, p);
  check::not_null(fn, "din", din);
  check::not_null(fn, "dout", dout);
  check::not_null(fn, "W", W);
  backward_input(fn, din, dout, W, p);
}

template <typename TI>
void backward_weight_checked(float* dW, float* dbias, const TI* dout, const TI* in,
                             const MatmulParams& p) {
  const char* fn = "cuda::matmul_backward_weight";
  matmul_check(fn, p);
  check::not_null(fn, "dW", dW);
  check::not_null(fn, "dout", dout);
  check::not_null(fn, "in", in);
  backward_weight(fn, dW, dbias, dout, in, p);
}

}  // namespace

void matmul_backward_input(float* din, const float* dout, const float* W, const MatmulParams& p) {
  backward_input_checked(din, dout, W, p);
}
void matmul_backward_input(float* din, const bf16* dout, const bf16* W, const MatmulParams& p) {
  backward_input_checked(din, dout, W, p);
}
void matmul_backward_input(bf16* din, const bf16* dout, const bf16* W, const MatmulParams& p) {
  backward_input_checked(din, dout, W, p);
}
void matmul_backward_weight(float* dW, float* dbias, const float* dout, const float* in,
                            const MatmulParams& p) {
  backward_weight_checked(dW, dbias, dout, in, p);
}
void matmul_backward_weight(float* dW, float* dbias, const bf16* dout, const bf16* in,
                            const MatmulParams& p) {
  backward_weight_checked(dW, dbias, dout, in, p);
}

void matmul_forward(float* out, const float* in, const float* W, const float* bias,
                    const MatmulParams& p) {
  forward(out, in, W, bias, p);
}
void matmul_forward(float* out, const bf16* in, const bf16* W, const float* bias,
                    const MatmulParams& p) {
  forward(out, in, W, bias, p);
}
void matmul_forward(bf16* out, const bf16* in, const bf16* W, const float* bias,
                    const MatmulParams& p) {
  forward(out, in, W, bias, p);
}

void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in,
                     const float* W, const MatmulParams& p) {
  backward(din, dW, dbias, dout, in, W, p);
}
void matmul_backward(float* din, float* dW, float* dbias, const bf16* dout, const bf16* in,
                     const bf16* W, const MatmulParams& p) {
  backward(din, dW, dbias, dout, in, W, p);
}
void matmul_backward(bf16* din, float* dW, float* dbias, const bf16* dout, const bf16* in,
                     const bf16* W, const MatmulParams& p) {
  backward(din, dW, dbias, dout, in, W, p);
}

}  // namespace mambadna::kernels::cuda
