// CUDA selective scan, forward and backward, with h0 in, h_last out and dh0 (see
// kernels/selective_scan.h for the maths): the launchers, and the layout parallel in time
// that every N <= 16 takes (Mamba's d_state is 16); larger states go to
// selective_scan_wide.cu.
//
// Layout. A warp covers kChannels (8) consecutive channels of one stream b at the same steps:
// lane = c + 8·r is channel c's run r (of kRuns = 4), and a chunk of kScanChunk = 32 steps
// splits into the 4 runs of kItems = 8 consecutive steps. So a warp's load of u, delta, z (or a
// store of out) touches 4 rows of 8 consecutive channels, whole 32-byte sectors in fp32. A
// block of kWarps warps covers 32 channels; they share the chunk's Bm and Cm rows, staged in
// shared memory one chunk ahead, state-major (a run reads its 8 steps of a state as two 16-byte
// words).
//
// Per chunk and state n, each thread takes its run's 8 steps from a zero state (the run's
// increment S) and its decay P = exp(A_n Σ dt) (h ↦ P h + S is the run); the 4 runs of a
// channel are joined by a scan of these pairs over lanes 8 apart (2 rounds of shuffles),
// which gives each run its start state from the chunk's, and the chunk's end state; then each
// thread walks its 8 steps again from its start state for y = C·h. The recurrence, the
// exponentials (one per step and state) and the sums are fp32 in registers; the expanded
// state (B, L, E, N) never exists in memory.
//
// The state carried from chunk to chunk lives in shared memory, in two slots by chunk parity:
// a chunk reads one and its last run writes the other, so a barrier orders every slot's reads
// before its next writes.
//
// The backward walks the chunks from last to first, asking the previous chunk's inputs into
// L1 as it starts a chunk and loading them into registers as it ends it. From the chunk's
// start state (kept by the forward every 32 steps, or recomputed into the workspace) it
// recomputes each run's states as the forward does, then runs the adjoint the same way in
// reverse: each run's adjoint from zero and the same decay, joined over the runs by a suffix
// scan of the pairs, the chunk's incoming adjoint carried to the previous chunk. dBm and dCm,
// sums over channels, are reduce-scattered over a run's 8 lanes (its 8 channels × 8 steps),
// stored per warp in shared memory, and added over the block's 4 warps into global memory
// once per block and chunk.
//
// When B·E alone would leave the device idle (one long record), both directions split time
// into segments of whole chunks: each segment's map from a zero state (adjoint), combined
// across segments, gives every segment its start state (incoming adjoint), and the segments
// run side by side.
#include "kernels/cuda/selective_scan.cuh"

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace mambadna::kernels::cuda {

namespace scan_detail {

namespace {

// 8 channels × 4 runs of 8 steps per warp: measured on an H200 against 4 × 8 runs of 4 (twice
// the warps, a third shuffle round, 16-byte rows), which was 38% slower forward, 32% backward.
constexpr int kChannels = 8;                    // channels per warp
constexpr int kRuns = 32 / kChannels;           // runs per chunk, each a lane of the channel
constexpr int kItems = kScanChunk / kRuns;      // steps per run
constexpr int kWarps = 4;                       // per block
constexpr int kThreads = 32 * kWarps;
static_assert(kThreads == kChunkThreads, "the block stages its chunk's rows (ChunkRows)");
// Blocks per multiprocessor that the backward and the four-state forward are compiled for
// (their launch bounds: up to 168 registers a thread), and that the segments of one long
// record are sized to fill. The two-state forward fits 4 (128 registers).
constexpr int kBlocksPerSM = 3;
constexpr int forward_blocks_per_sm(int states) { return states >= 4 ? kBlocksPerSM : 4; }
constexpr int kBlockChannels = kWarps * kChannels;
constexpr int kStateStride = kScanChunk + 4;         // a state's 32 steps, padded (see staged)
constexpr int kChunkStates = kStates * kStateStride;  // floats of one chunk of Bm (or Cm) rows
constexpr int kPad = kStates + 1;               // row stride of per-channel tables (no bank conflicts)
static_assert(kItems == kChannels, "the backward scatters a run's 8 steps over its 8 channels");

// This thread's place: channel c of its warp's 8 (ch of the block's 32, e overall), run r.
struct Place {
  int c, r, ch;
  int64_t b, e;
  bool active;  // e < E (threads past the last channel still take part in shuffles and barriers)
  __device__ explicit Place(int64_t E) {
    const int lane = int(threadIdx.x) & 31;
    c = lane % kChannels;
    r = lane / kChannels;
    ch = int(threadIdx.x >> 5) * kChannels + c;
    b = blockIdx.y;
    e = int64_t(blockIdx.x) * kBlockChannels + ch;
    active = e < E;
  }
};

// This thread's run of the chunk at t0 in a (B·L, ld) tensor: its first step's element offset
// (a 64-bit product once per chunk; the steps are then ld apart, 32-bit), and how many of its
// kItems steps exist (before t_end, and none past the last channel).
struct RunItems {
  int64_t row;  // b·L + the run's first step
  int count;
  __device__ RunItems(const Place& pl, int64_t b, int64_t L, int64_t t0, int64_t t_end) {
    const int64_t t = t0 + pl.r * kItems;
    row = b * L + t;
    count = pl.active ? int(max(int64_t(0), min(int64_t(kItems), t_end - t))) : 0;
  }
  __device__ int64_t at(int64_t ld, int64_t e) const { return row * ld + e; }
};

// A chunk's Bm and Cm rows in shared memory, state-major: state n's 32 steps at n·36, so that a
// run's 8 steps are 32 contiguous bytes (two 16-byte loads, one broadcast address per run,
// the 4 runs in different banks) and the stores of whole rows conflict at most 2 ways.
__device__ __forceinline__ int staged(int step, int n) { return n * kStateStride + step; }
// Run r's steps of state n from a staged matrix, in 16-byte loads.
__device__ __forceinline__ void run_rows(float (&v)[kItems], const float* s, int n, int r) {
  static_assert(kItems % 4 == 0 && kStateStride % 4 == 0, "aligned 16-byte loads");
  const float4* p = reinterpret_cast<const float4*>(s + staged(r * kItems, n));
#pragma unroll
  for (int q = 0; q < kItems / 4; ++q) {
    const float4 f = p[q];
    v[4 * q] = f.x, v[4 * q + 1] = f.y, v[4 * q + 2] = f.z, v[4 * q + 3] = f.w;
  }
}

template <typename T>
__device__ __forceinline__ void store_rows(const T (&v)[kStage], float* s) {
  const int n = int(threadIdx.x) % kStates, row0 = int(threadIdx.x) / kStates;  // as ChunkRows
#pragma unroll
  for (int k = 0; k < kStage; ++k)
    s[(k / kPasses) * kChunkStates + staged(row0 + (k % kPasses) * kRowPass, n)] = ld(v[k]);
}

// The block's 32 channels' states before a chunk, rows of (B, chunks, E, N): thread tid holds
// state n = tid % 16 of channels tid / 16 + 8k (k < kStageH), as a per-chunk pointer and
// 32-bit offsets (the forward writes them, the backward reads them back).
constexpr int kStageH = kBlockChannels * kStates / kThreads;
constexpr int kChannelPass = kThreads / kStates;  // channels one pass of the block covers
static_assert(kStageH * kChannelPass == kBlockChannels, "whole channels per pass");
struct BlockStates {
  int n, ch0;
  bool has_n;
  __device__ explicit BlockStates(int64_t N)
      : n(int(threadIdx.x) % kStates), ch0(int(threadIdx.x) / kStates), has_n(n < N) {}
  __device__ int ch(int k) const { return ch0 + k * kChannelPass; }
  // The block's first channel's state 0 before chunk ci.
  template <typename F>
  __device__ static F* at(F* states, int64_t b, int64_t ci, int64_t chunks, int64_t E, int64_t N) {
    return states + ((b * chunks + ci) * E + int64_t(blockIdx.x) * kBlockChannels) * N;
  }
  __device__ bool ok(int k, int64_t E) const {
    return has_n && int64_t(blockIdx.x) * kBlockChannels + ch(k) < E;
  }
  __device__ int offset(int k, int64_t N) const { return ch(k) * int(N) + n; }
};

// A channel's N carried values (state or adjoint) between global memory and its row of a
// per-channel table in shared memory (stride kPad), the channel's 4 lanes taking every 4th;
// from nullptr: zeros, and the rows past N are zeroed too.
__device__ __forceinline__ void load_channel(float* table, const float* src, int ch, int r,
                                             bool active, int N) {
  for (int n = r; n < kStates; n += kRuns)
    table[ch * kPad + n] = active && n < N && src ? src[n] : 0.0f;
}
__device__ __forceinline__ void store_channel(float* dst, const float* table, int ch, int r,
                                              bool active, int N) {
  if (!active || !dst) return;
  for (int n = r; n < N; n += kRuns) dst[n] = table[ch * kPad + n];
}

// A of the block's channels, A_n · log2(e) for exp2 (zero past E and N), (kBlockChannels, kPad).
__device__ __forceinline__ void stage_A(float* sA, const float* A, int64_t E, int64_t N) {
  for (int idx = int(threadIdx.x); idx < kBlockChannels * kStates; idx += kThreads) {
    const int ch = idx / kStates, n = idx % kStates;
    const int64_t e = int64_t(blockIdx.x) * kBlockChannels + ch;
    sA[ch * kPad + n] = e < E && n < N ? A[e * N + n] * kLog2e : 0.0f;
  }
}

// Joins the runs of a channel: (P, S) is this run's map h ↦ P h + S; afterwards, that of runs
// 0 .. r together (an inclusive scan over lanes 8 apart, log2 kRuns rounds). For K states at
// once, their shuffles side by side.
template <int K>
__device__ __forceinline__ void runs_prefix(float (&P)[K], float (&S)[K], int r) {
#pragma unroll
  for (int d = 1; d < kRuns; d <<= 1) {
    float Pp[K], Sp[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      Pp[k] = __shfl_up_sync(0xffffffffu, P[k], d * kChannels);
      Sp[k] = __shfl_up_sync(0xffffffffu, S[k], d * kChannels);
    }
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (r >= d) S[k] = P[k] * Sp[k] + S[k], P[k] = P[k] * Pp[k];
  }
}
__device__ __forceinline__ void runs_prefix(float& P, float& S, int r) {
  float Pk[1] = {P}, Sk[1] = {S};
  runs_prefix(Pk, Sk, r);
  P = Pk[0], S = Sk[0];
}
// The same from the other end, for the adjoint: (P, S) becomes the map of runs r .. kRuns − 1,
// applied last to first.
__device__ __forceinline__ void runs_suffix(float& P, float& S, int r) {
#pragma unroll
  for (int d = 1; d < kRuns; d <<= 1) {
    const float Pn = __shfl_down_sync(0xffffffffu, P, d * kChannels);
    const float Sn = __shfl_down_sync(0xffffffffu, S, d * kChannels);
    if (r + d < kRuns) S = P * Sn + S, P = P * Pn;
  }
}

// Sum over the runs of a channel (lanes 8 apart); every lane gets it.
__device__ __forceinline__ float runs_sum(float v) {
#pragma unroll
  for (int o = kChannels; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- forward ---------------------------------------------------------------------------------
//
// OUT: outputs y (out, h_last, h_chunks as given); else only states: the segment summaries
// (h_end given: each segment from zero, its end state and summed dt) or the chunk states alone.
// Shared: A (kBlockChannels, kPad); two buffers of the chunk's Bm and Cm rows; two of the state
// before the chunk (kBlockChannels, kPad), read from one while the chunk's end state goes to
// the other (a barrier between a slot's reads and its next writes).
constexpr int kSlot = kBlockChannels * kPad;
constexpr size_t kForwardShared = (3 * kSlot + 4 * kChunkStates) * sizeof(float);

// STATES: how many states the loop over the states takes side by side (4 or 2; the rest of N
// by 2 and 1).
template <typename T, bool OUT, int STATES>
__global__ void __launch_bounds__(kThreads, forward_blocks_per_sm(STATES))
    scan_forward_kernel(ScanArgs<T> a, float* h_end, float* dt_sum) {
  float* sA = dynamic_shared<float>();
  float* sBC = sA + kBlockChannels * kPad;
  float* sCarry = sBC + 4 * kChunkStates;  // 2 × (kBlockChannels, kPad)
  const Place pl(a.E);
  const int r = pl.r, N = int(a.N);
  const int64_t b = pl.b, e = pl.e, E = a.E, L = a.L;
  const int64_t seg = blockIdx.z, segments = gridDim.z;
  const int64_t tb = seg * a.seg_len, te = min(L, tb + a.seg_len);  // tb a multiple of 32
  const bool summary = h_end != nullptr;
  stage_A(sA, a.A, E, a.N);
  const float* start = summary    ? nullptr
                       : a.h_start ? a.h_start + ((b * segments + seg) * E + e) * a.N
                       : a.h0      ? a.h0 + (b * E + e) * a.N
                                   : nullptr;
  load_channel(sCarry, start, pl.ch, r, pl.active, N);
  const float Dv = pl.active && a.D ? a.D[e] : 0.0f;
  const float bias = pl.active && a.bias ? a.bias[e] : 0.0f;
  const int64_t chunks = (L + kScanChunk - 1) / kScanChunk;

  // This thread's u, delta, z of the chunk at t0 (zero past te), fetched a chunk ahead and kept
  // in their storage type until used (converting bf16 on arrival would wait for the load).
  T uq[kItems], dq[kItems], zq[kItems];
  auto fetch_items = [&](int64_t t0) {
    const RunItems it(pl, b, L, t0, te);
    const T* pu = a.u + it.at(E, e);
    const T* pd = a.delta + it.at(E, e);
    const T* pz = OUT && a.z ? a.z + it.at(a.ld_z, e) : nullptr;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const bool ok = i < it.count;
      uq[i] = ok ? pu[i * int(E)] : T{};
      dq[i] = ok ? pd[i * int(E)] : T{};
      zq[i] = ok && pz ? pz[i * int(a.ld_z)] : T{};
    }
  };
  T rows[kStage];
  fetch_rows(rows, a, b, tb, te);
  store_rows(rows, sBC);
  fetch_items(tb);
  __syncthreads();
  float dt_total = 0.0f;  // this run's steps (segment summaries)
  int buf = 0;
  for (int64_t t0 = tb; t0 < te; t0 += kScanChunk, buf ^= 1) {
    const bool more = t0 + kScanChunk < te;
    float dt[kItems], dtu[kItems], y[kItems], zz[kItems];
    float dts = 0.0f;
    const RunItems it(pl, b, L, t0, te);  // this run's steps of the chunk
#pragma unroll
    for (int i = 0; i < kItems; ++i) dt[i] = ld(dq[i]) + bias;
    scan_dts(dt, a.softplus, it.count);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const float uu = ld(uq[i]);
      dtu[i] = dt[i] * uu;
      y[i] = Dv * uu;
      zz[i] = ld(zq[i]);
      dts += dt[i];
    }
    // The next chunk's loads, issued once this chunk's steps are in registers: loads issued
    // before that shared their wait with them (the rows' loads at the top of the loop held up
    // the first use of the steps, 4% of the forward's stall samples).
    if (more) fetch_items(t0 + kScanChunk), fetch_rows(rows, a, b, t0 + kScanChunk, te);
    const float* sB = sBC + buf * 2 * kChunkStates;
    const float* sC = sB + kChunkStates;
    const float* carry = sCarry + buf * kSlot + pl.ch * kPad;  // the state before the chunk
    float* carry_next = sCarry + (buf ^ 1) * kSlot + pl.ch * kPad;
    if (a.h_chunks) {  // the block's states before the chunk
      const BlockStates bs(a.N);
      float* dst = BlockStates::at(a.h_chunks, b, t0 / kScanChunk, chunks, E, a.N);
#pragma unroll
      for (int k = 0; k < kStageH; ++k)
        if (bs.ok(k, E)) dst[bs.offset(k, a.N)] = sCarry[buf * kSlot + bs.ch(k) * kPad + bs.n];
    }
    // States n .. n + K − 1 side by side (STATES at a time, the rest by 2 and 1): K independent
    // chains (of exponentials, FMAs and shuffles) whose latencies overlap, where one state at a
    // time left the warp waiting on each (a few resident warps per scheduler at Mamba's
    // shapes). The sums into y keep the order of one state at a time.
    auto states = [&](auto k_states, int n) {
      constexpr int K = decltype(k_states)::value;
      float A2[K], hc[K], av[K][kItems], bv[K][kItems], P[K], S[K];
#pragma unroll
      for (int k = 0; k < K; ++k) {
        A2[k] = sA[pl.ch * kPad + n + k];
        hc[k] = carry[n + k];
        run_rows(bv[k], sB, n + k, r);
        S[k] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
#pragma unroll
        for (int k = 0; k < K; ++k) {
          av[k][i] = dev_exp2_ftz(dt[i] * A2[k]);
          bv[k][i] *= dtu[i];
          S[k] = av[k][i] * S[k] + bv[k][i];
        }
      }
#pragma unroll
      for (int k = 0; k < K; ++k) P[k] = dev_exp2_ftz(dts * A2[k]);
      runs_prefix(P, S, r);
      // Runs 0 .. r from the chunk's start state: this run's end state. The previous run's is
      // this run's start, the last run's the chunk's end.
      float h_end_run[K], h[K];
#pragma unroll
      for (int k = 0; k < K; ++k) h_end_run[k] = P[k] * hc[k] + S[k];
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const float h_prev = __shfl_up_sync(0xffffffffu, h_end_run[k], kChannels);
        h[k] = r == 0 ? hc[k] : h_prev;
      }
      if (OUT) {
        float cv[K][kItems];
#pragma unroll
        for (int k = 0; k < K; ++k) run_rows(cv[k], sC, n + k, r);
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
#pragma unroll
          for (int k = 0; k < K; ++k) {
            h[k] = av[k][i] * h[k] + bv[k][i];
            y[i] += cv[k][i] * h[k];
          }
        }
      }
      if (r == kRuns - 1) {
#pragma unroll
        for (int k = 0; k < K; ++k) carry_next[n + k] = h_end_run[k];
      }
    };
    int n = 0;
    if constexpr (STATES >= 4) {
#pragma unroll 1
      for (; n + 4 <= N; n += 4) states(std::integral_constant<int, 4>(), n);
    }
#pragma unroll 1
    for (; n + 2 <= N; n += 2) states(std::integral_constant<int, 2>(), n);
    if (n < N) states(std::integral_constant<int, 1>(), n);
    if (OUT) {  // the gate for every step, then the stores (straight code, as scan_dts)
      if (a.z) {
#pragma unroll
        for (int i = 0; i < kItems; ++i) y[i] *= dev_silu(zz[i]);
      }
      T* po = a.out + it.at(E, e);
#pragma unroll
      for (int i = 0; i < kItems; ++i)
        if (i < it.count) po[i * int(E)] = st<T>(y[i]);
    }
    dt_total += dts;
    if (more) store_rows(rows, sBC + (buf ^ 1) * 2 * kChunkStates);
    __syncthreads();
  }
  const float* carry = sCarry + buf * kSlot;  // the segment's end states
  if (summary) {
    const int64_t at = (b * segments + seg) * E + e;
    dt_total = runs_sum(dt_total);
    store_channel(h_end + at * a.N, carry, pl.ch, r, pl.active, N);
    if (pl.active && r == 0) dt_sum[at] = dt_total;
  } else if (a.h_last && seg == segments - 1) {
    store_channel(a.h_last + (b * E + e) * a.N, carry, pl.ch, r, pl.active, N);
  }
}

// ---- backward --------------------------------------------------------------------------------
//
// Shared: A (kBlockChannels, kPad); two buffers of the chunk's Bm and Cm rows; two of the
// block's chunk start states (kBlockChannels, kPad); each warp's dBm and dCm sums over its 8
// channels, (kScanChunk, kPad) each, written with plain stores (shared float atomics compile to
// compare-and-swap loops) and added over the warps as they go to global memory; dA sums
// (kBlockChannels, kPad); two slots of the adjoint carried between chunks (as the forward's
// state).
constexpr int kSums = 2 * kScanChunk * kPad;  // one warp's dBm and dCm sums
constexpr size_t kBackwardShared =
    (kBlockChannels * kPad + 4 * kChunkStates + 2 * kBlockChannels * kPad + kWarps * kSums +
     3 * kBlockChannels * kPad) * sizeof(float);
static_assert(kBackwardShared <= 48 * 1024, "within the default limit of dynamic shared memory");

// In segments of time (blockIdx.z, a.seg_len steps each) when B·E alone would leave the device
// idle, as the forward: SUMMARY runs segments 1 .. S − 1 for their adjoint alone, from zero
// into x_end (B, S − 1, E, N) and their summed dt into dt_sum (B, S − 1, E), both at index
// S − 1 − segment; combine_segments turns them (last segment first) into every segment's
// incoming adjoint, x_start (B, S, E, N) at the same reversed index; then every segment runs
// in full from its own.
template <typename T, bool SUMMARY>
__global__ void __launch_bounds__(kThreads, kBlocksPerSM) scan_backward_kernel(ScanArgs<T> a, ScanGradArgs<T> g,
                                                                   const float* x_start,
                                                                   float* x_end, float* dt_sum,
                                                                   int64_t segments) {
  float* sA = dynamic_shared<float>();
  float* sBC = sA + kBlockChannels * kPad;         // 2 × (Bm, Cm) chunk rows
  float* sH = sBC + 4 * kChunkStates;              // 2 × (kBlockChannels, kPad)
  float* sSum = sH + 2 * kBlockChannels * kPad;    // kWarps × (dBm, dCm) × (kScanChunk, kPad)
  float* sdA = sSum + kWarps * kSums;              // (kBlockChannels, kPad)
  float* sX = sdA + kBlockChannels * kPad;         // 2 × (kBlockChannels, kPad)
  const Place pl(a.E);
  const int r = pl.r, c = pl.c, N = int(a.N);
  const int64_t b = pl.b, e = pl.e, E = a.E, L = a.L;
  const int64_t chunks = (L + kScanChunk - 1) / kScanChunk;
  const int64_t e0 = int64_t(blockIdx.x) * kBlockChannels;
  // This block's chunks: [c_begin, c_end), walked last to first.
  const int64_t seg = int64_t(blockIdx.z) + (SUMMARY ? 1 : 0);
  const int64_t seg_chunks = a.seg_len / kScanChunk;
  const int64_t c_begin = seg * seg_chunks, c_end = min(chunks, c_begin + seg_chunks);
  stage_A(sA, a.A, E, a.N);
  for (int i = int(threadIdx.x); i < kWarps * kSums + kBlockChannels * kPad; i += kThreads)
    sSum[i] = 0.0f;

  // The block's chunk start states, a chunk ahead like the rows.
  const BlockStates bs(a.N);
  float hrow[kStageH];
  auto fetch_states = [&](int64_t ci) {
    const float* src = BlockStates::at(g.checkpoints, b, ci, chunks, E, a.N);
#pragma unroll
    for (int k = 0; k < kStageH; ++k) hrow[k] = bs.ok(k, E) ? src[bs.offset(k, a.N)] : 0.0f;
  };
  auto store_states = [&](float* s) {
#pragma unroll
    for (int k = 0; k < kStageH; ++k) s[bs.ch(k) * kPad + bs.n] = hrow[k];
  };
  // Adds the chunk at t0's dBm and dCm sums, over the warps, to global memory, element k of
  // ChunkRows (k < kPasses: dBm's, and dCm's at k + kPasses).
  auto flush_sums = [&](int64_t t0) {
    const ChunkRows<float> cr(g.dBm, g.dCm, L, a.ld_bc, a.N, b, t0, L);
#pragma unroll
    for (int k = 0; k < kPasses; ++k) {
      if (cr.ok(k)) {
        const float* s = sSum + cr.row(k) * kPad + cr.n;
        float sb = 0.0f, sc = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) sb += s[w * kSums], sc += s[w * kSums + kScanChunk * kPad];
        atomicAdd(cr.at(k), sb);
        atomicAdd(cr.at(k + kPasses), sc);
      }
    }
  };

  // X: the adjoint entering the chunk's last step from later steps (the segment's: dh_last
  // for the last, its combined summaries for the others, zero for a summary).
  const float* x0 = SUMMARY   ? nullptr
                    : x_start ? x_start + ((b * segments + (segments - 1 - seg)) * E + e) * a.N
                    : g.dh_last ? g.dh_last + (b * E + e) * a.N
                                : nullptr;
  load_channel(sX, x0, pl.ch, r, pl.active, N);
  const float Dv = pl.active && a.D ? a.D[e] : 0.0f;
  const float bias = pl.active && a.bias ? a.bias[e] : 0.0f;
  float dD_acc = 0.0f, dbias_acc = 0.0f, dt_total = 0.0f;  // this run's steps

  // The next chunk's inputs are asked into L1 while this one computes (prefetches hold no
  // registers: this kernel has none to spare), and loaded when they are needed: the rows and
  // states at the chunk's end, the steps at the next chunk's start.
  auto prefetch_chunk = [&](int64_t ci) {
    const int64_t t0 = ci * kScanChunk;
    const RunItems it(pl, b, L, t0, L);
    const int64_t at = it.at(E, e);
    const T* pz = a.z ? a.z + it.at(a.ld_z, e) : nullptr;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (i < it.count) {
        if (!SUMMARY) dev_prefetch_l1(a.u + at + i * int(E));
        dev_prefetch_l1(a.delta + at + i * int(E));
        dev_prefetch_l1(g.dout + at + i * int(E));
        if (pz) dev_prefetch_l1(pz + i * int(a.ld_z));
      }
    }
    const ChunkRows<const T> cr(a, b, t0, L);
#pragma unroll
    for (int k = 0; k < kStage; ++k)
      if (cr.ok(k) && (!SUMMARY || k >= kPasses)) dev_prefetch_l1(cr.at(k));
    if (!SUMMARY) {
      const float* src = BlockStates::at(g.checkpoints, b, ci, chunks, E, a.N);
#pragma unroll
      for (int k = 0; k < kStageH; ++k)
        if (bs.ok(k, E)) dev_prefetch_l1(src + bs.offset(k, a.N));
    }
  };
  // The run's u, delta, dout and z of chunk ci (zero past L), loaded into registers at the end
  // of the chunk before (after its prefetch into L1) and kept in their storage type until the
  // chunk starts: the loads overlap the chunk's end and the barrier.
  T qu[kItems], qd[kItems], qo[kItems], qz[kItems];
  auto fetch_items = [&](int64_t ci) {
    const RunItems it(pl, b, L, ci * kScanChunk, L);
    const int64_t at = it.at(E, e);
    const T *pu = a.u + at, *pd = a.delta + at, *po = g.dout + at;
    const T* pz = a.z ? a.z + it.at(a.ld_z, e) : nullptr;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const bool ok = i < it.count;
      qu[i] = ok && !SUMMARY ? pu[i * int(E)] : T{};  // a summary needs no states
      qd[i] = ok ? pd[i * int(E)] : T{};
      qo[i] = ok ? po[i * int(E)] : T{};
      qz[i] = ok && pz ? pz[i * int(a.ld_z)] : T{};
    }
  };
  T rows[kStage];
  fetch_rows<!SUMMARY>(rows, a, b, (c_end - 1) * kScanChunk, L);
  store_rows(rows, sBC);
  if (!SUMMARY) {
    fetch_states(c_end - 1);
    store_states(sH);
  }
  fetch_items(c_end - 1);
  __syncthreads();
  int buf = 0;
  for (int64_t ci = c_end - 1; ci >= c_begin; --ci, buf ^= 1) {
    const int64_t t0 = ci * kScanChunk;
    const bool more = ci > c_begin;
    if (more) prefetch_chunk(ci - 1);
    if (!SUMMARY && ci + 1 < c_end) {  // the chunk after's sums, read before the warps write again
      flush_sums(t0 + kScanChunk);
      __syncthreads();
    }
    // This run's steps (their element offsets in (B·L, E) and in z, and how many exist): dt,
    // dt·u, dy = dout · silu(z) from the registers fetch_items filled (u, delta, z and dout are
    // read again at the end, from the cache, for du, ddelta and dz: fewer live registers in
    // the loop over the states).
    float dt[kItems], dtu[kItems], dy[kItems];
    float y[kItems], dua[kItems], ddta[kItems];
    float dts = 0.0f;
    const RunItems it(pl, b, L, t0, L);
    const int64_t at = it.at(E, e), at_z = a.z ? it.at(a.ld_z, e) : 0;  // ld_z: only with z
    const int ldE = int(E), ldz = int(a.ld_z);
#pragma unroll
    for (int i = 0; i < kItems; ++i) dt[i] = ld(qd[i]) + bias, dy[i] = ld(qo[i]);
    scan_dts(dt, a.softplus, it.count);  // (zeros past the run's steps)
    if (a.z) {
#pragma unroll
      for (int i = 0; i < kItems; ++i) dy[i] *= dev_silu(ld(qz[i]));
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const float uu = ld(qu[i]);
      dtu[i] = dt[i] * uu;
      y[i] = Dv * uu;
      dua[i] = ddta[i] = 0.0f;
      dts += dt[i];
    }
    const float* sB = sBC + buf * 2 * kChunkStates;
    const float* sC = sB + kChunkStates;
    float* sdB = sSum + (threadIdx.x >> 5) * kSums;  // this warp's
    float* sdC = sdB + kScanChunk * kPad;
    const float* X = sX + buf * kSlot + pl.ch * kPad;  // entering the chunk's last step
    float* X_next = sX + (buf ^ 1) * kSlot + pl.ch * kPad;
#pragma unroll 1
    for (int n = 0; n < N; ++n) {
      const float A2 = sA[pl.ch * kPad + n], An = A2 * (1.0f / kLog2e);
      const float x = X[n];
      float Bv[kItems], Cv[kItems];
      if (!SUMMARY) run_rows(Bv, sB, n, r);
      run_rows(Cv, sC, n, r);
      float av[kItems], hs[kItems], h_start = 0.0f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) av[i] = dev_exp2_ftz(dt[i] * A2);
      const float P0 = dev_exp2_ftz(dts * A2);
      float P = P0;
      if (!SUMMARY) {
        // The run's states: its map from a zero state, joined over the runs from the chunk's
        // start state, then walked again from the run's start state.
        float S = 0.0f;
#pragma unroll
        for (int i = 0; i < kItems; ++i) S = av[i] * S + dtu[i] * Bv[i];
        runs_prefix(P, S, r);
        const float hc = sH[buf * kBlockChannels * kPad + pl.ch * kPad + n];
        const float h_prev = __shfl_up_sync(0xffffffffu, P * hc + S, kChannels);
        h_start = r == 0 ? hc : h_prev;  // the previous run's end state
        float h = h_start;
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          h = av[i] * h + dtu[i] * Bv[i];
          hs[i] = h;
          y[i] += Cv[i] * h;
        }
      }
      // The adjoint: the run's map of the incoming adjoint x (into its last step), x ↦ P x + S
      // with x' = a_first · g_first going out, joined over the runs from the chunk's X.
      float Sa = 0.0f;
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) Sa = av[i] * (Sa + Cv[i] * dy[i]);
      P = P0;
      runs_suffix(P, Sa, r);
      // Runs r .. last applied to x: what leaves this run's first step; the next run's is what
      // enters this run's last, run 0's what enters the previous chunk.
      const float x_out = P * x + Sa;
      if (r == 0) X_next[n] = x_out;
      if (SUMMARY) continue;
      const float x_in = __shfl_down_sync(0xffffffffu, x_out, kChannels);
      float q = r == kRuns - 1 ? x : x_in;
      float vB[kItems], vC[kItems], dAn = 0.0f;
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) {
        const float Bi = Bv[i];
        const float gi = q + Cv[i] * dy[i];  // dL/dh at this step
        const float w = gi * av[i] * (i > 0 ? hs[i - 1] : h_start);
        vB[i] = gi * dtu[i];
        vC[i] = dy[i] * hs[i];
        dua[i] += gi * Bi;  // Σ_n λ B, which also gives ddt's Σ_n λ B u at the end
        ddta[i] += An * w;  // the rest of ddt: Σ_n λ A a h_prev
        dAn += dt[i] * w;
        q = av[i] * gi;
      }
      // dBm, dCm: the run's 8 steps over its 8 channels, lane c keeping step c's sum.
      const float sb = reduce_scatter<kChannels>(vB, c);
      const float sc = reduce_scatter<kChannels>(vC, c);
      sdB[(r * kItems + c) * kPad + n] = sb;
      sdC[(r * kItems + c) * kPad + n] = sc;
      dAn = runs_sum(dAn);
      if (r == 0) sdA[pl.ch * kPad + n] += dAn;  // the channel's only writer
    }
    dt_total += dts;
    // The next chunk's rows and states, into registers now: their loads overlap the outputs.
    if (more) {
      fetch_rows<!SUMMARY>(rows, a, b, t0 - kScanChunk, L);
      if (!SUMMARY) fetch_states(ci - 1);
    }
    if (!SUMMARY) {
      // du, ddelta, dz from the chunk's steps read again, all of them before any store (for all
      // the compiler knows a store may alias a later read: read between stores, each would
      // wait for the memory in turn).
      fetch_items(ci);
      T *pdu = g.du + at, *pdd = g.ddelta + at;
      T* pdz = a.z ? g.dz + at_z : nullptr;
      // Every step's values first, then the stores (straight code, as scan_dts). dy and u are
      // zero past the run's steps, the adjoint terms in ddta are not.
      float gdu[kItems], gdd[kItems], gdz[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const float uu = ld(qu[i]);
        gdd[i] = ddta[i] + uu * dua[i];  // d loss / d dt
        gdu[i] = Dv * dy[i] + dt[i] * dua[i];
        dD_acc += dy[i] * uu;
      }
      if (a.softplus) {
#pragma unroll
        for (int i = 0; i < kItems; ++i) gdd[i] *= dev_softplus_grad(ld(qd[i]) + bias);
      }
      if (pdz) {
#pragma unroll
        for (int i = 0; i < kItems; ++i) gdz[i] = ld(qo[i]) * dev_silu_grad(ld(qz[i])) * y[i];
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        dbias_acc += i < it.count ? gdd[i] : 0.0f;
        if (i < it.count) {
          pdu[i * ldE] = st<T>(gdu[i]);
          pdd[i * ldE] = st<T>(gdd[i]);
          if (pdz) pdz[i * ldz] = st<T>(gdz[i]);
        }
      }
    }
    if (more) {
      fetch_items(ci - 1);
      store_rows(rows, sBC + (buf ^ 1) * 2 * kChunkStates);
      if (!SUMMARY) store_states(sH + (buf ^ 1) * kBlockChannels * kPad);
    }
    __syncthreads();
  }
  if (SUMMARY) {  // what leaves the segment's first step from a zero adjoint, and its summed dt
    const int64_t at = (b * (segments - 1) + (segments - 1 - seg)) * E + e;
    dt_total = runs_sum(dt_total);
    store_channel(x_end + at * a.N, sX + buf * kSlot, pl.ch, r, pl.active, N);
    if (pl.active && r == 0) dt_sum[at] = dt_total;
    return;
  }
  flush_sums(c_begin * kScanChunk);  // the segment's first chunk's
  if (seg == 0 && g.dh0)  // what leaves chunk 0: a_0 ⊙ λ_0
    store_channel(g.dh0 + (b * E + e) * a.N, sX + buf * kSlot, pl.ch, r, pl.active, N);
  dD_acc = runs_sum(dD_acc);
  dbias_acc = runs_sum(dbias_acc);
  if (pl.active && r == 0) {
    if (g.dD && a.D) atomicAdd(&g.dD[e], dD_acc);
    if (g.dbias && a.bias) atomicAdd(&g.dbias[e], dbias_acc);
  }
  __syncthreads();  // sdA complete
  for (int idx = int(threadIdx.x); idx < kBlockChannels * kStates; idx += kThreads) {
    const int ch = idx / kStates, n = idx % kStates;
    if (e0 + ch < E && n < N) atomicAdd(&g.dA[(e0 + ch) * a.N + n], sdA[ch * kPad + n]);
  }
}

