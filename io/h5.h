// A thin, throwing layer over the HDF5 C API: files that appear only when complete, typed
// datasets and attributes, and extendible datasets written chunk by chunk.
//
// Writers create "<path>.tmp.<pid>" (a new file, never one that was there: io/temp_files.h) and
// rename it to <path> in commit(); a writer destroyed without commit() (an error, a kill)
// removes its temporary file, so a file at <path> is always complete. "-" (standard output)
// and special files (/dev/null, a FIFO) get a temporary in the temporary directory, copied
// there by commit().
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/chunk.h"

namespace mambadna::io {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(256, 64)"

// Owns one HDF5 identifier and closes it with the right H5*close.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  H5Id& operator=(H5Id&& o) noexcept;
  ~H5Id();
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }  // the caller closes it
  void reset() noexcept;  // closes the identifier held, if any

 private:
  hid_t id_ = H5I_INVALID_HID;
};

enum class H5Type { f32, f64, f16, i64, i32, string };

// Whether string attributes (variable length, in the file's global heap) are read first in a
// child process (fork), so that a corrupt heap, which faults HDF5 itself (SIGSEGV) or takes
// gigabytes, is refused as corrupt. Off by default: it needs that no other thread of the program
// be inside HDF5 or OpenBLAS at the time (their locks would hang the child, and the caller with
// it). The mambadna program turns it on (it reads files while nothing else runs).
void set_string_probe(bool on);

class H5File {
 public:
  static H5File create(const std::string& path);  // write to a temporary; commit() publishes
  // A scratch file, never published: "<output>.<tag>.tmp.<pid>" (io::create_temp_file) beside a
  // file output, or in the temporary directory for none (""), standard output ("-") or a special
  // file (/dev/stdout, a FIFO); removed when the object goes. Its messages name it and what it is
  // for (`purpose`: "the reverse strand's scratch file").
  static H5File create_scratch(const std::string& output, const std::string& tag, const std::string& purpose);
  static H5File open_read(const std::string& path);
  H5File(H5File&&) noexcept;
  H5File& operator=(H5File&&) noexcept;
  ~H5File();

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }
  // finish() completes the temporary file (flushes and closes it: every write error shows here);
  // commit() finishes it if need be and puts it in place (renames it to path(), or copies it to
  // standard output or a special file). A run with several outputs finishes them all before it
  // commits any, so that a failure leaves none.
  void finish();
  void commit();

  // ---- datasets (names may contain '/': groups are created as needed)
  bool exists(const std::string& name) const;
  Shape shape(const std::string& name) const;
  // The dataset's shape, which must exist and equal `expect` (when not empty), else an error
  // names the dataset and both shapes (what the reads below check first).
  Shape check_shape(const std::string& name, const Shape& expect) const;
  std::vector<std::string> list(const std::string& group = "/") const;  // member names
  bool is_group(const std::string& name) const;  // a group, not a dataset
  void write(const std::string& name, const float* data, const Shape& shape);
  void write(const std::string& name, const double* data, const Shape& shape);
  void write(const std::string& name, const int64_t* data, const Shape& shape);
  void write_strings(const std::string& name, const std::vector<std::string>& values);
  // Reads a whole dataset converting to the requested element type; the stored shape must
  // equal `expect` (when not empty) or an error names the dataset and both shapes.
  std::vector<float> read_f32(const std::string& name, const Shape& expect = {}) const;
  std::vector<double> read_f64(const std::string& name, const Shape& expect = {}) const;
  std::vector<int64_t> read_i64(const std::string& name, const Shape& expect = {}) const;
  std::vector<std::string> read_strings(const std::string& name) const;

  // Fixed-size 2-d float datasets read and written a block of rows at a time (scratch data).
  void create_rows(const std::string& name, int64_t rows, int64_t cols);  // f32, chunked
  void write_rows(const std::string& name, int64_t row0, const float* data, int64_t nrows);
  void read_rows(const std::string& name, int64_t row0, float* data, int64_t nrows) const;

  // ---- attributes of an object ("/" = the file)
  void set_attr(const std::string& obj, const std::string& key, int64_t v);
  void set_attr(const std::string& obj, const std::string& key, double v);
  void set_attr(const std::string& obj, const std::string& key, const std::string& v);
  bool has_attr(const std::string& obj, const std::string& key) const;
  bool attr_is_string(const std::string& obj, const std::string& key) const;  // false if absent
  // A numeric attribute holding one value: an integer, a float with an integer value, or an enum
  // (h5py's bool) as its value; attr_str reads fixed-length (any padding) and variable strings.
  int64_t attr_i64(const std::string& obj, const std::string& key) const;
  double attr_f64(const std::string& obj, const std::string& key) const;
  std::string attr_str(const std::string& obj, const std::string& key) const;

  // Standard provenance attributes on "/": format, tool version, command line, inputs.
  void set_provenance(const std::string& format, const std::string& command_line,
                      const std::vector<std::string>& inputs);

  hid_t ensure_parent_groups(const std::string& name);  // returns the file id

 private:
  H5File() = default;
  static void create_at_temp(H5File& f, const std::string& name);  // H5Fcreate at f.tmp_path_
  void discard() noexcept;  // closes the file; an uncommitted temporary is removed
  void read_raw(const std::string& name, hid_t memtype, void* out) const;  // the whole dataset
  std::string path_, tmp_path_;
  H5Id file_;
  bool writable_ = false;
  // What the file's appenders tell it (shared: the file may move): how many are alive (finish()
  // refuses the file while one is: a fit appender's rows may be in no dataset yet), and why
  // rows of one were not written when it was destroyed (no exception may leave a destructor).
  struct Appenders {
    int64_t alive = 0;
    std::string lost;
  };
  std::shared_ptr<Appenders> appenders_ = std::make_shared<Appenders>();
  friend class H5Appender;
};

