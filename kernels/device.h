// The CUDA device seen from the host: which devices there are, device memory, copies, a scratch
// workspace and the precision of matrix products. The kernels in kernels/cuda/ take device
// pointers and run in order on one stream (the legacy default stream) of the current device.
//
// This header compiles in every build. Without the CUDA backend, built() is false,
// device_count() is 0, and every call that needs a device throws UsageError saying so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mambadna::kernels::cuda {

bool built();         // compiled with the CUDA backend
int device_count();   // usable devices; 0 without the backend, a driver or a device
void set_device(int index);  // throws UsageError naming the index and the device count
int current_device();
std::string device_name(int index);
int compute_capability(int index);  // major · 10 + minor: 80 for an A100, 90 for an H100
int multiprocessor_count();          // of the current device

void* device_alloc(size_t bytes);  // throws Error with the size and the device's free memory
void device_free(void* p) noexcept;
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes);
void fill_bytes(void* dst, int value, size_t bytes);  // cudaMemset
// `rows` rows of `width` bytes, each a pitch apart (cudaMemcpy2D, cudaMemset2D): one stream's
// slice of a (layers, B, ...) state, say. copy_2d copies in whichever direction the pointers say.
void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
             size_t rows);
void fill_bytes_2d(void* dst, size_t pitch, int value, size_t width, size_t rows);
void synchronize();  // waits for every kernel; throws the first asynchronous error

// Two streams per device: the main one (the legacy default stream, where everything runs
// unless told otherwise) and a side stream (non-blocking) for work that may overlap with the
// main stream's, such as the weight-gradient products of a backward. set_stream chooses where
// later kernels and products of this host thread go. The side stream's work is ordered after
// the main stream's by side_waits_for_main (everything submitted there so far), and the main
// stream's later work after the side stream's by main_waits_for_side. synchronize() waits for
// both. Host copies wait for the main stream only.
enum class Stream { main, side };
void set_stream(Stream s);
Stream current_stream_kind();
void side_waits_for_main();
void main_waits_for_side();
// Whether the model overlaps its backward's weight-gradient products with the rest of the
// backward on the side stream (off by default until measured on a GPU; bench_cuda compares).
void set_side_stream_overlap(bool on);
bool side_stream_overlap();

// Scratch memory for kernels that need it (the scan's backward keeps chunk-boundary states
// there). Grows on demand; valid until the next call. One host thread drives the device.
void* workspace(size_t bytes);

// Precision of the model on the device (model/cuda_runner.cpp): fp32 (exact fp32 products: the
// tests), tf32 (fp32 storage, tensor-core products rounding their inputs to tf32) or bf16 (the
// activations that feed the products, their gradients and a copy of the weights stored in bf16;
// fp32 accumulation, fp32 master weights, states, residual stream and parameter gradients).
// For the kernels, it sets the compute type of products on fp32 operands (bf16: inputs rounded
// inside cuBLAS); products on bf16 operands are bf16 whatever it says.
enum class MatmulPrecision { fp32, tf32, bf16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
MatmulPrecision parse_matmul_precision(const std::string& name);  // "fp32" | "tf32" | "bf16"

// An owned device array of n elements of T.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) : n_(n), p_(n ? static_cast<T*>(device_alloc(n * sizeof(T))) : nullptr) {}
  explicit Buffer(const std::vector<T>& host) : Buffer(host.size()) { upload(host); }
  ~Buffer() { device_free(p_); }
  Buffer(Buffer&& o) noexcept : n_(std::exchange(o.n_, 0)), p_(std::exchange(o.p_, nullptr)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      device_free(p_);
      n_ = std::exchange(o.n_, 0);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  // Reallocates (contents lost) when the size changes.
  void resize(size_t n) {
    if (n != n_) *this = Buffer(n);
  }
  void upload(const T* host, size_t n, size_t offset = 0) {
    if (n) copy_to_device(p_ + offset, host, n * sizeof(T));
  }
  void upload(const std::vector<T>& host) {
    resize(host.size());
    upload(host.data(), host.size());
  }
  void download(T* host, size_t n, size_t offset = 0) const {
    if (n) copy_to_host(host, p_ + offset, n * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    download(h.data(), n_);
    return h;
  }
  void zero() {
    if (n_) fill_bytes(p_, 0, n_ * sizeof(T));
  }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace mambadna::kernels::cuda
