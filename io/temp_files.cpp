#include "io/temp_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "io/error.h"

namespace mambadna::io {

namespace {
// Fixed slots, so that the signal handler reads no container that the program may be changing:
// a slot is free (0), being filled (1) or listed (2), and its generation counts its claims. The
// handler copies a listed path and unlinks the copy only if the slot was neither freed nor
// claimed again meanwhile. A path too long for a slot, or one past the last slot, is not listed
// (its writer still removes it on an error).
constexpr int kSlots = 64;
constexpr size_t kPathBytes = 4096;
struct Slot {
  std::atomic<int> state{0};
  std::atomic<unsigned> generation{0};
  char path[kPathBytes];
};
Slot g_slots[kSlots];
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<unsigned>::is_always_lock_free,
              "the signal handler reads the slots' states");
}  // namespace

void temp_file_opened(const std::string& path) {
  if (path.empty() || path.size() >= kPathBytes) return;
  for (Slot& s : g_slots) {
    int expected = 0;
    if (!s.state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) continue;
    s.generation.fetch_add(1, std::memory_order_acq_rel);
    std::memcpy(s.path, path.c_str(), path.size() + 1);
    s.state.store(2, std::memory_order_release);
    return;
  }
}

void temp_file_closed(const std::string& path) {
  for (Slot& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == 2 && std::strcmp(s.path, path.c_str()) == 0) {
      s.state.store(0, std::memory_order_release);
      return;
    }
}

std::string temp_directory() {
  const char* env = std::getenv("TMPDIR");
  const std::string dir = env && *env ? env : "/tmp";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw InputError(std::string(env && *env ? "TMPDIR=" : "") + dir +
                     ": not a directory (the temporary directory, where an output to standard "
                     "output or a FIFO is written before it is copied there)");
  return dir;
}

std::string create_temp_file(const std::string& stem, const std::string& ext) {
  std::string base = stem + ".tmp." + std::to_string(::getpid());
  std::string path = base + ext;
  std::random_device random;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      temp_file_opened(path);
      return path;
    }
    const size_t slash_at = stem.rfind('/');
    const size_t name_bytes = stem.size() - (slash_at == std::string::npos ? 0 : slash_at + 1) + ext.size();
    if (errno == ENAMETOOLONG && name_bytes > 255) return "";  // the output's own name is too long
    if (errno == ENAMETOOLONG && base.rfind("/.mambadna.tmp.") == std::string::npos) {
      // A name of up to 255 bytes whose temporary would be longer: a short one beside it.
      const size_t slash = stem.rfind('/');
      base = (slash == std::string::npos ? std::string(".") : stem.substr(0, slash)) + "/.mambadna.tmp." +
             std::to_string(::getpid());
      path = base + ext;
      continue;
    }
    if (errno != EEXIST) return "";
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, ".%08x", unsigned(random()));
    path = base + suffix + ext;
  }
  return "";  // errno is EEXIST
}

bool rename_temp_file(const std::string& tmp, const std::string& path) {
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
    // Through a descriptor that is not a symbolic link's (one put at the temporary's name would
    // lend its target our mode); best effort: the output is what matters.
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      (void)::fchmod(fd, old.st_mode & 0777);
      ::close(fd);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return false;
  temp_file_closed(tmp);
  return true;
}

std::vector<std::string> stale_temp_files(const std::string& dir) {
  std::vector<std::string> stale;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || !e.is_regular_file(ec)) continue;
    const char* digits = name.c_str() + at + 5;
    char* end = nullptr;
    const long pid = std::strtol(digits, &end, 10);
    if (end == digits || (*end != '\0' && *end != '.') || pid <= 0) continue;
    if (pid == long(::getpid()) || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive
    stale.push_back(e.path().string());
  }
  std::sort(stale.begin(), stale.end());
  return stale;
}

int remove_temp_files() noexcept {
  int removed = 0;
  static char copy[kPathBytes];  // the handler runs once (app/cli.cpp)
  for (Slot& s : g_slots) {
    const unsigned g = s.generation.load(std::memory_order_acquire);
    if (s.state.load(std::memory_order_acquire) != 2) continue;
    size_t n = 0;
    while (n + 1 < kPathBytes && s.path[n]) copy[n] = s.path[n], ++n;
    copy[n] = '\0';
    if (s.state.load(std::memory_order_acquire) != 2 || s.generation.load(std::memory_order_acquire) != g)
      continue;
    if (::unlink(copy) == 0) ++removed;
  }
  return removed;
}

}  // namespace mambadna::io
