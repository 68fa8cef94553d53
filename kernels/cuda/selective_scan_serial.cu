// CUDA selective scan forward for N <= 16 with a thread per channel: the channel-serial layout
// (kernels/selective_scan.h has the maths; selective_scan.cu the layout parallel in time, which
// the backward always takes, and the launchers).
//
// Layout. A block covers kChunkThreads (128) consecutive channels of one stream b; each thread
// walks every step of its channel in order, all of its N states in registers. A state and step
// then costs one exponential (exp2 of dt · A · log2 e), a multiply for dt·u·Bm and two
// multiply-adds (the state, and its term of y), and nothing else, where the time-parallel
// layout walks each run twice (once from a zero state, once from the joined start state) and
// joins the runs by shuffles. With the work once per channel and step (softplus, the gate,
// the loads from shared and global memory, the store), the PTX counts ~156 instructions a
// step, ~9.8 per state and step all told, against ~15 all told for the time-parallel layout
// (Nsight Compute on an H200: 385 M warp instructions at B 8 × L 4096; its state loop alone
// ~9.8). A warp's loads of u, delta and z and its stores of out are 32 consecutive channels of
// one step: whole 128-byte lines in fp32.
//
// The trade is parallelism: B·E threads, a quarter of the time-parallel layout's. At B 8 × E
// 1536 that is 384 warps, under one per scheduler of a 132-multiprocessor device. On paper
// each is bound by the special-function unit (16 exponentials a step, and 4 more for softplus
// and the gate: 160 of a scheduler's cycles a step); measured on an H200 (docs/BENCHMARKS.md),
// a warp alone on its scheduler waits on its own chains and issues 0.42 instructions a cycle,
// so the time-parallel layout wins at B 8 (0.58 against 0.85 ms) and this one from ~1.5 warps
// a scheduler (B 32: 1.64 against 2.20 ms). Groups of 4 steps beat 2 and 8 at every B timed.
//
// The chunk's Bm and Cm rows are fetched a chunk ahead (ChunkRows, as the time-parallel layout
// does) and staged in shared memory step-major: a step's 16 Bm values, then its 16 Cm values,
// read by every lane of the block at one address (broadcast 16-byte loads). The next chunk's
// lines of u, delta and z are asked into L1 as a chunk starts, and each group of kGroup steps
// is loaded into registers one group ahead. The state before every chunk goes to h_chunks in
// the layout every forward writes (B, chunks, E, N), so the backward starts from it.
//
// Which layout runs is set_selective_scan_forward_layout's (automatic: forward_layout_for).
#include <cstdint>

#include "kernels/cuda/selective_scan.cuh"