// dBm, dCm rows (B·L, N) with stride ld_bc set to zero (they are assigned, summed by atomics).
__global__ void zero_rows_kernel(float* x, float* y, int64_t rows, int64_t N, int64_t ld) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * N) return;
  const int64_t r = i / N, n = i - r * N;
  x[r * ld + n] = 0.0f;
  y[r * ld + n] = 0.0f;
}

// Every segment's start state, a thread per (b, e, n): h_start[0] = h0 (or zero), then
// h_start[s + 1] = exp(dt_sum[s] · A) · h_start[s] + h_end[s].
__global__ void scan_combine_kernel(float* h_start, const float* h_end, const float* dt_sum,
                                    const float* A, const float* h0, int64_t B, int64_t E,
                                    int64_t N, int64_t segments) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B * E * N) return;
  const int64_t b = i / (E * N), en = i % (E * N), e = en / N;
  const float An = A[en];
  float h = h0 ? h0[i] : 0.0f;
  h_start[(b * segments) * E * N + en] = h;
  for (int64_t s = 0; s + 1 < segments; ++s) {
    const int64_t at = (b * (segments - 1) + s) * E;
    h = expf(dt_sum[at + e] * An) * h + h_end[(at + e) * N + en % N];
    h_start[(b * segments + s + 1) * E * N + en] = h;
  }
}

