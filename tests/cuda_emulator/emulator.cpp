// The CUDA emulator's runtime: device memory, launches, and the fiber scheduler that runs the
// threads of a block (see cuda_runtime.h for what is emulated and what is not).
#include <cuda_runtime.h>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ctx = boost::context;

namespace cuda_emulator {

thread_local ThreadState current;

namespace {

// ---- the device ----------------------------------------------------------------------------
constexpr int kMultiprocessors = 2;  // small, so that launch-shape choices see both sides
constexpr size_t kTotalMemory = size_t(8) << 30;
// Shared memory per block: 48 KB without opting in; the opt-in limit of the smallest target
// (sm_80: 163 KB; sm_90 allows 227 KB).
constexpr size_t kSharedPerBlock = 48 * 1024, kSharedOptIn = 163 * 1024;
constexpr int kMaxThreads = 1024;
#ifdef __SANITIZE_ADDRESS__
constexpr size_t kGuard = 0;  // AddressSanitizer's own red zones catch reads and writes past the end
#else
constexpr size_t kGuard = 256;  // bytes after each allocation, checked for writes past the end
#endif
constexpr unsigned char kGuardByte = 0xA5;

struct Device {
  std::mutex mu;
  std::map<const unsigned char*, size_t> allocations;  // start -> size
  std::map<const void*, int> max_dynamic_shared;       // per kernel, from cudaFuncSetAttribute
  size_t used = 0;
  cudaError_t last = cudaSuccess;  // for cudaGetLastError
  int launches = 0;
  int64_t default_submitted = 0;  // work submitted to the default stream
  std::vector<cudaStream_t> streams;  // the created ones
};
// Never destroyed: buffers held by other statics are freed after it would have been.
Device& device() {
  static Device* d = new Device;
  return *d;
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) device().last = e;
  return e;
}

[[noreturn]] void fatal(const std::string& what) {
  std::fprintf(stderr, "cuda emulator: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A write past the end of an allocation is a bug the GPU would report (or silently corrupt).
void check_guards_locked(Device& d) {
  for (const auto& [p, n] : d.allocations)
    for (size_t i = 0; i < kGuard; ++i)
      if (p[n + i] != kGuardByte)
        fatal("write past the end of a device allocation of " + std::to_string(n) + " bytes (at +" +
              std::to_string(i) + ")");
}

// Device or host pointer: copies must stay inside an allocation when they name device memory.
void check_range(Device& d, const void* p, size_t bytes, const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  auto it = d.allocations.upper_bound(c);
  if (it == d.allocations.begin()) return;  // host memory
  --it;
  if (c >= it->first + it->second + kGuard) return;  // past this allocation: host memory
  if (c + bytes > it->first + it->second)
    fatal(std::string(what) + ": " + std::to_string(bytes) + " bytes at offset " +
          std::to_string(c - it->first) + " run past a device allocation of " +
          std::to_string(it->second) + " bytes");
}

// ---- the block scheduler -------------------------------------------------------------------
enum class Wait { none, barrier, shuffle, done };

struct Lane {
  ctx::fiber fiber;  // the thread (empty once finished)
  ctx::fiber sink;   // the scheduler, to return to at a rendezvous
  Wait wait = Wait::none;
  uint3 idx{0, 0, 0};
  unsigned mask = 0;
  int src = 0, width = 32;
  const char* file = nullptr;  // the call site of the shuffle or barrier it waits at
  unsigned line = 0;
  uint64_t value = 0, result = 0;
};

struct Block {
  std::vector<Lane> lanes;
  Lane* running = nullptr;
};
thread_local Block* g_block = nullptr;

void yield(Wait w) {
  Lane& l = *g_block->running;
  l.wait = w;
  l.sink = std::move(l.sink).resume();
}

// Resolves the rendezvous of one warp when every lane of its masks has arrived. Returns true
// when it released lanes.
bool release_warp(Block& blk, size_t first, size_t count, const std::string& where) {
  bool any = false;
  for (size_t i = first; i < first + count; ++i) any |= blk.lanes[i].wait == Wait::shuffle;
  if (!any) return false;
  // Every lane at a shuffle must be at the same call site with the same mask and width as the
  // first, and every lane the mask names must be there.
  const Lane* ref = nullptr;
  for (size_t i = first; i < first + count; ++i) {
    const Lane& l = blk.lanes[i];
    if (l.wait != Wait::shuffle) continue;
    if (!ref) {
      ref = &l;
      continue;
    }
    if (l.line != ref->line || (l.file != ref->file && std::strcmp(l.file, ref->file) != 0) ||
        l.mask != ref->mask || l.width != ref->width)
      fatal(where + ": lanes " + std::to_string(ref - &blk.lanes[first]) + " and " +
            std::to_string(i - first) + " meet at different shuffles (" + ref->file + ":" +
            std::to_string(ref->line) + " and " + l.file + ":" + std::to_string(l.line) +
            ") or with different masks or widths");
  }
  for (size_t j = 0; j < 32; ++j) {
    if (!(ref->mask >> j & 1u)) continue;
    if (j >= count) fatal(where + ": shuffle mask names lane " + std::to_string(j) + " past the block's last thread");
    const Wait wj = blk.lanes[first + j].wait;
    if (wj == Wait::done)
      fatal(where + ": a shuffle names lane " + std::to_string(j) + ", which has exited (" +
            ref->file + ":" + std::to_string(ref->line) + ")");
    if (wj != Wait::shuffle) return false;  // at a barrier: reported as a deadlock
  }
  for (size_t i = first; i < first + count; ++i) {
    const Lane& l = blk.lanes[i];
    if (l.wait != Wait::shuffle) continue;
    if (!(l.mask >> (i - first) & 1u))
      fatal(where + ": lane " + std::to_string(i - first) + " shuffles with a mask that excludes itself");
    if (l.src < 0 || size_t(l.src) >= count || !(l.mask >> l.src & 1u))
      fatal(where + ": lane " + std::to_string(i - first) + " reads lane " + std::to_string(l.src) +
            ", outside the shuffle's mask (" + l.file + ":" + std::to_string(l.line) + ")");
  }
  for (size_t i = first; i < first + count; ++i) {
    Lane& l = blk.lanes[i];
    if (l.wait == Wait::shuffle) l.result = blk.lanes[first + size_t(l.src)].value;
  }
  for (size_t i = first; i < first + count; ++i)
    if (blk.lanes[i].wait == Wait::shuffle) blk.lanes[i].wait = Wait::none;
  return true;
}

void run_block(Block& blk, const std::function<void()>& thread, bool reverse,
               const std::string& where) {
  static ctx::pooled_fixedsize_stack stacks(256 * 1024);
  const size_t n = blk.lanes.size();
  for (size_t i = 0; i < n; ++i) {
    Lane& l = blk.lanes[i];
    l.wait = Wait::none;
    l.fiber = ctx::fiber(std::allocator_arg, stacks, [&l, &thread](ctx::fiber&& sink) {
      l.sink = std::move(sink);
      thread();
      l.wait = Wait::done;
      return std::move(l.sink);
    });
  }
  // Each warp runs as far ahead as it can (to a __syncthreads or its end) before the next one
  // starts: the most skew between warps that the GPU allows, so a missing barrier between a
  // write to shared memory and another warp's read of it changes the result. Lanes run in
  // lockstep from shuffle to shuffle, in forward or reverse order.
  const size_t warps = (n + 31) / 32;
  for (;;) {
    for (size_t kw = 0; kw < warps; ++kw) {
      const size_t w = reverse ? warps - 1 - kw : kw, first = w * 32;
      const size_t count = std::min<size_t>(32, n - first);
      do {
        for (size_t k = 0; k < count; ++k) {
          Lane& l = blk.lanes[first + (reverse ? count - 1 - k : k)];
          if (l.wait != Wait::none) continue;
          current.thread_idx = l.idx;
          blk.running = &l;
          l.fiber = std::move(l.fiber).resume();
          blk.running = nullptr;
        }
      } while (release_warp(blk, first, count, where));
    }
    size_t done = 0, at_barrier = 0;
    for (const Lane& l : blk.lanes) {
      done += l.wait == Wait::done;
      at_barrier += l.wait == Wait::barrier;
    }
    if (done == n) return;
    if (at_barrier + done == n) {  // exited threads no longer take part in barriers
      const Lane* ref = nullptr;
      for (Lane& l : blk.lanes) {
        if (l.wait != Wait::barrier) continue;
        if (!ref) ref = &l;
        if (l.line != ref->line || (l.file != ref->file && std::strcmp(l.file, ref->file) != 0))
          fatal(where + ": threads wait at different __syncthreads (" + ref->file + ":" +
                std::to_string(ref->line) + " and " + l.file + ":" + std::to_string(l.line) + ")");
        l.wait = Wait::none;
      }
      continue;
    }
    // Nothing can move: threads wait at different rendezvous.
    std::string state;
    for (size_t i = 0; i < n && state.size() < 600; i += 32) {
      state += " warp " + std::to_string(i / 32) + ":";
      for (size_t j = i; j < std::min(n, i + 32); ++j)
        state += blk.lanes[j].wait == Wait::barrier ? 'B' : blk.lanes[j].wait == Wait::shuffle ? 'S' : 'X';
    }
    fatal(where + ": threads wait at different rendezvous (B __syncthreads, S shuffle, X exited):" +
          state);
  }
}

}  // namespace

void syncthreads(const char* file, unsigned line) {
  if (!g_block) fatal("__syncthreads outside a kernel");
  Lane& l = *g_block->running;
  l.file = file;
  l.line = line;
  yield(Wait::barrier);
}

uint64_t shuffle(unsigned mask, uint64_t value, int src_lane, int width, const char* file,
                 unsigned line) {
  if (!g_block) fatal("warp shuffle outside a kernel");
  if (width <= 0 || width > 32 || (width & (width - 1))) fatal("shuffle width " + std::to_string(width));
  Lane& l = *g_block->running;
  l.mask = mask;
  l.value = value;
  l.src = src_lane;
  l.width = width;
  l.file = file;
  l.line = line;
  yield(Wait::shuffle);
  return l.result;
}

void check_kernel_pointer(const void* p, int index) {
  if (!p) return;
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  const auto* c = static_cast<const unsigned char*>(p);
  auto it = d.allocations.upper_bound(c);
  if (it != d.allocations.begin()) {
    --it;
    if (c <= it->first + it->second) return;  // inside, or one past the end of an allocation
  }
  fatal("kernel launch " + std::to_string(d.launches) + ": argument " + std::to_string(index) +
        " is not device memory (a host pointer?)");
}

cudaError_t set_max_dynamic_shared(const void* fn, int bytes) {
  if (bytes < 0 || size_t(bytes) > kSharedOptIn) return record(cudaErrorInvalidValue);
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.max_dynamic_shared[fn] = bytes;
  return cudaSuccess;
}

void run_grid(const void* fn, dim3 grid, dim3 block, size_t shared_bytes,
              const std::function<void()>& thread) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  const size_t threads = size_t(block.x) * block.y * block.z;
  size_t limit = kSharedPerBlock;
  if (auto it = d.max_dynamic_shared.find(fn); it != d.max_dynamic_shared.end()) limit = size_t(it->second);
  if (threads == 0 || threads > size_t(kMaxThreads) || block.z > 64 || grid.x == 0 ||
      grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || shared_bytes > limit) {
    d.last = cudaErrorInvalidConfiguration;
    return;
  }
  const std::string where = "kernel launch " + std::to_string(d.launches) + " (grid " +
                            std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" +
                            std::to_string(grid.z) + ", block " + std::to_string(block.x) + "x" +
                            std::to_string(block.y) + "x" + std::to_string(block.z) + ")";
  const int launch = d.launches++;
  // The block's dynamic shared memory, with a guard zone after it.
  const size_t shared_floats = (shared_bytes + sizeof(float) - 1) / sizeof(float);
  std::vector<float> shared(shared_floats + kGuard / sizeof(float));
  Block blk;
  blk.lanes.resize(threads);
  for (unsigned z = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x)
        blk.lanes[(size_t(z) * block.y + y) * block.x + x].idx = uint3{x, y, z};
  ThreadState saved = current;
  g_block = &blk;
  current.block_dim = block;
  current.grid_dim = grid;
  current.dynamic_shared = reinterpret_cast<unsigned char*>(shared.data());
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        current.block_idx = uint3{x, y, z};
        // Every other block runs its warps and lanes in reverse: a race shows as a difference.
        const bool reverse = (launch + x + y + z) % 2 == 1;
        // Each block's dynamic shared memory starts as garbage, as on the GPU.
        std::fill(shared.begin(), shared.begin() + shared_floats,
                  std::numeric_limits<float>::quiet_NaN());
        if (kGuard) std::memset(shared.data() + shared_floats, kGuardByte, kGuard);
        run_block(blk, thread, reverse, where);
        const auto* guard = reinterpret_cast<const unsigned char*>(shared.data() + shared_floats);
        for (size_t i = 0; i < kGuard; ++i)
          if (guard[i] != kGuardByte)
            fatal(where + ": write past the end of " + std::to_string(shared_bytes) +
                  " bytes of dynamic shared memory (at +" + std::to_string(i) + ")");
      }
  g_block = nullptr;
  current = saved;
  check_guards_locked(d);
}

}  // namespace cuda_emulator

