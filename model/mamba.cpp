#include "model/mamba.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "io/error.h"
#include "kernels/device.h"
#include "kernels/elementwise.h"
#include "model/cuda_runner.h"
#include "model/device_state.h"
#include "model/ops.h"

namespace mambadna::model {

// ---- State ------------------------------------------------------------------------------------

namespace {
namespace kc = kernels::cuda;

// The current device set to `device` for a scope (a State's device copy is used on its own
// device, whichever the caller last selected), and put back after it.
struct OnDevice {
  int before = -1;
  explicit OnDevice(int device) {
    const int now = kc::current_device();
    if (now != device) kc::set_device(device), before = now;
  }
  ~OnDevice() {
    if (before >= 0) try { kc::set_device(before); } catch (...) {}
  }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;
};

// The streams reset_stream marked, zeroed on the device: one 2-D fill per tensor and run of
// consecutive streams (a training step that starts every stream on a new read makes one run).
// The marks are cleared once the fills are issued (a throw keeps them).
void flush_zeros(DeviceState& d, int64_t B, int64_t n_layer, int64_t E, int64_t N, int64_t K1) {
  if (!d.zero_pending) return;
  const OnDevice on(d.device);
  const size_t f = sizeof(float);
  for (int64_t b = 0; b < B;) {
    if (!d.zero[size_t(b)]) {
      ++b;
      continue;
    }
    int64_t e = b;
    while (e < B && d.zero[size_t(e)]) ++e;
    if (K1 > 0)
      kc::fill_bytes_2d(d.conv.data() + b * E * K1, size_t(B * E * K1) * f, 0,
                        size_t((e - b) * E * K1) * f, size_t(n_layer));
    kc::fill_bytes_2d(d.ssm.data() + b * E * N, size_t(B * E * N) * f, 0, size_t((e - b) * E * N) * f,
                      size_t(n_layer));
    b = e;
  }
  std::fill(d.zero.begin(), d.zero.end(), uint8_t(0));
  d.zero_pending = false;
}
}  // namespace

template <typename T>
State<T>::State() = default;
template <typename T>
State<T>::~State() = default;

// A moved-from State is empty (no streams), its host copy current.
template <typename T>
State<T>::State(State&& o) noexcept
    : B(o.B), n_layer(o.n_layer), E(o.E), N(o.N), K1(o.K1), conv_(std::move(o.conv_)),
      ssm_(std::move(o.ssm_)), host_stale_(o.host_stale_), dev_(std::move(o.dev_)) {
  o.B = 0, o.host_stale_ = false;
  o.conv_.clear(), o.ssm_.clear();
}
template <typename T>
State<T>& State<T>::operator=(State&& o) noexcept {
  if (this == &o) return *this;
  B = o.B, n_layer = o.n_layer, E = o.E, N = o.N, K1 = o.K1;
  conv_ = std::move(o.conv_), ssm_ = std::move(o.ssm_);
  host_stale_ = o.host_stale_;
  dev_ = std::move(o.dev_);
  o.B = 0, o.host_stale_ = false;
  o.conv_.clear(), o.ssm_.clear();
  return *this;
}

template <typename T>
State<T>::State(const Config& c, int64_t streams)
    : B(streams), n_layer(c.n_layer), E(c.d_inner()), N(c.d_state), K1(c.d_conv - 1) {
  conv_.assign(size_t(conv_size()), T(0));
  ssm_.assign(size_t(ssm_size()), T(0));
}

template <typename T>
State<T>::State(const State& o) {
  *this = o;
}

// Everything new is made first and swapped in last: a throw (out of memory) leaves this as it was.
template <typename T>
State<T>& State<T>::operator=(const State& o) {
  if (this == &o) return *this;
  std::unique_ptr<DeviceState> fresh;
  std::vector<T> conv, ssm;
  if constexpr (std::is_same_v<T, float>) {
    if (o.values_on_device()) {  // device to device, on o's device; this host copy goes stale
      const OnDevice on(o.dev_->device);
      flush_zeros(*o.dev_, o.B, o.n_layer, o.E, o.N, o.K1);
      fresh = std::make_unique<DeviceState>();
      fresh->device = o.dev_->device;
      fresh->conv = kc::Buffer<float>(o.dev_->conv.size());
      fresh->ssm = kc::Buffer<float>(o.dev_->ssm.size());
      fresh->zero.assign(size_t(o.B), 0);
      if (!fresh->conv.empty())
        kc::copy_on_device(fresh->conv.data(), o.dev_->conv.data(), fresh->conv.size() * sizeof(float));
      kc::copy_on_device(fresh->ssm.data(), o.dev_->ssm.data(), fresh->ssm.size() * sizeof(float));
      fresh->holds = true;
      conv.resize(o.conv_.size());
      ssm.resize(o.ssm_.size());
    }
  }
  if (!fresh) conv = o.conv_, ssm = o.ssm_;  // o's host copy is current when no device holds it
  B = o.B, n_layer = o.n_layer, E = o.E, N = o.N, K1 = o.K1;
  conv_.swap(conv), ssm_.swap(ssm);
  host_stale_ = fresh != nullptr;
  if (fresh) dev_ = std::move(fresh);
  else if (dev_) dev_->holds = false;
  return *this;
}

template <typename T>
bool State<T>::values_on_device() const {
  return dev_ && dev_->holds;
}

template <typename T>
void State<T>::sync_host() const {
  if (!host_stale_) return;
  if constexpr (std::is_same_v<T, float>) {
    const OnDevice on(dev_->device);
    flush_zeros(*dev_, B, n_layer, E, N, K1);
    dev_->conv.download(conv_.data(), size_t(conv_size()));
    dev_->ssm.download(ssm_.data(), size_t(ssm_size()));
  }
  host_stale_ = false;
}

template <typename T>
T* State<T>::conv_data() {
  sync_host();
  if (dev_) dev_->holds = false;
  return conv_.data();
}
template <typename T>
T* State<T>::ssm_data() {
  sync_host();
  if (dev_) dev_->holds = false;
  return ssm_.data();
}
template <typename T>
const T* State<T>::conv_data() const {
  sync_host();
  return conv_.data();
}
template <typename T>
const T* State<T>::ssm_data() const {
  sync_host();
  return ssm_.data();
}

template <typename T>
DeviceState& State<T>::on_device(int device) {
  if constexpr (!std::is_same_v<T, float>) {
    throw UsageError("State<double> lives on the CPU only");
  } else {
    if (dev_ && dev_->device != device) {  // another device had them: through the host
      sync_host();
      const OnDevice on(dev_->device);
      dev_.reset();
    }
    const OnDevice on(device);
    if (!dev_) {
      dev_ = std::make_unique<DeviceState>();
      dev_->device = device;
    }
    if (!dev_->holds) {  // the host copy is current: upload it
      dev_->conv.resize(size_t(conv_size()));
      dev_->ssm.resize(size_t(ssm_size()));
      dev_->zero.assign(size_t(B), 0);
      dev_->zero_pending = false;
      dev_->conv.upload(conv_.data(), size_t(conv_size()));
      dev_->ssm.upload(ssm_.data(), size_t(ssm_size()));
      dev_->holds = true;
    }
    flush_zeros(*dev_, B, n_layer, E, N, K1);
    host_stale_ = true;
    return *dev_;
  }
}

template <typename T>
void State<T>::reset() {
  if (values_on_device()) {
    const OnDevice on(dev_->device);
    dev_->conv.zero();
    dev_->ssm.zero();
    std::fill(dev_->zero.begin(), dev_->zero.end(), uint8_t(0));
    dev_->zero_pending = false;
    host_stale_ = true;
    return;
  }
  std::fill(conv_.begin(), conv_.end(), T(0));
  std::fill(ssm_.begin(), ssm_.end(), T(0));
}

template <typename T>
void State<T>::reset_stream(int64_t b) {
  if (b < 0 || b >= B)
    throw UsageError("State::reset_stream: stream " + std::to_string(b) + " of " + std::to_string(B));
  if (values_on_device()) {
    dev_->zero[size_t(b)] = 1;
    dev_->zero_pending = true;
    host_stale_ = true;
    return;
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    std::fill_n(conv_.data() + (l * B + b) * E * K1, E * K1, T(0));
    std::fill_n(ssm_.data() + (l * B + b) * E * N, E * N, T(0));
  }
}

template <typename T>
void State<T>::copy_stream(int64_t dst, const State& from, int64_t src) {
  if (from.E != E || from.N != N || from.K1 != K1 || from.n_layer != n_layer)
    throw UsageError("State::copy_stream: states of different models");
  if (dst < 0 || dst >= B || src < 0 || src >= from.B)
    throw UsageError("State::copy_stream: stream " + std::to_string(src) + " of " +
                     std::to_string(from.B) + " to " + std::to_string(dst) + " of " +
                     std::to_string(B));
  if (&from == this && dst == src) return;
  if constexpr (std::is_same_v<T, float>) {
    // A stream of a state on the device into one on the host (vep's first branch from its
    // trunk): this state goes there, rather than all of `from` coming back for one stream.
    if (!values_on_device() && from.values_on_device()) on_device(from.dev_->device);
    if (values_on_device()) {  // the copy is made on the device, from wherever `from` has them
      const OnDevice on(dev_->device);
      flush_zeros(*dev_, B, n_layer, E, N, K1);
      const bool there = from.values_on_device() && from.dev_->device == dev_->device;
      if (there) flush_zeros(*from.dev_, from.B, n_layer, E, N, K1);
      const float* fc = there ? from.dev_->conv.data() : from.conv_data();
      const float* fs = there ? from.dev_->ssm.data() : from.ssm_data();
      const size_t f = sizeof(float);
      if (K1 > 0)
        kc::copy_2d(dev_->conv.data() + dst * E * K1, size_t(B * E * K1) * f, fc + src * E * K1,
                    size_t(from.B * E * K1) * f, size_t(E * K1) * f, size_t(n_layer));
      kc::copy_2d(dev_->ssm.data() + dst * E * N, size_t(B * E * N) * f, fs + src * E * N,
                  size_t(from.B * E * N) * f, size_t(E * N) * f, size_t(n_layer));
      host_stale_ = true;
      return;
    }
  }
  const T* fc = from.conv_data();
  const T* fs = from.ssm_data();
  for (int64_t l = 0; l < n_layer; ++l) {
    std::copy_n(fc + (l * from.B + src) * E * K1, E * K1, conv_.data() + (l * B + dst) * E * K1);
    std::copy_n(fs + (l * from.B + src) * E * N, E * N, ssm_.data() + (l * B + dst) * E * N);
  }
}

// ---- Activations: every buffer of a pass, from one table ---------------------------------------

kernels::SelectiveScanParams layer_scan_params(const Config& c, int64_t B, int64_t L) {
  const int64_t E = c.d_inner(), N = c.d_state;
  return kernels::SelectiveScanParams{B, L, E, N, c.rank() + 2 * N, 2 * E, true};
}

template <typename T>
void Activations<T>::plan(const Config& c, int64_t b, int64_t l, bool keep) {
  B = b, L = l, M = b * l;
  this->keep = keep;
  D = c.d_model, E = c.d_inner(), N = c.d_state, R = c.rank(), V = c.vocab_padded();
  saved_layers = keep ? c.n_layer : 1;
  planned_keep = keep;
  const int64_t S = saved_layers;
  struct Entry {
    std::vector<T>* buf;
    int64_t elems;
  };
  const Entry table[] = {
      {&resid, (keep ? c.n_layer + 1 : 1) * M * D},
      {&rstd, (keep ? c.n_layer + 1 : 1) * M},
      {&normed, M * D},
      {&xz, S * M * 2 * E},
      {&u, M * E},  // recomputed in backward (conv is cheap)
      {&xdbl, S * M * (R + 2 * N)},
      {&delta, M * E},  // recomputed in backward (dt_proj has rank R)
      {&y, S * M * E},
      {&mix, M * D},
      {&hidden, M * D},
      {&A, c.n_layer * E * N},
      {&logits, M * V},
      {&lse, M},
      {&loss, M},
      {&conv0, keep ? c.n_layer * b * E * (c.d_conv - 1) : 0},
      {&ssm0, keep ? c.n_layer * b * E * N : 0},
      {&hck, keep ? c.n_layer * Ops<T>::scan_chunk_states(layer_scan_params(c, b, l)) : 0},
      {&tapped, int64_t(taps.size()) * M * D},
  };
  for (const Entry& e : table) e.buf->resize(size_t(e.elems));
}

// ---- the model --------------------------------------------------------------------------------

namespace {
// A pass over B streams may use the first B <= st.B streams of a state of the same model.
template <typename T>
void check_state(const char* fn, const State<T>& st, const Config& c, int64_t B) {
  if (st.B < B || st.E != c.d_inner() || st.N != c.d_state || st.n_layer != c.n_layer ||
      st.K1 != c.d_conv - 1)
    throw UsageError(std::string(fn) + ": state for " + std::to_string(st.B) +
                     " streams of a model with E " + std::to_string(st.E) + ", N " +
                     std::to_string(st.N) + ", " + std::to_string(st.n_layer) +
                     " layers; the batch has " + std::to_string(B) + " streams of E " +
                     std::to_string(c.d_inner()) + ", N " + std::to_string(c.d_state) + ", " +
                     std::to_string(c.n_layer) + " layers");
}
}  // namespace

template <typename T>
Mamba<T>::Mamba(const Config& c, std::vector<T> params)
    : cfg_(c), table_(ParamTable::build(c)), params_(std::move(params)) {
  if (int64_t(params_.size()) != table_.total)
    throw UsageError("Mamba: " + std::to_string(params_.size()) + " parameters given, the config needs " +
                     std::to_string(table_.total));
}

template <typename T>
void Mamba<T>::forward(const int32_t* tokens, int64_t B, int64_t L, State<T>& st,
                       Activations<T>& a) {
  using O = Ops<T>;
  const int64_t D = cfg_.d_model, E = cfg_.d_inner(), N = cfg_.d_state, K = cfg_.d_conv,
                R = cfg_.rank(), V = cfg_.vocab_padded(), M = B * L, NL = cfg_.n_layer;
  check_state("Mamba::forward", st, cfg_, B);
  for (int64_t t : a.taps)  // a layer the model lacks would leave its rows unwritten
    if (t < 0 || t >= cfg_.n_layer)
      throw UsageError("Mamba::forward: Activations::taps holds layer " + std::to_string(t) +
                       ": the model has layers 0.." + std::to_string(cfg_.n_layer - 1));
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->forward(tokens, B, L, st, a);
  if (a.B != B || a.L != L || a.D != D || a.tapped.size() != a.taps.size() * size_t(M * D) ||
      a.planned_keep != a.keep)
    a.plan(cfg_, B, L, a.keep);
  const bool kept = a.keep;
  if (kept) {  // the backward pass starts from the same states
    for (int64_t l = 0; l < NL; ++l) {
      std::copy_n(st.conv_of(l), B * E * (K - 1), a.conv0.data() + l * B * E * (K - 1));
      std::copy_n(st.ssm_of(l), B * E * N, a.ssm0.data() + l * B * E * N);
    }
  }
  const T* emb = params_.data() + table_.specs.front().offset;  // (V, D)
  const T eps = T(cfg_.norm_epsilon);

  T* resid = a.resid.data();  // (M, D) residual entering layer 0
  O::embedding_forward(resid, tokens, emb, kernels::EmbeddingParams{M, D, V});
  for (int64_t l = 0; l < NL; ++l) {
    const LayerWeights<T> w = layer_weights(table_, params_.data(), int(l));
    const int64_t s = kept ? l : 0;
    T* r = a.resid.data() + (kept ? l : 0) * M * D;  // (M, D)
    T* rstd = a.rstd.data() + (kept ? l : 0) * M;     // (M)
    T* xz = a.xz.data() + s * M * 2 * E;              // (M, 2E): x | z
    T* u = a.u.data();                                // (M, E)
    T* xdbl = a.xdbl.data() + s * M * (R + 2 * N);    // (M, R+2N): dt | B | C
    T* delta = a.delta.data();                        // (M, E)
    T* y = a.y.data() + s * M * E;                    // (M, E)
    T* A = a.A.data() + l * E * N;                    // (E, N)
    kernels::ref::neg_exp_forward(A, w.A_log, E * N);

    O::rmsnorm_forward(a.normed.data(), rstd, r, w.norm, kernels::RmsnormParams{M, D, double(eps)});
    O::matmul_forward(xz, a.normed.data(), w.in_proj, (const T*)nullptr,
                      kernels::MatmulParams{M, D, 2 * E, D, 2 * E});
    T* window = st.conv_of(l);  // (B, E, K-1), carried in and out
    O::causal_conv1d_forward(u, K > 1 ? window : (T*)nullptr, xz, w.conv_w, w.conv_b,
                             K > 1 ? window : (const T*)nullptr,
                             kernels::CausalConv1dParams{B, L, E, K, 2 * E, true});
    O::matmul_forward(xdbl, u, w.x_proj, (const T*)nullptr,
                      kernels::MatmulParams{M, E, R + 2 * N, E, R + 2 * N});
    O::matmul_forward(delta, xdbl, w.dt_w, (const T*)nullptr,
                      kernels::MatmulParams{M, R, E, R + 2 * N, E});
    T* h = st.ssm_of(l);  // (B, E, N), carried in and out
    const kernels::SelectiveScanParams sp = layer_scan_params(cfg_, B, L);
    T* hck = kept && !a.hck.empty() ? a.hck.data() + l * O::scan_chunk_states(sp) : nullptr;
    O::selective_scan_forward_keeping(hck, y, h, u, delta, A, xdbl + R, xdbl + R + N, w.D, xz + E,
                                      w.dt_b, h, sp);
    O::matmul_forward(a.mix.data(), y, w.out_proj, (const T*)nullptr,
                      kernels::MatmulParams{M, E, D, E, D});
    T* next = kept ? r + M * D : r;  // residual entering layer l+1
    const T* mix = a.mix.data();
    kernels::ref::add_forward(next, r, mix, M * D);
    for (size_t k = 0; k < a.taps.size(); ++k)
      if (a.taps[k] == l) std::copy_n(next, M * D, a.tapped.data() + int64_t(k) * M * D);
  }
  const T* rf = a.resid.data() + (kept ? NL : 0) * M * D;
  T* rstd_f = a.rstd.data() + (kept ? NL : 0) * M;
  const T* wf = params_.data() + table_.specs.back().offset;
  O::rmsnorm_forward(a.hidden.data(), rstd_f, rf, wf, kernels::RmsnormParams{M, D, double(eps)});
}

template <typename T>
void Mamba<T>::logits(T* out, const T* hidden, int64_t M) const {
  const int64_t D = cfg_.d_model, V = cfg_.vocab_padded();
  const T* emb = params_.data() + table_.specs.front().offset;  // (V, D)
  Ops<T>::matmul_forward(out, hidden, emb, (const T*)nullptr, kernels::MatmulParams{M, D, V, D, V});
}

template <typename T>
void Mamba<T>::score(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
                     State<T>& state, Activations<T>& a, T* logprob, T* entropy) {
  check_state("Mamba::score", state, cfg_, B);
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->score(tokens, targets, B, L, state, a, logprob, entropy);
  forward(tokens, B, L, state, a);
  const int64_t M = B * L, V = cfg_.vocab_padded();
  logits(a.logits.data(), a.hidden.data(), M);
  Ops<T>::cross_entropy_forward(a.loss.data(), a.lse.data(), a.logits.data(), targets,
                                kernels::CrossEntropyParams{M, V});
  kernels::ref::logprob_from_loss(logprob, a.loss.data(), targets, M);
  if (entropy) kernels::ref::entropy_forward(entropy, a.logits.data(), a.lse.data(), M, V);
}

template <typename T>
void ActivationGrads<T>::plan(const Config& c, int64_t m) {
  M = m, D = c.d_model;
  const int64_t E = c.d_inner(), N = c.d_state, R = c.rank(), V = c.vocab_padded();
  struct Entry {
    std::vector<T>* buf;
    int64_t elems;
  };
  const Entry table[] = {
      {&dresid, M * D}, {&dhidden, M * D}, {&dlogits, M * V},         {&dloss, M},
      {&dy, M * E},     {&du, M * E},      {&ddelta, M * E},          {&dxdbl, M * (R + 2 * N)},
      {&dxz, M * 2 * E}, {&dA, E * N},
  };
  for (const Entry& e : table) e.buf->resize(size_t(e.elems));
}

template <typename T>
double Mamba<T>::forward_loss(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
                              State<T>& state, Activations<T>& a, int64_t* count) {
  if (!a.keep) throw UsageError("Mamba::forward_loss: activations must be planned with keep");
  check_state("Mamba::forward_loss", state, cfg_, B);
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->forward_loss(tokens, targets, B, L, state, a, count);
  forward(tokens, B, L, state, a);
  const int64_t M = B * L, V = cfg_.vocab_padded();
  logits(a.logits.data(), a.hidden.data(), M);
  Ops<T>::cross_entropy_forward(a.loss.data(), a.lse.data(), a.logits.data(), targets,
                                kernels::CrossEntropyParams{M, V});
  double sum = 0;
  int64_t n = 0;
  for (int64_t m = 0; m < M; ++m)
    if (targets[m] >= 0) sum += double(a.loss[size_t(m)]), ++n;
  if (count) *count = n;
  return sum;
}

template <typename T>
void Mamba<T>::backward(const int32_t* tokens, const int32_t* targets, Activations<T>& a,
                        ActivationGrads<T>& g, T loss_scale, T* grad) {
  using O = Ops<T>;
  const int64_t D = cfg_.d_model, E = cfg_.d_inner(), N = cfg_.d_state, K = cfg_.d_conv,
                R = cfg_.rank(), V = cfg_.vocab_padded(), NL = cfg_.n_layer;
  const int64_t B = a.B, L = a.L, M = B * L;
  if (!a.keep) throw UsageError("Mamba::backward: activations were not kept");
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->backward_to_host(loss_scale, grad);  // the held gradient untouched
  if (g.M != M || g.D != D) g.plan(cfg_, M);
  const T* emb = params_.data() + table_.specs.front().offset;  // (V, D)
  T* demb = grad + table_.specs.front().offset;                  // (V, D) +=
  const T eps = T(cfg_.norm_epsilon);

  // Loss -> logits -> final norm.
  kernels::ref::loss_weights(g.dloss.data(), targets, loss_scale, M);
  O::cross_entropy_backward(g.dlogits.data(), a.logits.data(), a.lse.data(), targets,
                            g.dloss.data(), kernels::CrossEntropyParams{M, V});
  O::matmul_backward(g.dhidden.data(), demb, (T*)nullptr, g.dlogits.data(), a.hidden.data(), emb,
                     kernels::MatmulParams{M, D, V, D, V});
  std::fill(g.dresid.begin(), g.dresid.end(), T(0));
  {
    const auto& nf = table_.specs.back();
    O::rmsnorm_backward(g.dresid.data(), grad + nf.offset, g.dhidden.data(),
                        a.resid.data() + NL * M * D, params_.data() + nf.offset,
                        a.rstd.data() + NL * M, kernels::RmsnormParams{M, D, double(eps)});
  }

  for (int64_t l = NL - 1; l >= 0; --l) {
    const LayerWeights<T> w = layer_weights(table_, params_.data(), int(l));
    const LayerWeights<T> dw = layer_weights(table_, grad, int(l));
    const T* r = a.resid.data() + l * M * D;        // (M, D) residual entering layer l
    const T* rstd = a.rstd.data() + l * M;           // (M)
    const T* xz = a.xz.data() + l * M * 2 * E;       // (M, 2E)
    const T* xdbl = a.xdbl.data() + l * M * (R + 2 * N);
    const T* y = a.y.data() + l * M * E;
    const T* A = a.A.data() + l * E * N;
    const T* conv0 = K > 1 ? a.conv0.data() + l * B * E * (K - 1) : nullptr;
    const T* h0 = a.ssm0.data() + l * B * E * N;
    // Recompute u = silu(conv(x)) and delta = dt_proj(dt) rather than keeping them per layer.
    T* u = a.u.data();          // (M, E)
    T* delta = a.delta.data();  // (M, E)
    O::causal_conv1d_forward(u, (T*)nullptr, xz, w.conv_w, w.conv_b, conv0,
                             kernels::CausalConv1dParams{B, L, E, K, 2 * E, true});
    O::matmul_forward(delta, xdbl, w.dt_w, (const T*)nullptr,
                      kernels::MatmulParams{M, R, E, R + 2 * N, E});

    // mix = out_proj(y); d(mix) is the residual gradient.
    O::matmul_backward(g.dy.data(), dw.out_proj, (T*)nullptr, g.dresid.data(), y, w.out_proj,
                       kernels::MatmulParams{M, E, D, E, D});
    // y = scan(u, delta, A, B, C, D, z, dt bias, h0).
    std::fill(g.dA.begin(), g.dA.end(), T(0));
    const kernels::SelectiveScanParams sp = layer_scan_params(cfg_, B, L);
    const T* hck = a.hck.empty() ? nullptr : a.hck.data() + l * O::scan_chunk_states(sp);
    O::selective_scan_backward_from(hck, g.du.data(), g.ddelta.data(), g.dA.data(),
                                    g.dxdbl.data() + R, g.dxdbl.data() + R + N, dw.D,
                                    g.dxz.data() + E, dw.dt_b, (T*)nullptr, g.dy.data(),
                                    (const T*)nullptr, u, delta, A, xdbl + R, xdbl + R + N, w.D,
                                    xz + E, w.dt_b, h0, sp);
    kernels::ref::mul_accumulate(dw.A_log, g.dA.data(), A, E * N);  // dA/dA_log = A
    // delta = dt_proj(dt) without bias (the bias is the scan's delta_bias).
    O::matmul_backward(g.dxdbl.data(), dw.dt_w, (T*)nullptr, g.ddelta.data(), xdbl, w.dt_w,
                       kernels::MatmulParams{M, R, E, R + 2 * N, E});
    // xdbl = x_proj(u); du already holds the scan's part.
    kernels::MatmulParams xp{M, E, R + 2 * N, E, R + 2 * N};
    xp.accumulate_din = true;
    O::matmul_backward(g.du.data(), dw.x_proj, (T*)nullptr, g.dxdbl.data(), u, w.x_proj, xp);
    // u = silu(conv(x)), x = xz[:, :E].
    O::causal_conv1d_backward(g.dxz.data(), (T*)nullptr, dw.conv_w, dw.conv_b, g.du.data(),
                              (const T*)nullptr, xz,
                              w.conv_w, w.conv_b, conv0,
                              kernels::CausalConv1dParams{B, L, E, K, 2 * E, true});
    // xz = in_proj(norm(r)); recompute the norm's output.
    O::rmsnorm_forward(a.normed.data(), g.dloss.data(), r, w.norm,
                       kernels::RmsnormParams{M, D, double(eps)});
    O::matmul_backward(g.dhidden.data(), dw.in_proj, (T*)nullptr, g.dxz.data(), a.normed.data(),
                       w.in_proj, kernels::MatmulParams{M, D, 2 * E, D, 2 * E});
    O::rmsnorm_backward(g.dresid.data(), dw.norm, g.dhidden.data(), r, w.norm, rstd,
                        kernels::RmsnormParams{M, D, double(eps)});
  }
  O::embedding_backward(demb, g.dresid.data(), tokens, kernels::EmbeddingParams{M, D, V});
}

// ---- devices and training state ---------------------------------------------------------------

template <typename T>
void Mamba<T>::to_device(const Device& d) {
  // The parameters and AdamW moments come back from a device before the passes move.
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) {
      pull_params();
      if (cuda_->has_moments()) {
        m1_.resize(params_.size());
        m2_.resize(params_.size());
        cuda_->moments(m1_.data(), m2_.data());
      }
    }
  if (!d.cuda) {
    cuda_.reset();
    device_ = d;
    return;
  }
  if constexpr (!std::is_same_v<T, float>) {
    throw UsageError("Mamba<double> runs on the CPU only (it is the reference)");
  } else {
    if (!kernels::cuda::built())
      throw UsageError("--device " + d.name() + ": this build of mambadna has no CUDA backend");
    kernels::cuda::set_device(d.index);  // throws naming the index when there is no such device
    cuda_.reset();
    cuda_ = std::make_shared<CudaRunner>(cfg_, table_, params_.data(), d.index);
    if (!m1_.empty()) cuda_->set_moments(m1_.data(), m2_.data());
    device_ = d;
  }
}

