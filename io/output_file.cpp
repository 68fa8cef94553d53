#include "io/output_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <htslib/bgzf.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "io/error.h"
#include "io/temp_files.h"

namespace mambadna::io {

bool is_special_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;  // not there yet: a new regular file
  return S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode);
}

bool has_suffix(const std::string& path, std::string_view suffix) {
  if (path.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(path[path.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

namespace {
// A BGZF writer on a copy of `fd` (closed with it), or null with errno set.
BGZF* open_bgzf_on(int fd) {
  const int copy = ::dup(fd);
  if (copy < 0) return nullptr;
  BGZF* z = bgzf_dopen(copy, "w");
  if (!z) {
    const int err = errno;
    ::close(copy);
    errno = err;
  }
  return z;
}
}  // namespace

TextOutput::TextOutput(const std::string& path, bool bgzip) : path_(path) {
  if (path == "-") {
    f_ = stdout;
    if (bgzip && !(z_ = open_bgzf_on(STDOUT_FILENO)))
      throw InputError("standard output: cannot write BGZF to it: " + std::string(std::strerror(errno)));
    return;
  }
  if (!is_special_file(path)) {
    tmp_ = create_temp_file(path);  // new, ours alone
    if (tmp_.empty()) throw InputError(path + ": cannot create: " + std::strerror(errno));
  }
  const std::string& open_as = tmp_.empty() ? path : tmp_;
  f_ = std::fopen(open_as.c_str(), "w");
  int err = 0;
  if (f_ && bgzip && !(z_ = open_bgzf_on(::fileno(f_)))) err = errno, std::fclose(f_), f_ = nullptr;
  if (!f_) {
    if (!err) err = errno;
    if (!tmp_.empty()) std::remove(tmp_.c_str()), temp_file_closed(tmp_);
    tmp_.clear();
    throw InputError(path + ": cannot create: " + std::strerror(err));
  }
}

TextOutput::~TextOutput() {
  if (z_) bgzf_close(z_);
  if (f_ && f_ != stdout) std::fclose(f_);
  if (!tmp_.empty()) std::remove(tmp_.c_str()), temp_file_closed(tmp_);
}

void TextOutput::write(std::string_view s) {
  if (z_ ? bgzf_write(z_, s.data(), s.size()) != ssize_t(s.size()) : std::fwrite(s.data(), 1, s.size(), f_) != s.size())
    fail();
}

void TextOutput::finish() {
  if (!f_) return;  // finished
  if (z_) {  // its blocks and the end-of-file block, through its own descriptor
    BGZF* z = z_;
    z_ = nullptr;
    if (bgzf_close(z) != 0) fail();
  }
  if (std::fflush(f_) != 0) fail();
  if (f_ == stdout) return;
  FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) fail();
}

void TextOutput::commit() {
  finish();
  if (f_ == stdout || tmp_.empty()) return;
  if (!rename_temp_file(tmp_, path_))
    throw InputError(path_ + ": cannot rename " + tmp_ + " to it: " + std::strerror(errno));
  tmp_.clear();
}

void TextOutput::fail() const {  // named as the user named it, not by its temporary
  throw InputError((f_ == stdout ? std::string("standard output") : path_) + ": write failed: " +
                   std::strerror(errno));
}

}  // namespace mambadna::io