int64_t g_segments = 0;  // set_selective_scan_segments
ScanForwardLayout g_forward_layout = ScanForwardLayout::automatic;

// The channel-serial forward from this many warps per scheduler (B·E / 32 over 4 schedulers a
// multiprocessor). On an H200 (docs/BENCHMARKS.md, E 1536, fp32), the time-parallel layout is
// bound by issue and takes time in proportion to B (0.58 ms at B 8, 1.13 at B 16, 1.45 at 20,
// 2.20 at 32); a thread per channel waits on its own latencies while a scheduler has one warp
// and takes time by the blocks of 4 warps a multiprocessor holds (0.85 ms at B 8, one block;
// 1.16 at B 16 and B 20, two; 1.55-1.64 at B 24-32, three). They cross near B 16-17: 1.5
// warps a scheduler.
constexpr double kSerialWarpsPerScheduler = 1.5;

// The layout the forward takes for p (N <= 16).
bool channel_serial(const SelectiveScanParams& p) {
  const ScanForwardLayout l = g_forward_layout == ScanForwardLayout::automatic
                                  ? forward_layout_for(p, multiprocessor_count())
                                  : g_forward_layout;
  return l == ScanForwardLayout::channel_serial;
}

template <typename T>
ScanArgs<T> scan_args(T* out, float* h_last, const T* u, const T* delta, const float* A,
                      const T* Bm, const T* Cm, const float* D, const T* z,
                      const float* delta_bias, const float* h0, float* h_chunks,
                      const SelectiveScanParams& p) {
  return ScanArgs<T>{out,     h_last,  u,          delta,  A,        Bm,  Cm,  D,
                     z,       delta_bias, h0,      h_chunks, p.B,    p.L, p.E, p.N,
                     p.ld_bc, p.ld_z,  p.delta_softplus, std::max<int64_t>(p.L, 1), nullptr};
}

