// Variant scoring, the one-sweep method against the naive one (both whole windows per ALT and
// strand), for a preset shape (small by default: D 256, 8 layers; random weights, seed 1), on
//   (a) the first N records of a VCF (their ALTs made of A/C/G/T with a matching REF), and
//   (b) in-silico mutagenesis: the 3 SNVs at each of ism_positions (64) consecutive positions of the reference.
//
//   bench_vep REF.fa[.gz] VARIANTS.vcf[.gz] [records=100] [window=8192] [threads=2] [strand=both]
//       [ism_contig=20] [ism_start=1000000]
//
// Prints seconds per variant, variants/s and the largest |LLR difference| between the methods.
#include <htslib/vcf.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/fasta_index.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "model/mamba.h"
#include "pipelines/vep.h"

using namespace mambadna;
using clk = std::chrono::steady_clock;

namespace {

struct Site {
  std::string contig;
  pipelines::VepAllele allele;
};

// Scores the sites grouped by window; returns LLRs (mean of the strands with both) in site order.
std::vector<double> score_all(model::Mamba<float>& m, const io::FastaIndex& fa, const pipelines::VepOptions& opt,
                              const std::vector<Site>& sites) {
  std::map<std::pair<std::string, int64_t>, std::vector<size_t>> groups;
  std::map<std::pair<std::string, int64_t>, int64_t> ends;
  for (size_t i = 0; i < sites.size(); ++i) {
    int64_t s = 0, e = 0;
    pipelines::vep_window(sites[i].allele.pos, fa.length(sites[i].contig), opt.window, s, e);
    groups[{sites[i].contig, s}].push_back(i);
    ends[{sites[i].contig, s}] = e;
  }
  // Windows in order, scored as vep() scores them: as many at a time as their reference sweeps
  // have streams (one per strand each).
  std::vector<double> llr(sites.size());
  std::vector<pipelines::VepWindow> batch;
  std::vector<const std::vector<size_t>*> batch_idx;
  const size_t per_batch = size_t(std::max<int64_t>(1, opt.streams / (opt.both_strands ? 2 : 1)));
  auto run = [&]() {
    auto sc = pipelines::vep_score_windows(m, fa, opt, batch);
    for (size_t w = 0; w < batch.size(); ++w)
      for (size_t j = 0; j < batch_idx[w]->size(); ++j)
        llr[(*batch_idx[w])[j]] =
            opt.both_strands ? 0.5 * (sc[w][j].llr_fwd + sc[w][j].llr_rc) : sc[w][j].llr_fwd;
    batch.clear();
    batch_idx.clear();
  };
  for (auto& [key, idx] : groups) {
    std::vector<pipelines::VepAllele> alleles;
    for (size_t i : idx) alleles.push_back(sites[i].allele);
    batch.push_back({key.first, key.second, ends[key], alleles});
    batch_idx.push_back(&idx);
    if (batch.size() == per_batch) run();
  }
  if (!batch.empty()) run();
  return llr;
}

void compare(const char* name, model::Mamba<float>& m, const io::FastaIndex& fa, pipelines::VepOptions opt,
             const std::vector<Site>& sites) {
  std::map<std::string, int64_t> windows;
  for (auto& s : sites) {
    int64_t b = 0, e = 0;
    pipelines::vep_window(s.allele.pos, fa.length(s.contig), opt.window, b, e);
    windows[s.contig + ":" + std::to_string(b)] = 1;
  }
  double t[2];
  std::vector<double> llr[2];
  for (int naive = 1; naive >= 0; --naive) {
    opt.naive = naive == 1;
    const auto t0 = clk::now();
    llr[naive] = score_all(m, fa, opt, sites);
    t[naive] = std::chrono::duration<double>(clk::now() - t0).count();
  }
  double worst = 0;
  for (size_t i = 0; i < sites.size(); ++i) worst = std::max(worst, std::fabs(llr[0][i] - llr[1][i]));
  const double n = double(sites.size());
  for (int naive = 0; naive < 2; ++naive)
    std::printf("%-12s %-10s %8zu %8zu %12.4f %12.2f %10.1f\n", name, naive ? "naive" : "one-sweep", sites.size(),
                windows.size(), t[naive] / n, n / t[naive], naive ? 1.0 : t[1] / t[0]);
  std::printf("%-12s max |LLR one-sweep - naive| = %.3g nats\n", name, worst);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s REF.fa[.gz] VARIANTS.vcf[.gz] [records=100] [window=8192] [threads=2] [strand=both] "
                 "[ism_contig=20] [ism_start=1000000] [shape=small] [ism_positions=64]\n",
                 argv[0]);
    return 1;
  }
  const int64_t records = argc > 3 ? std::atoll(argv[3]) : 100;
  const int64_t W = argc > 4 ? std::atoll(argv[4]) : 8192;
  const int threads = argc > 5 ? std::atoi(argv[5]) : 2;
  const bool both = argc > 6 ? std::strcmp(argv[6], "fwd") != 0 : true;
  const std::string ism_contig = argc > 7 ? argv[7] : "20";
  const int64_t ism_start = argc > 8 ? std::atoll(argv[8]) : 1000000;
  const std::string shape = argc > 9 ? argv[9] : "small";
  const int64_t ism_n = argc > 10 ? std::atoll(argv[10]) : 64;
  kernels::CpuThreads pool(threads);
  io::FastaIndex fa(argv[1]);

  model::Config cfg = model::preset(shape);
  auto table = model::ParamTable::build(cfg);
  model::Mamba<float> m(cfg, model::init_params(cfg, table, 1));
  pipelines::VepOptions opt;
  opt.window = W;
  opt.both_strands = both;
  opt.tok.case_mode = cfg.tokenizer_case == "keep" ? io::CaseMode::keep : io::CaseMode::upper;

  // (a) the first `records` records of the VCF; ALTs of A/C/G/T whose REF matches.
  std::vector<Site> vcf_sites;
  int64_t skipped = 0;
  {
    htsFile* fp = hts_open(argv[2], "r");
    bcf_hdr_t* hdr = fp ? bcf_hdr_read(fp) : nullptr;
    if (!hdr) {
      std::fprintf(stderr, "%s: cannot read\n", argv[2]);
      return 1;
    }
    bcf1_t* rec = bcf_init();
    for (int64_t n = 0; n < records && bcf_read(fp, hdr, rec) == 0; ++n) {
      bcf_unpack(rec, BCF_UN_STR);
      const std::string contig = bcf_seqname(hdr, rec), ref = rec->d.allele[0];
      std::string fetched = fa.has(contig) ? fa.fetch(contig, rec->pos, rec->pos + int64_t(ref.size())) : "";
      for (auto& c : fetched) c = char(std::toupper(c));
      for (int i = 1; i < rec->n_allele; ++i) {
        const std::string a = rec->d.allele[i];
        const bool acgt = !a.empty() && a.find_first_not_of("ACGT") == std::string::npos;
        if (!acgt || fetched != ref || int64_t(std::max(a.size(), ref.size())) > W / 4) {
          ++skipped;
          continue;
        }
        vcf_sites.push_back({contig, {rec->pos, int64_t(ref.size()), a}});
      }
    }
    bcf_destroy(rec);
    bcf_hdr_destroy(hdr);
    hts_close(fp);
  }

  // (b) all 3 SNVs at 64 consecutive positions.
  std::vector<Site> ism;
  const std::string bases = fa.fetch(ism_contig, ism_start, ism_start + ism_n);
  for (int64_t i = 0; i < int64_t(bases.size()); ++i)
    for (char b : std::string("ACGT"))
      if (b != std::toupper(bases[size_t(i)])) ism.push_back({ism_contig, {ism_start + i, 1, std::string(1, b)}});

  std::printf("# bench_vep: %s shape (D %lld, %lld layers, seed 1), W %lld, strand %s, %d threads, float32\n",
              shape.c_str(), (long long)cfg.d_model, (long long)cfg.n_layer, (long long)W, both ? "both" : "fwd", threads);
  std::printf("# (a) %s: first %lld records, %zu ALTs scored (%lld skipped); (b) %s:%lld-%lld, 3 SNVs per base\n",
              argv[2], (long long)records, vcf_sites.size(), (long long)skipped, ism_contig.c_str(),
              (long long)ism_start + 1, (long long)ism_start + ism_n);
  std::printf("%-12s %-10s %8s %8s %12s %12s %10s\n", "set", "method", "variants", "windows", "s/variant",
              "variants/s", "speedup");
  compare("(a) vcf", m, fa, opt, vcf_sites);
  compare("(b) ism", m, fa, opt, ism);
  return 0;
}
