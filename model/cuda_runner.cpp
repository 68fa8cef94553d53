#include "model/cuda_runner.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "io/error.h"
#include "model/device_state.h"
#include "model/mamba.h"

#ifdef MAMBADNA_HAVE_CUDA
#include "kernels/causal_conv1d.h"
#include "kernels/cross_entropy.h"
#include "kernels/device.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/selective_scan.h"

namespace mambadna::model {

namespace k = kernels;
namespace kc = kernels::cuda;
template <typename T>
using Buf = kc::Buffer<T>;

// The activations that feed the matrix products and their gradients, in their storage type
// TA: float, or bf16 under --precision bf16 (the products then read bf16 operands, the weights
// from a bf16 copy of the fp32 master weights). The residual stream, the norms' statistics, the
// states and every parameter gradient stay fp32.
template <typename TA>
struct Acts {
  // S = layers when the pass is kept for a backward (which then recomputes nothing), else 1.
  Buf<TA> normed;   // (S [+1 in bf16: the head's input], M, D): the blocks' norm outputs
  Buf<TA> xz;       // (S, M, 2E): x | z
  Buf<TA> u;        // (S, M, E)
  Buf<TA> xdbl;     // (S, M, R+2N): dt | B | C
  Buf<TA> delta;    // (S, M, E)
  Buf<TA> y;        // (S, M, E)
  // G = layers when the weight-gradient products overlap on the side stream (they read these
  // while the next layers' backward runs), else 1.
  Buf<TA> dlogits;  // (M, V)
  Buf<TA> dhidden;  // (M, D)
  Buf<TA> dy, du;   // (M, E)
  Buf<TA> ddelta;   // (G, M, E)
  Buf<TA> dxz;      // (G, M, 2E)
  Buf<TA> dres;     // (G, M, D): dresid rounded by the norm backward for out_proj's (bf16 only)
  Buf<TA> dxdbl;    // (G, M, R+2N): dxdbl rounded for x_proj's backward (bf16 only)
};

// The precision of matrix products set to a pass's while it lives (the head and the backward of
// a pass run as its forward did, whatever was set in between).
struct PassPrecision {
  kc::MatmulPrecision before;
  explicit PassPrecision(kc::MatmulPrecision p) : before(kc::matmul_precision()) {
    kc::set_matmul_precision(p);
  }
  ~PassPrecision() { kc::set_matmul_precision(before); }
  PassPrecision(const PassPrecision&) = delete;
  PassPrecision& operator=(const PassPrecision&) = delete;
};

struct CudaRunner::Impl {
  Config c;
  ParamTable t;
  int device = 0;
  int64_t D, E, N, K, R, V, NL;
  Buf<float> params, grad, m1, m2;  // (P) each: flat like the table; AdamW moments m1, m2
  Buf<float> grad_scratch;  // backward_to_host's gradient, beside the held one
  Buf<k::bf16> params16;    // (P): the weights rounded to bf16, for bf16 products
  bool params16_fresh = false;

