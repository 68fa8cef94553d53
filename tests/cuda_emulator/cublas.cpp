// The CUDA emulator's cuBLAS: a plain column-major GEMM (see cublas_v2.h).
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace {

// Round to `bits` mantissa bits, to nearest even (as the tensor cores' input conversion).
float round_mantissa(float x, int bits) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const int drop = 23 - bits;
  const uint32_t half = 1u << (drop - 1), lsb = (u >> drop) & 1u;
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + half - 1 + lsb) & ~((1u << drop) - 1);
  std::memcpy(&x, &u, 4);
  return x;
}

}  // namespace

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  *handle = new cublasContext;  // kept for the process, as the handles that ask for it are
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  // The type combinations mambadna uses, as cuBLAS's table lists them: A and B both fp32 (C fp32)
  // or both bf16 (C fp32 or bf16, compute type 32F).
  const bool f32 = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F;
  const bool b16 = Atype == CUDA_R_16BF && Btype == CUDA_R_16BF &&
                   (Ctype == CUDA_R_32F || Ctype == CUDA_R_16BF) && computeType == CUBLAS_COMPUTE_32F;
  if (!f32 && !b16) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (transa == CUBLAS_OP_C || transb == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  // cuBLAS's argument checks: op(A) is m×k, op(B) k×n, C m×n, all column-major.
  const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  int bits = 23;
  switch (computeType) {
    case CUBLAS_COMPUTE_32F: bits = 23; break;
    case CUBLAS_COMPUTE_32F_FAST_TF32: bits = 10; break;
    case CUBLAS_COMPUTE_32F_FAST_16BF: bits = 7; break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  // alpha and beta are read now (host pointers), the product runs in the stream's order.
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  cuda_emulator::submit(handle->stream, [=] {
    // Elements as floats: fp32, or bf16 (the upper half of a float).
    auto element = [](const void* p, cudaDataType t, int64_t i) {
      if (t == CUDA_R_32F) return static_cast<const float*>(p)[i];
      const uint32_t u = uint32_t(static_cast<const uint16_t*>(p)[i]) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    };
    auto in = [bits](float x) { return bits < 23 ? round_mantissa(x, bits) : x; };
    auto a_at = [&](int64_t i) { return in(element(A, Atype, i)); };
    auto b_at = [&](int64_t i) { return in(element(B, Btype, i)); };
    std::vector<double> acc(static_cast<size_t>(m));
    for (int j = 0; j < n; ++j) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int l = 0; l < k; ++l) {
        const float bv = b_at(transb == CUBLAS_OP_N ? l + int64_t(j) * ldb : j + int64_t(l) * ldb);
        for (int i = 0; i < m; ++i) {
          const float av = a_at(transa == CUBLAS_OP_N ? i + int64_t(l) * lda : l + int64_t(i) * lda);
          acc[size_t(i)] += double(av) * double(bv);
        }
      }
      for (int i = 0; i < m; ++i) {
        const int64_t at = i + int64_t(j) * ldc;
        // beta == 0: C is not read (it may hold NaN), as cuBLAS specifies.
        const float v = float(al * acc[size_t(i)] + (be == 0.0f ? 0.0 : double(be) * element(C, Ctype, at)));
        if (Ctype == CUDA_R_32F) {
          static_cast<float*>(C)[at] = v;
        } else {  // bf16: rounded to nearest even, as cuBLAS's epilogue converts
          static_cast<uint16_t*>(C)[at] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
        }
      }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}
