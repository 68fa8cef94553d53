// CUDA selective scan for large states, 16 < N <= 256 (selective_scan.cu takes N <= 16, the
// usual d_state, with a layout parallel in time), forward and backward, with h0 in, h_last
// out and dh0 (see kernels/selective_scan.h for the maths).
//
// Layout: LANES threads share one channel (b, e), each holding NS of its N states in registers
// (N <= LANES · NS); a block of THREADS threads covers THREADS / LANES channels of one
// stream b. Every thread walks t = 0 .. L-1 itself: the recurrence is sequential in t, the
// parallelism is over (b, e, n). Bm and Cm rows are read by every block of a stream (through
// the caches). The expanded state (B, L, E, N) never exists in memory.
//
// Both directions use with_shape's layout (4 lanes of 8 states for N = 32): steps go in
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
#include "kernels/cuda/selective_scan.cuh"

#include <algorithm>
#include <type_traits>

namespace mambadna::kernels::cuda::scan_detail {

namespace {

// Threads per block: the forward's 128, or 64 when that leaves too few blocks to fill the
// device (a single long record of a small model: B·E of a few hundred channels); the
// backward's 64 (its shared memory holds a chunk of states per thread).
constexpr int kScanForwardThreads = 128, kScanThreadsSmall = 64, kScanBackwardThreads = 64;

// Sum over the LANES threads of a channel (an aligned group inside a warp); all get the sum.
template <int LANES>
__device__ __forceinline__ float lanes_sum(float v) {
  for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

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

// ---- dispatch over the state size ------------------------------------------------------------

// Lanes per channel and states per lane, as std::integral_constant for f: 4 lanes of up to 8
// states (a group of 4 steps) up to N = 32, then more lanes so that a lane holds at most 8.
template <typename F>
void with_shape(const char* fn, int64_t N, F&& f) {
  using std::integral_constant;
  if (N <= 16) check::fail(fn, "N (" + std::to_string(N) + ") <= 16 takes the time-parallel scan");
  if (N <= 32) return f(integral_constant<int, 4>(), integral_constant<int, 8>());
  if (N <= 64) return f(integral_constant<int, 8>(), integral_constant<int, 8>());
  if (N <= 128) return f(integral_constant<int, 16>(), integral_constant<int, 8>());
  if (N <= 256) return f(integral_constant<int, 32>(), integral_constant<int, 8>());
  check::fail(fn, "N (" + std::to_string(N) + ") > 256, the largest state the CUDA backend supports");
}

// The backward's: twice the lanes for N <= 32 (8 lanes of 4 states), for twice the threads:
// its shared memory (a chunk of states per channel) limits the resident channels, and the
// walk through time needs many warps to hide its latency.
template <typename F>
void with_backward_shape(const char* fn, int64_t N, F&& f) {
  using std::integral_constant;
  if (N > 16 && N <= 32) return f(integral_constant<int, 8>(), integral_constant<int, 4>());
  with_shape(fn, N, std::forward<F>(f));
}

}  // namespace

template <typename T>
void wide_state_forward(const ScanArgs<T>& a, const SelectiveScanParams& p) {
  with_shape("cuda::selective_scan_forward", p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    auto run = [&](auto threads) {
      constexpr int THREADS = decltype(threads)::value;
      dim3 grid = scan_grid<LANES, THREADS>(p);
      ScanArgs<T> sa = a;
      // ~24 resident warps per multiprocessor hide this walk's load latency (measured on an
      // H200: 11.5 warps per SM left it at 5% of the copy bandwidth).
      const int64_t want = scan_segments(p, int64_t(grid.x) * grid.y, THREADS, 24);
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
        combine_segments(h_start, h_end, dt_sum, a.A, a.h0, p, S);
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
}

template <typename T>
void wide_state_backward(const ScanArgs<T>& a, const ScanGradArgs<T>& g, const SelectiveScanParams& p) {
  with_backward_shape("cuda::selective_scan_backward", p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    constexpr int CHUNK = kScanChunk, THREADS = kScanBackwardThreads;
    const size_t shared =
        (size_t(CHUNK + 1) * THREADS * NS + 2 * size_t(CHUNK) * size_t(p.N) + 16) * sizeof(float);
    auto kernel = scan_backward_kernel<T, LANES, NS, CHUNK, THREADS>;
    MAMBADNA_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
    launch(kernel, scan_grid<LANES, THREADS>(p), THREADS, shared, a, g);
  });
}

template void wide_state_forward(const ScanArgs<float>&, const SelectiveScanParams&);
template void wide_state_forward(const ScanArgs<bf16>&, const SelectiveScanParams&);
template void wide_state_backward(const ScanArgs<float>&, const ScanGradArgs<float>&,
                                  const SelectiveScanParams&);
template void wide_state_backward(const ScanArgs<bf16>&, const ScanGradArgs<bf16>&,
                                  const SelectiveScanParams&);

}  // namespace mambadna::kernels::cuda::scan_detail
