// The golden tiny checkpoint (shared/golden) as the tests use it.
#pragma once
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/mamba.h"

namespace mambadna::test {

inline const std::string kGolden = std::string(MAMBADNA_SHARED_DIR) + "/golden/";

template <typename T = float>
model::Mamba<T> golden_model() {
  auto ck = model::load_checkpoint(kGolden + "tiny.h5");
  return model::Mamba<T>(ck.config, std::vector<T>(ck.params.begin(), ck.params.end()));
}

}  // namespace mambadna::test