// A created stream: its deferred work, and how much of the default stream's it has waited for.
struct CUstream_st {
  std::deque<std::function<void()>> pending;
  int64_t submitted = 0, done = 0;
  int64_t default_seen = 0;
};
// An event: the stream it was recorded in (null: the default one) and that stream's position.
struct CUevent_st {
  cudaStream_t stream = nullptr;
  int64_t position = 0;
};

namespace cuda_emulator {

namespace {
// Runs a created stream's work up to `position` (called without the device lock: the work
// launches kernels, which take it).
void run_until(cudaStream_t s, int64_t position) {
  while (s->done < position) {
    auto job = std::move(s->pending.front());
    s->pending.pop_front();
    ++s->done;
    job();
  }
}
void run_all() {
  for (cudaStream_t s : device().streams) run_until(s, s->submitted);
}
}  // namespace

void submit(cudaStream_t stream, std::function<void()> job) {
  Device& d = device();
  if (!stream) {
    ++d.default_submitted;
    job();
    return;
  }
  if (stream->default_seen < d.default_submitted)
    fatal("work submitted to a created stream without waiting for the default stream's latest "
          "work (" + std::to_string(d.default_submitted - stream->default_seen) +
          " submissions unwaited for): record an event there and cudaStreamWaitEvent on it");
  stream->pending.push_back(std::move(job));
  ++stream->submitted;
}

}  // namespace cuda_emulator

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!(flags & cudaStreamNonBlocking)) return cuda_emulator::record(cudaErrorInvalidValue);  // only these
  *stream = new CUstream_st;  // a non-blocking stream waits for nothing until told to
  cuda_emulator::device().streams.push_back(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return cuda_emulator::record(cudaErrorInvalidValue);
  cuda_emulator::run_until(stream, stream->submitted);
  auto& v = cuda_emulator::device().streams;
  v.erase(std::remove(v.begin(), v.end(), stream), v.end());
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream) cuda_emulator::run_until(stream, stream->submitted);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return cuda_emulator::record(cudaErrorInvalidValue);
  event->stream = stream;
  event->position = stream ? stream->submitted : cuda_emulator::device().default_submitted;
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (!event) return cuda_emulator::record(cudaErrorInvalidValue);
  if (!event->stream) {  // the default stream's work is done already: note what was waited for
    if (stream) stream->default_seen = std::max(stream->default_seen, event->position);
  } else {  // a created stream's work up to the event runs now
    cuda_emulator::run_until(event->stream, event->position);
    if (stream) stream->default_seen = std::max(stream->default_seen, event->stream->default_seen);
  }
  return cudaSuccess;
}