// The grid's y dimension is the stream; a chunk's steps of one channel (and of Bm, Cm rows) are
// addressed by 32-bit offsets from a per-chunk pointer.
void check_limits(const char* fn, const SelectiveScanParams& p, bool has_z) {
  check::at_most(fn, "B", p.B, 65535);
  constexpr int64_t kMaxStride = int64_t(INT32_MAX) / kScanChunk;
  check::at_most(fn, "E", p.E, kMaxStride);
  check::at_most(fn, "ld_z", has_z ? p.ld_z : 0, kMaxStride);
  check::at_most(fn, "ld_bc", p.ld_bc, kMaxStride);
}

// Segments of time for B·E's blocks, whole chunks each: how many, and how many chunks each
// (the forward and the backward split alike), and the floats of their summaries (h_end or
// x_end (B, S − 1, E, N), dt_sum (B, S − 1, E), h_start or x_start (B, S, E, N)).
struct Segments {
  int64_t count, chunks, floats;
  explicit Segments(const SelectiveScanParams& p) {
    // The layout's instruction-level parallelism (8 independent steps per thread, 4 states side
    // by side in the forward, loads a chunk ahead) needs fewer resident warps than the
    // state-parallel walk: one wave of the blocks the launch bounds let reside, 12 warps per
    // multiprocessor (sized for 16, the 3-block forward ran one record of 32,768 steps in 1.33
    // waves, 1.23 ms on the H200, where the 4-block two-state forward took 1.06).
    const int64_t blocks = (p.E + kBlockChannels - 1) / kBlockChannels * p.B;
    const int64_t total = (p.L + kScanChunk - 1) / kScanChunk;
    const int64_t want = scan_segments(p, blocks, kThreads, kBlocksPerSM * kWarps);
    chunks = std::max<int64_t>(1, (total + want - 1) / want);
    count = std::max<int64_t>(1, (total + chunks - 1) / chunks);
    const int64_t ends = p.B * (count - 1) * p.E;
    floats = count > 1 ? ends * p.N + ends + p.B * count * p.E * p.N : 0;
  }
};