namespace mambadna::kernels::cuda::scan_detail {

namespace {

constexpr int kGroup = 4;                // steps loaded into registers together, a group ahead
constexpr int kRowFloats = 2 * kStates;  // a staged step: its Bm row, then its Cm row
constexpr int kChunkFloats = kScanChunk * kRowFloats;
constexpr size_t kSerialShared = 2 * kChunkFloats * sizeof(float);  // two chunks' rows: 8 KiB
static_assert(kScanChunk % kGroup == 0 && kStates % 4 == 0, "whole groups, 16-byte rows");

// A chunk's rows fetched by fetch_rows into shared memory, step-major (see above).
template <typename T>
__device__ __forceinline__ void store_rows_by_step(const T (&v)[kStage], float* s) {
  const int n = int(threadIdx.x) % kStates, row0 = int(threadIdx.x) / kStates;  // as ChunkRows
#pragma unroll
  for (int k = 0; k < kStage; ++k)
    s[(row0 + (k % kPasses) * kRowPass) * kRowFloats + (k / kPasses) * kStates + n] = ld(v[k]);
}

template <typename T>
__global__ void __launch_bounds__(kChunkThreads) scan_forward_serial_kernel(ScanArgs<T> a) {
  float* sRows = dynamic_shared<float>();  // 2 × (kScanChunk, kRowFloats), by chunk parity
  const int64_t b = blockIdx.y, E = a.E, L = a.L, N = a.N;
  const int64_t e_warp = int64_t(blockIdx.x) * kChunkThreads + (threadIdx.x & ~31u);
  const int64_t e = e_warp + (threadIdx.x & 31u);
  const bool active = e < E;
  const int64_t chunks = (L + kScanChunk - 1) / kScanChunk;
  // The chunk states' rows are whole 16-byte-aligned float4s (N 16 and an aligned base).
  const bool rows16 = N == kStates && (reinterpret_cast<uintptr_t>(a.h_chunks) & 15) == 0;

  // A · log2 e for exp2, and the state: zero past N (the state's decay 1, its input 0).
  float A2[kStates], h[kStates];
  const float* h0 = active && a.h0 ? a.h0 + (b * E + e) * N : nullptr;
#pragma unroll
  for (int n = 0; n < kStates; ++n) {
    const bool ok = active && n < N;
    A2[n] = ok ? a.A[e * N + n] * kLog2e : 0.0f;
    h[n] = ok && h0 ? h0[n] : 0.0f;
  }
  const float Dv = active && a.D ? a.D[e] : 0.0f;
  const float bias = active && a.bias ? a.bias[e] : 0.0f;

  // Steps t .. t + kGroup − 1 of this channel's u, delta, z (zero past L and past E), kept in
  // their storage type until used (converting bf16 on arrival would wait for the load there).
  auto load_group = [&](int64_t t, T (&uq)[kGroup], T (&dq)[kGroup], T (&zq)[kGroup]) {
    const int count = active ? int(min(int64_t(kGroup), L - t)) : 0;
    const int64_t row = b * L + t;
    const T* pu = a.u + row * E + e;
    const T* pd = a.delta + row * E + e;
    const T* pz = a.z ? a.z + row * a.ld_z + e : nullptr;
#pragma unroll
    for (int i = 0; i < kGroup; ++i) {
      const bool ok = i < count;
      uq[i] = ok ? pu[i * int(E)] : T{};
      dq[i] = ok ? pd[i * int(E)] : T{};
      zq[i] = ok && pz ? pz[i * int(a.ld_z)] : T{};
    }
  };

  T rows[kStage];
  fetch_rows(rows, a, b, 0, L);
  store_rows_by_step(rows, sRows);
  T nu[kGroup], nd[kGroup], nz[kGroup];  // the next group's values
  load_group(0, nu, nd, nz);
  __syncthreads();
  int buf = 0;
  for (int64_t t0 = 0; t0 < L; t0 += kScanChunk, buf ^= 1) {
    const bool more = t0 + kScanChunk < L;
    if (a.h_chunks && active) {  // the state before the chunk
      float* dst = a.h_chunks + ((b * chunks + t0 / kScanChunk) * E + e) * N;
      if (rows16) {  // 4 stores of 16 bytes, not 16 of 4 (a warp's 32 rows are one 2 KiB run)
        float4* d4 = reinterpret_cast<float4*>(dst);
#pragma unroll
        for (int q = 0; q < kStates / 4; ++q) d4[q] = make_float4(h[4 * q], h[4 * q + 1], h[4 * q + 2], h[4 * q + 3]);
      } else {
#pragma unroll
        for (int n = 0; n < kStates; ++n)
          if (n < N) dst[n] = h[n];
      }
    }
    if (more) {
      fetch_rows(rows, a, b, t0 + kScanChunk, L);
      // Lane l asks the next chunk's step l of its warp's 32 channels into L1 (a line each).
      const int64_t t = t0 + kScanChunk + (threadIdx.x & 31u);
      if (t < L && e_warp < E) {
        const int64_t row = b * L + t;
        dev_prefetch_l1(a.u + row * E + e_warp);
        dev_prefetch_l1(a.delta + row * E + e_warp);
        if (a.z) dev_prefetch_l1(a.z + row * a.ld_z + e_warp);
      }
    }
    const float* sr = sRows + buf * kChunkFloats;
    const int steps = int(min(int64_t(kScanChunk), L - t0));
#pragma unroll 1
    for (int g = 0; g < steps; g += kGroup) {
      const int64_t t = t0 + g;
      T cu[kGroup], cd[kGroup], cz[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) cu[i] = nu[i], cd[i] = nd[i], cz[i] = nz[i];
      if (t + kGroup < L) load_group(t + kGroup, nu, nd, nz);
      const int count = active ? int(min(int64_t(kGroup), L - t)) : 0;
      float dt[kGroup], y[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) dt[i] = ld(cd[i]) + bias;
      scan_dts(dt, a.softplus, count);  // 0 past the count: the step leaves h as it is
#pragma unroll
      for (int i = 0; i < kGroup; ++i) {
        const float uu = ld(cu[i]), dtu = dt[i] * uu;
        const float4* row = reinterpret_cast<const float4*>(sr + (g + i) * kRowFloats);
        // y's sum over the states in 4 partial sums (chains of 4 multiply-adds, not 16).
        float ys[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int q = 0; q < kStates / 4; ++q) {
          const float4 bq = row[q], cq = row[kStates / 4 + q];
          const float bv[4] = {bq.x, bq.y, bq.z, bq.w}, cv[4] = {cq.x, cq.y, cq.z, cq.w};
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int n = 4 * q + j;
            h[n] = dev_exp2_ftz(dt[i] * A2[n]) * h[n] + dtu * bv[j];
            ys[j] += cv[j] * h[n];
          }
        }
        y[i] = Dv * uu + ((ys[0] + ys[1]) + (ys[2] + ys[3]));
      }
      if (a.out) {  // the gate for every step, then the stores (straight code, as scan_dts)
        if (a.z) {
#pragma unroll
          for (int i = 0; i < kGroup; ++i) y[i] *= dev_silu(ld(cz[i]));
        }
        T* po = a.out + (b * L + t) * E + e;
#pragma unroll
        for (int i = 0; i < kGroup; ++i)
          if (i < count) po[i * int(E)] = st<T>(y[i]);
      }
    }
    // The rows of the buffer read during the chunk before this one: the barrier that ended it
    // ordered those reads before these writes.
    if (more) store_rows_by_step(rows, sRows + (buf ^ 1) * kChunkFloats);
    __syncthreads();
  }
  if (a.h_last && active) {  // h_last may be h0: this thread read its own row of it above
    float* dst = a.h_last + (b * E + e) * N;
#pragma unroll
    for (int n = 0; n < kStates; ++n)
      if (n < N) dst[n] = h[n];
  }
}

}  // namespace

template <typename T>
void serial_forward(const ScanArgs<T>& a, const SelectiveScanParams& p) {
  const dim3 grid(unsigned((p.E + kChunkThreads - 1) / kChunkThreads), unsigned(p.B));
  launch(scan_forward_serial_kernel<T>, grid, kChunkThreads, kSerialShared, a);
}
template void serial_forward<float>(const ScanArgs<float>&, const SelectiveScanParams&);
template void serial_forward<bf16>(const ScanArgs<bf16>&, const SelectiveScanParams&);

}  // namespace mambadna::kernels::cuda::scan_detail