  // One pass's device memory, planned from one table (the layout of model/mamba.h's
  // Activations, with the carried state and the token buffers beside it).
  int64_t B = 0, L = 0, M = 0;
  bool keep = false;
  // This pass's precision, as set when it was planned (its head and backward run at it too);
  // bf16: its activations are stored in bf16.
  kc::MatmulPrecision precision = kc::MatmulPrecision::fp32;
  bool bf16() const { return precision == kc::MatmulPrecision::bf16; }
  // A training pass in bf16 with kc::side_stream_overlap(): the backward's weight-gradient
  // products run on the side stream, reading per-layer gradient buffers.
  bool overlapped = false;
  std::vector<int64_t> taps;
  Acts<float> f32;
  Acts<k::bf16> b16;
  Buf<float> resid;   // (layers+1 | 1, M, D)
  Buf<float> rstd;    // (layers+1 | 1, M)
  Buf<float> mix;     // (M, D): out_proj's output in a kept pass
  Buf<float> hidden;  // (M, D)
  Buf<float> A;       // (layers, E, N)
  Buf<float> logits;  // (M, V)
  Buf<float> lse;     // (M)
  Buf<float> loss;    // (M)
  Buf<float> out;     // (2, M): log-probs, entropies
  // The carried state, in the State's device copy (model/device_state.h): layer l's windows
  // and SSM states of the pass's B streams start at l·st_B streams (st_B >= B, the State's).
  float* st_conv = nullptr;  // (layers, st_B, E, K-1)
  float* st_ssm = nullptr;   // (layers, st_B, E, N)
  int64_t st_B = 0;
  Buf<float> conv0;   // (layers, B, E, K-1) the pass started from (keep)
  Buf<float> ssm0;    // (layers, B, E, N) the pass started from (keep)
  Buf<float> tapped;  // (taps, M, D)
  Buf<float> hck;     // (layers, B, chunks, E, N): the scan's chunk-boundary states (keep)
  int64_t hck_layer = 0;  // floats per layer
  Buf<int32_t> tokens, targets;  // (M)
  // Gradients of the activations (backward) kept in fp32.
  Buf<float> dresid;  // (M, D)
  Buf<float> dloss;   // (M)
  Buf<float> dxdbl;   // (M, R+2N): dBm, dCm are summed over channels by atomics
  Buf<float> dA;      // (E, N)

  Impl(const Config& cfg, const ParamTable& table, const float* host, int dev)
      : c(cfg), t(table), device(dev), D(cfg.d_model), E(cfg.d_inner()), N(cfg.d_state),
        K(cfg.d_conv), R(cfg.rank()), V(cfg.vocab_padded()), NL(cfg.n_layer) {
    kc::set_device(device);
    params = Buf<float>(size_t(t.total));
    params.upload(host, size_t(t.total));
  }

  template <typename TA>
  Acts<TA>& acts() {
    if constexpr (std::is_same_v<TA, float>) return f32;
    else return b16;
  }
  // The weights the products read: the fp32 master weights, or their bf16 copy (refreshed
  // after every change of the master weights).
  template <typename TA>
  const TA* weights() {
    if constexpr (std::is_same_v<TA, float>) {
      return params.data();
    } else {
      if (params16.size() != size_t(t.total)) params16 = Buf<k::bf16>(size_t(t.total));
      if (!params16_fresh) kc::to_bf16(params16.data(), params.data(), t.total);
      params16_fresh = true;
      return params16.data();
    }
  }

  void plan(int64_t b, int64_t l, bool kp, const std::vector<int64_t>& tp) {
    B = b, L = l, M = b * l, keep = kp, taps = tp;
    precision = kc::matmul_precision();
    overlapped = bf16() && keep && kc::side_stream_overlap();
    const int64_t G = overlapped ? NL : 1;
    // The other storage's activations go: after a change of precision they would stay unused.
    if (bf16()) f32 = Acts<float>();
    else b16 = Acts<k::bf16>();
    const int64_t S = keep ? NL : 1;
    hck_layer = kc::selective_scan_chunk_states(scan_params());
    // Grow only: passes of changing shape (vep's trunks stop at every branch point) reuse the
    // memory of the largest one instead of freeing (which synchronises) and allocating again.
    // Every buffer is first checked, then the short ones freed, then allocated: the old and new
    // sets need not fit together.
    enum Phase { check, release, allocate };
    bool grow = false;
    auto table = [&](Phase phase) {
      auto want = [&](auto& buf, int64_t elems) {
        using Buffer = std::remove_reference_t<decltype(buf)>;
        if (buf.size() >= size_t(elems)) return;
        if (phase == check) grow = true;
        if (phase == release) buf = Buffer();
        if (phase == allocate) buf = Buffer(size_t(elems));
      };
      auto activations = [&](auto& a, bool used) {
        const int64_t on = used ? 1 : 0, tr = used && keep ? 1 : 0;
        const bool round = used && !std::is_same_v<std::remove_reference_t<decltype(a)>, Acts<float>>;
        want(a.normed, on * (S + (round ? 1 : 0)) * M * D);
        want(a.xz, on * S * M * 2 * E);
        want(a.u, on * S * M * E);
        want(a.xdbl, on * S * M * (R + 2 * N));
        want(a.delta, on * S * M * E);
        want(a.y, on * S * M * E);
        want(a.dlogits, tr * M * V);
        want(a.dhidden, tr * M * D);
        want(a.dy, tr * M * E);
        want(a.du, tr * M * E);
        want(a.ddelta, tr * G * M * E);
        want(a.dxz, tr * G * M * 2 * E);
        want(a.dres, round && keep ? G * M * D : 0);
        want(a.dxdbl, round && keep ? G * M * (R + 2 * N) : 0);
      };
      activations(f32, !bf16());
      activations(b16, bf16());
      want(resid, (keep ? NL + 1 : 1) * M * D);
      want(rstd, (keep ? NL + 1 : 1) * M);
      want(mix, keep ? M * D : 0);
      want(hidden, M * D);
      want(A, NL * E * N);
      want(logits, M * V);
      want(lse, M);
      want(loss, M);
      want(out, 2 * M);
      want(conv0, keep ? NL * B * E * (K - 1) : 0);
      want(ssm0, keep ? NL * B * E * N : 0);
      want(tapped, int64_t(taps.size()) * M * D);
      want(hck, keep ? NL * hck_layer : 0);
      // gradients: only for a kept (training) pass
      want(dresid, keep ? M * D : 0);
      want(dloss, keep ? M : 0);
      want(dxdbl, keep ? M * (R + 2 * N) : 0);
      want(dA, keep ? E * N : 0);
      want(tokens, M);
      want(targets, M);
    };
    table(check);
    if (grow) table(release), table(allocate);
  }

