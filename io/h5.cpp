#include "io/h5.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <new>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "io/error.h"
#include "io/temp_files.h"
#include "io/output_file.h"

namespace mambadna::io {

namespace {

// HDF5 prints its own error stack by default; we report errors ourselves. Nor does it close
// files at exit: a file whose flush or close failed (a full disk) stays in its table, and its
// exit-time close of that file crashed the program after our message (HDF5 1.10). Every file
// we keep is closed before it is renamed into place; the others are removed.
struct SilenceHdf5 {
  SilenceHdf5() {
    H5dont_atexit();  // before any other HDF5 call
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const SilenceHdf5 g_silence;

// The last HDF5 failure as its error stack words it: the innermost entry's description (the
// most specific: "truncated file: eof = 150000, sblock->base_addr = 0, stored_eof = 202048"),
// the system's reason where an entry holds one (the file driver's "errno = 28, error message =
// 'No space left on device'": "No space left on device"), and whether it is about file locking.
// Clears the stack.
struct Hdf5Failure {
  std::string innermost, reason;
  bool locking = false;
};

Hdf5Failure hdf5_failure() {
  Hdf5Failure fail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto& out = *static_cast<Hdf5Failure*>(data);
        if (e->desc) out.innermost = e->desc;
        if (e->min_num == H5E_CANTLOCKFILE) out.locking = true;
        const char* key = "error message = '";
        const char* at = e->desc ? std::strstr(e->desc, key) : nullptr;
        if (out.reason.empty() && at) {
          at += std::strlen(key);
          const char* end = std::strchr(at, '\'');
          out.reason = std::string(at, end ? size_t(end - at) : std::strlen(at));
        }
        return 0;
      },
      &fail);
  H5Eclear2(H5E_DEFAULT);
  return fail;
}

// ": No space left on device" (hdf5_failure's reason), or "".
std::string hdf5_reason() {
  const std::string reason = hdf5_failure().reason;
  return reason.empty() ? reason : ": " + reason;
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw InputError(what + hdf5_reason());
  return id;
}

void check_status(herr_t st, const std::string& what) {
  if (st < 0) throw InputError(what + hdf5_reason());
}

H5Id string_type() {
  H5Id t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// IEEE binary16, which HDF5 converts to and from float and numpy reads as float16.
H5Id half_type() {
  H5Id t(H5Tcopy(H5T_IEEE_F32LE));
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

// float -> IEEE binary16 bits, round to nearest even (done here: HDF5's own float-to-half
// conversion loses the carry when rounding overflows the mantissa, e.g. 0.99995 -> 0.5).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | (absx > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN, Inf
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds past 65504: Inf
  if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (absx < 0x33000000u) return uint16_t(sign);  // under half the smallest subnormal
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const int shift = 126 - int(absx >> 23);  // value / 2^-24 = mant >> shift, shift in 14..24
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    if (rem > half || (rem == half && (r & 1))) ++r;  // 1024 becomes the smallest normal
    return uint16_t(sign | r);
  }
  uint32_t h = ((absx >> 23) - 112) << 10 | ((absx >> 13) & 0x3ffu);
  const uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // a carry into the exponent is right
  return uint16_t(sign | h);
}

hid_t file_type_of(H5Type t, H5Id& holder) {
  switch (t) {
    case H5Type::f32: return H5T_IEEE_F32LE;
    case H5Type::f64: return H5T_IEEE_F64LE;
    case H5Type::i64: return H5T_STD_I64LE;
    case H5Type::i32: return H5T_STD_I32LE;
    case H5Type::f16: holder = half_type(); return holder.get();
    case H5Type::string: holder = string_type(); return holder.get();
  }
  return H5I_INVALID_HID;
}

// Creation properties without HDF5's per-object modification times, so that the same run gives
// the same bytes (h5dump showed nothing apart, cmp did).
H5Id untimed(hid_t cls) {
  H5Id p(H5Pcreate(cls));
  H5Pset_obj_track_times(p, false);
  return p;
}

std::vector<hsize_t> to_hsize(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string parent_of(const std::string& name) {
  auto p = name.rfind('/');
  if (p == std::string::npos || p == 0) return "/";
  return name.substr(0, p);
}

}  // namespace

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) r += ",";
  return r + ")";
}

H5Id& H5Id::operator=(H5Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = std::exchange(o.id_, H5I_INVALID_HID);
  }
  return *this;
}

H5Id::~H5Id() { reset(); }