template <typename T>
void Mamba<T>::pull_params() {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) cuda_->pull_params(params_.data());
}

template <typename T>
void Mamba<T>::push_params() {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) cuda_->push_params(params_.data());
}

template <typename T>
void Mamba<T>::grad_zero() {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->grad_zero();
  grad_.assign(size_t(table_.total), T(0));
}

template <typename T>
void Mamba<T>::grad_accumulate(const int32_t* tokens, const int32_t* targets, Activations<T>& a,
                               ActivationGrads<T>& g, T loss_scale) {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->backward(loss_scale);
  if (grad_.size() != size_t(table_.total)) grad_.assign(size_t(table_.total), T(0));
  backward(tokens, targets, a, g, loss_scale, grad_.data());
}

template <typename T>
double Mamba<T>::grad_norm() {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->grad_norm();
  return std::sqrt(kernels::ref::sum_squares(grad_.data(), int64_t(grad_.size())));
}

template <typename T>
void Mamba<T>::adamw_step(const kernels::AdamwParams& p, double weight_decay, T grad_scale) {
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->adamw_step(p, weight_decay, grad_scale);
  if (grad_.size() != size_t(table_.total))
    throw UsageError("Mamba::adamw_step: no gradient (grad_zero and grad_accumulate first)");
  if (m1_.size() != grad_.size()) m1_.assign(grad_.size(), T(0)), m2_.assign(grad_.size(), T(0));
  if (grad_scale != T(1)) kernels::ref::scale_inplace(grad_.data(), grad_scale, int64_t(grad_.size()));
  for (const auto& spec : table_.specs) {
    kernels::AdamwParams ap = p;
    ap.weight_decay = spec.weight_decay ? weight_decay : 0.0;
    Ops<T>::adamw_update(params_.data() + spec.offset, m1_.data() + spec.offset,
                         m2_.data() + spec.offset, grad_.data() + spec.offset, spec.size, ap);
  }
}