// The time-parallel forward. OUT false: the chunk states alone (a.h_chunks: the backward's
// recomputation when the forward kept none). In segments (Segments), their summaries in
// seg_ws (Segments::floats) or the workspace.
template <typename T, bool OUT>
void time_parallel_forward(const ScanArgs<T>& a, const SelectiveScanParams& p,
                           float* seg_ws = nullptr) {
  dim3 grid(unsigned((p.E + kBlockChannels - 1) / kBlockChannels), unsigned(p.B));
  ScanArgs<T> sa = a;
  const Segments sg(p);
  // Four states side by side where the grid (segments included) fits one wave of 3 blocks per
  // multiprocessor, two at 4 blocks where it has more to place. On an H200 at B 8 × L 4096
  // (2.9 blocks per multiprocessor), four took 0.669 ms and two 0.700; with more blocks than
  // places, 3 blocks cost a wave where 4 did not (scoring the small shape at B 32, 512 blocks:
  // 10% slower at four).
  const bool four = (p.E + kBlockChannels - 1) / kBlockChannels * p.B * sg.count <=
                    int64_t(kBlocksPerSM) * multiprocessor_count();
  auto kernel = [four](auto out) {
    constexpr bool O = decltype(out)::value;
    return four ? scan_forward_kernel<T, O, 4> : scan_forward_kernel<T, O, 2>;
  };
  if (sg.count > 1) {  // summaries of segments 0 .. S−2, their combine, then every segment
    sa.seg_len = sg.chunks * kScanChunk;
    const int64_t S = sg.count, ends = p.B * (S - 1) * p.E;
    float* h_end =
        seg_ws ? seg_ws : static_cast<float*>(workspace(size_t(sg.floats) * sizeof(float)));
    float* dt_sum = h_end + ends * p.N;  // (B, S − 1, E)
    float* h_start = dt_sum + ends;      // (B, S, E, N)
    ScanArgs<T> summary = sa;
    summary.h_chunks = nullptr;
    grid.z = unsigned(S - 1);
    launch(kernel(std::false_type()), grid, kThreads, kForwardShared, summary, h_end, dt_sum);
    combine_segments(h_start, h_end, dt_sum, a.A, a.h0, p, S);
    sa.h_start = h_start;
    grid.z = unsigned(S);
  }
  launch(kernel(std::bool_constant<OUT>()), grid, kThreads, kForwardShared, sa,
         static_cast<float*>(nullptr), static_cast<float*>(nullptr));
}