  k::SelectiveScanParams scan_params() const {
    return layer_scan_params(c, B, L);
  }

  // Tokens and targets are checked on the host, where the CPU kernels check them.
  void upload_tokens(const int32_t* tok, const int32_t* tgt) {
    k::embedding_tokens_check("cuda::embedding_forward", tok, k::EmbeddingParams{M, D, V});
    tokens.upload(tok, size_t(M));
    if (tgt) {
      k::cross_entropy_check_targets("cuda::cross_entropy_forward", tgt, k::CrossEntropyParams{M, V});
      targets.upload(tgt, size_t(M));
    }
  }

  // The pass carries st's first B streams in and out where they live on the device: no copy
  // to or from the host (model/mamba.h, State).
  void bind_state(State<float>& st) {
    DeviceState& d = st.on_device(device);
    st_conv = d.conv.data(), st_ssm = d.ssm.data(), st_B = st.B;
  }
  float* conv_of(int64_t l) { return st_conv + l * st_B * E * (K - 1); }  // (B, E, K-1)
  float* ssm_of(int64_t l) { return st_ssm + l * st_B * E * N; }          // (B, E, N)

  // Mamba<T>::forward on the device: embedding, the layers, norm_f (leaves `hidden`, and in
  // bf16 its rounded copy for the head). A kept pass keeps every layer's activations.
  template <typename TA>
  void forward(State<float>& st) {
    Acts<TA>& a = acts<TA>();
    const TA* wa = weights<TA>();
    kc::set_device(device);
    bind_state(st);
    if (keep) {  // the backward starts from the same states: (layers, B, ...) from st_B's rows
      const size_t f = sizeof(float);
      if (K > 1)
        kc::copy_2d(conv0.data(), size_t(B * E * (K - 1)) * f, st_conv, size_t(st_B * E * (K - 1)) * f,
                    size_t(B * E * (K - 1)) * f, size_t(NL));
      kc::copy_2d(ssm0.data(), size_t(B * E * N) * f, st_ssm, size_t(st_B * E * N) * f,
                  size_t(B * E * N) * f, size_t(NL));
    }
    const float* emb = params.data() + t.specs.front().offset;  // (V, D)
    const double eps = c.norm_epsilon;
    kc::embedding_forward(resid.data(), tokens.data(), emb, k::EmbeddingParams{M, D, V});
    for (int64_t l = 0; l < NL; ++l) {
      const LayerWeights<float> w = layer_weights(t, params.data(), int(l));
      const LayerWeights<const TA> wm = layer_weights(t, wa, int(l));  // the products' weights
      const int64_t s = keep ? l : 0;
      float* r = resid.data() + (keep ? l : 0) * M * D;  // (M, D)
      float* rs = rstd.data() + (keep ? l : 0) * M;       // (M)
      TA* normed_l = a.normed.data() + s * M * D;         // (M, D)
      TA* xz_l = a.xz.data() + s * M * 2 * E;             // (M, 2E): x | z
      TA* u_l = a.u.data() + s * M * E;                   // (M, E)
      TA* xdbl_l = a.xdbl.data() + s * M * (R + 2 * N);   // (M, R+2N): dt | B | C
      TA* delta_l = a.delta.data() + s * M * E;           // (M, E)
      TA* y_l = a.y.data() + s * M * E;                   // (M, E)
      float* A_l = A.data() + l * E * N;                  // (E, N)
      kc::neg_exp_forward(A_l, w.A_log, E * N);
      kc::rmsnorm_forward(normed_l, rs, r, w.norm, k::RmsnormParams{M, D, eps});
      kc::matmul_forward(xz_l, normed_l, wm.in_proj, nullptr, k::MatmulParams{M, D, 2 * E, D, 2 * E});
      float* window = K > 1 ? conv_of(l) : nullptr;  // (B, E, K-1)
      kc::causal_conv1d_forward(u_l, window, xz_l, w.conv_w, w.conv_b, window,
                                k::CausalConv1dParams{B, L, E, K, 2 * E, true});
      kc::matmul_forward(xdbl_l, u_l, wm.x_proj, nullptr,
                         k::MatmulParams{M, E, R + 2 * N, E, R + 2 * N});
      kc::matmul_forward(delta_l, xdbl_l, wm.dt_w, nullptr, k::MatmulParams{M, R, E, R + 2 * N, E});
      float* h = ssm_of(l);  // (B, E, N)
      kc::selective_scan_forward(y_l, h, u_l, delta_l, A_l, xdbl_l + R,
                                 xdbl_l + R + N, w.D, xz_l + E, w.dt_b, h, scan_params(),
                                 keep ? hck.data() + l * hck_layer : nullptr);
      float* next = keep ? r + M * D : r;
      if (keep) {  // every layer's input is kept: next = r + out_proj(y)
        kc::matmul_forward(mix.data(), y_l, wm.out_proj, nullptr, k::MatmulParams{M, E, D, E, D});
        kc::add_forward(next, r, mix.data(), M * D);
      } else {  // in place: the product adds itself to the residual stream
        k::MatmulParams op{M, E, D, E, D};
        op.accumulate = true;
        kc::matmul_forward(r, y_l, wm.out_proj, nullptr, op);
      }
      for (size_t i = 0; i < taps.size(); ++i)
        if (taps[i] == l)
          kc::copy_on_device(tapped.data() + int64_t(i) * M * D, next, size_t(M * D) * sizeof(float));
    }
    const float* rf = resid.data() + (keep ? NL : 0) * M * D;
    float* rstd_f = rstd.data() + (keep ? NL : 0) * M;
    const float* wf = params.data() + t.specs.back().offset;
    kc::rmsnorm_forward(hidden.data(), rstd_f, rf, wf, k::RmsnormParams{M, D, eps});
    if constexpr (!std::is_same_v<TA, float>) kc::to_bf16(head_input<TA>(), hidden.data(), M * D);
  }

