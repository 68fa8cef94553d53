#include "app/input_options.h"

#include <cstdio>
#include <memory>
#include <set>

#include "io/error.h"
#include "io/region.h"

namespace mambadna::app {

void add_input_options(po::options_description& g, InputOptions& a, InputsFor who) {
  g.add_options()  //
      ("region,r", po::value<std::vector<std::string>>(&a.regions)->composing(),
       "only this region, 1-based inclusive: CHR, CHR:BEG-END, CHR:BEG (to the contig's end, as "
       "samtools), {NAME:WITH:COLONS}:BEG-END, {NAME,WITH,COMMAS} (repeatable, one region each; needs "
       "an indexed file)")  //
      ("regions-file,R", po::value<std::string>(&a.regions_file),
       "only the regions in this BED file (0-based half-open)")  //
      ("reference", po::value<std::string>(&a.reference), "reference FASTA for decoding CRAM")  //
      ("case", po::value<std::string>(&a.case_mode),
       who == InputsFor::training ? "upper or keep: must be the model's tokenizer setting (make the model with "
                                    "'mambadna init --case') [the model's]"
       : who == InputsFor::model || who == InputsFor::embedding
                                  ? "upper: fold soft-masked bases to upper case (any model); keep: keep the "
                                    "input's case (a model whose tokenizer keeps it) [the model's tokenizer setting]"
                                  : "upper: fold soft-masked bases to upper case; keep: count them apart "
                                    "(the lower column) [upper]")  //
      ("invalid", po::value<std::string>(&a.invalid)->default_value("error"),
       who == InputsFor::embedding
           ? "a character that is not an IUPAC nucleotide code: error, or N (replace it); skip reads it as N "
             "too, as embed keeps a row per position"
           : "a character that is not an IUPAC nucleotide code: error, skip (drop it) or N (replace it)")  //
      ("skip-unmapped", po::bool_switch(&a.skip_unmapped), "SAM/BAM/CRAM: skip unmapped reads")  //
      ("keep-secondary", po::bool_switch(&a.keep_secondary),
       "SAM/BAM/CRAM: keep secondary alignments (skipped by default)")  //
      ("keep-supplementary", po::bool_switch(&a.keep_supplementary),
       "SAM/BAM/CRAM: keep supplementary alignments (skipped by default)")  //
      ("skip-duplicates", po::bool_switch(&a.skip_duplicates),
       "SAM/BAM/CRAM: skip reads flagged as duplicates")  //
      ("skip-qcfail", po::bool_switch(&a.skip_qcfail),
       "SAM/BAM/CRAM: skip reads that failed quality checks")  //
      ("as-sequenced", po::bool_switch(&a.as_sequenced),
       "SAM/BAM/CRAM: reverse-strand reads (FLAG 0x10) reverse-complemented back to the "
       "orientation they were sequenced in, as samtools fastq writes them (default: as stored, "
       "on the reference's forward strand)");
}

io::CaseMode case_mode_for(const std::string& requested, const model::Config* model, bool exact) {
  const std::string mode = requested.empty() ? (model ? model->tokenizer_case : "upper") : requested;
  if (mode != "upper" && mode != "keep")
    throw UsageError("--case " + mode + ": choose upper or keep");
  if (model && mode != model->tokenizer_case) {
    if (exact)
      throw UsageError("--case " + mode + ": a run trains with its model's tokenizer setting (" +
                       model->tokenizer_case + "); make the model with 'mambadna init --case " +
                       mode + "'");
    if (mode == "keep")
      throw UsageError("--case keep: the model's tokenizer folds case to upper, so it never saw a "
                       "lower-case base; give --case upper (its setting) or a model made with "
                       "'mambadna init --case keep'");
  }
  return io::parse_case_mode(mode);
}

io::RegionsSkipped warn_skipped_regions(const char* command) {
  // Once per input: readers of one input may be opened many times (training's epochs).
  auto warned = std::make_shared<std::set<std::string>>();
  return [command, warned](const std::string& path, const std::vector<io::Region>& skipped, io::RegionSkip why) {
    const bool absent = why == io::RegionSkip::absent_contig;
    if (!warned->insert(path + (absent ? "\t1" : "\t2")).second) return;
    std::string list;
    for (size_t i = 0; i < skipped.size() && i < 3; ++i) {
      if (i) list += ", ";
      list += io::describe_region(skipped[i]);
    }
    if (skipped.size() > 3) list += ", ...";
    const bool one = skipped.size() == 1;
    if (absent)
      std::fprintf(stderr, "[%s] warning: %zu region%s on contigs that %s lacks (%s); skipped there\n",
                   command, skipped.size(), one ? " is" : "s are", path.c_str(), list.c_str());
    else
      std::fprintf(stderr, "[%s] warning: %zu region%s past the end of %s contig in %s (%s); skipped there\n",
                   command, skipped.size(), one ? " starts" : "s start", one ? "its" : "their", path.c_str(),
                   list.c_str());
  };
}

io::ReaderOptions reader_options(const char* command, const InputOptions& a,
                                 const CommonOptions& common, const model::Config* model,
                                 bool exact_case) {
  io::ReaderOptions o;
  o.tok.case_mode = case_mode_for(a.case_mode, model, exact_case);
  o.tok.invalid = io::parse_invalid_mode(a.invalid);
  o.filter.skip_unmapped = a.skip_unmapped;
  o.filter.skip_secondary = !a.keep_secondary;
  o.filter.skip_supplementary = !a.keep_supplementary;
  o.filter.skip_duplicate = a.skip_duplicates;
  o.filter.skip_qcfail = a.skip_qcfail;
  o.as_sequenced = a.as_sequenced;
  o.reference = a.reference;
  o.threads = common.threads > 1 ? common.threads : 0;
  o.regions = parse_regions(a.regions, a.regions_file);
  o.on_regions_skipped = warn_skipped_regions(command);
  return o;
}

std::vector<io::Region> parse_regions(const std::vector<std::string>& texts, const std::string& bed_file) {
  std::vector<io::Region> regions;
  for (const auto& r : texts) regions.push_back(io::parse_region(r));
  if (!bed_file.empty()) {
    auto bed = io::read_bed(bed_file);
    regions.insert(regions.end(), bed.begin(), bed.end());
  }
  for (size_t i = 0; i < regions.size(); ++i) regions[i].index = int64_t(i);
  return regions;
}

NamedPaths input_files(const InputOptions& in, const std::vector<std::string>& inputs,
                       NamedPaths more) {
  for (const auto& path : inputs) more.push_back({"input", path});
  more.push_back({"-R", in.regions_file});
  more.push_back({"--reference", in.reference});
  return more;
}

void warn_unused_strands(const char* command, const InputOptions& in, const io::ReaderOptions& r,
                         const char* instead) {
  int64_t minus = 0;
  for (const auto& region : r.regions) minus += region.strand == '-';
  if (minus > 0)
    std::fprintf(stderr,
                 "[%s] warning: %s has %s on the minus strand; %s read on the forward strand (%s)\n",
                 command, in.regions_file.c_str(), count_of(minus, "region", "regions").c_str(),
                 minus == 1 ? "it is" : "they are", instead);
}

bool parse_strand(const std::string& strand) {
  if (strand != "fwd" && strand != "both") throw UsageError("--strand " + strand + ": choose fwd or both");
  return strand == "both";
}

}  // namespace mambadna::app
