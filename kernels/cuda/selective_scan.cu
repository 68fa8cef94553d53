// CUDA selective scan, forward and backward, with h0 in, h_last out and dh0 (see
// kernels/selective_scan.h for the maths).
//
// Layout: LANES threads share one channel (b, e), each holding NS of its N states in registers
// (N <= LANES · NS); a block of THREADS threads covers THREADS / LANES channels of one
// stream b. Every thread walks t = 0 .. L-1 itself: the recurrence is sequential in t, the
// parallelism is over (b, e, n). Bm and Cm are read once per stream (the block shares them
// through the cache). The expanded state (B, L, E, N) never exists in memory.
//
// Forward (forward_shape: 4 lanes of 4 states for N = 16): steps go in groups of LANES, lane j
// does step t0 + j's per-channel work (loads, softplus, gate, store) and the group's dt and
// dt·u are shared by shuffles; the y_t partial sums are reduce-scattered back to their lanes.
//
// Backward (with_shape: N lanes of one state for N = 16) keeps only chunk-boundary states,
// (B, chunks, E, N) with chunks = ceil(L / CHUNK): the forward writes them when the caller gives
// it h_chunks (training keeps them per layer), otherwise the backward's pass 1 runs the
// recurrence forward into the workspace. Pass 2 walks the chunks from last to first,
// recomputes the CHUNK states of a chunk into shared memory from its boundary state, then runs
// the adjoint recurrence backward through them. dBm and dCm, which sum over channels, are
// reduced in the warp, then in shared memory per chunk, then added to global memory once per
// block.
#include "kernels/cuda/common.cuh"
#include "kernels/selective_scan.h"

#include <type_traits>

