// The temporary files of outputs being written ("<path>.tmp.<pid>", io/output_file.h, io/h5.h,
// io/vcf.h), listed so that a signal that ends the program can remove them: the writers remove
// their own when destroyed, but a signal skips the destructors.
#pragma once
#include <string>

namespace mambadna::io {

void temp_file_opened(const std::string& path);
void temp_file_closed(const std::string& path);  // renamed into place or removed

// unlink(2) of every listed file: async-signal-safe, for a signal handler (app/cli.cpp);
// returns how many were removed.
int remove_temp_files() noexcept;

}  // namespace mambadna::io