template <typename T>
void Mamba<T>::moments(std::vector<T>& m1, std::vector<T>& m2) {
  m1.resize(size_t(table_.total));
  m2.resize(size_t(table_.total));
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) return cuda_->moments(m1.data(), m2.data());
  if (m1_.size() != m1.size()) {
    std::fill(m1.begin(), m1.end(), T(0));
    std::fill(m2.begin(), m2.end(), T(0));
    return;
  }
  m1 = m1_;
  m2 = m2_;
}

template <typename T>
void Mamba<T>::set_moments(const std::vector<T>& m1, const std::vector<T>& m2) {
  if (int64_t(m1.size()) != table_.total || int64_t(m2.size()) != table_.total)
    throw UsageError("Mamba::set_moments: " + std::to_string(m1.size()) + " and " +
                     std::to_string(m2.size()) + " values for " + std::to_string(table_.total) +
                     " parameters");
  m1_ = m1;
  m2_ = m2;
  if constexpr (std::is_same_v<T, float>)
    if (cuda_) cuda_->set_moments(m1.data(), m2.data());
}

template struct ActivationGrads<float>;
template struct ActivationGrads<double>;
template struct State<float>;
template struct State<double>;
template struct Activations<float>;
template struct Activations<double>;
template class Mamba<float>;
template class Mamba<double>;

}  // namespace mambadna::model
