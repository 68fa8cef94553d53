// GPU figures for docs/BENCHMARKS.md, side by side in one run on one device:
//   copy     device-to-device copy bandwidth (the ceiling the scan is measured against)
//   scan     selective scan forward and backward at B 8, L 4096, E 1536, N 16, activations in
//            fp32 and in bf16: bytes that each must read and write once, per second, and the
//            fraction of the copy bandwidth; the forward in both layouts (time-parallel and
//            channel-serial) and the one taken by default, also at B 32, for one record of
//            32,768 and, forward only, at B 12-48 (where one layout overtakes the other)
//   gemm     matrix-product rates: fp32, tf32 and bf16 compute on fp32 operands, and bf16
//            operands (as --precision bf16 runs them), the rate MFU is quoted against
//   train    training steps of the 130M shape (D 768, 24 layers) at B x L tokens: tokens/s, MFU,
//            in fp32 and in the given precision (bf16: also with the backward's weight-gradient
//            products overlapped on the side stream)
//   score    scoring throughput of the small and 130M shapes, bases/s (32 streams, also with each
//            forward scan layout forced, and one)
//
//   step     two training steps (a warm-up and one more) at the given precision, nothing else:
//            for a profiler
//   bench_cuda [all|copy|scan|gemm|train|score|step|smoke] [device=0] [precision=bf16] [B=8] [L=4096]
// (B and L: the training step's shape; scoring runs 32 streams of L). `smoke` runs every part
// once at toy sizes (the tiny model): a check that the program works, whose figures mean nothing
// (the emulated test suite runs it).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/device.h"
#include "model/checkpoint.h"
#include "model/mamba.h"

#ifdef MAMBADNA_HAVE_CUDA
#include "kernels/bf16.h"
#include "kernels/matmul.h"
#include "kernels/selective_scan.h"
#endif

using namespace mambadna;
using clk = std::chrono::steady_clock;
namespace kc = kernels::cuda;