namespace mambadna::kernels::cuda {

namespace {

// Threads per block: 128 for the forward and 256 for the backward, or 64 when that leaves too
// few blocks to fill the device (a single long record of a small model: B·E of a few hundred
// channels).
constexpr int kScanForwardThreads = 128, kScanThreads = 256, kScanThreadsSmall = 64;

struct ScanArgs {
  float* out;            // (B, L, E)
  float* h_last;         // (B, E, N) or nullptr
  const float* u;        // (B, L, E)
  const float* delta;    // (B, L, E)
  const float* A;        // (E, N)
  const float* Bm;       // (B, L, N) row stride ld_bc
  const float* Cm;       // (B, L, N) row stride ld_bc
  const float* D;        // (E) or nullptr
  const float* z;        // (B, L, E) row stride ld_z, or nullptr
  const float* bias;     // (E) or nullptr
  const float* h0;       // (B, E, N) or nullptr
  float* h_chunks;       // (B, chunks, E, N): forward writes the state before every chunk, or nullptr
  int64_t B, L, E, N, ld_bc, ld_z;
  bool softplus;
};

// Steps per chunk of the backward's recomputation (shared memory per block stays near 34 KiB).
template <int NS>
__host__ __device__ constexpr int chunk_steps() {
  return 32 / NS;
}

struct ScanGradArgs {
  float* du;             // (B, L, E)
  float* ddelta;         // (B, L, E)
  float* dA;             // (E, N) +=
  float* dBm;            // (B, L, N) row stride ld_bc, zeroed before
  float* dCm;            // (B, L, N) row stride ld_bc, zeroed before
  float* dD;             // (E) += or nullptr
  float* dz;             // (B, L, E) row stride ld_z, or nullptr
  float* dbias;          // (E) += or nullptr
  float* dh0;            // (B, E, N) or nullptr
  const float* dout;     // (B, L, E)
  const float* dh_last;  // (B, E, N) or nullptr
  const float* checkpoints;  // (B, chunks, E, N): the state before every chunk
  bool have_checkpoints;     // written by the forward; else pass 1 writes them here
};

// This thread's place: channel e of stream b, lane within the channel's LANES threads.
template <int LANES, int THREADS>
struct Place {
  int64_t b, e;
  int lane;
  bool active;  // e < E (threads past the last channel still take part in shuffles and barriers)
  __device__ Place(int64_t E) {
    constexpr int per_block = THREADS / LANES;
    lane = threadIdx.x % LANES;
    e = int64_t(blockIdx.x) * per_block + threadIdx.x / LANES;
    b = blockIdx.y;
    active = e < E;
  }
};

// Sum over the LANES threads of a channel (an aligned group inside a warp); all get the sum.
template <int LANES>
__device__ __forceinline__ float lanes_sum(float v) {
  for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the channels of a warp (lanes with the same lane index); all get the sum.
template <int LANES>
__device__ __forceinline__ float channels_sum(float v) {
  for (int o = LANES; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float scan_dt(float raw, bool softplus) {
  return softplus ? dev_softplus(raw) : raw;
}

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

template <int LANES, int NS, int THREADS>
__global__ void __launch_bounds__(THREADS) scan_forward_kernel(ScanArgs a, int64_t chunk) {
  const Place<LANES, THREADS> pl(a.E);
  const int64_t b = pl.b, e = pl.e, E = a.E, N = a.N, L = a.L;
  const int j = pl.lane;
  constexpr float kLog2e = 1.4426950408889634f;
  float h[NS], A2[NS];  // A2 = A·log2(e): exp(dt·A) = exp2(dt·A2)
  bool has[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) {
    const int64_t n = int64_t(j) * NS + s;
    has[s] = pl.active && n < N;
    h[s] = has[s] && a.h0 ? a.h0[(b * E + e) * N + n] : 0.0f;
    A2[s] = has[s] ? a.A[e * N + n] * kLog2e : 0.0f;
  }
  const float Dv = pl.active && a.D ? a.D[e] : 0.0f;
  const float bias = pl.active && a.bias ? a.bias[e] : 0.0f;
  const int64_t chunks = (L + chunk - 1) / chunk;
  // The inputs never alias the outputs written in the loop: saying so lets the compiler issue
  // the next group's loads before this group's stores.
  const float* __restrict__ u = a.u;
  const float* __restrict__ delta = a.delta;
  const float* __restrict__ Bm = a.Bm;
  const float* __restrict__ Cm = a.Cm;
  const float* __restrict__ z = a.z;
  float* __restrict__ out = a.out;
  for (int64_t t0 = 0; t0 < L; t0 += LANES) {
    // Step t0 + j, this lane's: its inputs (zero past the end, which leaves the state as it is).
    const int64_t t = t0 + j, row = b * L + t;
    const bool mine = pl.active && t < L;
    const float uu = mine ? u[row * E + e] : 0.0f;
    const float dt_mine = mine ? scan_dt(delta[row * E + e] + bias, a.softplus) : 0.0f;
    const float dtu_mine = dt_mine * uu;
    float y[LANES];
#pragma unroll
    for (int k = 0; k < LANES; ++k) {
      const int64_t tk = t0 + k;
      if (a.h_chunks && tk < L && tk % chunk == 0)  // the state before chunk tk / chunk
#pragma unroll
        for (int s = 0; s < NS; ++s)
          if (has[s]) a.h_chunks[((b * chunks + tk / chunk) * E + e) * N + int64_t(j) * NS + s] = h[s];
      const float dt = __shfl_sync(0xffffffffu, dt_mine, k, LANES);
      const float dtu = __shfl_sync(0xffffffffu, dtu_mine, k, LANES);
      const int64_t rk = (b * L + (tk < L ? tk : L - 1)) * a.ld_bc + int64_t(j) * NS;
      float part = 0.0f;
#pragma unroll
      for (int s = 0; s < NS; ++s)
        if (has[s]) {
          h[s] = exp2f(dt * A2[s]) * h[s] + dtu * Bm[rk + s];
          part += Cm[rk + s] * h[s];
        }
      y[k] = part;
    }
    const float yt = reduce_scatter<LANES>(y, j) + Dv * uu;
    if (mine) out[row * E + e] = z ? yt * dev_silu(z[row * a.ld_z + e]) : yt;
  }
  if (a.h_last)
#pragma unroll
    for (int s = 0; s < NS; ++s)
      if (has[s]) a.h_last[(b * E + e) * N + int64_t(j) * NS + s] = h[s];
}

// ---- backward --------------------------------------------------------------------------------

template <int LANES, int NS, int CHUNK, int THREADS>
__global__ void __launch_bounds__(THREADS) scan_backward_kernel(ScanArgs a, ScanGradArgs g) {
  // hs[k][thread][s] = the state before step t0 + k of the current chunk (k = 0 .. CHUNK)
  float* hs = dynamic_shared<float>();                                  // (CHUNK + 1, THREADS, NS)
  float* sdB = hs + (CHUNK + 1) * THREADS * NS;       // (CHUNK, N)
  float* sdC = sdB + CHUNK * a.N;                          // (CHUNK, N)
  const Place<LANES, THREADS> pl(a.E);
  const int64_t b = pl.b, e = pl.e, E = a.E, N = a.N, L = a.L;
  const int64_t chunks = (L + CHUNK - 1) / CHUNK;
  auto hs_at = [&](int k, int s) -> float& { return hs[(k * THREADS + threadIdx.x) * NS + s]; };
  float* const ckpt_w = const_cast<float*>(g.checkpoints);  // pass 1 only (the workspace)
  auto ckpt = [&](int64_t c, int64_t n) -> float { return g.checkpoints[((b * chunks + c) * E + e) * N + n]; };

  float Av[NS];
  bool has[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) {
    const int64_t n = pl.lane + s * LANES;
    has[s] = pl.active && n < N;
    Av[s] = has[s] ? a.A[e * N + n] : 0.0f;
  }
  const float Dv = pl.active && a.D ? a.D[e] : 0.0f;
  const float bias = pl.active && a.bias ? a.bias[e] : 0.0f;

  // One step of the recurrence: h ← exp(dt A) h + dt Bm u.
  auto step = [&](int64_t t, float* h) {
    const int64_t row = b * L + t;
    const float uu = pl.active ? a.u[row * E + e] : 0.0f;
    const float dt = scan_dt((pl.active ? a.delta[row * E + e] : 0.0f) + bias, a.softplus);
    const float* Bt = a.Bm + row * a.ld_bc;
#pragma unroll
    for (int s = 0; s < NS; ++s)
      if (has[s]) h[s] = expf(dt * Av[s]) * h[s] + dt * Bt[pl.lane + s * LANES] * uu;
  };

  // Pass 1 (unless the forward kept them): the state at the start of every chunk.
  float h[NS];
  if (!g.have_checkpoints) {
#pragma unroll
    for (int s = 0; s < NS; ++s)
      h[s] = has[s] && a.h0 ? a.h0[(b * E + e) * N + pl.lane + s * LANES] : 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
#pragma unroll
      for (int s = 0; s < NS; ++s)
        if (has[s]) ckpt_w[((b * chunks + c) * E + e) * N + pl.lane + s * LANES] = h[s];
      const int64_t t1 = min(L, (c + 1) * CHUNK);
      for (int64_t t = c * CHUNK; t < t1; ++t) step(t, h);
    }
  }

  // Pass 2: chunks from last to first. lam carries exp(dt_{t+1} A) ⊙ λ_{t+1}.
  float lam[NS], dA_acc[NS];
#pragma unroll
  for (int s = 0; s < NS; ++s) {
    lam[s] = has[s] && g.dh_last ? g.dh_last[(b * E + e) * N + pl.lane + s * LANES] : 0.0f;
    dA_acc[s] = 0.0f;
  }
  float dD_acc = 0.0f, dbias_acc = 0.0f;
  for (int64_t i = threadIdx.x; i < 2 * CHUNK * N; i += THREADS) sdB[i] = 0.0f;  // sdC follows sdB
  __syncthreads();
  for (int64_t c = chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * CHUNK, len = min(L, t0 + CHUNK) - t0;
#pragma unroll
    for (int s = 0; s < NS; ++s) {
      h[s] = has[s] ? ckpt(c, pl.lane + s * LANES) : 0.0f;
      hs_at(0, s) = h[s];
    }
    for (int k = 0; k < len; ++k) {
      step(t0 + k, h);
#pragma unroll
      for (int s = 0; s < NS; ++s) hs_at(k + 1, s) = h[s];
    }
    for (int k = int(len) - 1; k >= 0; --k) {
      const int64_t row = b * L + t0 + k;
      const float uu = pl.active ? a.u[row * E + e] : 0.0f;
      const float raw = (pl.active ? a.delta[row * E + e] : 0.0f) + bias;
      const float dt = scan_dt(raw, a.softplus);
      const float* Bt = a.Bm + row * a.ld_bc;
      const float* Ct = a.Cm + row * a.ld_bc;
      // y_t (without the gate) for dz
      float part = 0.0f;
#pragma unroll
      for (int s = 0; s < NS; ++s)
        if (has[s]) part += Ct[pl.lane + s * LANES] * hs_at(k + 1, s);
      const float y = lanes_sum<LANES>(part) + Dv * uu;
      const float dout = pl.active ? g.dout[row * E + e] : 0.0f;
      float dy = dout;
      if (a.z) {
        const float zz = pl.active ? a.z[row * a.ld_z + e] : 0.0f;
        dy = dout * dev_silu(zz);
        if (pl.active && pl.lane == 0) g.dz[row * a.ld_z + e] = dout * y * dev_silu_grad(zz);
      }
      float du_part = 0.0f, ddt_part = 0.0f;
#pragma unroll
      for (int s = 0; s < NS; ++s) {
        const int64_t n = pl.lane + s * LANES;
        float dBv = 0.0f, dCv = 0.0f;
        if (has[s]) {
          const float Bn = Bt[n], Cn = Ct[n];
          const float av = expf(dt * Av[s]);
          const float l = lam[s] + Cn * dy;  // λ_t
          const float hprev = hs_at(k, s);
          dCv = dy * hs_at(k + 1, s);
          dBv = l * dt * uu;
          du_part += l * dt * Bn;
          ddt_part += l * (Av[s] * av * hprev + Bn * uu);
          dA_acc[s] += l * dt * av * hprev;
          lam[s] = av * l;
        }
        dBv = channels_sum<LANES>(dBv);
        dCv = channels_sum<LANES>(dCv);
        if ((threadIdx.x & 31) < LANES && n < N) {
          atomicAdd(&sdB[k * N + n], dBv);
          atomicAdd(&sdC[k * N + n], dCv);
        }
      }
      const float du_sum = lanes_sum<LANES>(du_part);
      const float ddt = lanes_sum<LANES>(ddt_part);
      const float dd = a.softplus ? ddt * dev_softplus_grad(raw) : ddt;
      if (pl.active && pl.lane == 0) {
        g.du[row * E + e] = Dv * dy + du_sum;
        g.ddelta[row * E + e] = dd;
      }
      dbias_acc += dd;
      dD_acc += dy * uu;
    }
    __syncthreads();  // the chunk's dBm, dCm sums are complete
    for (int64_t i = threadIdx.x; i < len * N; i += THREADS) {
      const int64_t k = i / N, n = i % N, row = b * L + t0 + k;
      atomicAdd(&g.dBm[row * a.ld_bc + n], sdB[i]);
      atomicAdd(&g.dCm[row * a.ld_bc + n], sdC[i]);
      sdB[i] = 0.0f;
      sdC[i] = 0.0f;
    }
    __syncthreads();
  }
#pragma unroll
  for (int s = 0; s < NS; ++s)
    if (has[s]) {
      const int64_t n = pl.lane + s * LANES;
      atomicAdd(&g.dA[e * N + n], dA_acc[s]);
      if (g.dh0) g.dh0[(b * E + e) * N + n] = lam[s];
    }
  if (pl.active && pl.lane == 0) {
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
template <int LANES, int THREADS = kScanThreads>
bool small_blocks(const SelectiveScanParams& p) {
  static const int sms = [] {
    int d = 0, n = 0;
    cudaGetDevice(&d);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d);
    return n > 0 ? n : 1;
  }();
  const dim3 g = scan_grid<LANES, THREADS>(p);
  return int64_t(g.x) * g.y < 2 * int64_t(sms);
}

// ---- dispatch over the state size ------------------------------------------------------------

// LANES = the smallest power of two >= N up to 32; NS = states per thread. f receives both as
// std::integral_constant.
template <typename F>
void with_shape(const char* fn, int64_t N, F&& f) {
  if (N <= 1) return f(std::integral_constant<int, 1>(), std::integral_constant<int, 1>());
  if (N <= 2) return f(std::integral_constant<int, 2>(), std::integral_constant<int, 1>());
  if (N <= 4) return f(std::integral_constant<int, 4>(), std::integral_constant<int, 1>());
  if (N <= 8) return f(std::integral_constant<int, 8>(), std::integral_constant<int, 1>());
  if (N <= 16) return f(std::integral_constant<int, 16>(), std::integral_constant<int, 1>());
  if (N <= 32) return f(std::integral_constant<int, 32>(), std::integral_constant<int, 1>());
  if (N <= 64) return f(std::integral_constant<int, 32>(), std::integral_constant<int, 2>());
  if (N <= 128) return f(std::integral_constant<int, 32>(), std::integral_constant<int, 4>());
  if (N <= 256) return f(std::integral_constant<int, 32>(), std::integral_constant<int, 8>());
  check::fail(fn, "N (" + std::to_string(N) + ") > 256, the largest state the CUDA backend supports");
}

// The forward's lanes per channel: 4 (a group of 4 steps, 4 states each for N = 16) up to
// N = 32, then more lanes so that a lane holds at most 8 states.
template <typename F>
void forward_shape(const char* fn, int64_t N, F&& f) {
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

ScanArgs scan_args(float* out, float* h_last, const float* u, const float* delta, const float* A,
                   const float* Bm, const float* Cm, const float* D, const float* z,
                   const float* delta_bias, const float* h0, float* h_chunks,
                   const SelectiveScanParams& p) {
  return ScanArgs{out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, h_chunks,
                  p.B, p.L, p.E, p.N, p.ld_bc, p.ld_z, p.delta_softplus};
}

// The grid's y dimension is the stream.
void check_grid(const char* fn, const SelectiveScanParams& p) {
  if (p.B > 65535) check::fail(fn, "B (" + std::to_string(p.B) + ") > 65535");
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

// Steps per chunk of the backward: the forward keeps the state before every chunk for it.
int64_t backward_chunk(const SelectiveScanParams& p) {
  int64_t steps = 0;
  with_shape("cuda::selective_scan", p.N, [&](auto, auto ns) { steps = chunk_steps<decltype(ns)::value>(); });
  return steps;
}

int64_t selective_scan_chunk_states(const SelectiveScanParams& p) {
  const int64_t steps = backward_chunk(p);
  return p.B * ((p.L + steps - 1) / steps) * p.E * p.N;
}

void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  const char* fn = "cuda::selective_scan_forward";
  selective_scan_forward_check(fn, out, u, delta, A, Bm, Cm, z != nullptr, p);
  check_grid(fn, p);
  const ScanArgs a = scan_args(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, h_chunks, p);
  const int64_t chunk = backward_chunk(p);
  forward_shape(fn, p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    if (small_blocks<LANES, kScanForwardThreads>(p)) {
      launch(scan_forward_kernel<LANES, NS, kScanThreadsSmall>,
             scan_grid<LANES, kScanThreadsSmall>(p), kScanThreadsSmall, 0, a, chunk);
    } else {
      launch(scan_forward_kernel<LANES, NS, kScanForwardThreads>,
             scan_grid<LANES, kScanForwardThreads>(p), kScanForwardThreads, 0, a, chunk);
    }
  });
  check_launch(fn);
}

void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  const char* fn = "cuda::selective_scan_backward";
  selective_scan_backward_check(fn, du, ddelta, dA, dBm, dCm, dz, dout, u, delta, A, Bm, Cm,
                                z != nullptr, p);
  check_grid(fn, p);
  const ScanArgs a =
      scan_args(nullptr, nullptr, u, delta, A, Bm, Cm, D, z, delta_bias, h0, nullptr, p);
  launch(zero_rows_kernel, grid_for(p.B * p.L * p.N, 256), 256, 0, dBm, dCm, p.B * p.L, p.N, p.ld_bc);
  check_launch(fn);
  with_shape(fn, p.N, [&](auto lanes, auto ns) {
    constexpr int LANES = decltype(lanes)::value, NS = decltype(ns)::value;
    constexpr int CHUNK = chunk_steps<NS>();
    const int64_t chunks = (p.L + CHUNK - 1) / CHUNK;
    const float* ckpt = h_chunks ? h_chunks
                                 : static_cast<const float*>(workspace(
                                       size_t(p.B * chunks * p.E * p.N) * sizeof(float)));
    const ScanGradArgs g{du,     ddelta, dA,      dBm,  dCm,           dD, dz, ddelta_bias,
                         dh0,    dout,   dh_last, ckpt, h_chunks != nullptr};
    auto run = [&](auto threads) {
      constexpr int THREADS = decltype(threads)::value;
      const size_t shared =
          (size_t(CHUNK + 1) * THREADS * NS + 2 * size_t(CHUNK) * size_t(p.N)) * sizeof(float);
      auto kernel = scan_backward_kernel<LANES, NS, CHUNK, THREADS>;
      MAMBADNA_CUDA_CHECK(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
      launch(kernel, scan_grid<LANES, THREADS>(p), THREADS, shared, a, g);
    };
    if (small_blocks<LANES>(p))
      run(std::integral_constant<int, kScanThreadsSmall>());
    else
      run(std::integral_constant<int, kScanThreads>());
  });
  check_launch(fn);
}

}  // namespace mambadna::kernels::cuda