// An extendible dataset of rows (rows, cols...) grown with append(): chunked and deflated.
// Element type f32, f16 (converted from float on write), f64, i64 or i32; strings as a
// 1-d dataset of variable-length strings. Rows are held and written chunk_rows at a time (one
// row a write cost ~10-20 us: 45 s for the five reads/ columns of a million reads); finish()
// writes the rest, as the destructor does (a failure there makes the file's finish() throw).
// Fit (numeric types): the dataset is made once chunk_rows rows have come, or at finish(), so
// that one that ends shorter is a chunk of its own length, or up to 16 KiB a dataset of that
// fixed shape stored in its header (compact): a 35-base read's per-position values in a chunk
// of 65,536 took 3.5 ms a read to fill and deflate, and 20 times their size on disk.
// Its groups are made at once (in the order of the appenders); an appender must be finished
// or destroyed before the file is finished.
enum class H5Chunks { fixed, fit };
class H5Appender {
 public:
  H5Appender(H5File& file, const std::string& name, H5Type type, Shape row_shape,
             int64_t chunk_rows = 4096, int deflate = 4, H5Chunks chunks = H5Chunks::fixed);
  H5Appender(H5Appender&&) noexcept = default;
  H5Appender& operator=(H5Appender&& o) noexcept;  // writes the rows this one holds first
  ~H5Appender();
  void finish();  // writes the rows held (fit: makes the dataset first, if it is not made)
  void append(const float* rows, int64_t nrows);  // for f32/f16 datasets
  void append(const double* rows, int64_t nrows);
  void append(const int64_t* rows, int64_t nrows);
  void append(const int32_t* rows, int64_t nrows);
  void append(const std::string& value);  // for string datasets, one row
  void append(const std::vector<std::string>& values);  // for string datasets, a row each
  int64_t rows() const { return rows_ + held_rows_; }
  hid_t id() const { return ds_.get(); }

 private:
  void create(int64_t chunk_rows, bool compact = false);  // compact: held_rows_ rows, fixed
  void flush_held(int64_t chunk_rows, bool compact);  // makes the dataset if need be, writes held rows
  void append_raw(const void* data, hid_t memtype, int64_t nrows);
  void write_raw(const void* data, hid_t memtype, int64_t nrows, bool extend = true);
  std::string path_;  // the file, for messages
  std::string name_;
  H5Type type_;
  Shape row_shape_;
  int64_t row_elems_ = 1;
  int64_t rows_ = 0;  // written
  H5Id ds_;
  hid_t loc_ = H5I_INVALID_HID;  // the file (not owned)
  int64_t chunk_rows_ = 1;
  int deflate_ = 0;
  // Rows not yet written, as appended (held_type_); strings as copies.
  std::vector<char> held_;
  std::vector<std::string> held_strings_;
  int64_t held_rows_ = 0;  // (a moved-from appender's: its file_ is null, and it writes nothing)
  H5Id held_type_;
  std::shared_ptr<H5File::Appenders> file_;  // the file's (null in a moved-from appender)
};

// reads/: where each output row's read lies (SAM/BAM/CRAM inputs), columns contig, pos, end,
// flag and mapq as io::Alignment holds them, one row per output row; a row that is not a read
// (a FASTA record, a region) is kNotRead (flag -1). score and embed write it the same way.
class H5ReadColumns {
 public:
  explicit H5ReadColumns(H5File& file, int64_t rows_before = 0);  // rows_before: kNotRead rows
  void append(const Alignment& a);

 private:
  H5Appender contig_, pos_, end_, flag_, mapq_;
};

}  // namespace mambadna::io