namespace {

bool g_smoke = false;     // toy sizes, one call each
bool g_one_call = false;  // one call after the warm-up (the step mode)
const char* g_scan_label = "";  // score: the forward scan's layout when forced (a label)

double seconds_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

// Runs f repeatedly for about `budget` seconds after one warm-up; seconds per call.
template <typename F>
double time_per_call(F&& f, double budget = 1.0) {
  if (g_smoke || g_one_call) budget = 0;
  f();
  kc::synchronize();
  int reps = 0;
  const auto t0 = clk::now();
  do {
    f();
    ++reps;
    kc::synchronize();
  } while (seconds_since(t0) < budget);
  return seconds_since(t0) / reps;
}

// Matrix-product FLOPs per token of a forward pass (as bench/bench_score.cpp counts them).
double model_flops(const model::Config& c) {
  const double D = double(c.d_model), E = double(c.d_inner()), N = double(c.d_state),
               R = double(c.rank()), V = double(c.vocab_padded());
  return 2.0 * (double(c.n_layer) * (D * 2 * E + E * (R + 2 * N) + R * E + E * D) + D * V);
}

std::vector<int32_t> random_bases(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  const char acgt[4] = {'A', 'C', 'G', 'T'};
  std::vector<int32_t> t(n);
  for (auto& x : t) x = acgt[rng() & 3];
  return t;
}

#ifdef MAMBADNA_HAVE_CUDA

double copy_bandwidth() {
  const size_t n = size_t(1) << (g_smoke ? 12 : 28);  // 1 GiB of floats
  kc::Buffer<float> a(n), b(n);
  a.zero();
  const double s = time_per_call([&] { kc::copy_on_device(b.data(), a.data(), n * 4); });
  const double gbs = 2.0 * double(n) * 4 / s / 1e9;
  std::printf("copy\tdevice-to-device %.0f MiB\t%.1f GB/s (read + write)\n",
              double(n) * 4 / (1 << 20), gbs);
  return gbs;
}

// The scan at B streams of L steps, E 1536, N 16, with its activations (u, delta, z, Bm, Cm,
// out and their gradients) stored as T: float, or bf16 as --precision bf16 runs it.
// Each forward in both layouts for N <= 16 (kernels/selective_scan.h): time-parallel, then
// channel-serial; the backward (time-parallel either way) unless forward_only.
template <typename T>
void scan(double copy_gbs, int64_t B, int64_t L, bool forward_only = false) {
  if (g_smoke) B = B > 1 ? 2 : 1, L = B > 1 ? 64 : 256;
  const int64_t E = g_smoke ? 40 : 1536, N = 16;
  const size_t BLE = size_t(B * L * E), BLN = size_t(B * L * N), BEN = size_t(B * E * N);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1, 1);
  auto values = [&](size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (auto& x : v) x = lo + (hi - lo) * (U(rng) + 1) / 2;
    return v;
  };
  auto act = [&](size_t n, float lo, float hi) {  // an activation, stored as T
    const std::vector<float> v = values(n, lo, hi);
    if constexpr (std::is_same_v<T, float>) {
      return kc::Buffer<float>(v);
    } else {
      std::vector<kernels::bf16> h(n);
      for (size_t i = 0; i < n; ++i) h[i] = kernels::to_bf16(v[i]);
      return kc::Buffer<kernels::bf16>(h);
    }
  };
  auto f32 = [&](size_t n, float lo, float hi) { return kc::Buffer<float>(values(n, lo, hi)); };
  auto u = act(BLE, -1, 1), delta = act(BLE, -4, 0), z = act(BLE, -2, 2), Bm = act(BLN, -1, 1),
       Cm = act(BLN, -1, 1), dout = act(BLE, -1, 1);
  auto A = f32(size_t(E * N), -8, -0.5), D = f32(size_t(E), -1, 1), bias = f32(size_t(E), -1, 0),
       h0 = f32(BEN, -1, 1), dhl = f32(BEN, -1, 1);
  const size_t EN = static_cast<size_t>(E * N), E1 = static_cast<size_t>(E);
  kc::Buffer<T> out(BLE), du(BLE), dd(BLE), dz(BLE);
  kc::Buffer<float> hl(BEN), dB(BLN), dC(BLN), dA(EN), dD(E1), db(E1), dh0(BEN);
  const kernels::SelectiveScanParams p{B, L, E, N, N, E, true};
  kc::Buffer<float> chunks(static_cast<size_t>(kc::selective_scan_chunk_states(p)));
  auto forward = [&](float* keep) {
    kc::selective_scan_forward(out.data(), hl.data(), u.data(), delta.data(), A.data(), Bm.data(),
                               Cm.data(), D.data(), z.data(), bias.data(), h0.data(), p, keep);
  };
  double tf[2], tfc[2];  // by layout
  for (const auto layout : {kc::ScanForwardLayout::time_parallel, kc::ScanForwardLayout::channel_serial}) {
    const int l = layout == kc::ScanForwardLayout::channel_serial;
    kc::set_selective_scan_forward_layout(layout);
    tf[l] = time_per_call([&] { forward(nullptr); });
    tfc[l] = time_per_call([&] { forward(chunks.data()); });
  }
  kc::set_selective_scan_forward_layout(kc::ScanForwardLayout::automatic);
  const bool serial = kc::forward_layout_for(p, kc::multiprocessor_count()) == kc::ScanForwardLayout::channel_serial;
  auto backward = [&](const float* from_chunks) {
    kc::selective_scan_backward(du.data(), dd.data(), dA.data(), dB.data(), dC.data(), dD.data(),
                                dz.data(), db.data(), dh0.data(), dout.data(), dhl.data(), u.data(),
                                delta.data(), A.data(), Bm.data(), Cm.data(), D.data(), z.data(),
                                bias.data(), h0.data(), p, from_chunks);
  };
  const double tb = forward_only ? 0 : time_per_call([&] { backward(nullptr); });
  const double tbc = forward_only ? 0 : time_per_call([&] { backward(chunks.data()); });
  // Bytes each must move once: forward reads u, delta, z, Bm, Cm (T), h0 and writes out (T),
  // h_last; backward reads u, delta, z, dout, Bm, Cm (T), h0, dh_last and writes du, ddelta, dz
  // (T), dBm, dCm, dh0 (fp32). The chunk-boundary states are extra traffic, not counted.
  const double t = double(sizeof(T));
  const double fwd_bytes = t * (4 * BLE + 2 * BLN) + 4.0 * 2 * BEN;
  const double bwd_bytes = t * (7 * BLE + 2 * BLN) + 4.0 * (2 * BLN + 3 * BEN);
  const char* type = std::is_same_v<T, float> ? "fp32" : "bf16";
  auto line = [&](const char* what, double secs, double bytes) {
    std::printf("scan\t%s, %s activations B%lld L%lld E%lld N%lld\t%.3f ms\t%.1f GB/s\t%.0f%% of copy\n",
                what, type, (long long)B, (long long)L, (long long)E, (long long)N, secs * 1e3,
                bytes / secs / 1e9, 100 * bytes / secs / 1e9 / copy_gbs);
  };
  line("forward", tf[0], fwd_bytes);
  line("forward, keeping chunk states", tfc[0], fwd_bytes);
  line("forward, channel-serial", tf[1], fwd_bytes);
  line("forward, channel-serial, keeping chunk states", tfc[1], fwd_bytes);
  std::printf("scan\tforward layout taken by default at B%lld: %s\n", (long long)B,
              serial ? "channel-serial" : "time-parallel");
  if (forward_only) return;
  line("backward, recomputing chunk states", tb, bwd_bytes);
  line("backward, from kept chunk states", tbc, bwd_bytes);
}