  // One pass: buffers planned, tokens (and targets) checked and uploaded, the state carried
  // through on the device.
  void pass(const int32_t* tok, const int32_t* tgt, int64_t b, int64_t l, State<float>& st,
            bool kp, const std::vector<int64_t>& tp) {
    kc::set_device(device);
    plan(b, l, kp, tp);
    upload_tokens(tok, tgt);
    if (bf16()) forward<k::bf16>(st);
    else forward<float>(st);
  }

  // The head's input: hidden, or its bf16 copy (after the layers' norm outputs).
  template <typename TA>
  TA* head_input() {
    if constexpr (std::is_same_v<TA, float>) return hidden.data();
    else return b16.normed.data() + (keep ? NL : 1) * M * D;
  }

  // logits, then the loss and log-sum-exp of every row.
  template <typename TA>
  void head_t() {
    const TA* emb = weights<TA>() + t.specs.front().offset;
    kc::matmul_forward(logits.data(), head_input<TA>(), emb, nullptr, k::MatmulParams{M, D, V, D, V});
    kc::cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(),
                              k::CrossEntropyParams{M, V});
  }
  void head() {
    const PassPrecision at(precision);
    if (bf16()) head_t<k::bf16>();
    else head_t<float>();
  }

  // x rounded to the products' storage, when that is bf16: `rounded`, else x itself.
  template <typename TA>
  const TA* operand(const float* x, TA* rounded, int64_t n) {
    if constexpr (std::is_same_v<TA, float>) {
      return x;
    } else {
      kc::to_bf16(rounded, x, n);
      return rounded;
    }
  }