void H5Id::reset() noexcept {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

namespace {
// Where an output's temporary goes: beside a file output, or in the temporary directory for none
// (""), standard output ("-") or a special file (/dev/null, a FIFO), which are never replaced.
bool temp_beside(const std::string& output) { return !output.empty() && output != "-" && !is_special_file(output); }
std::string temp_stem(const std::string& output) {
  return temp_beside(output) ? output : (std::filesystem::path(temp_directory()) / "mambadna").string();
}
}  // namespace

// The new HDF5 file at f.tmp_path_, writable; `name` is what its messages call it.
void H5File::create_at_temp(H5File& f, const std::string& name) {
  f.file_ = H5Id(H5Fcreate(f.tmp_path_.c_str(), H5F_ACC_TRUNC, untimed(H5P_FILE_CREATE), H5P_DEFAULT));
  if (f.file_.get() < 0) throw InputError(name + ": cannot create HDF5 file");  // the destructor removes it
  f.writable_ = true;
}

H5File H5File::create(const std::string& path) {
  H5File f;
  f.path_ = path;
  std::error_code ec;
  if (path != "-" && std::filesystem::is_directory(path, ec))
    throw InputError(path + ": cannot write an HDF5 file: is a directory");
  // An existing special file (/dev/null, a FIFO) is never replaced, and "-" is standard output:
  // the temporary lives in the temporary directory and commit() copies it there.
  const bool in_tmpdir = !temp_beside(path);
  const std::string stem = temp_stem(path);
  f.tmp_path_ = create_temp_file(stem, in_tmpdir ? ".h5" : "");  // new, ours alone
  if (f.tmp_path_.empty()) {
    const int err = errno;
    const std::filesystem::path dir = std::filesystem::path(stem).parent_path();
    std::string why = ": " + std::string(std::strerror(err));
    if (!dir.empty() && std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
      why = " (" + dir.string() + " is not a directory)";
    else if (!dir.empty() && !std::filesystem::exists(dir, ec))
      why = " (no directory " + dir.string() + ")";
    throw InputError((in_tmpdir ? std::filesystem::path(stem).parent_path().string() + " (the temporary directory, for " +
                                      (path == "-" ? std::string("standard output") : path) + ")"
                                : path) +
                     ": cannot create HDF5 file" + why);
  }
  create_at_temp(f, path);
  return f;
}

H5File H5File::create_scratch(const std::string& output, const std::string& tag, const std::string& purpose) {
  const std::string stem = temp_stem(output) + "." + tag;
  H5File f;
  f.tmp_path_ = create_temp_file(stem);
  if (f.tmp_path_.empty())
    throw InputError(stem + ".tmp." + std::to_string(::getpid()) + ": cannot create " + purpose + ": " +
                     std::strerror(errno));
  f.path_ = f.tmp_path_ + " (" + purpose + ")";
  create_at_temp(f, f.path_);
  return f;
}

H5File H5File::open_read(const std::string& path) {
  H5File f;
  f.path_ = path;
  if (path == "-")
    throw UsageError("an HDF5 file (a model, a checkpoint) cannot be read from standard input: HDF5 "
                     "needs random access; give the file's name");
  if (!std::filesystem::exists(path)) throw InputError(path + ": no such file");
  if (std::filesystem::is_directory(path)) {  // a training run's directory, most often
    const std::string model = (std::filesystem::path(path) / "model.h5").string();
    throw InputError(path + ": a directory, not an HDF5 file" +
                     (std::filesystem::exists(model) ? " (a training run? its model is " + model + ")" : std::string()));
  }
  if (::access(path.c_str(), R_OK) != 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))  // a pipe, /dev/stdin, <(...)
    throw InputError(path + ": not a regular file: an HDF5 file (a model, a checkpoint) needs random "
                            "access; give the file's name");
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path + ": not an HDF5 file");
  f.file_ = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (f.file_.get() < 0) {  // HDF5's words for it: a truncated file, a lock held, ...
    const Hdf5Failure fail = hdf5_failure();
    std::string what = path + ": cannot open HDF5 file" + (fail.innermost.empty() ? "" : ": " + fail.innermost);
    if (fail.locking)
      what += " (held open for writing by another program? HDF5 locks files it writes; "
              "HDF5_USE_FILE_LOCKING=FALSE turns that off, on file systems without locks)";
    throw InputError(what);
  }
  return f;
}

H5File::H5File(H5File&& o) noexcept
    : path_(std::move(o.path_)), tmp_path_(std::move(o.tmp_path_)), file_(std::move(o.file_)),
      writable_(o.writable_), appenders_(o.appenders_) {
  o.tmp_path_.clear();
}

H5File& H5File::operator=(H5File&& o) noexcept {
  if (this != &o) {
    discard();
    path_ = std::move(o.path_);
    tmp_path_ = std::exchange(o.tmp_path_, std::string());
    file_ = std::move(o.file_);
    writable_ = o.writable_;
    appenders_ = o.appenders_;
  }
  return *this;
}

H5File::~H5File() { discard(); }

void H5File::discard() noexcept {
  file_.reset();
  if (!tmp_path_.empty()) {  // never committed: leave nothing
    std::remove(tmp_path_.c_str());
    temp_file_closed(tmp_path_);
    tmp_path_.clear();
  }
}