// The rate of our matmul_forward at one precision (fp32 storage), TFLOP/s.
double gemm_rate(kc::MatmulPrecision prec, int64_t n) {
  kc::set_matmul_precision(prec);
  kc::Buffer<float> a(size_t(n * n)), w(size_t(n * n)), o(size_t(n * n));
  a.zero(), w.zero();
  const kernels::MatmulParams p{n, n, n, n, n};
  const double s = time_per_call([&] { kc::matmul_forward(o.data(), a.data(), w.data(), nullptr, p); });
  return 2.0 * double(n) * double(n) * double(n) / s / 1e12;
}

// Our matmul_forward on bf16 operands into bf16 (tensor cores, fp32 accumulation): the
// device's bf16 product rate, the one MFU is quoted against.
double gemm_bf16_operands(int64_t n) {
  kc::Buffer<kernels::bf16> a(size_t(n * n)), w(size_t(n * n)), o(size_t(n * n));
  a.zero(), w.zero();
  const kernels::MatmulParams p{n, n, n, n, n};
  const double s = time_per_call([&] { kc::matmul_forward(o.data(), a.data(), w.data(), nullptr, p); });
  return 2.0 * double(n) * double(n) * double(n) / s / 1e12;
}

double gemm() {
  const int64_t n = g_smoke ? 64 : 8192;
  const double f32 = gemm_rate(kc::MatmulPrecision::fp32, n);
  const double t32 = gemm_rate(kc::MatmulPrecision::tf32, n);
  const double b16 = gemm_rate(kc::MatmulPrecision::bf16, n);
  const double pure = gemm_bf16_operands(n);
  std::printf("gemm\t%lld^3 fp32\t%.1f TFLOP/s\n", (long long)n, f32);
  std::printf("gemm\t%lld^3 tf32 compute, fp32 operands\t%.1f TFLOP/s\n", (long long)n, t32);
  std::printf("gemm\t%lld^3 bf16 compute, fp32 operands\t%.1f TFLOP/s\n", (long long)n, b16);
  std::printf("gemm\t%lld^3 bf16 operands (--precision bf16)\t%.1f TFLOP/s\n", (long long)n, pure);
  kc::set_matmul_precision(kc::MatmulPrecision::fp32);
  return pure;
}