using cuda_emulator::device;
using cuda_emulator::record;

// ---- the runtime API -----------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
  if (dev != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CUDA emulator (CPU)");
  prop->totalGlobalMem = cuda_emulator::kTotalMemory;
  prop->sharedMemPerBlock = cuda_emulator::kSharedPerBlock;
  prop->maxThreadsPerBlock = cuda_emulator::kMaxThreads;
  prop->multiProcessorCount = cuda_emulator::kMultiprocessors;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  if (dev != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = cuda_emulator::kMultiprocessors; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = cuda_emulator::kMaxThreads; return cudaSuccess;
  }
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.used + bytes > cuda_emulator::kTotalMemory) return record(cudaErrorMemoryAllocation);
  void* raw = nullptr;
  if (posix_memalign(&raw, 256, std::max<size_t>(bytes + cuda_emulator::kGuard, 1)) != 0)
    return record(cudaErrorMemoryAllocation);
  auto* m = static_cast<unsigned char*>(raw);
  std::memset(m, 0xFF, bytes);  // NaN as float: uninitialised device memory is garbage
  if (cuda_emulator::kGuard) std::memset(m + bytes, cuda_emulator::kGuardByte, cuda_emulator::kGuard);
  d.allocations[m] = bytes;
  d.used += bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  cuda_emulator::run_all();  // cudaFree waits for the device
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocations.find(static_cast<unsigned char*>(p));
  if (it == d.allocations.end()) return record(cudaErrorInvalidValue);
  cuda_emulator::check_guards_locked(d);
  d.used -= it->second;
  d.allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  auto& d = device();
  ++d.default_submitted;  // the default stream's (created streams are not waited for)
  std::lock_guard<std::mutex> lock(d.mu);
  cuda_emulator::check_range(d, dst, bytes, "cudaMemcpy destination");
  cuda_emulator::check_range(d, src, bytes, "cudaMemcpy source");
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  auto& d = device();
  ++d.default_submitted;
  std::lock_guard<std::mutex> lock(d.mu);
  cuda_emulator::check_range(d, dst, bytes, "cudaMemset");
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}
// Rows of `width` bytes, `height` of them, each a pitch apart; every row is checked.
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind) {
  auto& d = device();
  ++d.default_submitted;
  std::lock_guard<std::mutex> lock(d.mu);
  if (width > dpitch || width > spitch) return cuda_emulator::record(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    auto* to = static_cast<unsigned char*>(dst) + r * dpitch;
    const auto* from = static_cast<const unsigned char*>(src) + r * spitch;
    cuda_emulator::check_range(d, to, width, "cudaMemcpy2D destination");
    cuda_emulator::check_range(d, from, width, "cudaMemcpy2D source");
    if (width) std::memmove(to, from, width);
  }
  return cudaSuccess;
}
cudaError_t cudaMemset2D(void* dst, size_t pitch, int value, size_t width, size_t height) {
  auto& d = device();
  ++d.default_submitted;
  std::lock_guard<std::mutex> lock(d.mu);
  if (width > pitch) return cuda_emulator::record(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    auto* to = static_cast<unsigned char*>(dst) + r * pitch;
    cuda_emulator::check_range(d, to, width, "cudaMemset2D");
    if (width) std::memset(to, value, width);
  }
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  *total_bytes = cuda_emulator::kTotalMemory;
  *free_bytes = cuda_emulator::kTotalMemory - d.used;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  cuda_emulator::run_all();
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  cuda_emulator::check_guards_locked(d);
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  const cudaError_t e = d.last;
  d.last = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
