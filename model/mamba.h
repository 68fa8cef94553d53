// The Mamba-1 language model (mamba_ssm's MambaLMHeadModel): embedding -> n_layer x
// [RMSNorm -> Mamba mixer, pre-norm residual] -> RMSNorm norm_f -> LM head tied to the embedding.
//
// Letters: B streams, L chunk length, M = B*L rows, D d_model, E d_inner, N d_state, K d_conv,
// R dt_rank, V padded vocabulary. Tensors are row-major, channels last: (B, L, E).
//
// T = float runs the fast CPU kernels; T = double runs the plain-loop references (the spec),
// used by the tests (golden values to 1e-9, finite-difference gradients).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/selective_scan.h"
#include "model/config.h"
#include "model/device.h"
#include "model/params.h"

namespace mambadna::model {

struct DeviceState;

// The recurrent state of B streams, every layer: what a chunk hands to the next one.
//
// A pass on a CUDA device leaves the state in device memory (model/device_state.h), where the
// next pass finds it: the host copy is brought back only when something reads it through the
// views below (a checkpoint, a test), and resets and copies of streams are done where the
// values are. So pipelines reset, branch and save states the same way on either device, and a
// device pass moves no state across the bus unless the host asks for it (a host view, a write
// through one, a stream copied from a state that lives on the host).
//
// A host view's pointer is good until the next pass or device operation on the state (a write
// through an older pointer is lost). Const views write the host copy too (a download), so they
// are not safe from several threads at once. A pass that throws leaves the state part-advanced.
template <typename T>
struct State {
  int64_t B = 0, n_layer = 0, E = 0, N = 0, K1 = 0;  // K1 = d_conv - 1
  State();
  State(const Config& c, int64_t streams);
  ~State();
  State(const State& o);  // copies the values (on the device when they are there)
  State& operator=(const State& o);
  State(State&&) noexcept;
  State& operator=(State&&) noexcept;

  // Host views, current from the call on. The const ones leave a device copy in use; the
  // others drop it (the host may write), so the next device pass uploads the host's values.
  T* conv_data();      // (n_layer, B, E, K-1): last K-1 conv inputs, oldest first
  T* ssm_data();       // (n_layer, B, E, N)
  const T* conv_data() const;
  const T* ssm_data() const;
  T* conv_of(int64_t layer) { return conv_data() + layer * B * E * K1; }
  T* ssm_of(int64_t layer) { return ssm_data() + layer * B * E * N; }
  int64_t conv_size() const { return n_layer * B * E * K1; }
  int64_t ssm_size() const { return n_layer * B * E * N; }

  void reset();                  // every stream to zero
  void reset_stream(int64_t b);  // one stream to zero (a new record starts)
  void copy_stream(int64_t dst, const State& from, int64_t src);  // branch a state

  // For the device passes (model/cuda_runner.cpp): the values in device memory on `device`,
  // uploaded when the host has them; the host copy is stale from here on (the pass writes them).
  DeviceState& on_device(int device);
  bool values_on_device() const;  // the device copy holds the values, not (only) the host

 private:
  void sync_host() const;  // device -> host when the host copy is stale
  mutable std::vector<T> conv_, ssm_;
  mutable bool host_stale_ = false;
  std::unique_ptr<DeviceState> dev_;  // float only
};

// The scan's shape in a layer over (B, L): Bm and Cm are columns of x_proj's output
// (dt | B | C), z the second half of in_proj's (x | z).
kernels::SelectiveScanParams layer_scan_params(const Config& c, int64_t B, int64_t L);

// Activations of one forward pass over (B, L), planned from one table. With `keep` (training)
// every layer's tensors are kept for backward; otherwise one set is reused by all layers.
template <typename T>
struct Activations {
  int64_t B = 0, L = 0, M = 0, saved_layers = 0;
  bool keep = false;  // keep every layer's tensors (training)
  bool planned_keep = false;  // the keep the buffers were last planned for
  int64_t D = 0, E = 0, N = 0, R = 0, V = 0;
  std::vector<T> resid;   // (layers+1, M, D): residual stream entering each layer; last = before norm_f
  std::vector<T> rstd;    // (layers+1, M): RMSNorm reciprocal std per row (last: norm_f)
  std::vector<T> normed;  // (M, D): RMSNorm output (recomputed in backward)
  std::vector<T> xz;      // (S, M, 2E): in_proj output, x | z
  std::vector<T> u;       // (M, E): silu(conv(x)) of the current layer
  std::vector<T> xdbl;    // (S, M, R+2N): x_proj output, dt | B | C
  std::vector<T> delta;   // (M, E): dt_proj output (before bias and softplus), current layer
  std::vector<T> y;       // (S, M, E): gated scan output
  std::vector<T> mix;     // (M, D): out_proj output
  std::vector<T> hidden;  // (M, D): after norm_f
  std::vector<T> A;       // (layers, E, N): -exp(A_log)
  std::vector<T> logits;  // (M, V)
  std::vector<T> lse;     // (M): log-sum-exp of each logits row
  std::vector<T> loss;    // (M): -log p(target)
  std::vector<T> conv0;   // (layers, B, E, K-1): conv windows the pass started from (keep only)
  std::vector<T> ssm0;    // (layers, B, E, N): SSM states the pass started from (keep only)
  std::vector<T> hck;     // (layers, scan chunk states): the scan's states every 64 steps (keep, CPU only)
  std::vector<int64_t> taps;  // layers whose output (the residual stream after them) to keep
  std::vector<T> tapped;      // (taps, M, D)
  void plan(const Config& c, int64_t B, int64_t L, bool keep);
};

// Gradients of the activations of one backward pass, planned from one table.
template <typename T>
struct ActivationGrads {
  int64_t M = 0, D = 0;
  std::vector<T> dresid;   // (M, D): gradient of the residual stream
  std::vector<T> dhidden;  // (M, D): of the final norm's output (then of each layer's normed input)
  std::vector<T> dlogits;  // (M, V)
  std::vector<T> dloss;    // (M)
  std::vector<T> dy;       // (M, E)
  std::vector<T> du;       // (M, E)
  std::vector<T> ddelta;   // (M, E)
  std::vector<T> dxdbl;    // (M, R+2N)
  std::vector<T> dxz;      // (M, 2E)
  std::vector<T> dA;       // (E, N)
  void plan(const Config& c, int64_t M);
};

class CudaRunner;

template <typename T>
class Mamba {
 public:
  Mamba(const Config& c, std::vector<T> params);
  const Config& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }

