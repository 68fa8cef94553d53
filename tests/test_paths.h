// Where the tests find their files: the paths compiled in by CMake, unless the environment
// names others (MAMBADNA_SHARED_DIR, MAMBADNA_SOURCE_DIR, MAMBADNA_BINARY, MAMBADNA_PYTHON), so that a built test
// program can run on another machine (scripts/gpu-check.sh bundle).
#pragma once
#include <cstdlib>
#include <string>

namespace mambadna::test {

inline std::string path_from_env(const char* name, const char* compiled) {
  const char* e = std::getenv(name);
  return e && *e ? std::string(e) : std::string(compiled);
}
inline std::string shared_dir() { return path_from_env("MAMBADNA_SHARED_DIR", MAMBADNA_SHARED_DIR); }
inline std::string source_dir() { return path_from_env("MAMBADNA_SOURCE_DIR", MAMBADNA_SOURCE_DIR); }
inline std::string binary_path() { return path_from_env("MAMBADNA_BINARY", MAMBADNA_BINARY); }
// The Python with torch and h5py for the PyTorch interoperability test (MAMBADNA_PYTHON):
// Debian's, where python3-torch installs.
inline std::string python() { return path_from_env("MAMBADNA_PYTHON", "/usr/bin/python3"); }

}  // namespace mambadna::test
