// `mambadna vep`: zero-shot variant effect scores (log-likelihood ratios) into a VCF/BCF.
#include <cstdio>

#include "app/cli.h"
#include "app/device_options.h"
#include "app/input_options.h"
#include "io/error.h"
#include "io/region.h"
#include "io/tokenizer.h"
#include "io/vcf.h"
#include "kernels/threads.h"
#include "model/checkpoint.h"
#include "pipelines/vep.h"

namespace mambadna::app {

int cmd_vep(int argc, char** argv) {
  CommonOptions common;
  pipelines::VepOptions opt;
  std::string model_path, strand = "both", output_type, missing = "skip", regions_file, case_mode, overlap = "pos",
              invalid = "error";
  std::vector<std::string> regions;
  po::options_description model_opts("Model");
  model_opts.add_options()("model,m", po::value(&model_path)->required(), "checkpoint (.h5)");
  po::options_description in_opts("Input");
  in_opts.add_options()                                                                         //
      ("fasta-ref,f", po::value(&opt.reference)->required(), "indexed reference FASTA (plain or bgzip)")
      ("input,i", po::value(&opt.input)->default_value("-"), "VCF/BCF, sorted (plain or bgzip); - for stdin")
      ("region,r", po::value(&regions)->composing(),
       "score only the records this region selects (--regions-overlap), 1-based inclusive: CHR, CHR:BEG-END, CHR:BEG "
       "(to the contig's end, as samtools) (repeatable, one region each); the others are written "
       "without MAMBADNA_* fields")
      ("regions-file,R", po::value(&regions_file),
       "score only the records these BED regions select (--regions-overlap; 0-based, half-open)")
      ("regions-overlap", po::value(&overlap)->default_value(overlap),
       "which records the regions select, as bcftools: pos (0), POS in a region; record (1), the "
       "REF span (or INFO/END) overlaps one; variant (2), the span without an indel's padding base "
       "(an insertion: both bases beside it) overlaps one")
      ("missing-contig", po::value(&missing)->default_value(missing),
       "a contig absent from the FASTA: skip (status no_contig) or error");
  po::options_description out("Output");
  out.add_options()                                                                              //
      ("output,o", po::value(&opt.output)->default_value("-"), "VCF/BCF with the MAMBADNA_* INFO fields; - for stdout")
      ("output-type,O", po::value(&output_type),
       "v VCF, z bgzip VCF, b BCF, u uncompressed BCF; z and b take a compression level 0-9 (z9) "
       "[from the -o suffix; v for -]")
      ("h5", po::value(&opt.h5_output), "also an HDF5 table, one row per ALT");
  po::options_description run("Scoring");
  run.add_options()                                                                              //
      ("window", po::value(&opt.window)->default_value(opt.window), "window length W (multiple of 4)")
      ("strand", po::value(&strand)->default_value(strand), "both (mean of the two strands' LLR) or fwd")
      ("naive", po::bool_switch(&opt.naive), "run both whole windows for every ALT (slow; for checking)")
      ("batch,b", po::value(&opt.streams)->default_value(opt.streams), "ALT branches run side by side")
      ("chunk,L", po::value(&opt.chunk)->default_value(0),
       "tokens per stream per call; 0: about 2048 rows per call on the CPU, 4096 on a GPU")
      ("case", po::value(&case_mode),
       "upper: fold soft-masked bases to upper case (any model); keep: keep the reference's case (a "
       "model whose tokenizer keeps it) [the model's tokenizer setting]")
      ("invalid", po::value(&invalid)->default_value(invalid),
       "a reference character that is not an IUPAC nucleotide code: error, or N (read it as N)");
  DeviceOptions device;
  add_device_options(run, device);
  po::options_description general("General");
  add_common_options(general, common);
  po::options_description hidden;
  po::variables_map vm;
  return run_command(
      [&] {
        if (!parse_command_line(argc, argv,
                                "Usage: mambadna vep -m model.h5 -f ref.fa -o out.vcf.gz [options] in.vcf.gz\n"
                                "Adds log P(alt window) - log P(ref window) to every ALT allele. The VCF/BCF is\n"
                                "the argument or -i, as bcftools takes it; standard input without either.",
                                {&model_opts, &in_opts, &out, &run, &general}, hidden, "input", 1, vm))
          return kHelpShown;
        opt.both_strands = parse_strand(strand);
        if (opt.h5_output == "-" && opt.output == "-")
          throw UsageError("--h5 -: standard output carries the VCF (-o -); give one of them a file");
        if (missing != "skip" && missing != "error")
          throw UsageError("--missing-contig " + missing + ": choose skip or error");
        opt.missing_contig_error = missing == "error";
        opt.tok.invalid = io::parse_invalid_mode(invalid);
        if (opt.tok.invalid == io::InvalidMode::skip)
          throw UsageError("--invalid skip: vep reads its windows by position, and a dropped character would "
                           "move them; use --invalid N");
        refuse_same_files({{"-o", opt.output}, {"--h5", opt.h5_output}},
                          {{"-m", model_path}, {"-f", opt.reference}, {"-i", opt.input}, {"-R", regions_file}});
        if (!output_type.empty()) opt.output_type = io::parse_vcf_output_type(output_type, &opt.compression_level);
        const char type = io::vcf_output_type(opt.output, opt.output_type);
        if (type != 'v') refuse_binary_to_terminal("-o", opt.output, type == 'z' ? "bgzip VCF" : "BCF");
        refuse_binary_to_terminal("--h5", opt.h5_output, "an HDF5 file");
        opt.regions = parse_regions(regions, regions_file);
        opt.regions_overlap = io::parse_regions_overlap(overlap);
        const model::Device dev = apply_device_options(device, common.verbosity);
        if (opt.chunk < 0)
          throw UsageError("-L/--chunk " + std::to_string(opt.chunk) + ": give 1 or more, or 0 to choose");
        if (opt.chunk == 0) opt.chunk = auto_chunk(dev, opt.streams);
        kernels::CpuThreads threads(common.threads);
        model::Mamba<float> m = load_model(model_path, dev);
        opt.tok.case_mode = case_mode_for(case_mode, &m.config());
        opt.threads = common.threads > 1 ? common.threads : 0;
        opt.command_line = command_line();
        opt.model_path = model_path;
        Progress progress("records", -1, common.verbosity);
        auto s = pipelines::vep(m, opt, [&](int64_t done) { progress.update(done); });
        progress.finish();
        if (common.verbosity > 0) {
          std::fprintf(stderr, "[vep] %s read, %s, %lld scored", count_of(s.records, "record", "records").c_str(),
                       count_of(s.alts, "ALT", "ALTs").c_str(), (long long)s.scored());
          if (s.out_of_region)
            std::fprintf(stderr, ", %s outside the regions", count_of(s.out_of_region, "record", "records").c_str());
          std::fprintf(stderr, "\n[vep] status:");
          for (int i = 0; i < pipelines::kVepStatusCount; ++i)
            std::fprintf(stderr, " %s=%lld", pipelines::status_name(pipelines::VepStatus(i)),
                         (long long)s.by_status[size_t(i)]);
          std::fprintf(stderr, "\n");
        }
        if (!s.regions_skipped.empty())
          std::fprintf(stderr, "[vep] warning: %zu region%s on contigs that %s lacks (the first: %s); "
                               "they select nothing\n",
                       s.regions_skipped.size(), s.regions_skipped.size() == 1 ? " is" : "s are",
                       opt.reference.c_str(), s.regions_skipped[0].c_str());
        if (!s.regions_past_end.empty())
          std::fprintf(stderr, "[vep] warning: %zu region%s past the end of %s contig in %s (the first: %s); "
                               "they select nothing\n",
                       s.regions_past_end.size(), s.regions_past_end.size() == 1 ? " starts" : "s start",
                       s.regions_past_end.size() == 1 ? "its" : "their", opt.reference.c_str(),
                       s.regions_past_end[0].c_str());
        // Coordinates of another assembly: records past a contig's end, ##contig lengths that
        // differ from the FASTA's.
        if (s.records_past_end > 0)
          std::fprintf(stderr, "[vep] warning: %lld record%s past the end of %s contig in %s (the first: %s), "
                               "counted as ref_mismatch: calls made on another assembly?\n",
                       (long long)s.records_past_end, s.records_past_end == 1 ? " runs" : "s run",
                       s.records_past_end == 1 ? "its" : "their", opt.reference.c_str(), s.first_past_end.c_str());
        if (!s.contig_lengths_differ.empty())
          std::fprintf(stderr, "[vep] warning: %zu contig%s a length in the VCF header other than in %s "
                               "(the first: %s): calls made on another assembly?\n",
                       s.contig_lengths_differ.size(), s.contig_lengths_differ.size() == 1 ? " has" : "s have",
                       opt.reference.c_str(), s.contig_lengths_differ[0].c_str());
        // Contig names that do not match (chr20 against 20, an accession against a RefSeq
        // header) score nothing; say so whatever the verbosity.
        const int64_t absent = s.by_status[size_t(pipelines::VepStatus::no_contig)];
        if (absent > 0)
          std::fprintf(stderr,
                       "[vep] warning: %s%s on contigs that %s lacks (the first: '%s'); "
                       "compare the VCF's contig names with the FASTA's (cut -f1 %s.fai)\n",
                       absent == s.alts - s.by_status[size_t(pipelines::VepStatus::missing)] ? "all " : "",
                       count_of(absent, "ALT is", "ALTs are").c_str(), opt.reference.c_str(),
                       s.first_missing_contig.c_str(), opt.reference.c_str());
        // Most REFs unlike the reference: another assembly, or a file of other positions.
        const int64_t mismatched = s.by_status[size_t(pipelines::VepStatus::ref_mismatch)];
        if (mismatched >= 10 && 2 * mismatched >= s.alts)
          std::fprintf(stderr, "[vep] warning: %lld of %s have a REF that %s does not have there: calls "
                               "made on another assembly?\n",
                       (long long)mismatched, count_of(s.alts, "ALT", "ALTs").c_str(), opt.reference.c_str());
        if (s.scores_dropped > 0)
          std::fprintf(stderr,
                       "[vep] warning: %s outside the regions had MAMBADNA_* fields of an earlier run, not "
                       "written: a file's scores are all of one run (score the whole file, or join runs with "
                       "bcftools annotate -c)\n",
                       count_of(s.scores_dropped, "record", "records").c_str());
        // Regions that select no record: a 1-based file read as BED makes single positions empty.
        if (!opt.regions.empty() && s.records > 0 && s.out_of_region == s.records)
          std::fprintf(stderr, "[vep] warning: no record is in the regions (-r/-R, --regions-overlap)%s\n",
                       regions_file.empty() ? ""
                                            : "; BED is 0-based, half-open: a 1-based 'CHROM POS POS' "
                                              "line is an empty region");
        return 0;
      },
      common);
}

}  // namespace mambadna::app
