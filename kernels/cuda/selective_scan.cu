// CUDA selective scan, forward and backward, with h0 in, h_last out and dh0 (see
// kernels/selective_scan.h for the maths).
//
// Layout: LANES threads share one channel (b, e), each holding NS of its N states in registers
// (N <= LANES · NS); a block of THREADS threads covers THREADS / LANES channels of one
// stream b. Every thread walks t = 0 .. L-1 itself: the recurrence is sequential in t, the
// parallelism is over (b, e, n). Bm and Cm rows are read by every block of a stream (through
// the caches). The expanded state (B, L, E, N) never exists in memory.
//
// Both directions use with_shape's layout (4 lanes of 4 states for N = 16): steps go in
// groups of LANES, lane j does step t0 + j's per-channel work (loads, softplus, gate, stores),
// the group's per-step scalars reach every lane by shuffles, and per-step sums over the states
// are reduce-scattered back to the step's lane. So the per-channel work is done once per step,
// not once per lane.
//
// The backward keeps only chunk-boundary states, (B, chunks, E, N) with chunks =
// ceil(L / kScanChunk): the forward writes them when the caller gives it h_chunks (training
// keeps them per layer), otherwise the backward's pass 1 runs the recurrence forward into the
// workspace. Pass 2 walks the chunks from last to first, recomputes a chunk's states into
// shared memory from its boundary state, then runs the adjoint recurrence backward through
// them. dBm and dCm, which sum over channels, are reduce-scattered over the warp's channels,
// added in shared memory per chunk, then to global memory once per block.
#include "kernels/cuda/common.cuh"
#include "kernels/selective_scan.h"

#include <algorithm>
#include <type_traits>

