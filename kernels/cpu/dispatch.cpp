// The cpu:: functions of the op headers, each calling the chosen variant's (kernels/cpu/variant.h,
// kernels/cpu_variant.h). Compiled with the build's flags like the rest of the library; the
// variants' tables come from objects of their own.
#include <atomic>
#include <cstdlib>

#include "io/error.h"
#include "kernels/cpu/variant.h"
#include "kernels/cpu_variant.h"

// The variants CMakeLists.txt builds on this architecture, widest first.
#if defined(__x86_64__)
extern "C" const mambadna::kernels::cpu::KernelTable mambadna_cpu_kernels_avx512,
    mambadna_cpu_kernels_avx2, mambadna_cpu_kernels_generic;
#else
extern "C" const mambadna::kernels::cpu::KernelTable mambadna_cpu_kernels_native;
#endif

namespace mambadna::kernels::cpu {

namespace {

struct Candidate {
  const KernelTable* table;
  const char* needs;  // the processor level, for messages
  bool (*supported)();   // __builtin_cpu_supports takes a literal: one function each
};

#if defined(__x86_64__)
const Candidate kCandidates[] = {
    {&mambadna_cpu_kernels_avx512, "x86-64-v4",
     [] { return __builtin_cpu_init(), bool(__builtin_cpu_supports("x86-64-v4")); }},
    {&mambadna_cpu_kernels_avx2, "x86-64-v3",
     [] { return __builtin_cpu_init(), bool(__builtin_cpu_supports("x86-64-v3")); }},
    {&mambadna_cpu_kernels_generic, "", [] { return true; }},
};
#else
const Candidate kCandidates[] = {{&mambadna_cpu_kernels_native, "", [] { return true; }}};
#endif

constexpr const char* kEnv = "MAMBADNA_CPU_KERNELS";

// The variants' names, those this processor runs only when `runnable`.
std::string names(bool runnable) {
  std::string s;
  for (const Candidate& c : kCandidates)
    if (!runnable || c.supported()) s += std::string(s.empty() ? "" : ", ") + c.table->name;
  return s;
}

const KernelTable* find(const std::string& name, const std::string& asked_by) {
  for (const Candidate& c : kCandidates) {
    if (name != c.table->name) continue;
    if (!c.supported())
      throw UsageError(asked_by + "=" + name + ": this processor lacks " + c.needs +
                       " (it runs: " + names(true) + ")");
    return c.table;
  }
  throw UsageError(asked_by + "=" + name + ": no such CPU kernels in this build (built: " +
                   names(false) + ")");
}

const KernelTable* choose() {
  if (const char* env = std::getenv(kEnv); env && *env) return find(env, kEnv);
  for (const Candidate& c : kCandidates)
    if (c.supported()) return c.table;
  return kCandidates[std::size(kCandidates) - 1].table;  // unreachable: the last needs nothing
}

std::atomic<const KernelTable*> g_active{nullptr};

const KernelTable& active() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (!t) {  // two threads may both choose: the same answer
    t = choose();
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}

}  // namespace

std::vector<VariantInfo> variants() {
  std::vector<VariantInfo> v;
  for (const Candidate& c : kCandidates) v.push_back({c.table->name, c.needs, c.supported()});
  return v;
}

std::string active_variant() { return active().name; }

void select_variant(const std::string& name) {
  g_active.store(find(name, "CPU kernels"), std::memory_order_release);
}

// ---- the op headers' cpu:: functions --------------------------------------------------------

void adamw_update(float* param, float* m, float* v, const float* grad, int64_t n,
                  const AdamwParams& p) {
  active().adamw_update(param, m, v, grad, n, p);
}

void causal_conv1d_forward(float* u, float* window_out, const float* x, const float* w,
                           const float* bias, const float* window_in, const CausalConv1dParams& p) {
  active().causal_conv1d_forward(u, window_out, x, w, bias, window_in, p);
}
void causal_conv1d_backward(float* dx, float* dwindow_in, float* dw, float* dbias, const float* du,
                            const float* dwindow_out, const float* x, const float* w,
                            const float* bias, const float* window_in, const CausalConv1dParams& p) {
  active().causal_conv1d_backward(dx, dwindow_in, dw, dbias, du, dwindow_out, x, w, bias, window_in,
                                  p);
}

void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                           const CrossEntropyParams& p) {
  active().cross_entropy_forward(loss, lse, logits, targets, p);
}
void log_softmax_forward(float* out, const float* logits, const CrossEntropyParams& p) {
  active().log_softmax_forward(out, logits, p);
}
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, const float* dloss,
                            const CrossEntropyParams& p) {
  active().cross_entropy_backward(dlogits, logits, lse, targets, dloss, p);
}

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, const RmsnormParams& p) {
  active().rmsnorm_forward(y, rstd, x, w, p);
}
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, const RmsnormParams& p) {
  active().rmsnorm_backward(dx, dw, dy, x, w, rstd, p);
}

int64_t selective_scan_chunk_states(const SelectiveScanParams& p) {
  return active().selective_scan_chunk_states(p);
}
void selective_scan_forward(float* out, float* h_last, const float* u, const float* delta,
                            const float* A, const float* Bm, const float* Cm, const float* D,
                            const float* z, const float* delta_bias, const float* h0,
                            const SelectiveScanParams& p, float* h_chunks) {
  active().selective_scan_forward(out, h_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p,
                                  h_chunks);
}
void selective_scan_backward(float* du, float* ddelta, float* dA, float* dBm, float* dCm, float* dD,
                             float* dz, float* ddelta_bias, float* dh0, const float* dout,
                             const float* dh_last, const float* u, const float* delta,
                             const float* A, const float* Bm, const float* Cm, const float* D,
                             const float* z, const float* delta_bias, const float* h0,
                             const SelectiveScanParams& p, const float* h_chunks) {
  active().selective_scan_backward(du, ddelta, dA, dBm, dCm, dD, dz, ddelta_bias, dh0, dout,
                                   dh_last, u, delta, A, Bm, Cm, D, z, delta_bias, h0, p, h_chunks);
}

}  // namespace mambadna::kernels::cpu
