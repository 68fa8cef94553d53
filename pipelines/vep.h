// `mambadna vep`: zero-shot variant effect scores, the log-likelihood ratio of each ALT allele
// against the reference in a window of the reference genome around it.
//
// The score. Window length W (even, a multiple of 4), grid G = W / 4. A variant at 0-based
// position p of a contig of length n, with REF of length lr and an ALT a of length la, is scored
// in the window [s, e) with
//     s = max(0, floor((p - W/2) / G) * G),   e = min(n, s + W)
// (windows are clipped at the contig ends: near an end the window is shorter and the variant is
// not centred). The windows are
//     ref window  x = ref[s, e)
//     alt window  y = ref[s, p) + a + ref[p + lr, e + lr - la)
// so that both read the same number of bases (an indel's LLR has no length term): an
// insertion's window stops short, a deletion's reads on past e. The reverse strand reads
// revcomp(ref[s + la - lr, p) + a + ref[p + lr, e)), its extra or missing bases at s, its end.
// At a contig end the ALT window is cut to the reference window's length (an insertion) or is
// as long as the contig allows (a deletion). log P(w) = sum over window positions t >= 1 whose base is A/C/G/T (either case)
// of log p(w_t | w_0..w_{t-1}), run from a zero state at the window start (position 0 has no
// context and is not scored; N and other IUPAC codes are fed to the model but not summed, as
// in `score`). Then
//     LLR_fwd = log P(y) - log P(x)                          (natural log)
//     LLR_rc  = log P(revcomp(y)) - log P(revcomp(x))        (each base given its right side)
//     LLR     = (LLR_fwd + LLR_rc) / 2   (--strand both, the default),  LLR_fwd (--strand fwd)
// Negative LLR: the model finds the ALT less likely than the reference.
//
// The method. Every variant whose window has the same (contig, s) shares the reference window,
// so it is swept once per strand: the reference runs once from the zero state, keeping its
// per-position log-probs as a prefix sum and copying the recurrent state at each ALT's branch
// point; each ALT then runs only from its branch point to the end of the window (on the reverse
// strand the shared prefix is revcomp(ref[p + lr, e))). The reference sweeps of consecutive
// windows run side by side (B at a time, each call stopping at the nearest branch point of any
// of them), and ALT branches run side by side as the streams of one model call, so that the
// matrix products stay large when variants are sparse. The naive method (VepOptions::naive) runs both whole windows for
// every ALT and strand; the two agree to float rounding (1e-4 in the tests).
//
// Per ALT a status (VepStatus): only `ok` ALTs are scored. Input must be sorted by position
// within each contig, and each contig's records must be contiguous (`bcftools sort`).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/fasta_index.h"
#include "io/region.h"
#include "io/tokenizer.h"
#include "model/mamba.h"

