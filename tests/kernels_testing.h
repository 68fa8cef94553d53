// Utilities for the kernel tests: random tensors, NaN poisoning, normalised errors and central
// finite differences.
#pragma once
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace mambadna::kernels::testing {

using Vd = std::vector<double>;
using Vf = std::vector<float>;

inline Vd random_vec(std::mt19937& rng, size_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Vd v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The values rounded to float, and back to double, so that every backend sees the same inputs.
inline Vd float_exact(Vd v) {
  for (auto& x : v) x = double(float(x));
  return v;
}

template <typename T>
std::vector<T> cast(const Vd& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T>
Vd to_d(const std::vector<T>& v) {
  return Vd(v.begin(), v.end());
}

template <typename T>
std::vector<T> poisoned(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

// max |a − ref| / max(1, max |ref|) over the elements where `active(i)` (all when empty);
// infinity when a compared element of `a` is not finite (an unwritten, NaN-poisoned output).
template <typename A>
double norm_err(const std::vector<A>& a, const Vd& ref,
                const std::function<bool(size_t)>& active = {}) {
  double num = 0, den = 1;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (active && !active(i)) continue;
    if (!std::isfinite(double(a[i]))) return std::numeric_limits<double>::infinity();
    num = std::max(num, std::fabs(double(a[i]) - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  return num / den;
}

// Elements outside the first `width` columns of rows with stride `ld` must keep their value.
template <typename A>
bool padding_untouched(const std::vector<A>& a, const std::vector<A>& before, size_t ld,
                       size_t width) {
  for (size_t i = 0; i < a.size(); ++i)
    if (i % ld >= width &&
        !(a[i] == before[i] || (std::isnan(double(a[i])) && std::isnan(double(before[i])))))
      return false;
  return true;
}

// Central finite differences of J with respect to each (active) element of x, compared with the
// analytic gradient: returns max |fd − grad| / max(1, max |grad|).
inline double fd_check(Vd& x, const Vd& grad, const std::function<double()>& J, double h = 1e-6,
                       const std::function<bool(size_t)>& active = {}) {
  Vd fd(x.size(), 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    if (active && !active(i)) continue;
    const double x0 = x[i];
    x[i] = x0 + h;
    const double jp = J();
    x[i] = x0 - h;
    const double jm = J();
    x[i] = x0;
    fd[i] = (jp - jm) / (2 * h);
  }
  return norm_err(fd, grad, active);
}

inline double dot(const Vd& a, const Vd& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline constexpr double kFloatEps = 1.1920929e-7;

}  // namespace mambadna::kernels::testing