  // Runs B streams of L tokens: tokens (B, L), on the first B streams of `state` (state.B >= B).
  // State is read as the initial state and
  // overwritten with the state after the chunk. Leaves acts.hidden (M, D) after norm_f, and
  // acts.tapped (taps, M, D): the residual stream after each layer that acts.taps names.
  void forward(const int32_t* tokens, int64_t B, int64_t L, State<T>& state, Activations<T>& acts);

  // Logits (M, V) = hidden (M, D) . embedding^T, for rows of acts.hidden.
  void logits(T* out, const T* hidden, int64_t M) const;

  // forward, then the log-probability of targets (B, L) (a target < 0 is skipped: NaN out):
  // logprob (M) = log p(targets[m] | tokens up to m). entropy (M) of the predicted
  // distribution when not nullptr (nats).
  void score(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L, State<T>& state,
             Activations<T>& acts, T* logprob, T* entropy = nullptr);

  // Training forward: `acts` must be planned with keep; the initial state is saved in acts.
  // Returns the sum over rows with a target (>= 0) of -log p(target); `count` gets their number.
  double forward_loss(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
                      State<T>& state, Activations<T>& acts, int64_t* count = nullptr);

  // Backward of forward_loss's last call, for the loss sum * loss_scale (e.g. 1 / count).
  // grad (params size) accumulates (+=). No gradient flows into the carried initial state
  // (truncated BPTT).
  void backward(const int32_t* tokens, const int32_t* targets, Activations<T>& acts,
                ActivationGrads<T>& g, T loss_scale, T* grad);

  // ---- where the passes run ----------------------------------------------------------------
  // Runs every later pass on `device` (float only; the parameters are copied there). On a CUDA
  // device, activations live in device memory: the host Activations then hold only hidden and
  // tapped after forward(); logits() still reads host memory. Parameters changed on the device
  // (training) reach params() through pull_params(); host changes reach the device through
  // push_params().
  void to_device(const Device& device);
  const Device& device() const { return device_; }
  void pull_params();
  void push_params();

  // ---- training on the model's device: gradient and AdamW moments held beside the parameters
  void grad_zero();
  // backward() of the last forward_loss() into the held gradient.
  void grad_accumulate(const int32_t* tokens, const int32_t* targets, Activations<T>& acts,
                       ActivationGrads<T>& g, T loss_scale);
  double grad_norm();  // L2 norm of the held gradient
  // One AdamW step over every tensor, after scaling the gradient by grad_scale (clipping);
  // weight decay applies where the parameter table says so.
  void adamw_step(const kernels::AdamwParams& p, double weight_decay, T grad_scale);
  void moments(std::vector<T>& m1, std::vector<T>& m2);             // read (checkpoints)
  void set_moments(const std::vector<T>& m1, const std::vector<T>& m2);  // write (resume)

 private:
  Config cfg_;
  ParamTable table_;
  std::vector<T> params_;
  Device device_;
  std::shared_ptr<CudaRunner> cuda_;  // set on a CUDA device
  std::vector<T> grad_, m1_, m2_;     // training state on the CPU
};

}  // namespace mambadna::model
