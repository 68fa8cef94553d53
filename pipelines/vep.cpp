#include "pipelines/vep.h"

#include <htslib/hts.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "io/error.h"
#include "io/h5.h"
#include "io/hts_handles.h"
#include "io/vcf.h"

namespace mambadna::pipelines {

const char* status_name(VepStatus s) {
  switch (s) {
    case VepStatus::ok: return "ok";
    case VepStatus::ref_mismatch: return "ref_mismatch";
    case VepStatus::symbolic: return "symbolic";
    case VepStatus::star: return "star";
    case VepStatus::breakend: return "breakend";
    case VepStatus::missing: return "missing";
    case VepStatus::no_contig: return "no_contig";
    case VepStatus::too_long: return "too_long";
    case VepStatus::invalid: return "invalid";
    case VepStatus::no_change: return "no_change";
    case VepStatus::ambiguous: return "ambiguous";
    case VepStatus::contig_end: return "contig_end";
  }
  return "?";
}

void vep_window(int64_t pos, int64_t contig_len, int64_t window, int64_t& begin, int64_t& end) {
  const int64_t G = window / 4, d = pos - window / 2;
  const int64_t q = d >= 0 ? d / G : -((-d + G - 1) / G);  // floor(d / G)
  begin = std::max<int64_t>(0, q * G);
  end = std::min(contig_len, begin + window);
}

namespace {

// Runs token sequences through the model and sums their scored log-probs.
//  - Trunks: up to B reference windows run side by side from zero states, each call as long as
//    the nearest stopping point of any of them allows, so that every trunk is stopped exactly
//    at each of its branch points (there its state is copied into branches).
//  - Branches: a sequence that starts from a copy of a trunk's state (or from zero) and is only
//    summed; B of them run as the streams of one call, in chunks of L tokens, the shorter ones
//    padded with 'N' (target -1).
class Runner {
 public:
  Runner(model::Mamba<float>& m, int64_t B, int64_t L, std::string model_path)
      : m_(m), model_path_(std::move(model_path)), B_(std::max<int64_t>(1, B)),
        L_(std::max<int64_t>(1, L)), trunk_(m.config(), B_), batch_(m.config(), B_) {}

  int64_t streams() const { return B_; }

  // Runs the trunks xs[i] (at most B), each from a zero state over all its tokens with targets
  // x[t + 1] (-1 past the end). At every position k in stops[i] (sorted, in [0, |x_i|]),
  // at_stop(i, k, prefix) is called with trunk slot i holding the state after x_i[0, k) and
  // prefix the scored sum of its targets so far. totals[i] gets the scored sum of all of x_i.
  void run_trunks(const std::vector<const std::vector<int32_t>*>& xs,
                  const std::vector<std::vector<int64_t>>& stops,
                  const std::function<void(size_t, int64_t, double)>& at_stop,
                  std::vector<double>& totals) {
    const size_t n = xs.size();
    if (int64_t(n) > B_) throw UsageError("vep: more trunks than streams");
    std::vector<int64_t> pos(n, 0);
    std::vector<size_t> next(n, 0);
    totals.assign(n, 0.0);
    trunk_.reset();
    auto fire = [&](size_t i) {
      while (next[i] < stops[i].size() && stops[i][next[i]] == pos[i]) at_stop(i, pos[i], totals[i]), ++next[i];
    };
    for (size_t i = 0; i < n; ++i) fire(i);
    for (;;) {
      int64_t step = L_;
      bool any = false;
      for (size_t i = 0; i < n; ++i) {
        const int64_t len = int64_t(xs[i]->size());
        if (pos[i] >= len) continue;
        any = true;
        const int64_t to = next[i] < stops[i].size() ? std::min(stops[i][next[i]], len) : len;
        step = std::min(step, to - pos[i]);
      }
      if (!any) break;
      const int64_t ns = int64_t(n);
      tokT_.assign(size_t(ns * step), int32_t('N'));
      tgtT_.assign(size_t(ns * step), -1);
      for (size_t i = 0; i < n; ++i) {
        const auto& x = *xs[i];
        const int64_t len = int64_t(x.size());
        for (int64_t t = 0; t < step && pos[i] + t < len; ++t) {
          tokT_[i * size_t(step) + size_t(t)] = x[size_t(pos[i] + t)];
          if (pos[i] + t + 1 < len) tgtT_[i * size_t(step) + size_t(t)] = x[size_t(pos[i] + t + 1)];
        }
      }
      lpT_.resize(size_t(ns * step));
      m_.score(tokT_.data(), tgtT_.data(), ns, step, trunk_, actsT_, lpT_.data());
      for (size_t i = 0; i < n; ++i) {
        if (pos[i] >= int64_t(xs[i]->size())) continue;
        totals[i] += scored_sum(lpT_.data() + i * size_t(step), tgtT_.data() + i * size_t(step), step);
        pos[i] += step;
        fire(i);
      }
    }
  }

