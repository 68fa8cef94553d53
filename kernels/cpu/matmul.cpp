// CPU Linear layer through OpenBLAS sgemm (row-major throughout).
#include "kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

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

// OpenBLAS runs single-threaded (kernels/threads.h): TBB splits each product into row blocks,
// one sgemm each, so that one scheduler owns the cores and no pool spins while the other works.
// Blocks keep at least kMinRows rows so that each sgemm stays efficient.
constexpr int64_t kMinRows = 256;

template <typename F>
void split_rows_min(int64_t rows, int64_t min_rows, F&& f) {
  const int64_t parts = std::clamp<int64_t>(rows / min_rows, 1,
                                            int64_t(tbb::this_task_arena::max_concurrency()));
  if (parts == 1) return f(int64_t(0), rows);
  tbb::parallel_for(int64_t(0), parts, [&](int64_t i) {
    f(rows * i / parts, rows * (i + 1) / parts);
  });
}

template <typename F>
void split_rows(int64_t rows, F&& f) {
  split_rows_min(rows, kMinRows, std::forward<F>(f));
}

}  // namespace

void matmul_forward(float* out, const float* in, const float* W, const float* bias,
                    const MatmulParams& p) {
  const char* fn = "matmul_forward";
  matmul_forward_check(fn, out, in, W, p);
  check_blas_sizes(fn, p);
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
  split_rows(p.M, [&](int64_t m0, int64_t m1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m1 - m0), int(p.N), int(p.K), 1.0f,
                in + m0 * p.ldi, int(p.ldi), W, int(p.K), beta, out + m0 * p.ldo, int(p.ldo));
  });
}

void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in,
                     const float* W, const MatmulParams& p) {
  const char* fn = "matmul_backward";
  matmul_backward_check(fn, dW, dout, in, W, p);
  check_blas_sizes(fn, p);
  // din (M, K) = dout (M, N) · W (N, K)
  if (din)
    split_rows(p.M, [&](int64_t m0, int64_t m1) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m1 - m0), int(p.K), int(p.N), 1.0f,
                  dout + m0 * p.ldo, int(p.ldo), W, int(p.K), p.accumulate_din ? 1.0f : 0.0f,
                  din + m0 * p.ldi, int(p.ldi));
    });
  // dW (N, K) += doutᵀ (N, M) · in (M, K), split over the rows or the columns of dW, whichever
  // is longer (no reduction over M is needed either way).
  if (p.N >= p.K)
    split_rows_min(p.N, 32, [&](int64_t n0, int64_t n1) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n1 - n0), int(p.K), int(p.M), 1.0f,
                  dout + n0, int(p.ldo), in, int(p.ldi), 1.0f, dW + n0 * p.K, int(p.K));
    });
  else
    split_rows_min(p.K, 32, [&](int64_t k0, int64_t k1) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(p.N), int(k1 - k0), int(p.M), 1.0f,
                  dout, int(p.ldo), in + k0, int(p.ldi), 1.0f, dW + k0, int(p.K));
    });
  // dbias (N) += doutᵀ · 1
  if (dbias) {
    const std::vector<float> ones(p.M, 1.0f);
    cblas_sgemv(CblasRowMajor, CblasTrans, int(p.M), int(p.N), 1.0f, dout, int(p.ldo), ones.data(),
                1, 1.0f, dbias, 1);
  }
}

}  // namespace mambadna::kernels::cpu