void H5File::finish() {
  if (!writable_) throw UsageError(path_ + ": finish on a file opened for reading");
  if (file_.get() < 0) return;
  if (!appenders_->lost.empty()) throw InputError(appenders_->lost);  // an appender's rows
  // Nothing of the file may be open: with a dataset open, H5Fclose returns at once and the
  // real close (with the errors it meets) comes later, when that dataset closes, unseen.
  const ssize_t open = H5Fget_obj_count(
      file_, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
  if (open != 0)
    throw UsageError(path_ + ": finish() with " + std::to_string(open) + " objects of the file still open");
  if (appenders_->alive != 0)
    throw UsageError(path_ + ": finish() with " + std::to_string(appenders_->alive) + " appenders of the file alive");
  check_status(H5Fflush(file_, H5F_SCOPE_GLOBAL), path_ + ": flush failed");
  check_status(H5Fclose(file_.release()), path_ + ": close failed");
}

void H5File::commit() {
  finish();
  if (path_ == "-") {
    std::ifstream in(tmp_path_, std::ios::binary);
    std::cout << in.rdbuf();
    std::cout.flush();
    if (!in || !std::cout || std::fflush(stdout) != 0)
      throw InputError(std::string("standard output: write failed: ") + std::strerror(errno));
    return;  // the destructor removes the temporary
  }
  if (is_special_file(path_)) {
    std::ifstream in(tmp_path_, std::ios::binary);
    std::ofstream out(path_, std::ios::binary);
    out << in.rdbuf();
    out.close();  // the last buffered block is written here
    if (!out) throw InputError(path_ + ": write failed: " + std::strerror(errno));
    return;  // the destructor removes the temporary
  }
  if (!rename_temp_file(tmp_path_, path_))
    throw InputError(path_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
  tmp_path_.clear();
}

hid_t H5File::ensure_parent_groups(const std::string& name) {
  std::string parent = parent_of(name);
  if (parent == "/") return file_;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = parent.find('/', pos + 1);
    std::string g = parent.substr(0, pos);
    if (g.empty() || g == "/") continue;
    if (H5Lexists(file_, g.c_str(), H5P_DEFAULT) <= 0) {
      // Members listed in the order they were made (h5py iterates so): per_position/10 after 9.
      H5Id gcpl = untimed(H5P_GROUP_CREATE);
      H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
      H5Id gid(H5Gcreate2(file_, g.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT));
      check(gid, path_ + ": cannot create group " + g);
    }
  }
  return file_;
}

bool H5File::exists(const std::string& name) const {
  // H5Lexists needs every intermediate link to exist: walk the path.
  std::string acc;
  size_t start = name[0] == '/' ? 1 : 0;
  while (start <= name.size()) {
    size_t next = name.find('/', start);
    acc += "/" + name.substr(start, next == std::string::npos ? std::string::npos : next - start);
    if (H5Lexists(file_, acc.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) break;
    start = next + 1;
  }
  return true;
}

Shape H5File::shape(const std::string& name) const {
  if (!exists(name)) throw InputError(path_ + ": missing dataset '" + name + "'");
  H5Id ds(check(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), path_ + ": cannot open " + name));
  H5Id sp(check(H5Dget_space(ds), path_ + ": cannot read the shape of " + name));
  const int nd = H5Sget_simple_extent_ndims(sp);
  if (nd < 0) throw InputError(path_ + ": cannot read the shape of " + name);
  std::vector<hsize_t> d(size_t(nd), 0);
  if (nd > 0) check_status(H5Sget_simple_extent_dims(sp, d.data(), nullptr) < 0 ? -1 : 0,
                           path_ + ": cannot read the shape of " + name);
  return Shape(d.begin(), d.end());
}

bool H5File::is_group(const std::string& name) const {
  H5Id o(check(H5Oopen(file_, name.c_str(), H5P_DEFAULT), path_ + ": no object " + name));
  return H5Iget_type(o) == H5I_GROUP;
}

std::vector<std::string> H5File::list(const std::string& group) const {
  std::vector<std::string> names;
  H5Id g(check(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), path_ + ": no group " + group));
  H5G_info_t info{};
  check_status(H5Gget_info(g, &info), path_ + ": cannot list group " + group);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) throw InputError(path_ + ": cannot list group " + group);
    std::string s(size_t(n), '\0');
    if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), size_t(n) + 1, H5P_DEFAULT) < 0)
      throw InputError(path_ + ": cannot list group " + group);
    names.push_back(s);
  }
  return names;
}