  // ---- branches: `seq` runs from trunk slot `trunk` (or from zero when trunk < 0); *out gets
  // base + the sum of its scored log-probs when the batch runs (at the latest in flush()).
  void enqueue(std::vector<int32_t> seq, int64_t trunk, double base, double* out) {
    const int64_t slot = int64_t(pending_.size());
    if (trunk >= 0)
      batch_.copy_stream(slot, trunk_, trunk);
    else
      batch_.reset_stream(slot);
    pending_.push_back({std::move(seq), base, out});
    if (int64_t(pending_.size()) == B_) flush();
  }

  void flush() {
    const int64_t nb = int64_t(pending_.size());
    if (nb == 0) return;
    int64_t longest = 0;
    for (auto& p : pending_) longest = std::max<int64_t>(longest, int64_t(p.seq.size()));
    std::vector<double> sums(size_t(nb), 0.0);
    for (int64_t c = 0; c < longest; c += L_) {
      const int64_t l = std::min(L_, longest - c);
      tok_.assign(size_t(nb * l), int32_t('N'));
      tgt_.assign(size_t(nb * l), -1);
      for (int64_t b = 0; b < nb; ++b) {
        const auto& s = pending_[size_t(b)].seq;
        const int64_t n = int64_t(s.size());
        for (int64_t i = 0; i < l && c + i < n; ++i) {
          tok_[size_t(b * l + i)] = s[size_t(c + i)];
          if (c + i + 1 < n) tgt_[size_t(b * l + i)] = s[size_t(c + i + 1)];
        }
      }
      lp_.resize(size_t(nb * l));
      m_.score(tok_.data(), tgt_.data(), nb, l, batch_, actsB_, lp_.data());
      for (int64_t b = 0; b < nb; ++b) sums[size_t(b)] += scored_sum(lp_.data() + b * l, tgt_.data() + b * l, l);
    }
    for (int64_t b = 0; b < nb; ++b) *pending_[size_t(b)].out = pending_[size_t(b)].base + sums[size_t(b)];
    pending_.clear();
  }

 private:
  // A target's log-prob is finite unless the weights are broken (a training run that diverged):
  // refused, rather than summed into LLRs of 0 or nan.
  double scored_sum(const float* lp, const int32_t* tgt, int64_t l) const {
    double s = 0;
    for (int64_t i = 0; i < l; ++i)
      if (io::is_acgt(tgt[i])) {
        if (!std::isfinite(lp[i]))
          throw InputError((model_path_.empty() ? std::string("the model") : model_path_) +
                           ": gives non-finite log-probabilities: its weights do not make a working "
                           "model (a training run that diverged?)");
        s += double(lp[i]);
      }
    return s;
  }
  struct Pending {
    std::vector<int32_t> seq;
    double base;
    double* out;
  };
  model::Mamba<float>& m_;
  std::string model_path_;  // for messages
  int64_t B_, L_;
  model::State<float> trunk_, batch_;
  model::Activations<float> actsT_, actsB_;
  // (nb, l) each: branch and trunk calls' tokens, targets and log-probs (a trunk stop may run
  // the branches mid-way through a trunk's).
  std::vector<int32_t> tok_, tgt_, tokT_, tgtT_;
  std::vector<float> lp_, lpT_;
  std::vector<Pending> pending_;
};

// One strand of one window: the reference tokens x (length m) and, per ALT, the length b of
// the prefix it shares with x and the tokens that follow (alt window = x[0, b) + tail).
// The ALT window is compared with the reference window's first |alt window| tokens: all of x
// but where a deletion at a contig end has no bases to read on (the ALT window is shorter).
// uneven: the two windows score different numbers of A/C/G/T targets (an N among the bases one
// of them reads and the other does not), so that their LLR would carry a length term.
// same: the two windows give the model nothing to tell apart, so their LLR is 0 whatever the
// model: the ALT window is the reference window's prefix token for token (a deletion of a
// contig's last bases read forward: nothing follows it), or neither has an A/C/G/T target from
// the branch on (a one-base contig: a window's first base is never predicted).
struct Branch {
  int64_t b = 0;
  std::vector<int32_t> tail;
  bool uneven = false;
  bool same = false;
  int64_t length() const { return b + int64_t(tail.size()); }
};
struct Sweep {
  std::vector<int32_t> x;
  std::vector<Branch> br;
  std::vector<double> alt;  // log P(alt window) per branch
  std::vector<double> ref;  // log P(x[0, |alt window|)) per branch
};

// log P(x) and log P(x[0, b_j) + tail_j) for every branch of every sweep, the efficient way:
// the x of up to B sweeps run side by side once, each branch from its trunk's state after
// x[0, k) with k = max(b - 1, 0) (the prediction of the first changed base is made at position
// b - 1, so the branch re-runs that one shared token).
void sweep_efficient(Runner& run, std::vector<Sweep>& sweeps) {
  for (size_t first = 0; first < sweeps.size(); first += size_t(run.streams())) {
    const size_t n = std::min(sweeps.size() - first, size_t(run.streams()));
    std::vector<const std::vector<int32_t>*> xs(n);
    std::vector<std::vector<int64_t>> stops(n);
    std::vector<std::vector<size_t>> order(n);  // branches by branch point
    // (stop, branch) of the shorter ALT windows, by stop: their reference part is the prefix
    // once x[0, length) is read (its targets x[1, length) are scored by then).
    std::vector<std::vector<std::pair<int64_t, size_t>>> shorter(n);
    for (size_t i = 0; i < n; ++i) {
      Sweep& sw = sweeps[first + i];
      xs[i] = &sw.x;
      sw.alt.assign(sw.br.size(), 0.0);
      sw.ref.assign(sw.br.size(), 0.0);
      auto& o = order[i];
      for (size_t j = 0; j < sw.br.size(); ++j) o.push_back(j);
      std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return sw.br[a].b < sw.br[b].b; });
      for (size_t j : o) stops[i].push_back(std::max<int64_t>(sw.br[j].b - 1, 0));
      for (size_t j = 0; j < sw.br.size(); ++j)
        if (sw.br[j].length() < int64_t(sw.x.size()))
          shorter[i].push_back({std::max<int64_t>(sw.br[j].length() - 1, 0), j});
      std::sort(shorter[i].begin(), shorter[i].end());
      for (const auto& sj : shorter[i]) stops[i].push_back(sj.first);
      std::sort(stops[i].begin(), stops[i].end());
      stops[i].erase(std::unique(stops[i].begin(), stops[i].end()), stops[i].end());
    }
    std::vector<size_t> next(n, 0), next_shorter(n, 0);
    std::vector<double> totals;
    run.run_trunks(
        xs, stops,
        [&](size_t i, int64_t k, double prefix) {
          Sweep& sw = sweeps[first + i];
          for (auto& at = next_shorter[i]; at < shorter[i].size() && shorter[i][at].first == k; ++at)
            sw.ref[shorter[i][at].second] = prefix;
          for (; next[i] < order[i].size(); ++next[i]) {
            const size_t j = order[i][next[i]];
            if (std::max<int64_t>(sw.br[j].b - 1, 0) != k) break;
            std::vector<int32_t> seq(sw.x.begin() + k, sw.x.begin() + sw.br[j].b);
            seq.insert(seq.end(), sw.br[j].tail.begin(), sw.br[j].tail.end());
            run.enqueue(std::move(seq), int64_t(i), prefix, &sw.alt[j]);
          }
        },
        totals);
    run.flush();  // the branches read trunk slots: done before the next trunks run
    for (size_t i = 0; i < n; ++i) {
      Sweep& sw = sweeps[first + i];
      std::vector<bool> is_shorter(sw.br.size(), false);
      for (const auto& sj : shorter[i]) is_shorter[sj.second] = true;
      for (size_t j = 0; j < sw.br.size(); ++j)
        if (!is_shorter[j]) sw.ref[j] = totals[i];  // log P(x)
    }
  }
}