namespace mambadna::pipelines {

enum class VepStatus : uint8_t {
  ok,            // scored
  ref_mismatch,  // REF differs from the reference (case-insensitive) or runs past the contig end
  symbolic,      // <DEL>, <*>, ...
  star,          // '*': the allele is deleted by an overlapping variant
  breakend,      // N[chr:pos[, ]chr:pos]N, .N, N.
  missing,       // '.': no ALT allele
  no_contig,     // the contig is absent from the reference FASTA
  too_long,      // REF or ALT longer than W / 4
  invalid,       // an ALT character that is not an IUPAC base
  no_change,     // ALT equals REF (case-insensitive): nothing to score
  ambiguous,     // REF or ALT has a base other than A/C/G/T (N, IUPAC), or the two windows
                 // would score different numbers of A/C/G/T bases (an N one of them reads)
  contig_end,    // an insertion so near a contig end that its ALT window cannot hold the
                 // whole allele on a strand scored, a deletion of a contig's last bases read
                 // forward (nothing follows to tell the windows apart), or POS 0 (a telomere)
};
inline constexpr int kVepStatusCount = 12;
const char* status_name(VepStatus status);

struct VepOptions {
  std::string input = "-";       // VCF/BCF (plain, bgzip); "-" = stdin
  std::string reference;         // indexed FASTA (plain or bgzip with .fai/.gzi)
  std::string output = "-";      // "-" = stdout; written under a temporary name, then renamed
  char output_type = 0;          // 'v' VCF, 'z' bgzip VCF, 'b' BCF, 'u' uncompressed BCF; 0 = from the name
  int compression_level = -1;    // 0-9 for z and b (bcftools' -Oz9); -1: htslib's default
  int64_t window = 8192;         // W
  bool both_strands = true;      // --strand both (else fwd)
  bool naive = false;            // recompute both whole windows for every ALT (the reference method)
  bool missing_contig_error = false;  // a contig absent from the FASTA is an error (else a status)
  std::vector<io::Region> regions;    // when not empty: only records in them are scored
  io::RegionsOverlap regions_overlap = io::RegionsOverlap::pos;  // which records the regions select
  std::string h5_output;              // "" = none
  io::TokenizerOptions tok;           // the model's tokenizer
  int64_t streams = 8;                // B: ALT branches run side by side
  int64_t chunk = 256;                // L: tokens per stream per model call (B·L rows)
  int threads = 0;                    // htslib (de)compression threads
  std::string command_line;           // for the header line and the HDF5 attributes
  std::string model_path;
};

struct VepSummary {
  int64_t records = 0;         // records read (and written)
  int64_t alts = 0;            // ALT alleles seen (a record without ALT counts one, `missing`)
  int64_t out_of_region = 0;   // records left unscored by -r/-R
  int64_t scores_dropped = 0;  // of those, records whose MAMBADNA_* fields of an earlier run were dropped
  std::array<int64_t, kVepStatusCount> by_status{};  // ALTs per status
  std::string first_missing_contig;  // the first contig (of a record in the regions) the FASTA lacks
  std::vector<std::string> regions_skipped;  // -r/-R regions on contigs the FASTA lacks
  std::vector<std::string> regions_past_end;  // and regions that start past their contig's end
  int64_t records_past_end = 0;       // records (in the regions) whose REF runs past the contig's end
  std::string first_past_end;         //   the first of them, "contig:pos"
  std::vector<std::string> contig_lengths_differ;  // "name (VCF N, FASTA M)": ##contig lengths
                                                   // that differ from the FASTA's
  int64_t scored() const { return by_status[0]; }
};

// Reads opt.input, scores every ALT and writes every record to opt.output with the INFO fields
// MAMBADNA_LLR, MAMBADNA_LLR_FWD, MAMBADNA_LLR_RC (Number=A, Float) and MAMBADNA_STATUS
// (Number=A, String); with --h5, one row per ALT. `progress` gets the records done so far.
// Throws InputError for unsorted input (naming the record), an unreadable file, or a missing
// contig under missing_contig_error.
VepSummary vep(model::Mamba<float>& model, const VepOptions& opt,
               const std::function<void(int64_t)>& progress = {});

// One ALT to score in a window: the allele replaces ref[pos, pos + ref_len).
struct VepAllele {
  int64_t pos = 0;      // 0-based contig position
  int64_t ref_len = 0;  // lr
  std::string alt;      // a
};
struct VepScore {
  double llr_fwd = 0, llr_rc = 0;
  bool uneven = false;  // the windows score different numbers of A/C/G/T bases: status ambiguous
  bool blind = false;   // an ALT window that is the reference window's prefix: status contig_end
};

// The window [s, e) of a variant at `pos` on a contig of length `contig_len`.
void vep_window(int64_t pos, int64_t contig_len, int64_t window, int64_t& begin, int64_t& end);

// Alleles that share the window [begin, end) of `contig`.
struct VepWindow {
  std::string contig;
  int64_t begin = 0, end = 0;
  std::vector<VepAllele> alleles;
};

// Scores the alleles of each window ([begin, end) of its contig) as vep() runs them: the reference passes of up to opt.streams
// window strands side by side (the naive method runs each window alone). One vector of scores
// per window.
std::vector<std::vector<VepScore>> vep_score_windows(model::Mamba<float>& model,
                                                     const io::FastaIndex& fasta,
                                                     const VepOptions& opt,
                                                     const std::vector<VepWindow>& windows);

}  // namespace mambadna::pipelines
