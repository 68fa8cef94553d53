// Checkpoints: one HDF5 file whose datasets are mamba_ssm's state_dict (same keys, same shapes,
// float32) and whose root attributes are the config, so weights move both ways with PyTorch
// (h5py: {k: torch.from_numpy(f[k][:]) for k in f}).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "io/h5.h"
#include "model/config.h"
#include "model/params.h"

namespace mambadna::model {

inline constexpr const char* kCheckpointFormat = "mamba_ssm-state_dict-h5/1";

struct Checkpoint {
  Config config;
  ParamTable table;
  std::vector<float> params;  // flat, laid out by `table`
};

// Reads a checkpoint. Errors name the file, the dataset and, for a wrong shape, both shapes.
// Accepts the Hugging Face key "backbone.embeddings.weight", an lm_head.weight equal to the
// embedding and a training checkpoint's train/ group; refuses any other object at the root.
Checkpoint load_checkpoint(const std::string& path);
// The config from the root attributes, from mamba_ssm_config (JSON) where they are absent, or
// from both, which must agree; errors name the file and the attribute or JSON key.
Config read_config(const io::H5File& f);

// Writes a checkpoint atomically (temporary name, then rename). `extra` may add groups (the
// trainer's optimiser state) before the file is committed; `inputs` (the training data) go to
// the root attribute `inputs`.
void save_checkpoint(const std::string& path, const Config& config, const ParamTable& table,
                     const float* params, const std::string& command_line,
                     const std::function<void(io::H5File&)>& extra = {},
                     const std::vector<std::string>& inputs = {});

// The config as mamba_ssm's MambaConfig (2.x) in JSON, which a checkpoint keeps as its root
// attribute `mamba_ssm_config`: MambaLMHeadModel(MambaConfig(**json.loads(text))) builds the
// model its state_dict loads into (MixerModel's norm_epsilon, not a MambaConfig field, is 1e-5
// there; the attribute `norm_epsilon` says ours).
std::string mamba_ssm_config_json(const Config& config);

// A freshly initialised model as mamba_ssm initialises one, from a seed.
std::vector<float> init_params(const Config& config, const ParamTable& table, uint64_t seed);

}  // namespace mambadna::model