// The same by running both whole windows for every branch from a zero state.
void sweep_naive(Runner& run, Sweep& sw) {
  const auto& x = sw.x;
  const auto& br = sw.br;
  sw.alt.assign(br.size(), 0.0);
  sw.ref.assign(br.size(), 0.0);
  for (size_t j = 0; j < br.size(); ++j) {
    std::vector<int32_t> y(x.begin(), x.begin() + br[j].b);
    y.insert(y.end(), br[j].tail.begin(), br[j].tail.end());
    const int64_t n = std::min<int64_t>(br[j].length(), int64_t(x.size()));
    run.enqueue(std::vector<int32_t>(x.begin(), x.begin() + n), -1, 0.0, &sw.ref[j]);
    run.enqueue(std::move(y), -1, 0.0, &sw.alt[j]);
  }
  run.flush();
}

// The sweeps (one per strand) of the window [s, e) of `contig` with its alleles. An ALT
// window has as many bases as the reference window (so that an indel's LLR does not count
// the bases it adds or removes): an insertion's drops the last bases it reads, a deletion's
// reads on past the window's end (the reverse strand: past its start), as far as the contig goes.
void add_sweeps(std::vector<Sweep>& sweeps, const io::FastaIndex& fa, const VepOptions& opt,
                const std::string& contig, int64_t s, int64_t e,
                const std::vector<VepAllele>& alleles) {
  const io::Tokenizer tok(opt.tok);
  const std::string ref = fa.fetch(contig, s, e);
  const int64_t m = int64_t(ref.size());
  int64_t grow = 0;  // the most bases a deletion removes
  for (const auto& a : alleles) grow = std::max(grow, a.ref_len - int64_t(a.alt.size()));
  const int64_t right_end = std::min(fa.length(contig), e + grow), left_begin = std::max<int64_t>(0, s - grow);
  const std::string right = grow > 0 ? fa.fetch(contig, e, right_end) : std::string();
  const std::string left = grow > 0 ? fa.fetch(contig, left_begin, s) : std::string();
  // A reference character that is not an IUPAC code fails the run under --invalid error (the
  // default) and reads as N under --invalid N (skip would move the windows: the app refuses it).
  constexpr const char* kHint = " (use --invalid N to read it as N)";
  auto ref_token = [&](int64_t i, bool rc) {
    const uint8_t byte = uint8_t(ref[size_t(i)]);
    return io::aligned_token(tok, rc ? io::complement_base(byte) : byte, fa.path(), contig, s + i, kHint);
  };
  // VCF alleles are case-blind: ALT base i takes the case of the reference base it stands on
  // (REF base i; the last REF base for the bases an insertion adds), soft-masked or not, as a
  // model that keeps case saw the reference there.
  auto alt_token = [&](char c, bool rc, int64_t pos, bool lower) {
    const uint8_t byte = uint8_t(lower ? std::tolower(uint8_t(c)) : std::toupper(uint8_t(c)));
    return io::aligned_token(tok, rc ? io::complement_base(byte) : byte, "ALT allele", contig, pos);
  };
  for (int strand = 0; strand < (opt.both_strands ? 2 : 1); ++strand) {
    const bool rc = strand == 1;
    std::vector<int32_t> x(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) x[size_t(i)] = rc ? ref_token(m - 1 - i, true) : ref_token(i, false);
    std::vector<Branch> br(alleles.size());
    for (size_t j = 0; j < alleles.size(); ++j) {
      const auto& a = alleles[j];
      const int64_t b = a.pos - s, after = b + a.ref_len;  // window indices of the allele
      if (b < 0 || after > m)
        throw UsageError("vep: allele at " + contig + ":" + std::to_string(a.pos + 1) + " is outside its window");
      Branch& r = br[j];
      // The allele, the window's bases after it and, for a deletion, the bases past the
      // window's reading end; then cut to m bases in all (an insertion reads fewer of the
      // window's own, and at a contig end may lose its own last bases read).
      const int64_t removed = a.ref_len - int64_t(a.alt.size());
      auto lower = [&](size_t i) {  // the case of ALT base i
        return std::islower(uint8_t(ref[size_t(b + std::min<int64_t>(int64_t(i), a.ref_len - 1))])) != 0;
      };
      if (!rc) {
        r.b = b;
        for (size_t i = 0; i < a.alt.size(); ++i) r.tail.push_back(alt_token(a.alt[i], false, a.pos, lower(i)));
        r.tail.insert(r.tail.end(), x.begin() + after, x.end());
        for (int64_t i = 0; i < removed && e + i < right_end; ++i)
          r.tail.push_back(io::aligned_token(tok, uint8_t(right[size_t(i)]), fa.path(), contig, e + i, kHint));
      } else {
        r.b = m - after;  // the reverse strand shares revcomp(ref[after, m))
        for (size_t i = a.alt.size(); i-- > 0;) r.tail.push_back(alt_token(a.alt[i], true, a.pos, lower(i)));
        r.tail.insert(r.tail.end(), x.begin() + (m - b), x.end());
        for (int64_t i = 0; i < removed && s - 1 - i >= left_begin; ++i)
          r.tail.push_back(io::aligned_token(tok, io::complement_base(uint8_t(left[size_t(s - 1 - i - left_begin)])),
                                             fa.path(), contig, s - 1 - i, kHint));
      }
      if (r.b + int64_t(r.tail.size()) > m) r.tail.resize(size_t(m - r.b));
      // Targets scored: x[1, n) against y[1, n), y = x[0, b) + tail, n = |y|; they share
      // x[1, b), so the tail against x[b, n) tells.
      int64_t in_ref = 0, in_alt = 0;
      for (int64_t t = std::max<int64_t>(1, r.b); t < r.length(); ++t) {
        in_ref += io::is_acgt(x[size_t(t)]);
        in_alt += io::is_acgt(r.tail[size_t(t - r.b)]);
      }
      r.uneven = in_ref != in_alt;
      r.same = (in_ref == 0 && in_alt == 0) || std::equal(r.tail.begin(), r.tail.end(), x.begin() + r.b);
    }
    sweeps.push_back(Sweep{std::move(x), std::move(br), {}, {}});
  }
}

