// CPU Linear layer through OpenBLAS sgemm (row-major throughout).
#include "kernels/matmul.h"

#include <cblas.h>

#include <climits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace mambadna::kernels::cpu {

namespace {

void check_blas_sizes(const char* fn, const MatmulParams& p) {
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"M", p.M},
                                {"K", p.K},
                                {"N", p.N},
                                {"ldi", p.ldi},
                                {"ldo", p.ldo}})
    if (v > INT_MAX)
      check::fail(fn, std::string(name) + " (" + std::to_string(v) + ") too large for BLAS");
}

}  // namespace

void matmul_forward(float* out, const float* in, const float* W, const float* bias,
                    const MatmulParams& p) {
  const char* fn = "matmul_forward";
  matmul_check(fn, p);
  check_blas_sizes(fn, p);
  check::not_null(fn, "out", out);
  check::not_null(fn, "in", in);
  check::not_null(fn, "W", W);
  float beta = p.accumulate ? 1.0f : 0.0f;
  if (bias) {
    // Seed out with the bias (or add it), then accumulate the product on top.
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, p.M, 64),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        for (int64_t m = r.begin(); m < r.end(); ++m) {
                          float* o = out + m * p.ldo;
                          if (p.accumulate)
                            for (int64_t n = 0; n < p.N; ++n) o[n] += bias[n];
                          else
                            for (int64_t n = 0; n < p.N; ++n) o[n] = bias[n];
                        }
                      });
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(p.M), int(p.N), int(p.K), 1.0f, in,
              int(p.ldi), W, int(p.K), beta, out, int(p.ldo));
}

void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in,
                     const float* W, const MatmulParams& p) {
  const char* fn = "matmul_backward";
  matmul_check(fn, p);
  check_blas_sizes(fn, p);
  check::not_null(fn, "dW", dW);
  check::not_null(fn, "dout", dout);
  check::not_null(fn, "in", in);
  check::not_null(fn, "W", W);
  // din (M, K) = dout (M, N) · W (N, K)
  if (din)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(p.M), int(p.K), int(p.N), 1.0f, dout,
                int(p.ldo), W, int(p.K), p.accumulate_din ? 1.0f : 0.0f, din, int(p.ldi));
  // dW (N, K) += doutᵀ (N, M) · in (M, K)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(p.N), int(p.K), int(p.M), 1.0f, dout,
              int(p.ldo), in, int(p.ldi), 1.0f, dW, int(p.K));
  // dbias (N) += doutᵀ · 1
  if (dbias) {
    const std::vector<float> ones(p.M, 1.0f);
    cblas_sgemv(CblasRowMajor, CblasTrans, int(p.M), int(p.N), 1.0f, dout, int(p.ldo), ones.data(),
                1, 1.0f, dbias, 1);
  }
}

}  // namespace mambadna::kernels::cpu
