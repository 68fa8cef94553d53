// The input options shared by commands that read sequences (stats, score, embed, train).
#pragma once
#include <string>
#include <vector>

#include "app/cli.h"
#include "io/sequence_reader.h"
#include "model/config.h"

namespace mambadna::app {

struct InputOptions {
  std::vector<std::string> regions;  // -r, repeatable
  std::string regions_file;          // -R BED
  std::string reference;             // CRAM reference
  std::string case_mode;             // "" = the model's tokenizer setting (upper without a model)
  std::string invalid = "error";
  bool skip_unmapped = false, keep_secondary = false, keep_supplementary = false;
  bool skip_duplicates = false, skip_qcfail = false;
  bool as_sequenced = false;  // --as-sequenced
};

// Adds -r/--region, -R/--regions-file, --reference, --case, --invalid and the read filters.
// Who reads the inputs, for the help of --case and --invalid: a command with a model, embed (a
// model, and a row per position), train (the model's setting only), or stats (no model).
enum class InputsFor { model, embedding, training, no_model };
void add_input_options(po::options_description& group, InputOptions& in, InputsFor who = InputsFor::model);

// Reader options from the parsed values; `model` (may be null) gives the default case
// (case_mode_for, `exact_case` for training). Regions on contigs an input lacks are skipped
// there with a warning on stderr (warn_skipped_regions).
io::ReaderOptions reader_options(const char* command, const InputOptions& in,
                                 const CommonOptions& common, const model::Config* model,
                                 bool exact_case = false);
inline io::ReaderOptions reader_options(const char* command, const InputOptions& in,
                                        const CommonOptions& common, const model::Config& model,
                                        bool exact_case = false) {
  return reader_options(command, in, common, &model, exact_case);
}

// The regions of -r texts (in order) and then of a -R BED file ("" for none; "-" reads it from
// standard input); throws UsageError/InputError naming the text or the file and line.
std::vector<io::Region> parse_regions(const std::vector<std::string>& texts, const std::string& bed_file);

// "[command] warning: ..." on stderr, whatever the verbosity, once per input, naming the
// regions (the first three) skipped on contigs that input lacks.
io::RegionsSkipped warn_skipped_regions(const char* command);

// --case against the model's tokenizer: "" takes the model's setting (upper without a model);
// upper folds soft-masked bases for any model (one that keeps case saw upper-case bases too);
// keep needs a model that keeps case (one that folds never saw a lower-case token). `exact`
// (training, whose model keeps the setting): only the model's own.
io::CaseMode case_mode_for(const std::string& requested, const model::Config* model, bool exact = false);

// The files a command reads, for refuse_same_files: `inputs` (positional), -R and --reference,
// and `more` (the model, say).
NamedPaths input_files(const InputOptions& in, const std::vector<std::string>& inputs,
                       NamedPaths more = {});

// A warning on stderr (whatever the verbosity) when the -R BED file has minus-strand regions
// that `command` reads on the forward strand: `instead` says what would use the strands.
void warn_unused_strands(const char* command, const InputOptions& in, const io::ReaderOptions& r,
                         const char* instead);

// --strand: "fwd" (false) or "both" (true); UsageError otherwise.
bool parse_strand(const std::string& strand);

}  // namespace mambadna::app