// Scores the alleles of several windows: their sweeps run together (the trunks of up to B of
// them side by side), or one by one with opt.naive.
std::vector<std::vector<VepScore>> score_windows(Runner& run, const io::FastaIndex& fa,
                                                 const VepOptions& opt,
                                                 const std::vector<VepWindow>& windows) {
  std::vector<Sweep> sweeps;
  for (const auto& w : windows) add_sweeps(sweeps, fa, opt, w.contig, w.begin, w.end, w.alleles);
  if (opt.naive)
    for (auto& sw : sweeps) sweep_naive(run, sw);
  else
    sweep_efficient(run, sweeps);
  const size_t strands = opt.both_strands ? 2 : 1;
  std::vector<std::vector<VepScore>> out(windows.size());
  for (size_t w = 0; w < windows.size(); ++w) {
    out[w].resize(windows[w].alleles.size());
    for (size_t strand = 0; strand < strands; ++strand) {
      const Sweep& sw = sweeps[w * strands + strand];
      for (size_t j = 0; j < out[w].size(); ++j) {
        (strand == 1 ? out[w][j].llr_rc : out[w][j].llr_fwd) = sw.alt[j] - sw.ref[j];
        out[w][j].uneven = out[w][j].uneven || sw.br[j].uneven;
        out[w][j].blind = out[w][j].blind || sw.br[j].same;
      }
    }
  }
  return out;
}