namespace {
void write_dataset(H5File& f, const std::string& name, hid_t filetype, hid_t memtype,
                   const void* data, const Shape& shape) {
  hid_t loc = f.ensure_parent_groups(name);
  auto dims = to_hsize(shape);
  H5Id sp(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  H5Id ds(H5Dcreate2(loc, name.c_str(), filetype, sp, H5P_DEFAULT, untimed(H5P_DATASET_CREATE), H5P_DEFAULT));
  check(ds, f.path() + ": cannot create dataset " + name);
  if (numel(shape) == 0) return;
  check_status(H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
               f.path() + ": cannot write dataset " + name);
}
}  // namespace

void H5File::write(const std::string& name, const float* data, const Shape& shape) {
  write_dataset(*this, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, shape);
}
void H5File::write(const std::string& name, const double* data, const Shape& shape) {
  write_dataset(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, shape);
}
void H5File::write(const std::string& name, const int64_t* data, const Shape& shape) {
  write_dataset(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, shape);
}
void H5File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (auto& v : values) ptrs.push_back(v.c_str());
  H5Id t = string_type();
  write_dataset(*this, name, t, t, ptrs.data(), {int64_t(values.size())});
}

void H5File::read_raw(const std::string& name, hid_t memtype, void* out) const {
  H5Id ds(check(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), path_ + ": cannot open " + name));
  if (H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    // The system's reason, else the innermost entry's ("data error detected by Fletcher32 checksum").
    const Hdf5Failure fail = hdf5_failure();
    const std::string& why = fail.reason.empty() ? fail.innermost : fail.reason;
    throw InputError(path_ + ": cannot read dataset '" + name + "'" + (why.empty() ? "" : ": " + why));
  }
}

Shape H5File::check_shape(const std::string& name, const Shape& expect) const {
  if (!exists(name)) throw InputError(path_ + ": missing dataset '" + name + "'");
  Shape s = shape(name);
  if (!expect.empty() && s != expect)
    throw InputError(path_ + ": dataset '" + name + "' has shape " + shape_str(s) + ", expected " +
                     shape_str(expect));
  return s;
}

#define MAMBADNA_READ_TYPED(T, MEMTYPE)                                                      \
  {                                                                                          \
    const Shape s = check_shape(name, expect);                                               \
    std::vector<T> v(size_t(numel(s)));                                                      \
    if (!v.empty()) read_raw(name, MEMTYPE, v.data());                                       \
    return v;                                                                                \
  }

std::vector<float> H5File::read_f32(const std::string& name, const Shape& expect) const
    MAMBADNA_READ_TYPED(float, H5T_NATIVE_FLOAT)
std::vector<double> H5File::read_f64(const std::string& name, const Shape& expect) const
    MAMBADNA_READ_TYPED(double, H5T_NATIVE_DOUBLE)
std::vector<int64_t> H5File::read_i64(const std::string& name, const Shape& expect) const
    MAMBADNA_READ_TYPED(int64_t, H5T_NATIVE_INT64)
#undef MAMBADNA_READ_TYPED

std::vector<std::string> H5File::read_strings(const std::string& name) const {
  Shape s = shape(name);
  std::vector<char*> ptrs(size_t(numel(s)), nullptr);
  H5Id t = string_type();
  if (!ptrs.empty()) read_raw(name, t, ptrs.data());
  std::vector<std::string> out;
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    H5free_memory(p);
  }
  return out;
}

void H5File::create_rows(const std::string& name, int64_t rows, int64_t cols) {
  hid_t loc = ensure_parent_groups(name);
  hsize_t dims[2] = {hsize_t(rows), hsize_t(cols)};
  hsize_t chunk[2] = {hsize_t(std::clamp<int64_t>((1 << 18) / std::max<int64_t>(1, cols), 1, std::max<int64_t>(1, rows))),
                      hsize_t(std::max<int64_t>(1, cols))};
  H5Id sp(H5Screate_simple(2, dims, nullptr));
  H5Id plist = untimed(H5P_DATASET_CREATE);
  if (rows > 0) H5Pset_chunk(plist, 2, chunk);
  H5Id ds(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, sp, H5P_DEFAULT, plist, H5P_DEFAULT));
  check(ds, path_ + ": cannot create dataset " + name);
}

namespace {
void rows_io(hid_t file, const std::string& path, const std::string& name, int64_t row0,
             void* data, int64_t nrows, bool write) {
  if (nrows <= 0) return;
  H5Id ds(check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path + ": cannot open " + name));
  H5Id fsp(check(H5Dget_space(ds), path + ": cannot open " + name));
  if (H5Sget_simple_extent_ndims(fsp) != 2) throw InputError(path + ": " + name + " is not a table of rows (2-D)");
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(fsp, dims, nullptr);
  if (row0 < 0 || hsize_t(row0 + nrows) > dims[0])
    throw UsageError(path + ": rows " + std::to_string(row0) + ".." + std::to_string(row0 + nrows) +
                     " outside dataset " + name);
  hsize_t start[2] = {hsize_t(row0), 0}, count[2] = {hsize_t(nrows), dims[1]};
  check_status(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, nullptr, count, nullptr),
               path + ": cannot select rows of " + name);
  H5Id msp(H5Screate_simple(2, count, nullptr));
  herr_t st = write ? H5Dwrite(ds, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, data)
                    : H5Dread(ds, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, data);
  check_status(st, path + ": cannot " + (write ? "write" : "read") + " dataset " + name);
}
}  // namespace