namespace mambadna::kernels::cuda {

namespace {

// Threads per block: the forward's 128, or 64 when that leaves too few blocks to fill the
// device (a single long record of a small model: B·E of a few hundred channels); the
// backward's 64 (its shared memory holds a chunk of states per thread).
constexpr int kScanForwardThreads = 128, kScanThreadsSmall = 64, kScanBackwardThreads = 64;

// T: the storage of the activations (u, delta, Bm, Cm, z, out and their gradients), float or
// bf16; the states, A, D, the bias and the parameter gradients are fp32.
template <typename T>
struct ScanArgs {
  T* out;                // (B, L, E)
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

// Steps per chunk of the backward's recomputation, a multiple of every LANES: the forward keeps
// the state before every chunk for the backward (B · L/32 · E · N floats).
constexpr int kScanChunk = 32;

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
  bool have_checkpoints;     // written by the forward; else pass 1 writes them here
};

// Sum over the LANES threads of a channel (an aligned group inside a warp); all get the sum.
template <int LANES>
__device__ __forceinline__ float lanes_sum(float v) {
  for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float scan_dt(float raw, bool softplus) {
  return softplus ? dev_softplus(raw) : raw;
}

constexpr float kLog2e = 1.4426950408889634f;

// This thread's place and share of a channel: channel e of stream b, lane j of the channel's
// LANES threads, holding states j·NS .. j·NS + NS − 1 (has: which exist), with A·log2(e) for
// them (exp(dt·A) = exp2(dt·A2)) and the channel's dt bias.
template <int LANES, int NS, int THREADS>
struct Lane {
  int64_t b, e;
  int j;
  bool active;  // e < E (threads past the last channel still take part in shuffles and barriers)
  bool has[NS];
  float A2[NS];
  float bias;
  template <typename T>
  __device__ explicit Lane(const ScanArgs<T>& a) {
    constexpr int per_block = THREADS / LANES;
    j = int(threadIdx.x % LANES);
    e = int64_t(blockIdx.x) * per_block + threadIdx.x / LANES;
    b = blockIdx.y;
    active = e < a.E;
#pragma unroll
    for (int s = 0; s < NS; ++s) {
      has[s] = active && n(s) < a.N;
      A2[s] = has[s] ? a.A[e * a.N + n(s)] * kLog2e : 0.0f;
    }
    bias = active && a.bias ? a.bias[e] : 0.0f;
  }
  __device__ int64_t n(int s) const { return int64_t(j) * NS + s; }
  // One step for this lane's states: h ← exp(dt·A) h + dt·u·Bt, Bt this lane's part of the row.
  template <typename T>
  __device__ void step(float (&h)[NS], float dt, float dtu, const T* Bt) const {
#pragma unroll
    for (int s = 0; s < NS; ++s)
      if (has[s]) h[s] = exp2f(dt * A2[s]) * h[s] + dtu * ld(Bt[s]);
  }
  // Advances h through the steps t0 .. t0 + LANES − 1 that lie before t_end, this lane loading
  // step t0 + j; at(k) runs after step t0 + k. Returns this lane's dt (0 past t_end).
  template <typename T, typename At>
  __device__ float advance_group(const ScanArgs<T>& a, float (&h)[NS], int64_t t0, int64_t t_end,
                                 At&& at) const {
    const int64_t row = b * a.L + t0 + j;
    const bool mine = active && t0 + j < t_end;
    const int ldbc = int(a.ld_bc);
    const T* Bg = a.Bm + (b * a.L + t0) * a.ld_bc + n(0);  // step t0's row of this lane's states
    const float dt_mine = mine ? scan_dt(ld(a.delta[row * a.E + e]) + bias, a.softplus) : 0.0f;
    const float dtu_mine = mine ? dt_mine * ld(a.u[row * a.E + e]) : 0.0f;
#pragma unroll
    for (int k = 0; k < LANES; ++k) {
      const float dt = __shfl_sync(0xffffffffu, dt_mine, k, LANES);
      const float dtu = __shfl_sync(0xffffffffu, dtu_mine, k, LANES);
      if (t0 + k < t_end) {
        step(h, dt, dtu, Bg + k * ldbc);
        at(k);
      }
    }
    return dt_mine;
  }
};

// ---- forward ---------------------------------------------------------------------------------
//
// LANES threads share a channel, lane j holding states j·NS .. j·NS + NS − 1 (see
// forward_shape). The steps go in groups of LANES: lane j loads step t0 + j's u, delta and z
// and does that step's per-channel work once (softplus, the gate, the store), the group's
// dt and dt·u reach every lane by shuffles, each lane advances its NS states through the
// LANES steps, and the partial sums C_t·h_t are reduced so that lane j receives step t0 + j's.
// So per channel and step the per-channel work is done once, not once per lane, and a warp's
// loads of u, delta, z and stores of out touch 32/LANES whole consecutive channels of LANES rows.

// v[k] (k < LANES) is this lane's part of step k's sum; afterwards v[0] is step `lane`'s total
// over the LANES lanes of the channel (a reduce-scatter in log2 LANES rounds, LANES − 1 shuffles).
template <int LANES>
__device__ __forceinline__ float reduce_scatter(float (&v)[LANES], int lane) {
#pragma unroll
  for (int o = LANES / 2; o >= 1; o >>= 1) {
    const bool upper = lane & o;  // keeps the upper half of the live steps, sends the lower
#pragma unroll
    for (int i = 0; i < o; ++i) {
      const float send = upper ? v[i] : v[i + o];
      const float keep = upper ? v[i + o] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
    }
  }
  return v[0];
}

template <typename T, int LANES, int NS, int THREADS>
__global__ void __launch_bounds__(THREADS) scan_forward_kernel(ScanArgs<T> a) {
  const Lane<LANES, NS, THREADS> ln(a);
  const int64_t b = ln.b, e = ln.e, E = a.E, N = a.N, L = a.L;
  const int j = ln.j;
  // This block's segment of time: steps [tb, te).
  const int64_t seg = blockIdx.z, segments = gridDim.z;
  const int64_t tb = seg * a.seg_len, te = min(L, tb + a.seg_len);
  const float* start = a.h_start ? a.h_start + ((b * segments + seg) * E + e) * N
                       : a.h0    ? a.h0 + (b * E + e) * N
                                 : nullptr;
  float h[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) h[s] = ln.has[s] && start ? start[ln.n(s)] : 0.0f;
  const float Dv = ln.active && a.D ? a.D[e] : 0.0f;
  const int64_t chunks = (L + kScanChunk - 1) / kScanChunk;
  // The inputs never alias the outputs written in the loop: saying so lets the compiler issue
  // the next group's loads before this group's stores.
  const T* __restrict__ u = a.u;
  const T* __restrict__ delta = a.delta;
  const T* __restrict__ Bm = a.Bm;
  const T* __restrict__ Cm = a.Cm;
  const T* __restrict__ z = a.z;
  T* __restrict__ out = a.out;
  const int ldbc = int(a.ld_bc);
  // This lane's raw inputs of its step in the group at t0 (zero past the end, which leaves the
  // state as it is), loaded one group ahead: the next group's loads are in flight while this
  // group computes.
  auto load = [&](int64_t t0, float& uu, float& dd, float& zz) {
    const int64_t t = t0 + j, row = b * L + t;
    const bool mine = ln.active && t < te;
    uu = mine ? ld(u[row * E + e]) : 0.0f;
    dd = mine ? ld(delta[row * E + e]) : 0.0f;
    zz = mine && z ? ld(z[row * a.ld_z + e]) : 0.0f;
  };
  float u_next = 0.0f, delta_next = 0.0f, z_next = 0.0f;
  load(tb, u_next, delta_next, z_next);
  for (int64_t t0 = tb; t0 < te; t0 += LANES) {
    // Step t0 + j, this lane's.
    const int64_t t = t0 + j, row = b * L + t;
    const bool mine = ln.active && t < te;
    const float uu = u_next, draw = delta_next, zz = z_next;
    const T* Bg = Bm + (b * L + t0) * a.ld_bc + ln.n(0);  // step t0's row of this lane's states
    const T* Cg = Cm + (b * L + t0) * a.ld_bc + ln.n(0);
    if (t0 + LANES < te) load(t0 + LANES, u_next, delta_next, z_next);
    const float dt_mine = mine ? scan_dt(draw + ln.bias, a.softplus) : 0.0f;
    const float dtu_mine = dt_mine * uu;
    float y[LANES];
#pragma unroll
    for (int k = 0; k < LANES; ++k) {
      const int64_t tk = t0 + k;
      if (a.h_chunks && tk < te && tk % kScanChunk == 0) {  // the state before chunk tk / kScanChunk
#pragma unroll
        for (int s = 0; s < NS; ++s)
          if (ln.has[s]) a.h_chunks[((b * chunks + tk / kScanChunk) * E + e) * N + ln.n(s)] = h[s];
      }
      const float dt = __shfl_sync(0xffffffffu, dt_mine, k, LANES);
      const float dtu = __shfl_sync(0xffffffffu, dtu_mine, k, LANES);
      const int rk = (tk < te ? k : int(te - 1 - t0)) * ldbc;  // from the group's row
      ln.step(h, dt, dtu, Bg + rk);
      float part = 0.0f;
#pragma unroll
      for (int s = 0; s < NS; ++s)
        if (ln.has[s]) part += ld(Cg[rk + s]) * h[s];
      y[k] = part;
    }
    const float yt = reduce_scatter<LANES>(y, j) + Dv * uu;
    if (mine) out[row * E + e] = st<T>(z ? yt * dev_silu(zz) : yt);
  }
  if (a.h_last && seg == segments - 1) {
#pragma unroll
    for (int s = 0; s < NS; ++s)
      if (ln.has[s]) a.h_last[(b * E + e) * N + ln.n(s)] = h[s];
  }
}

// The segments' summaries for the combine: segment blockIdx.z run from a zero state; its end
// state goes to h_end (B, segments − 1, E, N) and its summed dt to dt_sum (B, segments − 1, E).
// Then exp(dt_sum · A) is the segment's decay of the state it starts from.
template <typename T, int LANES, int NS, int THREADS>
__global__ void __launch_bounds__(THREADS) scan_segment_kernel(ScanArgs<T> a, float* h_end, float* dt_sum) {
  const Lane<LANES, NS, THREADS> ln(a);
  const int64_t seg = blockIdx.z, summaries = gridDim.z;
  const int64_t tb = seg * a.seg_len, te = min(a.L, tb + a.seg_len);
  float h[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) h[s] = 0.0f;
  float dt_acc = 0.0f;  // this lane's steps
  for (int64_t t0 = tb; t0 < te; t0 += LANES) dt_acc += ln.advance_group(a, h, t0, te, [](int) {});
  const int64_t at = (ln.b * summaries + seg) * a.E + ln.e;
#pragma unroll
  for (int s = 0; s < NS; ++s)
    if (ln.has[s]) h_end[at * a.N + ln.n(s)] = h[s];
  dt_acc = lanes_sum<LANES>(dt_acc);
  if (ln.active && ln.j == 0) dt_sum[at] = dt_acc;
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

// ---- backward --------------------------------------------------------------------------------
//
// The forward's layout (LANES lanes per channel, NS states per lane, groups of LANES steps with
// lane j doing step t0 + j's per-channel work). Per chunk of CHUNK steps, last chunk first: the
// states are recomputed from the chunk's boundary state into shared memory, then the adjoint
// runs backward through the chunk's groups, last step first. The per-step sums over states
// (y for dz, du, ddelta) are reduce-scattered to the step's lane; dBm and dCm, summed over
// channels, are reduce-scattered over the warp's channels, added in shared memory per chunk
// and then to global memory once per block.

// v holds this lane's dBm (v[0, NS)) and dCm (v[NS, 2NS)) terms of one step for its NS states.
// Sums them over the warp's 32/LANES channels and adds the sums to the chunk's shared rows.
template <int LANES, int NS>
__device__ __forceinline__ void add_channel_sums(float (&v)[2 * NS], float* sdB, float* sdC,
                                                 int k, int j, int N) {
  constexpr int V = 2 * NS, CH = 32 / LANES;
  const int c = int(threadIdx.x & 31) / LANES;  // this lane's channel within the warp
  int base = 0;
  bool owner = true;
#pragma unroll
  for (int o = CH / 2, live = V; o >= 1; o >>= 1) {
    if (live > 1) {  // scatter: keep half of the live values, summed with the partner's
      const int half = live / 2;
      const bool upper = c & o;
#pragma unroll
      for (int i = 0; i < half; ++i) {
        const float send = upper ? v[i] : v[i + half];
        const float keep = upper ? v[i + half] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o * LANES);
      }
      if (upper) base += half;
      live = half;
    } else {  // one value left: plain sums, and one lane of each pair adds it
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], o * LANES);
      owner = owner && !(c & o);
    }
  }
  constexpr int kept = V / CH > 0 ? V / CH : 1;
  if (owner) {
#pragma unroll
    for (int i = 0; i < kept; ++i) {
      const int idx = base + i, s = idx % NS;
      const int n = j * NS + s;
      if (n < N) atomicAdd(idx < NS ? &sdB[k * N + n] : &sdC[k * N + n], v[i]);
    }
  }
}

template <typename T, int LANES, int NS, int CHUNK, int THREADS>
__global__ void __launch_bounds__(THREADS) scan_backward_kernel(ScanArgs<T> a, ScanGradArgs<T> g) {
  static_assert(CHUNK % LANES == 0, "a chunk holds whole groups of steps");
  // hs (CHUNK + 1, NS, THREADS): hs[k] = the state before step k, a thread's states THREADS
  // apart (consecutive threads, consecutive banks). sdC starts 16 floats past sdB's end, so
  // that a warp's dBm and dCm adds of one step fall in different banks.
  float* hs = dynamic_shared<float>();
  float* sdB = hs + (CHUNK + 1) * NS * THREADS;  // (CHUNK, N)
  float* sdC = sdB + CHUNK * a.N + 16;           // (CHUNK, N)
  const Lane<LANES, NS, THREADS> ln(a);
  const int64_t b = ln.b, e = ln.e, E = a.E, N = a.N, L = a.L;
  const int j = ln.j;
  const int64_t chunks = (L + CHUNK - 1) / CHUNK;
  auto hs_at = [&](int k, int s) -> float& { return hs[(k * NS + s) * THREADS + int(threadIdx.x)]; };
  float Av[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) Av[s] = ln.has[s] ? a.A[e * N + ln.n(s)] : 0.0f;
  const float Dv = ln.active && a.D ? a.D[e] : 0.0f;
  const int64_t ckpt0 = (b * chunks * E + e) * N + ln.n(0);  // + c·E·N + s
  float h[NS];

  // Pass 1 (unless the forward kept them): the state at the start of every chunk.
  if (!g.have_checkpoints) {
    float* const ckpt_w = const_cast<float*>(g.checkpoints);  // the workspace
#pragma unroll
    for (int s = 0; s < NS; ++s)
      h[s] = ln.has[s] && a.h0 ? a.h0[(b * E + e) * N + ln.n(s)] : 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
#pragma unroll
      for (int s = 0; s < NS; ++s)
        if (ln.has[s]) ckpt_w[ckpt0 + c * E * N + s] = h[s];
      const int64_t t1 = min(L, (c + 1) * CHUNK);
      for (int64_t t0 = c * CHUNK; t0 < t1; t0 += LANES) ln.advance_group(a, h, t0, t1, [](int) {});
    }
  }