VepStatus classify_alt(const char* a) {
  const size_t n = std::strlen(a);
  if (n == 0 || std::strcmp(a, ".") == 0) return VepStatus::missing;
  if (std::strcmp(a, "*") == 0) return VepStatus::star;
  if (a[0] == '<') return VepStatus::symbolic;
  if (std::strchr(a, '[') || std::strchr(a, ']') || a[0] == '.' || a[n - 1] == '.') return VepStatus::breakend;
  for (size_t i = 0; i < n; ++i)
    if (!io::is_iupac_base(uint8_t(a[i]))) return VepStatus::invalid;
  return VepStatus::ok;
}

bool acgt_only(const char* a) {
  for (; *a; ++a)
    if (!io::is_acgt(uint8_t(*a))) return false;
  return true;
}

// Whether add_sweeps's ALT window holds the whole allele on every strand scored: not an
// insertion whose allele runs past the window at a contig's end (forward) or start (reverse).
// (A deletion there has fewer bases to read on: its ALT window is compared with as many of the
// reference window's first bases.)
bool alt_window_fits(int64_t p, int64_t ref_len, int64_t alt_len, int64_t s, int64_t e, bool both) {
  const bool fwd = p + alt_len <= e;
  const bool rc = alt_len <= p - s + ref_len;
  return fwd && (!both || rc);
}

bool same_bases(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::toupper(uint8_t(a[i])) != std::toupper(uint8_t(b[i]))) return false;
  return true;
}


using io::BcfRecPtr;

// The HDF5 table, one row per ALT.
class VepTable {
 public:
  explicit VepTable(const VepOptions& opt) : f_(io::H5File::create(opt.h5_output)) {
    f_.set_provenance("mambadna-vep/1", opt.command_line, {opt.input, opt.reference});
    f_.set_attr("/", "model", opt.model_path);
    f_.set_attr("/", "window", opt.window);
    f_.set_attr("/", "strand", std::string(opt.both_strands ? "both" : "fwd"));
    f_.set_attr("/", "case", std::string(io::case_mode_name(opt.tok.case_mode)));
    f_.set_attr("/", "invalid", std::string(io::invalid_mode_name(opt.tok.invalid)));
    auto column = [&](const char* name, io::H5Type t) { return io::H5Appender(f_, name, t, io::Shape{}); };
    c_.emplace(Columns{column("chrom", io::H5Type::string), column("pos", io::H5Type::i64),
                       column("ref", io::H5Type::string), column("alt", io::H5Type::string),
                       column("llr", io::H5Type::f64), column("llr_fwd", io::H5Type::f64),
                       column("llr_rc", io::H5Type::f64), column("status", io::H5Type::string)});
  }
  void add(const std::string& chrom, int64_t pos1, const char* ref, const char* alt, double llr,
           double fwd, double rc, VepStatus st) {
    c_->chrom.append(chrom);
    c_->pos.append(&pos1, 1);
    c_->ref.append(std::string(ref));
    c_->alt.append(std::string(alt));
    c_->llr.append(&llr, 1);
    c_->fwd.append(&fwd, 1);
    c_->rc.append(&rc, 1);
    c_->status.append(std::string(status_name(st)));
  }
  // The datasets are closed first: the file's close, where HDF5 reports what it could not
  // write, happens only once nothing in it is open.
  void finish() {
    c_.reset();
    f_.finish();
  }
  void commit() {
    finish();
    f_.commit();
  }

 private:
  struct Columns {
    io::H5Appender chrom, pos, ref, alt, llr, fwd, rc, status;
  };
  io::H5File f_;
  std::optional<Columns> c_;
};

// A record waiting for its window group to be scored.
struct Held {
  BcfRecPtr rec;
  bool in_region = true;
  std::vector<VepStatus> status;  // per ALT
  std::vector<VepScore> score;    // per ALT
  std::vector<int64_t> job;       // per ALT: index in its window's alleles, or -1
  int64_t window = -1;            // index of its window among the pending ones
};

// A quoted value of a structured header line, as VCF 4.3 writes it: '"' and '\\' escaped by a
// backslash; a line break (which would end the line) as a space.
std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c == '\n' || c == '\r' ? ' ' : c;
  }
  return q + '"';
}

}  // namespace

std::vector<std::vector<VepScore>> vep_score_windows(model::Mamba<float>& m,
                                                     const io::FastaIndex& fa,
                                                     const VepOptions& opt,
                                                     const std::vector<VepWindow>& windows) {
  Runner run(m, opt.streams, opt.chunk, opt.model_path);
  return score_windows(run, fa, opt, windows);
}

