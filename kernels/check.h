// Argument checks shared by every kernel backend: each failure throws mambadna::UsageError with a
// message that names the function and the argument, e.g. "rmsnorm_forward: D (0) must be > 0".
#pragma once
#include <cstdint>
#include <string>

#include "io/error.h"

namespace mambadna::kernels::check {

[[noreturn]] inline void fail(const char* fn, const std::string& what) {
  throw UsageError(std::string(fn) + ": " + what);
}

inline void positive(const char* fn, const char* name, int64_t v) {
  if (v <= 0) fail(fn, std::string(name) + " (" + std::to_string(v) + ") must be > 0");
}

// A row stride `ld` must cover the row width `width`.
inline void stride(const char* fn, const char* ld_name, int64_t ld, const char* width_name,
                   int64_t width) {
  if (ld < width)
    fail(fn, std::string(ld_name) + " (" + std::to_string(ld) + ") < " + width_name + " (" +
                 std::to_string(width) + ")");
}

// An argument past a backend's limit (a grid dimension, an offset's width): "name (v) > limit".
inline void at_most(const char* fn, const char* name, int64_t v, int64_t limit,
                    const std::string& limit_name) {
  if (v > limit) fail(fn, std::string(name) + " (" + std::to_string(v) + ") > " + limit_name);
}
inline void at_most(const char* fn, const char* name, int64_t v, int64_t limit) {
  at_most(fn, name, v, limit, std::to_string(limit));
}

inline void not_null(const char* fn, const char* name, const void* p) {
  if (p == nullptr) fail(fn, std::string(name) + " is null");
}

}  // namespace mambadna::kernels::check