  // Pass 2: chunks from last to first. lam carries exp(dt_{t+1} A) ⊙ λ_{t+1}.
  float lam[NS], dA_acc[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) {
    lam[s] = ln.has[s] && g.dh_last ? g.dh_last[(b * E + e) * N + ln.n(s)] : 0.0f;
    dA_acc[s] = 0.0f;
  }
  float dD_acc = 0.0f, dbias_acc = 0.0f;  // this lane's steps
  for (int64_t i = threadIdx.x; i < 2 * CHUNK * N + 16; i += THREADS) sdB[i] = 0.0f;  // sdC follows
  __syncthreads();
  for (int64_t c = chunks - 1; c >= 0; --c) {
    const int64_t t0c = c * CHUNK, t1c = min(L, t0c + CHUNK);
    const int len = int(t1c - t0c);
#pragma unroll
    for (int s = 0; s < NS; ++s) {
      h[s] = ln.has[s] ? g.checkpoints[ckpt0 + c * E * N + s] : 0.0f;
      hs_at(0, s) = h[s];
    }
    for (int g0 = 0; g0 < len; g0 += LANES)
      ln.advance_group(a, h, t0c + g0, t1c, [&](int k) {
#pragma unroll
        for (int s = 0; s < NS; ++s) hs_at(g0 + k + 1, s) = h[s];
      });
    for (int g0 = (len - 1) / LANES * LANES; g0 >= 0; g0 -= LANES) {
      // This lane's step t0c + g0 + j.
      const int64_t row = b * L + t0c + g0 + j;
      const bool mine = ln.active && g0 + j < len;
      const float uu = mine ? ld(a.u[row * E + e]) : 0.0f;
      const float raw = (mine ? ld(a.delta[row * E + e]) : 0.0f) + ln.bias;
      const float dt_mine = mine ? scan_dt(raw, a.softplus) : 0.0f;
      const float dout = mine ? ld(g.dout[row * E + e]) : 0.0f;
      const int ldbc = int(a.ld_bc);
      const T* Bg = a.Bm + (b * L + t0c + g0) * a.ld_bc + ln.n(0);  // the group's first row
      const T* Cg = a.Cm + (b * L + t0c + g0) * a.ld_bc + ln.n(0);
      float dy_mine = dout;
      if (a.z) {  // dz needs y_t without the gate: the C·h sums of the group, scattered to lanes
        float yv[LANES];
#pragma unroll
        for (int k = 0; k < LANES; ++k) {
          yv[k] = 0.0f;
          if (g0 + k < len) {
            const int rk = k * ldbc;
#pragma unroll
            for (int s = 0; s < NS; ++s)
              if (ln.has[s]) yv[k] += ld(Cg[rk + s]) * hs_at(g0 + k + 1, s);
          }
        }
        const float y = reduce_scatter<LANES>(yv, j) + Dv * uu;
        const float zz = mine ? ld(a.z[row * a.ld_z + e]) : 0.0f;
        dy_mine = dout * dev_silu(zz);
        if (mine) g.dz[row * a.ld_z + e] = st<T>(dout * y * dev_silu_grad(zz));
      }
      float du_v[LANES], ddt_v[LANES];
#pragma unroll
      for (int k = LANES - 1; k >= 0; --k) {
        const float dt = __shfl_sync(0xffffffffu, dt_mine, k, LANES);
        const float uk = __shfl_sync(0xffffffffu, uu, k, LANES);
        const float dy = __shfl_sync(0xffffffffu, dy_mine, k, LANES);
        du_v[k] = ddt_v[k] = 0.0f;
        float dBC[2 * NS];
#pragma unroll
        for (int s = 0; s < 2 * NS; ++s) dBC[s] = 0.0f;
        const bool step = g0 + k < len;
        if (step) {
          const int rk = k * ldbc;
#pragma unroll
          for (int s = 0; s < NS; ++s)
            if (ln.has[s]) {
              const float Bn = ld(Bg[rk + s]), Cn = ld(Cg[rk + s]);
              const float av = exp2f(dt * ln.A2[s]);
              const float l = lam[s] + Cn * dy;  // λ_t
              const float hprev = hs_at(g0 + k, s);
              dBC[s] = l * dt * uk;                        // dBm
              dBC[NS + s] = dy * hs_at(g0 + k + 1, s);     // dCm
              du_v[k] += l * Bn;
              ddt_v[k] += l * (Av[s] * av * hprev + Bn * uk);
              dA_acc[s] += l * dt * av * hprev;
              lam[s] = av * l;
            }
        }
        add_channel_sums<LANES, NS>(dBC, sdB, sdC, step ? g0 + k : -1, j, step ? int(N) : 0);
      }
      const float lb = reduce_scatter<LANES>(du_v, j);  // Σ_n λ B of step j
      const float ddt = reduce_scatter<LANES>(ddt_v, j);
      const float dd = a.softplus ? ddt * dev_softplus_grad(raw) : ddt;
      if (mine) {
        g.du[row * E + e] = st<T>(Dv * dy_mine + dt_mine * lb);
        g.ddelta[row * E + e] = st<T>(dd);
        dbias_acc += dd;
        dD_acc += dy_mine * uu;
      }
    }
    __syncthreads();  // the chunk's dBm, dCm sums are complete
    {
      // 32-bit index arithmetic: a 64-bit division costs ~100 instructions on the GPU.
      const int Ni = int(N), ld = int(a.ld_bc);
      float* dB0 = g.dBm + (b * L + t0c) * a.ld_bc;
      float* dC0 = g.dCm + (b * L + t0c) * a.ld_bc;
      for (int i = int(threadIdx.x); i < len * Ni; i += THREADS) {
        const int k = i / Ni, n = i - k * Ni;
        atomicAdd(&dB0[k * ld + n], sdB[i]);
        atomicAdd(&dC0[k * ld + n], sdC[i]);
        sdB[i] = 0.0f;
        sdC[i] = 0.0f;
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int s = 0; s < NS; ++s)
    if (ln.has[s]) {
      const int64_t n = ln.n(s);
      atomicAdd(&g.dA[e * N + n], dA_acc[s]);
      if (g.dh0) g.dh0[(b * E + e) * N + n] = lam[s];
    }
  dD_acc = lanes_sum<LANES>(dD_acc);
  dbias_acc = lanes_sum<LANES>(dbias_acc);
  if (ln.active && j == 0) {
    if (g.dD && a.D) atomicAdd(&g.dD[e], dD_acc);
    if (g.dbias && a.bias) atomicAdd(&g.dbias[e], dbias_acc);
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

// ---- launch shapes ---------------------------------------------------------------------------

template <int LANES, int THREADS>
dim3 scan_grid(const SelectiveScanParams& p) {
  constexpr int per_block = THREADS / LANES;
  return dim3(unsigned((p.E + per_block - 1) / per_block), unsigned(p.B));
}

// Small blocks when full-size ones would not give every multiprocessor two.
template <int LANES, int THREADS>
bool small_blocks(const SelectiveScanParams& p) {
  const dim3 g = scan_grid<LANES, THREADS>(p);
  return int64_t(g.x) * g.y < 2 * int64_t(multiprocessor_count());
}

int64_t g_segments = 0;  // set_selective_scan_segments

// Segments of time for a forward whose grid has `blocks` blocks of `threads`: enough for about
// 24 resident warps per multiprocessor, which the scan needs to hide its loads' latency (a
// sequential walk through time with few independent instructions per step; measured on an
// H200: 11.5 warps per SM left it at 5% of the copy bandwidth), each segment at least 256 steps
// (the segment summaries are a second pass over the inputs).
int64_t scan_segments(const SelectiveScanParams& p, int64_t blocks, int threads) {
  int64_t s = g_segments;
  if (s <= 0) {
    const int64_t want = 24 * int64_t(multiprocessor_count()) / std::max(1, threads / 32);
    s = std::min(std::max<int64_t>(1, want / std::max<int64_t>(1, blocks)), p.L / 256);
  }
  return std::clamp<int64_t>(s, 1, std::min<int64_t>(std::max<int64_t>(p.L, 1), 65535));
}

// ---- dispatch over the state size ------------------------------------------------------------

// Lanes per channel and states per lane, as std::integral_constant for f: 4 lanes (a group of
// 4 steps, 4 states each for N = 16) up to N = 32, then more lanes so that a lane holds at most
// 8 states.
template <typename F>
void with_shape(const char* fn, int64_t N, F&& f) {
  using std::integral_constant;
  if (N <= 1) return f(integral_constant<int, 1>(), integral_constant<int, 1>());
  if (N <= 2) return f(integral_constant<int, 2>(), integral_constant<int, 1>());
  if (N <= 4) return f(integral_constant<int, 4>(), integral_constant<int, 1>());
  if (N <= 8) return f(integral_constant<int, 4>(), integral_constant<int, 2>());
  if (N <= 16) return f(integral_constant<int, 4>(), integral_constant<int, 4>());
  if (N <= 32) return f(integral_constant<int, 4>(), integral_constant<int, 8>());
  if (N <= 64) return f(integral_constant<int, 8>(), integral_constant<int, 8>());
  if (N <= 128) return f(integral_constant<int, 16>(), integral_constant<int, 8>());
  if (N <= 256) return f(integral_constant<int, 32>(), integral_constant<int, 8>());
  check::fail(fn, "N (" + std::to_string(N) + ") > 256, the largest state the CUDA backend supports");
}

// The backward's: twice the lanes for 8 < N <= 32 (8 lanes of 2 or 4 states), for twice the
// threads: its shared memory (a chunk of states per channel) limits the resident channels, and
// the walk through time needs many warps to hide its latency.
template <typename F>
void with_backward_shape(const char* fn, int64_t N, F&& f) {
  using std::integral_constant;
  if (N > 8 && N <= 16) return f(integral_constant<int, 8>(), integral_constant<int, 2>());
  if (N > 16 && N <= 32) return f(integral_constant<int, 8>(), integral_constant<int, 4>());
  with_shape(fn, N, std::forward<F>(f));
}

template <typename T>
ScanArgs<T> scan_args(T* out, float* h_last, const T* u, const T* delta, const float* A,
                      const T* Bm, const T* Cm, const float* D, const T* z,
                      const float* delta_bias, const float* h0, float* h_chunks,
                      const SelectiveScanParams& p) {
  return ScanArgs<T>{out,  h_last, u,    delta, A,       Bm,   Cm,   D,
                  z,    delta_bias, h0, h_chunks, p.B, p.L, p.E, p.N,
                  p.ld_bc, p.ld_z, p.delta_softplus, std::max<int64_t>(p.L, 1), nullptr};
}

// The grid's y dimension is the stream.
void check_grid(const char* fn, const SelectiveScanParams& p) {
  if (p.B > 65535) check::fail(fn, "B (" + std::to_string(p.B) + ") > 65535");
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

void set_selective_scan_segments(int64_t segments) { g_segments = segments; }

int64_t selective_scan_chunk_states(const SelectiveScanParams& p) {
  return p.B * ((p.L + kScanChunk - 1) / kScanChunk) * p.E * p.N;
}

namespace {

template <typename T>
void forward(T* out, float* h_last, const T* u, const T* delta, const float* A, const T* Bm,
             const T* Cm, const float* D, const T* z, const float* delta_bias, const float* h0,
             const SelectiveScanParams& p, float* h_chunks) {
  const char* fn = "cuda::selective_scan_forward";
  selective_scan_forward_check(fn, out, u, delta, A, Bm, Cm, z != nullptr, p);
  check_grid(fn, p);
  const ScanArgs<T> a = scan_args(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, h_chunks, p);
  with_shape(fn, p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    auto run = [&](auto threads) {
      constexpr int THREADS = decltype(threads)::value;
      dim3 grid = scan_grid<LANES, THREADS>(p);
      ScanArgs<T> sa = a;
      const int64_t want = scan_segments(p, int64_t(grid.x) * grid.y, THREADS);
      if (want > 1) {  // summaries of segments 0 .. S−2, their combine, then every segment
        sa.seg_len = (p.L + want - 1) / want;
        const int64_t S = (p.L + sa.seg_len - 1) / sa.seg_len;
        const int64_t ends = p.B * (S - 1) * p.E;
        float* h_end = static_cast<float*>(
            workspace(size_t(ends * p.N + ends + p.B * S * p.E * p.N) * sizeof(float)));
        float* dt_sum = h_end + ends * p.N;  // (B, S − 1, E)
        float* h_start = dt_sum + ends;      // (B, S, E, N)
        grid.z = unsigned(S - 1);
        launch(scan_segment_kernel<T, LANES, NS, THREADS>, grid, THREADS, 0, sa, h_end, dt_sum);
        launch(scan_combine_kernel, grid_for(p.B * p.E * p.N, 256), 256, 0, h_start, h_end,
               dt_sum, A, h0, p.B, p.E, p.N, S);
        sa.h_start = h_start;
        grid.z = unsigned(S);
      }
      launch(scan_forward_kernel<T, LANES, NS, THREADS>, grid, THREADS, 0, sa);
    };
    if (small_blocks<LANES, kScanForwardThreads>(p))
      run(std::integral_constant<int, kScanThreadsSmall>());
    else
      run(std::integral_constant<int, kScanForwardThreads>());
  });
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
  check_grid(fn, p);
  const ScanArgs<T> a = scan_args(static_cast<T*>(nullptr), nullptr, u, delta, A, Bm, Cm, D, z,
                                  delta_bias, h0, nullptr, p);
  launch(zero_rows_kernel, grid_for(p.B * p.L * p.N, 256), 256, 0, dBm, dCm, p.B * p.L, p.N, p.ld_bc);
  check_launch(fn);
  with_backward_shape(fn, p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    constexpr int CHUNK = kScanChunk, THREADS = kScanBackwardThreads;
    const int64_t chunks = (p.L + CHUNK - 1) / CHUNK;
    const float* ckpt = h_chunks ? h_chunks
                                 : static_cast<const float*>(workspace(
                                       size_t(p.B * chunks * p.E * p.N) * sizeof(float)));
    const ScanGradArgs<T> g{du,     ddelta, dA,      dBm,  dCm,           dD, dz, ddelta_bias,
                         dh0,    dout,   dh_last, ckpt, h_chunks != nullptr};
    const size_t shared =
        (size_t(CHUNK + 1) * THREADS * NS + 2 * size_t(CHUNK) * size_t(p.N) + 16) * sizeof(float);
    auto kernel = scan_backward_kernel<T, LANES, NS, CHUNK, THREADS>;
    MAMBADNA_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
    launch(kernel, scan_grid<LANES, THREADS>(p), THREADS, shared, a, g);
  });
  check_launch(fn);
}

}  // namespace

void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  forward(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}
void selective_scan_forward(bf16* out, float* h_last, const bf16* u, const bf16* delta,
                            const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                            const bf16* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  forward(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}

void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  backward(du, ddelta, dA, dBm, dCm, dD, dz, ddelta_bias, dh0, dout, dh_last, u, delta, A, Bm, Cm,
           D, z, delta_bias, h0, p, h_chunks);
}
void selective_scan_backward(bf16* du, bf16* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             bf16* dz, float* ddelta_bias, float* dh0, const bf16* dout,
                             const float* dh_last, const bf16* u, const bf16* delta,
                             const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                             const bf16* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  backward(du, ddelta, dA, dBm, dCm, dD, dz, ddelta_bias, dh0, dout, dh_last, u, delta, A, Bm, Cm,
           D, z, delta_bias, h0, p, h_chunks);
}

}  // namespace mambadna::kernels::cuda
