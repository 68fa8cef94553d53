// The Mamba-1 selective scan with mamba_ssm's fusions (selective_scan_fn with delta_bias,
// delta_softplus, z gating and the D skip), an initial state h0 and the final state out.
// For each stream b and channel e, over t in [0, L):
//   dt_t  = softplus(delta[t] + delta_bias[e])   (just the sum when !p.delta_softplus)
//   h_t   = exp(dt_t · A[e,:]) ⊙ h_{t−1} + dt_t · u[t] · Bm[t,:]      (h_{−1} = h0[b,e,:] or 0)
//   y_t   = Σ_n Cm[t,n] · h_t[n] + D[e] · u[t]
//   out_t = y_t · silu(z[t])  (y_t when z is nullptr)
// and h_last[b,e,:] = h_{L−1}. Bm, Cm are shared by all channels of a stream.
// Letters: B streams, L chunk length, E channels (d_inner), N state size (d_state).
// Parameter gradients (dA, dD, ddelta_bias) accumulate (+=); every other gradient assigns (=).
// Backward (states are recomputed inside the chunk, never stored as (B, L, E, N)): with
// dy_t = dout_t · silu(z_t), λ_t = dL/dh_t = Cm[t] dy_t + exp(dt_{t+1} A) ⊙ λ_{t+1}
// (λ_{L−1} also gets dh_last), a_t = exp(dt_t A):
//   dz_t      = dout_t · y_t · silu'(z_t)
//   dCm[t,n]  = Σ_e dy_t h_t[n]              dBm[t,n] = Σ_e λ_t[n] dt_t u_t
//   du_t      = D dy_t + dt_t Σ_n λ_t[n] Bm[t,n]
//   ddt_t     = Σ_n λ_t[n] (A[n] a_t[n] h_{t−1}[n] + Bm[t,n] u_t),  ddelta_t = ddt_t · softplus'(.)
//   dA[n]    += Σ_t λ_t[n] dt_t a_t[n] h_{t−1}[n]
//   dD       += Σ_t dy_t u_t;   ddelta_bias += Σ_t ddelta_t;   dh0 = a_0 ⊙ λ_0.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/check.h"

namespace mambadna::kernels {

struct SelectiveScanParams {
  int64_t B = 0;
  int64_t L = 0;
  int64_t E = 0;
  int64_t N = 0;
  int64_t ld_bc = 0;  // row stride of Bm, Cm, dBm, dCm, >= N
  int64_t ld_z = 0;   // row stride of z and dz, >= E (ignored without z)
  bool delta_softplus = true;
};

inline void selective_scan_check(const char* fn, const SelectiveScanParams& p, bool has_z) {
  check::positive(fn, "B", p.B);
  check::positive(fn, "L", p.L);
  check::positive(fn, "E", p.E);
  check::positive(fn, "N", p.N);
  check::stride(fn, "ld_bc", p.ld_bc, "N", p.N);
  if (has_z) check::stride(fn, "ld_z", p.ld_z, "E", p.E);
}

// The argument checks of every backend: sizes, then the pointers that must not be null.
inline void selective_scan_inputs_check(const char* fn, const void* u, const void* delta,
                                        const void* A, const void* Bm, const void* Cm) {
  check::not_null(fn, "u", u);
  check::not_null(fn, "delta", delta);
  check::not_null(fn, "A", A);
  check::not_null(fn, "Bm", Bm);
  check::not_null(fn, "Cm", Cm);
}
inline void selective_scan_forward_check(const char* fn, const void* out, const void* u,
                                         const void* delta, const void* A, const void* Bm,
                                         const void* Cm, bool has_z, const SelectiveScanParams& p) {
  selective_scan_check(fn, p, has_z);
  check::not_null(fn, "out", out);
  selective_scan_inputs_check(fn, u, delta, A, Bm, Cm);
}
inline void selective_scan_backward_check(const char* fn, const void* du, const void* ddelta,
                                          const void* dA, const void* dBm, const void* dCm,
                                          const void* dz, const void* dout, const void* u,
                                          const void* delta, const void* A, const void* Bm,
                                          const void* Cm, bool has_z,
                                          const SelectiveScanParams& p) {
  selective_scan_check(fn, p, has_z);
  selective_scan_inputs_check(fn, u, delta, A, Bm, Cm);
  check::not_null(fn, "dout", dout);
  check::not_null(fn, "du", du);
  check::not_null(fn, "ddelta", ddelta);
  check::not_null(fn, "dA", dA);
  check::not_null(fn, "dBm", dBm);
  check::not_null(fn, "dCm", dCm);
  if (has_z) check::not_null(fn, "dz", dz);
}

namespace ref {
template <typename T>
void selective_scan_forward(T* out,               // (B, L, E)
                            T* h_last,            // (B, E, N) or nullptr; may alias h0
                            const T* u,           // (B, L, E)
                            const T* delta,       // (B, L, E) before bias and softplus
                            const T* A,           // (E, N), negative (−exp(A_log))
                            const T* Bm,          // (B, L, N) row stride ld_bc
                            const T* Cm,          // (B, L, N) row stride ld_bc
                            const T* D,           // (E) or nullptr
                            const T* z,           // (B, L, E) row stride ld_z, or nullptr
                            const T* delta_bias,  // (E) or nullptr
                            const T* h0,          // (B, E, N) or nullptr for zeros
                            const SelectiveScanParams& p);
template <typename T>
void selective_scan_backward(T* du,             // (B, L, E)
                             T* ddelta,         // (B, L, E) w.r.t. the raw delta
                             T* dA,             // (E, N) +=
                             T* dBm,            // (B, L, N) row stride ld_bc
                             T* dCm,            // (B, L, N) row stride ld_bc
                             T* dD,             // (E) +=, or nullptr (skipped; unused without D)
                             T* dz,             // (B, L, E) row stride ld_z; required with z
                             T* ddelta_bias,    // (E) +=, or nullptr (skipped; unused without bias)
                             T* dh0,            // (B, E, N) or nullptr; may alias dh_last
                             const T* dout,     // (B, L, E)
                             const T* dh_last,  // (B, E, N) or nullptr for zeros
                             const T* u, const T* delta, const T* A, const T* Bm, const T* Cm,
                             const T* D, const T* z, const T* delta_bias, const T* h0,
                             const SelectiveScanParams& p);
}  // namespace ref

namespace cpu {
// h_chunks (optional, selective_scan_chunk_states(p) floats, (B, ceil(L / 64), E, N)): the
// forward writes the state before every 64th step there, and a backward given the same buffer
// (with the same inputs and h0) starts from them instead of recomputing them in a first sweep.
int64_t selective_scan_chunk_states(const SelectiveScanParams& p);
void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks = nullptr);
void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks = nullptr);
}  // namespace cpu

