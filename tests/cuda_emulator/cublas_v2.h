// The CUDA emulator's stand-in for <cublas_v2.h>: cublasCreate and cublasGemmEx on fp32 or bf16
// operands, column-major as cuBLAS defines them, with fp32 inputs rounded as the compute type
// says (tf32: 10 mantissa bits, bf16: 7) so that the reduced-precision tests see reduced
// precision, and a bf16 result rounded to nearest even.
#pragma once
#include <cuda_runtime.h>

#define CUBLAS_VER_MAJOR 13

struct cublasContext;
using cublasHandle_t = cublasContext*;

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasComputeType_t {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle);
#define cublasCreate cublasCreate_v2
// Later products of the handle go to `stream`'s order (see cuda_runtime.h: deferred on a created
// stream).
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream);
#define cublasSetStream cublasSetStream_v2
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo);
