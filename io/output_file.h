// Output files that appear only when complete. "-" is standard output; a path that already
// exists and is not a regular file (/dev/null, a FIFO, a terminal) is written in place, never
// replaced; any other path is written as "<path>.tmp.<pid>" (a new file, never one that was there:
// io/temp_files.h) and renamed onto <path> by commit().
// Destroyed without commit() (an error), the temporary is removed; a signal that ends the
// program removes it through io/temp_files.h (SIGKILL cannot be caught: it stays).
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

struct BGZF;  // htslib's

namespace mambadna::io {

// True when `path` exists and is not a regular file, or is a symbolic link: it must be written
// in place (a rename would replace /dev/null, a FIFO, or a link such as /dev/stdout).
bool is_special_file(const std::string& path);

// Whether `path` ends in `suffix` (given in lower case) in any case: ".bcf" matches x.BCF.
bool has_suffix(const std::string& path, std::string_view suffix);
// Whether `path` names a bgzip-compressed file: it ends in .gz or .bgz, in any case.
inline bool bgzip_name(const std::string& path) { return has_suffix(path, ".gz") || has_suffix(path, ".bgz"); }

// Text written as given, or with `bgzip` compressed in BGZF blocks (as bgzip writes it: gzip
// tools read it, tabix indexes it).
class TextOutput {
 public:
  explicit TextOutput(const std::string& path, bool bgzip = false);
  ~TextOutput();
  TextOutput(const TextOutput&) = delete;
  TextOutput& operator=(const TextOutput&) = delete;

  void write(std::string_view s);  // throws InputError naming the file on a short write
  // finish() completes the file (flushes and closes it: every write error shows here); commit()
  // finishes it if need be and renames the temporary into place (as H5File's).
  void finish();
  void commit();
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail() const;
  std::string path_, tmp_;  // tmp_ empty when writing in place
  FILE* f_ = nullptr;
  BGZF* z_ = nullptr;  // bgzip: the file is written through this instead
};

}  // namespace mambadna::io
