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
};

// Adds -r/--region, -R/--regions-file, --reference, --case, --invalid and the read filters.
void add_input_options(po::options_description& group, InputOptions& in);

// Reader options from the parsed values; `model` (may be null) gives the default case.
io::ReaderOptions reader_options(const InputOptions& in, const CommonOptions& common,
                                 const model::Config* model);
inline io::ReaderOptions reader_options(const InputOptions& in, const CommonOptions& common,
                                        const model::Config& model) {
  return reader_options(in, common, &model);
}

// --strand: "fwd" (false) or "both" (true); UsageError otherwise.
bool parse_strand(const std::string& strand);

}  // namespace mambadna::app
