#include "model/device.h"

#include <cctype>

#include "io/error.h"

namespace mambadna::model {

Device parse_device(const std::string& text) {
  const auto bad = [&]() {
    return UsageError("--device: '" + text + "' is not cpu, cuda or cuda:N");
  };
  if (text == "cpu") return Device{};
  if (text == "cuda") return Device{true, 0};
  if (text.rfind("cuda:", 0) != 0 || text.size() == 5 || text.size() > 9) throw bad();
  for (size_t i = 5; i < text.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) throw bad();
  return Device{true, std::stoi(text.substr(5))};
}

}  // namespace mambadna::model
