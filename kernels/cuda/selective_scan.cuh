// Shared by the CUDA scan's layouts (internal to kernels/cuda/):
// - selective_scan.cu: parallel in time within a chunk (N <= 16, Mamba's d_state), the path
//   every model of the usual shape takes, and the launchers;
// - selective_scan_serial.cu: a forward for N <= 16 with a thread per channel walking every
//   step, all its states in registers, where the grid gives each scheduler enough warps
//   (forward_layout_for; set_selective_scan_forward_layout forces either);
// - selective_scan_wide.cu: parallel over the states (16 < N <= 256).
// All keep the state before every chunk of kScanChunk steps in the same layout, so a forward
// of one hands its chunk states to a backward of another, and the two parallel in time or
// states split a forward into segments of time the same way (scan_segments,
// combine_segments).
#pragma once
#include "kernels/cuda/common.cuh"
#include "kernels/selective_scan.h"

namespace mambadna::kernels::cuda::scan_detail {

// Steps per chunk: the forward keeps the state before every chunk for the backward
// (B · ceil(L / 32) · E · N floats), which recomputes a chunk at a time from it.
constexpr int kScanChunk = 32;

// T: the storage of the activations (u, delta, Bm, Cm, z, out and their gradients), float or
// bf16; the states, A, D, the bias and the parameter gradients are fp32.
template <typename T>
struct ScanArgs {
  T* out;                // (B, L, E), or nullptr (a pass that keeps only states)
  float* h_last;         // (B, E, N) or nullptr
  const T* u;            // (B, L, E)
  const T* delta;        // (B, L, E)
  const float* A;        // (E, N)
  const T* Bm;           // (B, L, N) row stride ld_bc
  const T* Cm;           // (B, L, N) row stride ld_bc
  const float* D;        // (E) or nullptr
  const T* z;            // (B, L, E) row stride ld_z, or nullptr
  const float* bias;     // (E) or nullptr
  const float* h0;       // (B, E, N) or nullptr
  float* h_chunks;       // (B, chunks, E, N): forward writes the state before every chunk, or nullptr
  int64_t B, L, E, N, ld_bc, ld_z;
  bool softplus;
  // Forward in segments of seg_len steps (blockIdx.z is the segment); each starts from
  // h_start (B, segments, E, N) when given, else from h0.
  int64_t seg_len;
  const float* h_start;
};

template <typename T>
struct ScanGradArgs {
  T* du;                 // (B, L, E)
  T* ddelta;             // (B, L, E)
  float* dA;             // (E, N) +=
  float* dBm;            // (B, L, N) row stride ld_bc, zeroed before
  float* dCm;            // (B, L, N) row stride ld_bc, zeroed before
  float* dD;             // (E) += or nullptr
  T* dz;                 // (B, L, E) row stride ld_z, or nullptr
  float* dbias;          // (E) += or nullptr
  float* dh0;            // (B, E, N) or nullptr
  const T* dout;         // (B, L, E)
  const float* dh_last;  // (B, E, N) or nullptr
  const float* checkpoints;  // (B, chunks, E, N): the state before every chunk
  bool have_checkpoints;     // written by the forward; else the backward writes them there first
};

// The largest N of the two layouts for N <= 16 (selective_scan.cu, selective_scan_serial.cu),
// and the block size at which both stage a chunk's Bm and Cm rows.
constexpr int kStates = 16;
constexpr int kChunkThreads = 128;

// The chunk at t0's Bm and Cm rows (zero past t_end and past N), kStage per thread: fetched
// into registers a chunk ahead, stored into shared memory (each layout its own way) once the
// chunk before is done. Of a block of kChunkThreads, thread tid holds state n = tid % 16 of
// rows tid / 16 + 8q (q < 4) of each matrix: element k is matrix k / 4, pass q = k % 4.
// Addresses are a per-chunk pointer and 32-bit offsets.
constexpr int kStage = 2 * kScanChunk * kStates / kChunkThreads;
constexpr int kRowPass = kChunkThreads / kStates;  // rows one pass of the block covers
constexpr int kPasses = kScanChunk / kRowPass;     // passes per matrix
static_assert(kChunkThreads % kStates == 0 && kStage == 2 * kPasses, "whole rows per pass");
// V: the element type of the two (B·L, ld_bc) matrices (const T for Bm and Cm, float for the
// backward's dBm and dCm).
template <typename V>
struct ChunkRows {
  int n, row0;    // this thread's state and first row
  V* p[2];        // its first element of each matrix in the chunk
  int step;       // between its passes (kRowPass rows)
  int rows;       // of the chunk's rows past this thread's first (<= 0: none)
  bool has_n;     // its state exists (n < N)
  __device__ ChunkRows(V* m0, V* m1, int64_t L, int64_t ld, int64_t N, int64_t b, int64_t t0,
                       int64_t t_end)
      : n(int(threadIdx.x) % kStates), row0(int(threadIdx.x) / kStates) {
    const int64_t at = (b * L + t0 + row0) * ld + n;
    p[0] = m0 + at, p[1] = m1 + at;
    step = kRowPass * int(ld);
    rows = int(min(int64_t(kScanChunk), t_end - t0)) - row0;
    has_n = n < N;
  }
  template <typename T>  // Bm and Cm
  __device__ ChunkRows(const ScanArgs<T>& a, int64_t b, int64_t t0, int64_t t_end)
      : ChunkRows(a.Bm, a.Cm, a.L, a.ld_bc, a.N, b, t0, t_end) {}
  __device__ int row(int k) const { return row0 + (k % kPasses) * kRowPass; }
  __device__ bool ok(int k) const { return has_n && (k % kPasses) * kRowPass < rows; }
  __device__ V* at(int k) const { return p[k / kPasses] + (k % kPasses) * step; }
};
// The values stay in their storage type until store_rows: a bf16 value converted as it
// arrives would make the load wait there, not a chunk later. Without WITH_B, Cm's alone (Bm's
// staged as zeros: the backward's segment summaries need no states).
template <bool WITH_B = true, typename T>
__device__ __forceinline__ void fetch_rows(T (&v)[kStage], const ScanArgs<T>& a, int64_t b,
                                           int64_t t0, int64_t t_end) {
  const ChunkRows<const T> cr(a, b, t0, t_end);
#pragma unroll
  for (int k = 0; k < kStage; ++k) v[k] = cr.ok(k) && (WITH_B || k >= kPasses) ? *cr.at(k) : T{};
}
__device__ __forceinline__ float scan_dt(float raw, bool softplus) {
  return softplus ? dev_softplus(raw) : raw;
}
// The same for K steps of a thread, raw in, dt out, zero from step `count` on (0: the step
// leaves h as it is). One uniform branch around the loop, then selects: a branch per step
// (on softplus or on count) put each step's chain of ~20 instructions in its own region, so
// the steps ran one after another instead of interleaved.
template <int K>
__device__ __forceinline__ void scan_dts(float (&v)[K], bool softplus, int count) {
  if (softplus) {
#pragma unroll
    for (int i = 0; i < K; ++i) v[i] = dev_softplus(v[i]);
  }
#pragma unroll
  for (int i = 0; i < K; ++i) v[i] = i < count ? v[i] : 0.0f;
}

// v[k] (k < LANES) is this lane's part of value k's sum over an aligned group of LANES lanes;
// afterwards v[0] is value `lane`'s total over the group (a reduce-scatter in log2 LANES
// rounds, LANES − 1 shuffles); lane is this thread's place in the group.
template <int LANES>
__device__ __forceinline__ float reduce_scatter(float (&v)[LANES], int lane) {
#pragma unroll
  for (int o = LANES / 2; o >= 1; o >>= 1) {
    const bool upper = lane & o;  // keeps the upper half of the live values, sends the lower
#pragma unroll
    for (int i = 0; i < o; ++i) {
      const float send = upper ? v[i] : v[i + o];
      const float keep = upper ? v[i + o] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
    }
  }
  return v[0];
}

// Segments of time for a forward whose grid has `blocks` blocks of `threads`, enough for
// `warps_per_sm` resident warps per multiprocessor, each segment at least 256 steps (a
// segmented forward reads its inputs twice); set_selective_scan_segments overrides.
int64_t scan_segments(const SelectiveScanParams& p, int64_t blocks, int threads, int warps_per_sm);

// Every segment's start state from the summaries of segments 0 .. S−2 (each one's end state
// from zero, h_end (B, S − 1, E, N), and summed dt, dt_sum (B, S − 1, E)): h_start (B, S, E, N).
void combine_segments(float* h_start, const float* h_end, const float* dt_sum, const float* A,
                      const float* h0, const SelectiveScanParams& p, int64_t segments);

// The channel-serial forward for N <= 16 (selective_scan_serial.cu), unsegmented, outputs and
// states as the time-parallel forward writes them.
template <typename T>
void serial_forward(const ScanArgs<T>& a, const SelectiveScanParams& p);

// The state-parallel layout for 16 < N <= 256 (selective_scan_wide.cu); the backward's
// dBm and dCm are zeroed by the caller.
template <typename T>
void wide_state_forward(const ScanArgs<T>& a, const SelectiveScanParams& p);
template <typename T>
void wide_state_backward(const ScanArgs<T>& a, const ScanGradArgs<T>& g, const SelectiveScanParams& p);

}  // namespace mambadna::kernels::cuda::scan_detail
