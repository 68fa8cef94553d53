// The temporary files of outputs being written ("<path>.tmp.<pid>", io/output_file.h, io/h5.h,
// io/vcf.h), listed so that a signal that ends the program can remove them: the writers remove
// their own when destroyed, but a signal skips the destructors.
#pragma once
#include <string>
#include <vector>

namespace mambadna::io {

void temp_file_opened(const std::string& path);

// Creates a new empty file for an output's temporary copy, and lists it: "<stem>.tmp.<pid><ext>",
// or where that name is taken, "<stem>.tmp.<pid>.<random><ext>" (where it would be too long for
// the file system, ".mambadna.tmp.<pid>[.<random>]<ext>" in the stem's directory). The name is never reused or
// followed (O_EXCL: an existing file or a planted symbolic link is left alone), so a temporary
// in a shared directory cannot be turned onto another file. Returns "" with errno set when no
// file could be created.
std::string create_temp_file(const std::string& stem, const std::string& ext = "");
void temp_file_closed(const std::string& path);  // renamed into place or removed

// Renames a complete temporary onto `path` and unlists it. A file already at `path` keeps its
// permission bits (rwx for user, group and others), as a program writing it in place would keep
// them; its owner is the writer's. Returns false with errno set when the rename fails.
bool rename_temp_file(const std::string& tmp, const std::string& path);

// The directory for temporaries of outputs with no directory of their own (standard output, a
// FIFO): $TMPDIR, else /tmp. Throws InputError naming it when it is not a directory.
std::string temp_directory();

// The temporaries in `dir` whose writer has ended without removing them ("<stem>.tmp.<pid>..."
// whose process is gone on this machine: a writer killed with SIGKILL, or a machine that went
// down), as full paths. A running process's are not listed, nor files of other names.
std::vector<std::string> stale_temp_files(const std::string& dir);

// unlink(2) of every listed file: async-signal-safe, for a signal handler (app/cli.cpp);
// returns how many were removed.
int remove_temp_files() noexcept;

}  // namespace mambadna::io