// Device pointers, on the current CUDA device and stream (kernels/cuda/, kernels/device.h).
// The forward's out must not overlap its inputs (it reads them through restrict-qualified
// pointers); h_last may be h0 and dh0 may be dh_last, as on the CPU.
// h_chunks (optional, selective_scan_chunk_states(p) floats): the forward writes the state before
// every chunk of steps there, and a backward given the same buffer starts from them instead of
// running the recurrence forward once more (training keeps them per layer).
namespace cuda {
void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks = nullptr);
void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks = nullptr);
// The same with the activations (u, delta, Bm, Cm, z, out; du, ddelta, dz, dout) stored in bf16
// (kernels/bf16.h): read into fp32, the recurrence and every sum in fp32, outputs rounded once.
// dBm and dCm, summed over channels by atomics, stay fp32.
void selective_scan_forward(bf16* out, float* h_last, const bf16* u, const bf16* delta,
                            const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                            const bf16* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks = nullptr);
void selective_scan_backward(bf16* du, bf16* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             bf16* dz, float* ddelta_bias, float* dh0, const bf16* dout,
                             const float* dh_last, const bf16* u, const bf16* delta,
                             const float* A, const bf16* Bm, const bf16* Cm, const float* D,
                             const bf16* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks = nullptr);
int64_t selective_scan_chunk_states(const SelectiveScanParams& p);  // floats of h_chunks
// Both directions split time into segments when B·E alone would leave the device idle (a
// single long record): each segment's end state from zero (the backward: its outgoing adjoint
// from a zero one) and its summed dt are computed side by side, combined into every segment's
// start state (incoming adjoint), then the segments run side by side (N <= 16; the backward
// of larger states runs unsegmented). 0 (the default) picks the count from the grid and the
// device; tests force a count.
void set_selective_scan_segments(int64_t segments);
// The forward's layout for N <= 16 (kernels/cuda/selective_scan.cu and
// selective_scan_serial.cu): time_parallel, a warp covering 8 channels × 4 runs of 8 steps
// joined by shuffles (B·E·4 threads); channel_serial, a thread per channel walking every step
// with its states in registers (B·E threads, about two thirds of the instructions per state
// and step), unsegmented. automatic, the default, takes channel_serial where B·E gives every
// scheduler of the device enough warps (forward_layout_for), time_parallel otherwise. Both give
// the same outputs and chunk states within float rounding; the backward is time-parallel
// either way. Tests and bench_cuda force one or the other.
enum class ScanForwardLayout { automatic, time_parallel, channel_serial };
// The layout `automatic` takes for p on a device of `multiprocessors` (4 schedulers each).
ScanForwardLayout forward_layout_for(const SelectiveScanParams& p, int multiprocessors);
void set_selective_scan_forward_layout(ScanForwardLayout layout);
}  // namespace cuda

}  // namespace mambadna::kernels