  // The slot of layer l's gradient buffers that the weight-gradient products read.
  int64_t slot(int64_t l) const { return overlapped ? l : 0; }

  // RMSNorm backward into the residual stream's gradient; in bf16 it also leaves that gradient
  // rounded in dres's slot for `below`, the layer whose out_proj backward reads it (none: -1).
  template <typename TA>
  void norm_backward(float* dw, const TA* dy, const float* x, const float* w, const float* rs,
                     int64_t below) {
    const k::RmsnormParams p{M, D, c.norm_epsilon};
    if constexpr (std::is_same_v<TA, float>) {
      kc::rmsnorm_backward(dresid.data(), dw, dy, x, w, rs, p);
    } else {
      k::bf16* rounded = below >= 0 ? b16.dres.data() + slot(below) * M * D : nullptr;
      kc::rmsnorm_backward(dresid.data(), dw, dy, x, w, rs, p, rounded);
    }
  }
  // The residual stream's gradient as layer l's out_proj backward reads it.
  template <typename TA>
  const TA* dresid_operand(int64_t l) {
    if constexpr (std::is_same_v<TA, float>) return dresid.data();
    else return b16.dres.data() + slot(l) * M * D;
  }

  // A weight-gradient product: on the side stream when the pass overlaps them (after all the
  // main stream's work so far, which produced its operands), else in line.
  template <typename F>
  void weight_grad(F&& product) {
    if (!overlapped) return product();
    kc::side_waits_for_main();
    struct OnSide {
      OnSide() { kc::set_stream(kc::Stream::side); }
      ~OnSide() { kc::set_stream(kc::Stream::main); }
    } on_side;
    product();
  }

  // Mamba<T>::backward on the device, into `grad` (+=).
  void backward(float loss_scale) {
    kc::set_device(device);
    if (!keep) throw UsageError("CudaRunner::backward: no training forward pass to go back through");
    if (grad.size() != size_t(t.total)) {
      grad = Buf<float>(size_t(t.total));
      grad.zero();
    }
    const PassPrecision at(precision);
    if (bf16()) backward_t<k::bf16>(loss_scale);
    else backward_t<float>(loss_scale);
  }