void H5File::write_rows(const std::string& name, int64_t row0, const float* data, int64_t nrows) {
  rows_io(file_, path_, name, row0, const_cast<float*>(data), nrows, true);
}

void H5File::read_rows(const std::string& name, int64_t row0, float* data, int64_t nrows) const {
  rows_io(file_, path_, name, row0, data, nrows, false);
}

namespace {
H5Id open_object(hid_t file, const std::string& obj, const std::string& path) {
  return H5Id(check(H5Oopen(file, obj.c_str(), H5P_DEFAULT), path + ": no object " + obj));
}
void put_attr(hid_t file, const std::string& obj, const std::string& key, hid_t type,
              const void* value, const std::string& path) {
  H5Id o = open_object(file, obj, path);
  if (H5Aexists(o, key.c_str()) > 0) check_status(H5Adelete(o, key.c_str()), path + ": cannot replace attribute " + key);
  H5Id sp(H5Screate(H5S_SCALAR));
  H5Id a(H5Acreate2(o, key.c_str(), type, sp, H5P_DEFAULT, H5P_DEFAULT));
  check(a, path + ": cannot create attribute " + key);
  check_status(H5Awrite(a, type, value), path + ": cannot write attribute " + key);
}
}  // namespace

void H5File::set_attr(const std::string& obj, const std::string& key, int64_t v) {
  put_attr(file_, obj, key, H5T_NATIVE_INT64, &v, path_);
}
void H5File::set_attr(const std::string& obj, const std::string& key, double v) {
  put_attr(file_, obj, key, H5T_NATIVE_DOUBLE, &v, path_);
}
void H5File::set_attr(const std::string& obj, const std::string& key, const std::string& v) {
  H5Id t = string_type();
  const char* p = v.c_str();
  put_attr(file_, obj, key, t, &p, path_);
}

namespace {
// Whether object `o` has attribute `key`. HDF5 answers neither yes nor no when an attribute
// message of the object does not decode (a type's size past its data, say), for that key and
// every other: the file is corrupt, not without the attribute (an optional one would be taken
// as absent and its default used).
bool attr_exists(hid_t o, const std::string& key, const std::string& path) {
  const htri_t there = H5Aexists(o, key.c_str());
  if (there < 0) {
    const Hdf5Failure fail = hdf5_failure();
    throw InputError(path + ": attribute '" + key + "' cannot be read: the file is corrupt" +
                     (fail.innermost.empty() ? "" : " (" + fail.innermost + ")"));
  }
  return there > 0;
}
}  // namespace

bool H5File::has_attr(const std::string& obj, const std::string& key) const {
  H5Id o = open_object(file_, obj, path_);
  return attr_exists(o, key, path_);
}

namespace {
H5Id open_attr(hid_t file, const std::string& obj, const std::string& key, const std::string& path) {
  H5Id o = open_object(file, obj, path);
  if (!attr_exists(o, key, path)) throw InputError(path + ": missing attribute '" + key + "' on " + obj);
  H5Id a(check(H5Aopen(o, key.c_str(), H5P_DEFAULT), path + ": cannot open attribute " + key));
  // One value (h5py's f.attrs[k] = [16, 32] is two): reading more into one would overrun it.
  H5Id sp(check(H5Aget_space(a), path + ": cannot read attribute " + key));
  const hssize_t n = H5Sget_simple_extent_npoints(sp);
  if (n != 1)
    throw InputError(path + ": attribute '" + key + "' holds " + std::to_string(n) + " values, not one");
  return a;
}
}  // namespace

bool H5File::attr_is_string(const std::string& obj, const std::string& key) const {
  if (!has_attr(obj, key)) return false;
  H5Id a = open_attr(file_, obj, key, path_);
  H5Id t(H5Aget_type(a));
  return H5Tget_class(t) == H5T_STRING;
}

int64_t H5File::attr_i64(const std::string& obj, const std::string& key) const {
  H5Id a = open_attr(file_, obj, key, path_);
  H5Id t(H5Aget_type(a));
  // An enum reads as its value: h5py stores a numpy bool as the enum {FALSE = 0, TRUE = 1}.
  if (H5Tget_class(t) != H5T_INTEGER && H5Tget_class(t) != H5T_FLOAT && H5Tget_class(t) != H5T_ENUM)
    throw InputError(path_ + ": attribute '" + key + "' is not a number");
  int64_t v = 0;
  if (H5Tget_class(t) == H5T_FLOAT) {
    double d = 0;
    check_status(H5Aread(a, H5T_NATIVE_DOUBLE, &d), path_ + ": cannot read attribute " + key);
    if (!(d == std::trunc(d) && std::fabs(d) < 9.2e18))  // NaN, a fraction, past int64
      throw InputError(path_ + ": attribute '" + key + "' is not an integer (" + number_text(d) + ")");
    v = int64_t(d);
  } else {
    check_status(H5Aread(a, H5T_NATIVE_INT64, &v), path_ + ": cannot read attribute " + key);
  }
  return v;
}

