// The passes of Mamba<float> on a CUDA device (kernels/cuda/): what `--device cuda` runs.
//
// Parameters, the gradient, AdamW's moments and the activations of a pass live in device
// memory, planned from one table like model/mamba.cpp's Activations. The carried State stays
// on the device between passes (model/mamba.h's State keeps a device copy: model/device_state.h),
// so passes move no state across the bus unless the host reads or writes it; pipelines branch,
// reset and checkpoint states the same way on both devices.
// Outputs come back to the host: log-probs and entropies (score), the final hidden states and
// taps (forward), the loss (training).
//
// The sequence of kernels mirrors Mamba<T>::forward and ::backward, except that a training pass
// keeps u, delta and the norm outputs of every layer instead of recomputing them in the backward
// (device memory is spent to save traffic). Under --precision bf16 the activations that feed
// the products are stored in bf16 (see cuda_runner.cpp's Acts). The tests
// compare the two on the golden model (tests/test_model_golden.cpp) and in training
// (tests/test_pipelines_train.cpp). Device buffers grow to the largest pass seen and are reused.
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/adamw.h"
#include "model/config.h"
#include "model/params.h"

namespace mambadna::model {

template <typename T>
struct State;
template <typename T>
struct Activations;

class CudaRunner {
 public:
  // Selects device `device` and copies the parameters (laid out by `table`) there.
  CudaRunner(const Config& config, const ParamTable& table, const float* params, int device);
  ~CudaRunner();
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  void push_params(const float* host);  // host -> device
  void pull_params(float* host);        // device -> host

  // As Mamba<float>::forward: leaves a.hidden (M, D) and a.tapped on the host.
  void forward(const int32_t* tokens, int64_t B, int64_t L, State<float>& st, Activations<float>& a);
  // As Mamba<float>::score.
  void score(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
             State<float>& st, Activations<float>& a, float* logprob, float* entropy);
  // As Mamba<float>::forward_loss (activations kept on the device for backward).
  double forward_loss(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t L,
                      State<float>& st, Activations<float>& a, int64_t* count);
  // Backward of the last forward_loss (its tokens and targets, still on the device) into the
  // device gradient (+=), for the loss sum · scale.
  void backward(float loss_scale);
  // The same into host memory (host += gradient), leaving the device gradient as it was.
  void backward_to_host(float loss_scale, float* host);

  void grad_zero();
  void grad_add_to(float* host);  // host += the device gradient
  double grad_norm();
  // AdamW over every tensor (weight decay where the table says so), after gradient · grad_scale.
  void adamw_step(const kernels::AdamwParams& p, double weight_decay, float grad_scale);
  bool has_moments() const;
  void moments(float* m1, float* m2);
  void set_moments(const float* m1, const float* m2);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mambadna::model
