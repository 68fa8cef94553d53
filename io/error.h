// Errors thrown by the library (io/, model/, kernels/, pipelines/). Only app/ catches them and
// turns them into a message and an exit status.
#pragma once
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace mambadna {

// Base of every error the library throws on purpose.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The input (a sequence, region, VCF or checkpoint file) is malformed or does not fit the request.
struct InputError : Error {
  using Error::Error;
};

// The caller asked for something inconsistent (bad option value, shape mismatch in an API call).
struct UsageError : Error {
  using Error::Error;
};

// "file: record 'name': position 123: what" with the parts that are known.
inline std::string where(const std::string& file, const std::string& record = {}, int64_t pos = -1) {
  std::string s = file;
  if (!record.empty() || pos >= 0) s += ": record '" + record + "'";
  if (pos >= 0) s += ": position " + std::to_string(pos + 1);
  return s;
}

// A number for a message, as the user would write it: %g (-1, 0.5, 2e-03, 1e+300, inf, nan).
inline std::string number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace mambadna