double H5File::attr_f64(const std::string& obj, const std::string& key) const {
  H5Id a = open_attr(file_, obj, key, path_);
  H5Id t(H5Aget_type(a));
  if (H5Tget_class(t) != H5T_INTEGER && H5Tget_class(t) != H5T_FLOAT)
    throw InputError(path_ + ": attribute '" + key + "' is not a number");
  double v = 0;
  check_status(H5Aread(a, H5T_NATIVE_DOUBLE, &v), path_ + ": cannot read attribute " + key);
  return v;
}

namespace {
std::atomic<bool> g_string_probe{false};

// HDF5 reads a variable-length string from the file's global heap trusting the length and the
// place its reference gives: one corrupt byte there and the library itself faults (SIGSEGV in
// H5HG_read) or takes gigabytes. So the read is made first in a child process, with the
// program's asynchronous signals blocked (its handlers would remove the run's temporaries), the
// fault signals at their defaults, no core file and 1 GB more address space than the program
// holds: false when the child does not complete it, which it says by a byte down a pipe (so
// that an ignored SIGCHLD, which makes its exit status unknowable, cannot pass a fault). Where
// no child can be started, the read goes ahead as before; the child ends with the program.
// (Only with set_string_probe(true): see io/h5.h.)
bool heap_string_reads(hid_t attr, hid_t mem_type) {
  if (!g_string_probe) return true;
  int fds[2];
  if (::pipe(fds) != 0) return true;
  sigset_t all, was;
  sigfillset(&all);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigdelset(&all, sig);
  pthread_sigmask(SIG_BLOCK, &all, &was);
  const pid_t parent = ::getpid();  // (1 as a container's first process: compared, not assumed)
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // (the program ended before the line above)
    ::close(fds[0]);
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::signal(sig, SIG_DFL);
    struct rlimit none {0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    long pages = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    struct rlimit lim {};
    if (pages > 0 && ::getrlimit(RLIMIT_AS, &lim) == 0) {
      const rlim_t cap = rlim_t(pages) * rlim_t(::sysconf(_SC_PAGESIZE)) + (rlim_t(1) << 30);
      if (lim.rlim_cur == RLIM_INFINITY || cap < lim.rlim_cur) {
        lim.rlim_cur = cap;
        ::setrlimit(RLIMIT_AS, &lim);
      }
    }
    char* p = nullptr;
    const char ok = 1;
    if (H5Aread(attr, mem_type, &p) >= 0 && ::write(fds[1], &ok, 1) == 1) ::_exit(0);
    ::_exit(1);
  }
  pthread_sigmask(SIG_SETMASK, &was, nullptr);
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return true;
  }
  char got = 0;
  ssize_t n;
  while ((n = ::read(fds[0], &got, 1)) < 0 && errno == EINTR) {
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return n == 1 && got == 1;
}
}  // namespace

void set_string_probe(bool on) { g_string_probe = on; }

