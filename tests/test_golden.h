// The golden tiny checkpoint (shared/golden) as the tests use it.
#pragma once
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/mamba.h"
#include "tests/test_paths.h"

namespace mambadna::test {

inline const std::string kGolden = mambadna::test::shared_dir() + "/golden/";

template <typename T = float>
model::Mamba<T> golden_model() {
  auto ck = model::load_checkpoint(kGolden + "tiny.h5");
  return model::Mamba<T>(ck.config, std::vector<T>(ck.params.begin(), ck.params.end()));
}

}  // namespace mambadna::test