  template <typename TA>
  void backward_t(float loss_scale) {
    Acts<TA>& a = acts<TA>();
    const TA* wa = weights<TA>();
    const TA* emb = wa + t.specs.front().offset;
    float* demb = grad.data() + t.specs.front().offset;
    // Should anything below throw, the side stream's products are still ordered before what the
    // main stream does next (the next pass overwrites the activations they read).
    struct SideJoin {
      bool on;
      ~SideJoin() {
        if (on) try { kc::main_waits_for_side(); } catch (...) {}
      }
    } join{overlapped};
    kc::loss_weights(dloss.data(), targets.data(), loss_scale, M);
    kc::cross_entropy_backward(a.dlogits.data(), logits.data(), lse.data(), targets.data(),
                               dloss.data(), k::CrossEntropyParams{M, V});
    const k::MatmulParams head_p{M, D, V, D, V};
    kc::matmul_backward_input(a.dhidden.data(), a.dlogits.data(), emb, head_p);
    weight_grad([&] { kc::matmul_backward_weight(demb, nullptr, a.dlogits.data(), head_input<TA>(), head_p); });
    dresid.zero();
    {
      const auto& nf = t.specs.back();
      norm_backward<TA>(grad.data() + nf.offset, a.dhidden.data(), resid.data() + NL * M * D,
                        params.data() + nf.offset, rstd.data() + NL * M, NL - 1);
    }
    for (int64_t l = NL - 1; l >= 0; --l) {
      const LayerWeights<float> w = layer_weights(t, params.data(), int(l));
      const LayerWeights<const TA> wm = layer_weights(t, wa, int(l));
      const LayerWeights<float> dw = layer_weights(t, grad.data(), int(l));
      const float* r = resid.data() + l * M * D;
      const float* rs = rstd.data() + l * M;
      const TA* normed_l = a.normed.data() + l * M * D;
      const TA* xz_l = a.xz.data() + l * M * 2 * E;
      const TA* u_l = a.u.data() + l * M * E;
      const TA* xdbl_l = a.xdbl.data() + l * M * (R + 2 * N);
      const TA* delta_l = a.delta.data() + l * M * E;
      const TA* y_l = a.y.data() + l * M * E;
      const float* A_l = A.data() + l * E * N;
      const float* conv0_l = K > 1 ? conv0.data() + l * B * E * (K - 1) : nullptr;
      const float* h0 = ssm0.data() + l * B * E * N;
      TA* ddelta_l = a.ddelta.data() + slot(l) * M * E;        // (M, E)
      TA* dxz_l = a.dxz.data() + slot(l) * M * 2 * E;          // (M, 2E)
      const TA* dres_l = dresid_operand<TA>(l);                // (M, D)
      const k::MatmulParams out_p{M, E, D, E, D}, dt_p{M, R, E, R + 2 * N, E},
          in_p{M, D, 2 * E, D, 2 * E};
      k::MatmulParams x_p{M, E, R + 2 * N, E, R + 2 * N};
      x_p.accumulate_din = true;
      kc::matmul_backward_input(a.dy.data(), dres_l, wm.out_proj, out_p);
      weight_grad([&] { kc::matmul_backward_weight(dw.out_proj, nullptr, dres_l, y_l, out_p); });
      dA.zero();
      kc::selective_scan_backward(a.du.data(), ddelta_l, dA.data(), dxdbl.data() + R,
                                  dxdbl.data() + R + N, dw.D, dxz_l + E, dw.dt_b, nullptr,
                                  a.dy.data(), nullptr, u_l, delta_l, A_l,
                                  xdbl_l + R, xdbl_l + R + N, w.D, xz_l + E, w.dt_b, h0,
                                  scan_params(), hck.data() + l * hck_layer);
      kc::mul_accumulate(dw.A_log, dA.data(), A_l, E * N);  // dA/dA_log = A
      kc::matmul_backward_input(dxdbl.data(), ddelta_l, wm.dt_w, dt_p);
      weight_grad([&] { kc::matmul_backward_weight(dw.dt_w, nullptr, ddelta_l, xdbl_l, dt_p); });
      const TA* dxdbl_l =
          operand(dxdbl.data(), a.dxdbl.data() + slot(l) * M * (R + 2 * N), M * (R + 2 * N));
      kc::matmul_backward_input(a.du.data(), dxdbl_l, wm.x_proj, x_p);
      weight_grad([&] { kc::matmul_backward_weight(dw.x_proj, nullptr, dxdbl_l, u_l, x_p); });
      kc::causal_conv1d_backward(dxz_l, nullptr, dw.conv_w, dw.conv_b, a.du.data(), nullptr,
                                 xz_l, w.conv_w, w.conv_b, conv0_l,
                                 k::CausalConv1dParams{B, L, E, K, 2 * E, true});
      kc::matmul_backward_input(a.dhidden.data(), dxz_l, wm.in_proj, in_p);
      weight_grad([&] { kc::matmul_backward_weight(dw.in_proj, nullptr, dxz_l, normed_l, in_p); });
      norm_backward<TA>(dw.norm, a.dhidden.data(), r, w.norm, rs, l - 1);
    }
    // The side stream's products are done before the embedding's gradient (which the head's
    // shares) and anything after the backward.
    if (overlapped) kc::main_waits_for_side(), join.on = false;
    kc::embedding_backward(demb, dresid.data(), tokens.data(), k::EmbeddingParams{M, D, V});
  }