template <typename T>
void forward(T* out, float* h_last, const T* u, const T* delta, const float* A, const T* Bm,
             const T* Cm, const float* D, const T* z, const float* delta_bias, const float* h0,
             const SelectiveScanParams& p, float* h_chunks) {
  const char* fn = "cuda::selective_scan_forward";
  selective_scan_forward_check(fn, out, u, delta, A, Bm, Cm, z != nullptr, p);
  check_limits(fn, p, z != nullptr);
  const ScanArgs<T> a = scan_args(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, h_chunks, p);
  if (p.N > kStates)
    wide_state_forward(a, p);
  else if (channel_serial(p))
    serial_forward(a, p);
  else
    time_parallel_forward<T, true>(a, p);
  check_launch(fn);
}

template <typename T>
void backward(T* du, T* ddelta, float* dA, float* dBm, float* dCm, float* dD, T* dz,
              float* ddelta_bias, float* dh0, const T* dout, const float* dh_last, const T* u,
              const T* delta, const float* A, const T* Bm, const T* Cm, const float* D,
              const T* z, const float* delta_bias, const float* h0, const SelectiveScanParams& p,
              const float* h_chunks) {
  const char* fn = "cuda::selective_scan_backward";
  selective_scan_backward_check(fn, du, ddelta, dA, dBm, dCm, dz, dout, u, delta, A, Bm, Cm,
                                z != nullptr, p);
  check_limits(fn, p, z != nullptr);
  ScanArgs<T> a = scan_args(static_cast<T*>(nullptr), nullptr, u, delta, A, Bm, Cm, D, z,
                            delta_bias, h0, nullptr, p);
  launch(zero_rows_kernel, grid_for(p.B * p.L * p.N, 256), 256, 0, dBm, dCm, p.B * p.L, p.N, p.ld_bc);
  check_launch(fn);
  if (p.N > kStates) {
    float* ckpt = h_chunks ? const_cast<float*>(h_chunks)
                           : static_cast<float*>(workspace(
                                 size_t(selective_scan_chunk_states(p)) * sizeof(float)));
    const ScanGradArgs<T> g{du,   ddelta, dA,      dBm,  dCm, dD, dz, ddelta_bias,
                            dh0,  dout,   dh_last, ckpt, h_chunks != nullptr};
    wide_state_backward(a, g, p);
    check_launch(fn);
    return;
  }
  // Segments of time as the forward splits them.
  dim3 grid(unsigned((p.E + kBlockChannels - 1) / kBlockChannels), unsigned(p.B));
  const Segments sg(p);
  const int64_t S = sg.count, seg_chunks = sg.chunks;
  // Workspace: the chunk states unless the forward kept them, then the segments' summaries
  // x_end (B, S − 1, E, N), dt_sum (B, S − 1, E) and incoming adjoints x_start (B, S, E, N)
  // (the recomputing forward's summaries first, in the same place: the stream orders them).
  const int64_t n_ckpt = h_chunks ? 0 : selective_scan_chunk_states(p);
  const int64_t ends = p.B * (S - 1) * p.E;
  const int64_t n_seg = sg.floats;
  float* ws = n_ckpt + n_seg > 0
                  ? static_cast<float*>(workspace(size_t(n_ckpt + n_seg) * sizeof(float)))
                  : nullptr;
  float* ckpt = h_chunks ? const_cast<float*>(h_chunks) : ws;
  if (!h_chunks) {  // the chunk states, from a forward that keeps only them, in segments too
    a.h_chunks = ckpt;
    time_parallel_forward<T, false>(a, p, S > 1 ? ws + n_ckpt : nullptr);
    a.h_chunks = nullptr;
  }
  const ScanGradArgs<T> g{du,   ddelta, dA,      dBm,  dCm, dD, dz, ddelta_bias,
                          dh0,  dout,   dh_last, ckpt, true};
  a.seg_len = seg_chunks * kScanChunk;
  float* x_start = nullptr;
  if (S > 1) {  // the segments' adjoints alone, combined last to first, then every segment
    float* x_end = ws + n_ckpt;
    float* dt_sum = x_end + ends * p.N;
    x_start = dt_sum + ends;
    grid.z = unsigned(S - 1);
    launch(scan_backward_kernel<T, true>, grid, kThreads, kBackwardShared, a, g,
           static_cast<const float*>(nullptr), x_end, dt_sum, S);
    combine_segments(x_start, x_end, dt_sum, A, dh_last, p, S);
  }
  grid.z = unsigned(S);
  launch(scan_backward_kernel<T, false>, grid, kThreads, kBackwardShared, a, g,
         static_cast<const float*>(x_start), static_cast<float*>(nullptr),
         static_cast<float*>(nullptr), S);
  check_launch(fn);
}

}  // namespace