std::string H5File::attr_str(const std::string& obj, const std::string& key) const {
  H5Id a = open_attr(file_, obj, key, path_);
  H5Id ft(H5Aget_type(a));
  if (H5Tget_class(ft) != H5T_STRING)
    throw InputError(path_ + ": attribute '" + key + "' is not a string");
  if (H5Tis_variable_str(ft) > 0) {
    H5Id t = string_type();
    if (!heap_string_reads(a, t))
      throw InputError(path_ + ": attribute '" + key + "' cannot be read: the file is corrupt (its "
                       "string's length or place in the file's global heap is wrong)");
    char* p = nullptr;
    check_status(H5Aread(a, t, &p), path_ + ": cannot read attribute " + key);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  // Fixed length: the bytes as stored, less their padding. (Converted to a C string of the same
  // size, HDF5 keeps the last byte for a terminator: h5py's NULLPAD b'upper' read as 'uppe'.)
  std::string s(H5Tget_size(ft), '\0');
  check_status(H5Aread(a, ft, s.data()), path_ + ": cannot read attribute " + key);
  if (H5Tget_strpad(ft) == H5T_STR_SPACEPAD)
    s.erase(s.find_last_not_of(' ') + 1);  // (npos + 1 = 0: all spaces)
  else
    s.resize(std::min(s.find('\0'), s.size()));  // NULLTERM, NULLPAD
  return s;
}

void H5File::set_provenance(const std::string& format, const std::string& command_line,
                            const std::vector<std::string>& inputs) {
  set_attr("/", "format", format);
  set_attr("/", "mambadna_version", std::string(MAMBADNA_VERSION));
  set_attr("/", "command_line", command_line);
  std::string joined;
  for (auto& i : inputs) joined += (joined.empty() ? "" : "\n") + i;
  set_attr("/", "inputs", joined);
}

// ---- H5Appender -------------------------------------------------------------------------------

H5Appender::H5Appender(H5File& file, const std::string& name, H5Type type, Shape row_shape,
                       int64_t chunk_rows, int deflate, H5Chunks chunks)
    : path_(file.path()), name_(name), type_(type), row_shape_(std::move(row_shape)),
      chunk_rows_(std::max<int64_t>(1, chunk_rows)), deflate_(deflate), file_(file.appenders_) {
  for (auto d : row_shape_) row_elems_ *= d;
  if (chunks == H5Chunks::fit && type == H5Type::string)
    throw UsageError(path_ + ": " + name + ": a string dataset cannot be sized at its end");
  loc_ = file.ensure_parent_groups(name);
  if (chunks == H5Chunks::fixed) create(chunk_rows_);
  ++file_->alive;  // (last: a constructor that throws has no destructor)
}

void H5Appender::create(int64_t chunk_rows, bool compact) {
  std::vector<hsize_t> dims{compact ? hsize_t(held_rows_) : 0}, maxdims{compact ? dims[0] : H5S_UNLIMITED},
      chunk{hsize_t(std::max<int64_t>(1, chunk_rows))};
  for (auto d : row_shape_) {
    dims.push_back(hsize_t(d));
    maxdims.push_back(hsize_t(d));
    chunk.push_back(hsize_t(std::max<int64_t>(1, d)));
  }
  // Keep a chunk near 1 MiB at most for wide rows.
  while (chunk[0] > 1 && int64_t(chunk[0]) * row_elems_ * 4 > (1 << 20)) chunk[0] /= 2;
  H5Id sp(H5Screate_simple(int(dims.size()), dims.data(), maxdims.data()));
  H5Id plist = untimed(H5P_DATASET_CREATE);
  if (compact) {
    H5Pset_layout(plist, H5D_COMPACT);
  } else {
    H5Pset_chunk(plist, int(chunk.size()), chunk.data());
    if (deflate_ > 0) {  // strings too: their heap references, mostly zeros in a part-filled chunk
      H5Pset_shuffle(plist);
      H5Pset_deflate(plist, unsigned(deflate_));
    }
  }
  H5Id holder;
  hid_t ft = file_type_of(type_, holder);
  ds_ = H5Id(H5Dcreate2(loc_, name_.c_str(), ft, sp, H5P_DEFAULT, plist, H5P_DEFAULT));
  check(ds_, path_ + ": cannot create dataset " + name_);
}

H5Appender::~H5Appender() {
  if (!file_) return;  // moved from
  --file_->alive;
  if (held_rows_ == 0) return;
  // Unwinding (an error: the file is not committed, or its commit must fail), or a failed
  // write: said by the file's finish(), as a destructor cannot throw.
  const auto lost = [&](const std::string& why) {
    if (file_->lost.empty()) file_->lost = why;
  };
  if (std::uncaught_exceptions() > 0) {
    lost(path_ + ": " + name_ + ": rows not written (an error came first)");
    return;
  }
  try {
    finish();
  } catch (const std::exception& e) {
    lost(e.what());
  }
}

H5Appender& H5Appender::operator=(H5Appender&& o) noexcept {
  if (this != &o) {
    this->~H5Appender();  // writes the rows held (a failure: the file's finish() says it)
    new (this) H5Appender(std::move(o));
  }
  return *this;
}

void H5Appender::finish() {
  if (ds_.get() == H5I_INVALID_HID) {
    // Fit: up to 16 KiB (a read's values), in the dataset's header, of its final shape (a
    // chunked dataset of 35 values took ~3 KB of index and headers); more: a chunk of all its rows.
    H5Id holder;
    const bool compact =
        held_rows_ > 0 && size_t(held_rows_ * row_elems_) * H5Tget_size(file_type_of(type_, holder)) <= 16 * 1024;
    return flush_held(std::min<int64_t>(chunk_rows_, std::max<int64_t>(1, held_rows_)), compact);
  }
  if (held_rows_ > 0) flush_held(chunk_rows_, false);
}

void H5Appender::flush_held(int64_t chunk_rows, bool compact) {
  if (ds_.get() == H5I_INVALID_HID) create(chunk_rows, compact);  // (compact: sized from held_rows_)
  if (held_rows_ > 0 && type_ == H5Type::string) {
    std::vector<const char*> ptrs;
    for (const std::string& v : held_strings_) ptrs.push_back(v.c_str());
    write_raw(ptrs.data(), held_type_, held_rows_, !compact);
  } else if (held_rows_ > 0) {
    write_raw(held_.data(), held_type_, held_rows_, !compact);
  }
  held_.clear(), held_strings_.clear(), held_rows_ = 0;
}

void H5Appender::append_raw(const void* data, hid_t memtype, int64_t nrows) {
  if (type_ == H5Type::string) throw UsageError(path_ + ": " + name_ + ": appending numbers to a string dataset");
  if (nrows <= 0) return;
  if (held_type_.get() == H5I_INVALID_HID) {  // the first rows' type, kept for the appender's life
    held_type_ = H5Id(check(H5Tcopy(memtype), path_ + ": cannot hold rows of dataset " + name_));
  } else if (H5Tequal(held_type_, memtype) <= 0) {
    throw UsageError(path_ + ": " + name_ + ": rows of two element types appended to one dataset");
  }
  const auto* bytes = static_cast<const char*>(data);
  held_.insert(held_.end(), bytes, bytes + size_t(nrows * row_elems_) * H5Tget_size(memtype));
  held_rows_ += nrows;
  if (held_rows_ >= chunk_rows_) flush_held(chunk_rows_, false);
}

void H5Appender::write_raw(const void* data, hid_t memtype, int64_t nrows, bool extend) {
  std::vector<hsize_t> newdims{hsize_t(rows_ + nrows)}, start{hsize_t(rows_)}, count{hsize_t(nrows)};
  for (auto d : row_shape_) {
    newdims.push_back(hsize_t(d));
    start.push_back(0);
    count.push_back(hsize_t(d));
  }
  if (extend) check_status(H5Dset_extent(ds_, newdims.data()), path_ + ": cannot extend dataset " + name_);
  H5Id fsp(check(H5Dget_space(ds_), path_ + ": cannot extend dataset " + name_));
  check_status(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
               path_ + ": cannot extend dataset " + name_);
  H5Id msp(H5Screate_simple(int(count.size()), count.data(), nullptr));
  // A type conversion (strings, f16) strip-mines through a buffer that HDF5 allocates and
  // zeroes per write, 1 MiB by default: fresh pages for every row appended (3.6 M page faults
  // for embed's 3,270 records, 40% of its time). 64 KiB comes from the heap and is reused.
  static const hid_t xfer = [] {
    const hid_t p = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_buffer(p, 64 * 1024, nullptr, nullptr);
    return p;
  }();
  check_status(H5Dwrite(ds_, memtype, msp, fsp, xfer, data), path_ + ": cannot write dataset " + name_);
  rows_ += nrows;
}

void H5Appender::append(const float* rows, int64_t n) {
  if (type_ != H5Type::f32 && type_ != H5Type::f16 && type_ != H5Type::f64)
    throw UsageError(path_ + ": " + name_ + ": appending floats to a non-float dataset");
  if (type_ == H5Type::f16) {
    std::vector<uint16_t> h(size_t(n * row_elems_));
    for (size_t i = 0; i < h.size(); ++i) h[i] = float_to_half(rows[i]);
    H5Id t = half_type();
    append_raw(h.data(), t, n);
    return;
  }
  append_raw(rows, H5T_NATIVE_FLOAT, n);
}
void H5Appender::append(const double* rows, int64_t n) { append_raw(rows, H5T_NATIVE_DOUBLE, n); }
void H5Appender::append(const int64_t* rows, int64_t n) { append_raw(rows, H5T_NATIVE_INT64, n); }
void H5Appender::append(const int32_t* rows, int64_t n) { append_raw(rows, H5T_NATIVE_INT32, n); }
void H5Appender::append(const std::string& value) {
  if (type_ != H5Type::string) throw UsageError(path_ + ": " + name_ + ": appending a string to a numeric dataset");
  if (held_type_.get() == H5I_INVALID_HID) held_type_ = string_type();
  held_strings_.push_back(value);
  held_rows_ += 1;
  if (held_rows_ >= chunk_rows_) flush_held(chunk_rows_, false);
}
void H5Appender::append(const std::vector<std::string>& values) {
  for (const std::string& v : values) append(v);
}

H5ReadColumns::H5ReadColumns(H5File& file, int64_t rows_before)
    : contig_(file, "reads/contig", H5Type::string, Shape{}),
      pos_(file, "reads/pos", H5Type::i64, Shape{}),
      end_(file, "reads/end", H5Type::i64, Shape{}),
      flag_(file, "reads/flag", H5Type::i64, Shape{}),
      mapq_(file, "reads/mapq", H5Type::i64, Shape{}) {
  for (int64_t i = 0; i < rows_before; ++i) append(kNotRead);
}

void H5ReadColumns::append(const Alignment& a) {
  contig_.append(a.contig);
  pos_.append(&a.pos, 1);
  end_.append(&a.end, 1);
  flag_.append(&a.flag, 1);
  mapq_.append(&a.mapq, 1);
}

}  // namespace mambadna::io