  void ensure_moments() {
    if (m1.size() == size_t(t.total)) return;
    m1 = Buf<float>(size_t(t.total));
    m2 = Buf<float>(size_t(t.total));
    m1.zero();
    m2.zero();
  }
};

CudaRunner::CudaRunner(const Config& config, const ParamTable& table, const float* params,
                       int device)
    : impl_(std::make_unique<Impl>(config, table, params, device)) {}
CudaRunner::~CudaRunner() = default;

void CudaRunner::push_params(const float* host) {
  kc::set_device(impl_->device);
  impl_->params.upload(host, impl_->params.size());
  impl_->params16_fresh = false;
}
void CudaRunner::pull_params(float* host) {
  kc::set_device(impl_->device);
  impl_->params.download(host, impl_->params.size());
}

namespace {
// The host Activations of a device pass hold only what comes back: hidden and taps.
void host_outputs(Activations<float>& a, int64_t B, int64_t L, int64_t D) {
  a.B = B, a.L = L, a.M = B * L, a.D = D;
  a.hidden.resize(size_t(a.M * D));
  a.tapped.resize(a.taps.size() * size_t(a.M * D));
}
}  // namespace

void CudaRunner::forward(const int32_t* tokens, int64_t B, int64_t L, State<float>& st,
                         Activations<float>& a) {
  Impl& x = *impl_;
  x.pass(tokens, nullptr, B, L, st, a.keep, a.taps);
  host_outputs(a, B, L, x.D);
  x.hidden.download(a.hidden.data(), a.hidden.size());
  if (!a.tapped.empty()) x.tapped.download(a.tapped.data(), a.tapped.size());
}

void CudaRunner::score(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
                       State<float>& st, Activations<float>& a, float* logprob, float* entropy) {
  Impl& x = *impl_;
  x.pass(tokens, targets, B, L, st, a.keep, a.taps);
  x.head();
  kc::logprob_from_loss(x.out.data(), x.loss.data(), x.targets.data(), x.M);
  x.out.download(logprob, size_t(x.M));
  if (entropy) {
    kc::entropy_forward(x.out.data() + x.M, x.logits.data(), x.lse.data(), x.M, x.V);
    x.out.download(entropy, size_t(x.M), size_t(x.M));
  }
}

double CudaRunner::forward_loss(const int32_t* tokens, const int32_t* targets, int64_t B,
                                int64_t L, State<float>& st, Activations<float>& a,
                                int64_t* count) {
  if (!a.keep) throw UsageError("Mamba::forward_loss: activations must be planned with keep");
  Impl& x = *impl_;
  x.pass(tokens, targets, B, L, st, true, a.taps);
  x.head();
  std::vector<float> loss(size_t(x.M));
  x.loss.download(loss.data(), loss.size());
  double sum = 0;
  int64_t n = 0;
  for (int64_t m = 0; m < x.M; ++m)
    if (targets[m] >= 0) sum += double(loss[size_t(m)]), ++n;
  if (count) *count = n;
  a.B = B, a.L = L, a.M = B * L;
  return sum;
}

void CudaRunner::backward(float loss_scale) { impl_->backward(loss_scale); }

void CudaRunner::backward_to_host(float loss_scale, float* host) {
  Impl& x = *impl_;
  kc::set_device(x.device);
  std::swap(x.grad, x.grad_scratch);  // the held gradient waits aside
  grad_zero();
  x.backward(loss_scale);
  grad_add_to(host);
  std::swap(x.grad, x.grad_scratch);
}