int64_t scan_segments(const SelectiveScanParams& p, int64_t blocks, int threads, int warps_per_sm) {
  int64_t s = g_segments;
  if (s <= 0) {
    const int64_t want =
        int64_t(warps_per_sm) * int64_t(multiprocessor_count()) / std::max(1, threads / 32);
    s = std::min(std::max<int64_t>(1, want / std::max<int64_t>(1, blocks)), p.L / 256);
  }
  return std::clamp<int64_t>(s, 1, std::min<int64_t>(std::max<int64_t>(p.L, 1), 65535));
}

void combine_segments(float* h_start, const float* h_end, const float* dt_sum, const float* A,
                      const float* h0, const SelectiveScanParams& p, int64_t segments) {
  launch(scan_combine_kernel, grid_for(p.B * p.E * p.N, 256), 256, 0, h_start, h_end, dt_sum, A,
         h0, p.B, p.E, p.N, segments);
}

}  // namespace scan_detail

// ---- entry points ----------------------------------------------------------------------------

void set_selective_scan_segments(int64_t segments) { scan_detail::g_segments = segments; }
void set_selective_scan_forward_layout(ScanForwardLayout layout) {
  scan_detail::g_forward_layout = layout;
}
ScanForwardLayout forward_layout_for(const SelectiveScanParams& p, int multiprocessors) {
  const double warps = double(p.B) * double((p.E + 31) / 32);
  return p.N <= scan_detail::kStates && warps >= scan_detail::kSerialWarpsPerScheduler * 4.0 * multiprocessors
             ? ScanForwardLayout::channel_serial
             : ScanForwardLayout::time_parallel;
}

int64_t selective_scan_chunk_states(const SelectiveScanParams& p) {
  using scan_detail::kScanChunk;
  return p.B * ((p.L + kScanChunk - 1) / kScanChunk) * p.E * p.N;
}

void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  scan_detail::forward(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}
void selective_scan_forward(bf16* out, float* h_last, const bf16* u, const bf16* delta,
                            const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                            const bf16* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  scan_detail::forward(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}

void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  scan_detail::backward(du, ddelta, dA, dBm, dCm, dD, dz, ddelta_bias, dh0, dout, dh_last, u,
                        delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}
void selective_scan_backward(bf16* du, bf16* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             bf16* dz, float* ddelta_bias, float* dh0, const bf16* dout,
                             const float* dh_last, const bf16* u, const bf16* delta,
                             const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                             const bf16* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  scan_detail::backward(du, ddelta, dA, dBm, dCm, dD, dz, ddelta_bias, dh0, dout, dh_last, u,
                        delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}

}  // namespace mambadna::kernels::cuda