model::Mamba<float> fresh(const std::string& preset, int device) {
  const model::Config c = model::preset(preset);
  const auto table = model::ParamTable::build(c);
  model::Mamba<float> m(c, model::init_params(c, table, 1));
  m.to_device(model::Device{true, device});
  return m;
}

void train(int device, kc::MatmulPrecision prec, double bf16_rate, int64_t B, int64_t L) {
  kc::set_matmul_precision(prec);
  auto m = fresh(g_smoke ? "tiny" : "130m", device);
  const auto& c = m.config();
  model::State<float> st(c, B);
  model::Activations<float> acts;
  acts.keep = true;
  model::ActivationGrads<float> g;
  const auto tok = random_bases(size_t(B * L), 7);
  std::vector<int32_t> tgt(tok.begin() + 1, tok.end());
  tgt.push_back(-1);
  kernels::AdamwParams ap;
  ap.lr = 1e-4, ap.beta1 = 0.9, ap.beta2 = 0.95;
  int64_t step = 0;
  const double s = time_per_call(
      [&] {
        m.grad_zero();
        int64_t count = 0;
        m.forward_loss(tok.data(), tgt.data(), B, L, st, acts, &count);
        m.grad_accumulate(tok.data(), tgt.data(), acts, g, 1.0f / float(count));
        (void)m.grad_norm();
        ap.step = ++step;
        m.adamw_step(ap, 0.1, 1.0f);
      },
      5.0);
  const double tps = double(B * L) / s;
  const double mfu = bf16_rate > 0 ? 3 * model_flops(c) * tps / (bf16_rate * 1e12) : 0;
  std::printf("train\t%s B%lld L%lld %s%s\t%.0f tokens/s\t%.3f s/step\tMFU %.1f%% of bf16 %.0f TFLOP/s\n",
              g_smoke ? "tiny" : "130m", (long long)B, (long long)L,
              prec == kc::MatmulPrecision::bf16 ? "bf16" : "fp32",
              kc::side_stream_overlap() ? ", weight gradients on the side stream" : "", tps, s,
              100 * mfu, bf16_rate);
}

// Scoring B streams of L bases. With `reads`, as `mambadna score` runs a BAM of short reads:
// every stream starts a new record each pass. Reads::through_host takes the state through the
// host after every pass (a host view drops the device copy, so the next pass uploads it
// again): what every pass did before the State kept its values on the device.
enum class Reads { no, state_on_device, through_host };
void score(int device, kc::MatmulPrecision prec, const std::string& preset, int64_t B, int64_t L,
           Reads reads = Reads::no) {
  kc::set_matmul_precision(prec);
  auto m = fresh(preset, device);
  model::State<float> st(m.config(), B);
  model::Activations<float> acts;
  const auto tok = random_bases(size_t(B * L), 9);
  std::vector<int32_t> tgt(tok.begin() + 1, tok.end());
  tgt.push_back(-1);
  std::vector<float> lp(size_t(B * L));
  const double s = time_per_call(
      [&] {
        if (reads != Reads::no)
          for (int64_t b = 0; b < B; ++b) st.reset_stream(b);
        m.score(tok.data(), tgt.data(), B, L, st, acts, lp.data());
        if (reads == Reads::through_host) (void)st.conv_data(), (void)st.ssm_data();
      },
      3.0);
  const char* what = reads == Reads::no             ? ""
                     : reads == Reads::through_host ? " reads, state through the host"
                                                    : " reads, state on the device";
  std::printf("score\t%s B%lld L%lld %s%s%s\t%.0f bases/s\n", preset.c_str(), (long long)B,
              (long long)L, prec == kc::MatmulPrecision::bf16 ? "bf16" : "fp32", what,
              g_scan_label, double(B * L) / s);
}

