// bfloat16 storage: the upper half of an IEEE-754 float (sign, 8-bit exponent, 7 stored
// significand bits). The CUDA backend keeps the activations that feed its matrix products, and a
// copy of the weights, in bf16 under --precision bf16 (fp32 master weights, states and sums);
// this is the host's view of that storage: a 16-bit value, converted by rounding to nearest even.
#pragma once
#include <cstdint>
#include <cstring>

namespace mambadna::kernels {

struct bf16 {
  uint16_t bits;
};

// Round to nearest, ties to even; infinities stay infinite, a NaN becomes the canonical NaN
// 0x7FFF (as the GPU's conversion does).
inline bf16 to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return bf16{0x7FFF};
  u += 0x7FFFu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}

inline float from_bf16(bf16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace mambadna::kernels