void CudaRunner::grad_zero() {
  Impl& x = *impl_;
  kc::set_device(x.device);
  if (x.grad.size() != size_t(x.t.total)) x.grad = Buf<float>(size_t(x.t.total));
  x.grad.zero();
}

void CudaRunner::grad_add_to(float* host) {
  kc::set_device(impl_->device);
  const auto g = impl_->grad.download();
  for (size_t i = 0; i < g.size(); ++i) host[i] += g[i];
}

double CudaRunner::grad_norm() {
  kc::set_device(impl_->device);
  Impl& x = *impl_;
  if (x.grad.empty()) return 0;
  return std::sqrt(kc::sum_squares(x.grad.data(), int64_t(x.grad.size())));
}

void CudaRunner::adamw_step(const kernels::AdamwParams& p, double weight_decay, float grad_scale) {
  Impl& x = *impl_;
  kc::set_device(x.device);
  if (x.grad.size() != size_t(x.t.total))
    throw UsageError("Mamba::adamw_step: no gradient (grad_zero and grad_accumulate first)");
  x.ensure_moments();
  if (grad_scale != 1.0f) kc::scale_inplace(x.grad.data(), grad_scale, x.t.total);
  for (const auto& spec : x.t.specs) {
    kernels::AdamwParams ap = p;
    ap.weight_decay = spec.weight_decay ? weight_decay : 0.0;
    kc::adamw_update(x.params.data() + spec.offset, x.m1.data() + spec.offset,
                     x.m2.data() + spec.offset, x.grad.data() + spec.offset, spec.size, ap);
  }
  x.params16_fresh = false;
}

void CudaRunner::moments(float* m1, float* m2) {
  kc::set_device(impl_->device);
  Impl& x = *impl_;
  x.ensure_moments();
  x.m1.download(m1, x.m1.size());
  x.m2.download(m2, x.m2.size());
}

void CudaRunner::set_moments(const float* m1, const float* m2) {
  Impl& x = *impl_;
  kc::set_device(x.device);
  x.ensure_moments();
  x.m1.upload(m1, x.m1.size());
  x.m2.upload(m2, x.m2.size());
}

bool CudaRunner::has_moments() const { return impl_->m1.size() == size_t(impl_->t.total); }

}  // namespace mambadna::model

#else  // a build without the CUDA backend: Mamba::to_device refuses before any of these run

namespace mambadna::model {

struct CudaRunner::Impl {};

namespace {
[[noreturn]] void no_cuda() {
  throw UsageError("--device cuda: this build of mambadna has no CUDA backend");
}
}  // namespace

CudaRunner::CudaRunner(const Config&, const ParamTable&, const float*, int) { no_cuda(); }
CudaRunner::~CudaRunner() = default;
void CudaRunner::push_params(const float*) { no_cuda(); }
void CudaRunner::pull_params(float*) { no_cuda(); }
void CudaRunner::forward(const int32_t*, int64_t, int64_t, State<float>&, Activations<float>&) {
  no_cuda();
}
void CudaRunner::score(const int32_t*, const int32_t*, int64_t, int64_t, State<float>&,
                       Activations<float>&, float*, float*) {
  no_cuda();
}
double CudaRunner::forward_loss(const int32_t*, const int32_t*, int64_t, int64_t, State<float>&,
                                Activations<float>&, int64_t*) {
  no_cuda();
}
void CudaRunner::backward(float) { no_cuda(); }
void CudaRunner::backward_to_host(float, float*) { no_cuda(); }
bool CudaRunner::has_moments() const { return false; }
void CudaRunner::grad_zero() { no_cuda(); }
void CudaRunner::grad_add_to(float*) { no_cuda(); }
double CudaRunner::grad_norm() { no_cuda(); }
void CudaRunner::adamw_step(const kernels::AdamwParams&, double, float) { no_cuda(); }
void CudaRunner::moments(float*, float*) { no_cuda(); }
void CudaRunner::set_moments(const float*, const float*) { no_cuda(); }

}  // namespace mambadna::model
#endif