namespace {
constexpr size_t kMaxHeld = 100000;  // records held in memory behind pending windows
}  // namespace

VepSummary vep(model::Mamba<float>& m, const VepOptions& opt, const std::function<void(int64_t)>& progress) {
  const int64_t W = opt.window;
  if (W < 8 || W % 4 != 0) throw UsageError("--window " + std::to_string(W) + ": must be a multiple of 4, at least 8");
  const int64_t max_allele = W / 4;
  io::FastaIndex fa(opt.reference);
  // Regions on contigs the FASTA lacks, or past their ends, select nothing (a genome-wide BED
  // against one chromosome): listed for a warning, but an error when no region is left (a
  // misspelt name). The others select the records scored.
  VepSummary sum;
  const std::vector<io::Region> regions = io::regions_present(
      opt.reference, opt.regions, fa.lengths(),
      [&](const std::string&, const std::vector<io::Region>& skipped, io::RegionSkip why) {
        auto& list = why == io::RegionSkip::absent_contig ? sum.regions_skipped : sum.regions_past_end;
        for (const io::Region& r : skipped) list.push_back(io::describe_region(r));
      });
  const io::RegionCover cover(regions);

  io::VcfReader in(opt.input, opt.threads);
  bcf_hdr_t* hdr = in.header();
  const char type = io::vcf_output_type(opt.output, opt.output_type);
  {  // ##contig lengths that differ from the FASTA's: calls made on another assembly?
    int n = 0;
    const char** names = bcf_hdr_seqnames(hdr, &n);
    for (int i = 0; i < n; ++i) {
      bcf_hrec_t* hrec = bcf_hdr_get_hrec(hdr, BCF_HL_CTG, "ID", names[i], nullptr);
      const int k = hrec ? bcf_hrec_find_key(hrec, "length") : -1;
      if (!fa.has(names[i])) continue;
      if (hrec && k < 0) {  // declared without a length (htslib makes such lines from a .tbi/.csi): the FASTA's
        const std::string len = std::to_string(fa.length(names[i]));
        if (bcf_hrec_add_key(hrec, "length", 6) != 0 ||
            bcf_hrec_set_val(hrec, hrec->nkeys - 1, len.c_str(), len.size(), 0) != 0)
          throw Error("cannot add a length to the header's ##contig line for " + std::string(names[i]));
        // htslib's IDX key stays last, as a BCF header writes it. (The header's dictionary, which
        // htslib keeps read-only, still has no length: a reader of the output parses the text.)
        if (const int idx = bcf_hrec_find_key(hrec, "IDX"); idx >= 0 && idx != hrec->nkeys - 1) {
          std::swap(hrec->keys[idx], hrec->keys[hrec->nkeys - 1]);
          std::swap(hrec->vals[idx], hrec->vals[hrec->nkeys - 1]);
        }
        continue;
      }
      if (k < 0) continue;
      const int64_t vcf_len = std::strtoll(hrec->vals[k], nullptr, 10), fa_len = fa.length(names[i]);
      if (vcf_len > 0 && vcf_len != fa_len)
        sum.contig_lengths_differ.push_back(std::string(names[i]) + " (VCF " + std::to_string(vcf_len) +
                                            ", FASTA " + std::to_string(fa_len) + ")");
    }
    std::free(names);
  }
  // A VCF scored before (by another model, say): its MAMBADNA_* fields are dropped from every
  // record before this run's go in, declared or not (a header put back with bcftools reheader
  // no longer declares them), and its INFO lines give way to this run's (whose Type, Number and
  // statuses may differ).
  constexpr const char* kFields[] = {"MAMBADNA_LLR", "MAMBADNA_LLR_FWD", "MAMBADNA_LLR_RC", "MAMBADNA_STATUS"};
  for (const char* key : kFields)
    if (bcf_hdr_get_hrec(hdr, BCF_HL_INFO, "ID", key, nullptr)) bcf_hdr_remove(hdr, BCF_HL_INFO, key);
  auto append = [&](const std::string& line) { io::vcf_header_append(hdr, line); };
  // First (after the input's own lines), every reference contig the header lacks is declared,
  // with its length (as is one declared without, above): BCF needs them before the first record,
  // bcftools index and annotate need them in a VCF too, and Picard's sequence dictionaries their
  // lengths.
  // (A name that a header line cannot hold, with , < > = or a blank, is left out.)
  for (auto& c : fa.contigs())
    if (bcf_hdr_name2id(hdr, c.c_str()) < 0 && c.find_first_of(",<>= \t") == std::string::npos)
      append("##contig=<ID=" + c + ",length=" + std::to_string(fa.length(c)) + ">");
  append("##INFO=<ID=MAMBADNA_LLR,Number=A,Type=Float,Description=\"mambadna log-likelihood ratio "
         "log P(alt window) - log P(ref window), nats (mean of both strands with strand=both)\">");
  append("##INFO=<ID=MAMBADNA_LLR_FWD,Number=A,Type=Float,Description=\"mambadna log-likelihood ratio, forward strand\">");
  if (opt.both_strands)
    append("##INFO=<ID=MAMBADNA_LLR_RC,Number=A,Type=Float,Description=\"mambadna log-likelihood ratio, reverse strand\">");
  append("##INFO=<ID=MAMBADNA_STATUS,Number=A,Type=String,Description=\"mambadna scoring status: ok, ref_mismatch, "
         "symbolic, star, breakend, missing, no_contig, too_long, invalid, no_change, ambiguous or "
         "contig_end\">");
  append("##mambadna=<model=" + quoted(opt.model_path) + ",window=" + std::to_string(W) +
         ",strand=" + (opt.both_strands ? "both" : "fwd") + ",command=" + quoted(opt.command_line) + ">");
  io::VcfWriter out(opt.output, type, hdr, opt.threads, opt.compression_level);

  std::optional<VepTable> table;
  if (!opt.h5_output.empty()) table.emplace(opt);

  Runner run(m, opt.streams, opt.chunk, opt.model_path);
  std::vector<Held> held;
  // Windows waiting to be scored, in input order; their reference sweeps run side by side, so
  // as many are gathered as there are streams for them (one per strand each).
  std::vector<VepWindow> pending;
  const size_t max_pending =
      opt.naive ? 1 : size_t(std::max<int64_t>(1, opt.streams / (opt.both_strands ? 2 : 1)));
  std::string cur_contig;  // contig whose length is cached
  int64_t cur_len = -1;

  auto write_held = [&]() {
    std::vector<std::vector<VepScore>> scores;
    if (!pending.empty()) scores = score_windows(run, fa, opt, pending);
    std::vector<float> llr, fwd, rc;
    for (auto& h : held) {
      bcf1_t* r = h.rec.get();
      const int n_alt = r->n_allele - 1;
      if (h.in_region && n_alt > 0) {
        llr.assign(size_t(n_alt), 0.f);
        fwd.assign(size_t(n_alt), 0.f);
        rc.assign(size_t(n_alt), 0.f);
        std::string st;
        for (int i = 0; i < n_alt; ++i) {
          if (h.job[size_t(i)] >= 0) {  // found out by scoring: not scored after all
            const VepScore& v = scores[size_t(h.window)][size_t(h.job[size_t(i)])];
            if (v.blind || v.uneven) {
              h.job[size_t(i)] = -1;
              h.status[size_t(i)] = v.blind ? VepStatus::contig_end : VepStatus::ambiguous;
              --sum.by_status[size_t(VepStatus::ok)];
              ++sum.by_status[size_t(h.status[size_t(i)])];
            }
          }
          if (h.job[size_t(i)] >= 0) {
            const VepScore& v = scores[size_t(h.window)][size_t(h.job[size_t(i)])];
            fwd[size_t(i)] = float(v.llr_fwd);
            rc[size_t(i)] = float(v.llr_rc);
            llr[size_t(i)] = float(opt.both_strands ? 0.5 * (v.llr_fwd + v.llr_rc) : v.llr_fwd);
            h.score[size_t(i)] = v;
          } else {
            bcf_float_set_missing(llr[size_t(i)]);
            bcf_float_set_missing(fwd[size_t(i)]);
            bcf_float_set_missing(rc[size_t(i)]);
          }
          if (i) st += ',';
          st += status_name(h.status[size_t(i)]);
        }
        if (bcf_update_info_float(hdr, r, "MAMBADNA_LLR", llr.data(), n_alt) < 0 ||
            bcf_update_info_float(hdr, r, "MAMBADNA_LLR_FWD", fwd.data(), n_alt) < 0 ||
            (opt.both_strands && bcf_update_info_float(hdr, r, "MAMBADNA_LLR_RC", rc.data(), n_alt) < 0) ||
            bcf_update_info_string(hdr, r, "MAMBADNA_STATUS", st.c_str()) < 0)
          throw Error(opt.output + ": cannot set the INFO fields");
      }
      if (table && h.in_region) {
        const char* chrom = bcf_seqname(hdr, r);
        const int64_t pos1 = int64_t(r->pos) + 1;
        const char* ref = r->d.allele[0];
        if (n_alt == 0) {
          table->add(chrom, pos1, ref, ".", NAN, NAN, NAN, VepStatus::missing);
        } else {
          for (int i = 0; i < n_alt; ++i) {
            const bool scored = h.job[size_t(i)] >= 0;
            const VepScore& v = h.score[size_t(i)];
            const double l = !scored ? NAN : opt.both_strands ? 0.5 * (v.llr_fwd + v.llr_rc) : v.llr_fwd;
            table->add(chrom, pos1, ref, r->d.allele[i + 1], l, scored ? v.llr_fwd : NAN,
                       scored && opt.both_strands ? v.llr_rc : NAN, h.status[size_t(i)]);
          }
        }
      }
      out.write(r);
    }
    held.clear();
    pending.clear();
  };

  io::BcfRecPtr rec(bcf_init());
  while (in.next(rec.get())) {
    ++sum.records;
    bool had_scores = false;
    for (const char* key : kFields)  // an earlier run's scores (htslib declares an undeclared one as it reads it)
      if (bcf_get_info(hdr, rec.get(), key)) {
        had_scores = true;
        if (bcf_update_info(hdr, rec.get(), key, nullptr, 0,
                            bcf_hdr_id2type(hdr, BCF_HL_INFO, bcf_hdr_id2int(hdr, BCF_DT_ID, key))) < 0)
          throw Error(opt.input + ": cannot drop " + key + " from record " + std::to_string(sum.records));
      }
    const std::string contig = bcf_seqname(hdr, rec.get());
    const int64_t p = rec->pos;
    const std::string where = contig + ":" + std::to_string(p + 1);

    Held h;
    h.in_region = opt.regions.empty() || io::regions_select(cover, contig, rec.get(), opt.regions_overlap);
    const int n_alt = rec->n_allele - 1;
    h.status.assign(size_t(std::max(n_alt, 0)), VepStatus::ok);
    h.score.assign(h.status.size(), VepScore{});
    h.job.assign(h.status.size(), -1);
    if (!h.in_region) {
      ++sum.out_of_region;
      sum.scores_dropped += had_scores;
    } else if (n_alt == 0) {
      ++sum.alts;
      ++sum.by_status[size_t(VepStatus::missing)];
    } else {
      const bool has = contig == cur_contig || fa.has(contig);
      if (!has && sum.first_missing_contig.empty()) sum.first_missing_contig = contig;
      if (!has && opt.missing_contig_error)
        throw InputError(opt.input + ": record " + std::to_string(sum.records) + " (" + where + "): contig '" +
                         contig + "' is not in " + opt.reference);
      if (has && contig != cur_contig) {
        cur_contig = contig;
        cur_len = fa.length(contig);
      }
      const char* ref = rec->d.allele[0];
      const int64_t lr = int64_t(std::strlen(ref));
      const bool ref_valid = classify_alt(ref) == VepStatus::ok;  // IUPAC bases (not ".", "<...>", ...)
      const bool ref_ok = has && p >= 0 && same_bases(fa.fetch(contig, p, p + lr), ref);
      if (has && p + lr > cur_len && sum.records_past_end++ == 0) sum.first_past_end = where;
      int64_t s = -1, e = -1;
      if (has && p >= 0) vep_window(p, cur_len, W, s, e);
      for (int i = 0; i < n_alt; ++i) {
        const char* a = rec->d.allele[i + 1];
        VepStatus st = has ? classify_alt(a) : VepStatus::no_contig;
        if (st == VepStatus::ok && p < 0) st = VepStatus::contig_end;  // POS 0: a telomere
        if (st == VepStatus::ok && (lr > max_allele || int64_t(std::strlen(a)) > max_allele)) st = VepStatus::too_long;
        if (st == VepStatus::ok && !ref_valid) st = VepStatus::invalid;
        if (st == VepStatus::ok && !ref_ok) st = VepStatus::ref_mismatch;
        if (st == VepStatus::ok && same_bases(std::string(ref), a)) st = VepStatus::no_change;
        if (st == VepStatus::ok && !(acgt_only(ref) && acgt_only(a))) st = VepStatus::ambiguous;
        if (st == VepStatus::ok &&
            !alt_window_fits(p, lr, int64_t(std::strlen(a)), s, e, opt.both_strands))
          st = VepStatus::contig_end;
        h.status[size_t(i)] = st;
        ++sum.alts;
        ++sum.by_status[size_t(st)];
        if (st != VepStatus::ok) continue;
        if (pending.empty() || contig != pending.back().contig || s != pending.back().begin) {
          if (pending.size() == max_pending) write_held();
          pending.push_back(VepWindow{contig, s, e, {}});
        }
        h.window = int64_t(pending.size()) - 1;
        h.job[size_t(i)] = int64_t(pending.back().alleles.size());
        pending.back().alleles.push_back(VepAllele{p, lr, a});
      }
    }
    h.rec.reset(bcf_dup(rec.get()));
    if (!h.rec) throw Error("out of memory copying a VCF record");
    bcf_unpack(h.rec.get(), BCF_UN_STR);  // a copy starts packed
    held.push_back(std::move(h));
    // Nothing waits for a window: write it now. Records held behind a pending window are
    // bounded too (a small -r on a whole-genome VCF): past the cap, the pending windows are
    // scored early, with the same scores.
    if (pending.empty() || held.size() >= kMaxHeld) write_held();
    if (progress) progress(sum.records);
  }
  write_held();

  // Both complete before either is put in place: a failure (a full disk) leaves neither. The
  // table first: to a device (not a regular file) it is copied there at its commit, which can
  // fail, where the VCF's writes to one have all been made by its finish().
  out.finish();
  if (table) table->finish();
  if (table) table->commit();
  out.commit();
  return sum;
}

}  // namespace mambadna::pipelines