#endif

}  // namespace

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "all";
  const int device = argc > 2 ? std::atoi(argv[2]) : 0;
  const auto prec = kc::parse_matmul_precision(argc > 3 ? argv[3] : "bf16");
  g_smoke = what == "smoke";
  if (g_smoke) what = "all";
  const int64_t B = argc > 4 ? std::atoll(argv[4]) : g_smoke ? 2 : 8;
  const int64_t L = argc > 5 ? std::atoll(argv[5]) : g_smoke ? 64 : 4096;
  if (!kc::built() || kc::device_count() == 0) {
    std::printf("bench_cuda: skipped: %s\n",
                kc::built() ? "no CUDA device on this machine" : "built without CUDA");
    return 0;
  }
#ifdef MAMBADNA_HAVE_CUDA
  try {
    kc::set_device(device);
    std::printf("device\t%s\n", kc::device_name(device).c_str());
    const auto on = [&](const char* s) { return what == "all" || what == s; };
    double copy_gbs = 0, bf16 = 0;
    if (on("copy") || on("scan")) copy_gbs = copy_bandwidth();
    if (on("scan")) {
      scan<float>(copy_gbs, 8, 4096), scan<kernels::bf16>(copy_gbs, 8, 4096);
      // One record (B 1): both directions split time into segments to fill the device (the
      // channel-serial forward runs unsegmented: B·E threads alone).
      scan<float>(copy_gbs, 1, 32768);
      // Scoring's 32 streams: four times the grid.
      scan<float>(copy_gbs, 32, 4096, true), scan<kernels::bf16>(copy_gbs, 32, 4096, true);
      // Where one forward layout overtakes the other (forward_layout_for's threshold).
      if (!g_smoke)
        for (const int64_t B : {12, 16, 20, 24, 48}) scan<float>(copy_gbs, B, 4096, true);
    }
    if (on("gemm") || on("train")) bf16 = gemm();
    if (on("train")) {
      train(device, kc::MatmulPrecision::fp32, bf16, B, L);
      if (prec != kc::MatmulPrecision::fp32) train(device, prec, bf16, B, L);
      if (prec == kc::MatmulPrecision::bf16) {  // the backward's overlap, measured beside
        kc::set_side_stream_overlap(true);
        train(device, prec, bf16, B, L);
        kc::set_side_stream_overlap(false);
      }
    }
    if (what == "step") {
      g_one_call = true;
      train(device, prec, 0, B, L);
    }
    if (on("score")) {
      const char* small = g_smoke ? "tiny" : "small";
      const char* large = g_smoke ? "tiny" : "130m";
      const int64_t streams = g_smoke ? 2 : 32;
      for (const char* preset : {small, large}) score(device, prec, preset, streams, L);
      // The same with each forward scan layout forced, beside (the lines above: automatic).
      for (const auto& [layout, label] : {std::pair{kc::ScanForwardLayout::time_parallel, ", time-parallel scan"},
                                          std::pair{kc::ScanForwardLayout::channel_serial, ", channel-serial scan"}}) {
        kc::set_selective_scan_forward_layout(layout);
        g_scan_label = label;
        for (const char* preset : {small, large}) score(device, prec, preset, streams, L);
      }
      kc::set_selective_scan_forward_layout(kc::ScanForwardLayout::automatic);
      g_scan_label = "";
      if (prec != kc::MatmulPrecision::fp32) score(device, kc::MatmulPrecision::fp32, large, streams, L);
      // One long record, as `mambadna score` runs a chromosome: one stream, the scan's
      // parallelism is only E·4 threads.
      for (const char* preset : {small, large}) score(device, prec, preset, 1, 16 * L);
      for (Reads r : {Reads::state_on_device, Reads::through_host})
        score(device, prec, small, g_smoke ? 4 : 512, 40, r);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
#endif
  return 0;
}
