// The HDF5 layer: a file appears only when committed, appenders grow datasets row block by row
// block, float16 is rounded correctly (including the carry into the exponent), attributes round
// trip.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/error.h"
#include "io/h5.h"
#include "io/output_file.h"
#include "io/vcf.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("h5: a writer publishes its file only on commit", "[io][h5]") {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  {
    auto f = io::H5File::create(path);
    const float v[3] = {1, 2, 3};
    f.write("x", v, {3});
    CHECK_FALSE(fs::exists(path));  // still under its temporary name
  }
  // Destroyed without commit (an error, a kill): nothing at the name, no temporary left.
  CHECK_FALSE(fs::exists(path));
  CHECK(std::distance(fs::directory_iterator(dir.file("")), fs::directory_iterator{}) == 0);
  {
    auto f = io::H5File::create(path);
    const float v[3] = {1, 2, 3};
    f.write("g/x", v, {3});
    f.set_attr("/", "n", int64_t(7));
    f.set_attr("/", "eps", 1e-5);
    f.set_attr("/g/x", "name", std::string("ex"));
    f.commit();
  }
  auto r = io::H5File::open_read(path);
  CHECK(r.read_f32("g/x") == std::vector<float>{1, 2, 3});
  CHECK(r.attr_i64("/", "n") == 7);
  CHECK(r.attr_f64("/", "eps") == 1e-5);
  CHECK(r.attr_str("/g/x", "name") == "ex");
  CHECK_THROWS_WITH(r.read_f32("g/x", {4}), Catch::Contains("'g/x' has shape (3,), expected (4,)"));
  CHECK_THROWS_WITH(r.read_f32("nope"), Catch::Contains("missing dataset 'nope'"));
}

TEST_CASE("h5: attributes in h5py's forms read whole", "[io][h5]") {
  TempDir dir;
  const std::string path = dir.file("h5py.h5");
  {
    auto f = io::H5File::create(path);
    // Fixed-length strings of every padding: NULLPAD fills its size (np.bytes_(b'upper')).
    test::set_fixed_str_attr(f.id(), "nullpad", "upper", H5T_STR_NULLPAD);
    test::set_fixed_str_attr(f.id(), "nullpad_short", std::string("byte\0\0\0", 7), H5T_STR_NULLPAD);
    test::set_fixed_str_attr(f.id(), "nullterm", std::string("keep\0", 5), H5T_STR_NULLTERM);
    test::set_fixed_str_attr(f.id(), "spacepad", "up      ", H5T_STR_SPACEPAD);
    test::set_bool_attr(f.id(), "yes", true);
    test::set_bool_attr(f.id(), "no", false);
    f.set_attr("/", "big", 1e300);
    const int64_t two[2] = {16, 32};
    test::set_raw_attr(f.id(), "one", H5T_NATIVE_INT64, two);
    const hsize_t n = 2;
    const hid_t sp = H5Screate_simple(1, &n, nullptr);
    const hid_t a = H5Acreate2(f.id(), "two", H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(H5Awrite(a, H5T_NATIVE_INT64, two) >= 0);
    H5Aclose(a), H5Sclose(sp);
    f.commit();
  }
  auto r = io::H5File::open_read(path);
  CHECK(r.attr_str("/", "nullpad") == "upper");
  CHECK(r.attr_str("/", "nullpad_short") == "byte");
  CHECK(r.attr_str("/", "nullterm") == "keep");
  CHECK(r.attr_str("/", "spacepad") == "up");
  CHECK(r.attr_is_string("/", "spacepad"));
  CHECK_FALSE(r.attr_is_string("/", "yes"));
  CHECK_FALSE(r.attr_is_string("/", "absent"));
  // A numpy bool is an enum: its value.
  CHECK(r.attr_i64("/", "yes") == 1);
  CHECK(r.attr_i64("/", "no") == 0);
  // Not an integer: the number as %g writes it, not 300 digits.
  CHECK_THROWS_WITH(r.attr_i64("/", "big"), Catch::EndsWith("h5py.h5: attribute 'big' is not an integer (1e+300)"));
  // Two values where one is read would overrun it.
  CHECK(r.attr_i64("/", "one") == 16);
  CHECK_THROWS_WITH(r.attr_i64("/", "two"), Catch::Contains("attribute 'two' holds 2 values, not one"));
}

TEST_CASE("h5: a file that does not open says what HDF5 says", "[io][h5]") {
  TempDir dir;
  const std::string whole = dir.file("whole.h5");
  {
    auto f = io::H5File::create(whole);
    const std::vector<float> v(40000, 1.0f);
    f.write("x", v.data(), {int64_t(v.size())});
    f.commit();
  }
  // Cut short (a copy interrupted): HDF5's own words, and no hint about locks.
  const std::string cut = dir.file("cut.h5");
  fs::copy_file(whole, cut);
  fs::resize_file(cut, fs::file_size(whole) / 2);
  CHECK_THROWS_WITH(io::H5File::open_read(cut),
                    Catch::StartsWith(cut + ": cannot open HDF5 file: truncated file: eof = " +
                                      std::to_string(fs::file_size(cut))) &&
                        !Catch::Contains("locks files"));
  // Held with a lock (a writer): the hint about HDF5's file locking.
  const char* locking = std::getenv("HDF5_USE_FILE_LOCKING");
  if (!locking || std::string(locking) != "FALSE") {
    const int fd = ::open(whole.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    CHECK_THROWS_WITH(io::H5File::open_read(whole),
                      Catch::StartsWith(whole + ": cannot open HDF5 file: unable to lock file") &&
                          Catch::Contains("HDF5_USE_FILE_LOCKING=FALSE"));
    ::close(fd);
  }
  CHECK(io::H5File::open_read(whole).shape("x") == io::Shape{40000});
}

TEST_CASE("h5: a dataset that does not read says what HDF5 says", "[io][h5]") {
  // A dataset with Fletcher32 checksums (as h5py writes with fletcher32=True), one bit of its
  // data flipped: the read names the dataset and the checksum.
  TempDir dir;
  const std::string path = dir.file("sum.h5");
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) + 0.5f;
  {
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t n = v.size();
    const hid_t sp = H5Screate_simple(1, &n, nullptr), pl = H5Pcreate(H5P_DATASET_CREATE);
    REQUIRE(H5Pset_chunk(pl, 1, &n) >= 0);
    REQUIRE(H5Pset_fletcher32(pl) >= 0);
    const hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Dclose(d), H5Pclose(pl), H5Sclose(sp), H5Fclose(f);
  }
  CHECK(io::H5File::open_read(path).read_f32("x") == v);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(v.data() + 100), 8));
  REQUIRE(at != std::string::npos);
  bytes[at] = char(bytes[at] ^ 1);
  std::ofstream(path, std::ios::binary) << bytes;
  CHECK_THROWS_WITH(io::H5File::open_read(path).read_f32("x"),
                    path + ": cannot read dataset 'x': data error detected by Fletcher32 checksum");
}

TEST_CASE("h5: a string attribute whose stored length is corrupt is refused, not read", "[io][h5]") {
  // One byte of a file (found by its bytes) made wrong where HDF5 trusts it: the library itself
  // would fault (SIGSEGV in H5HG_read) or take gigabytes reading a few bytes.
  TempDir dir;
  auto bytes_of = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // (The program reads string attributes first in a child process; a library caller may.)
  struct Probe {
    Probe() { io::set_string_probe(true); }
    ~Probe() { io::set_string_probe(false); }
  } probe;
  // A variable-length string (as h5py and mambadna write them) lives in the global heap, its
  // object's 8-byte size just before its text: a size of 0x5555555555555555.
  const std::string vl = dir.file("vl.h5");
  const std::string text = "a string in the global heap, 0123456789";
  {
    io::H5File f = io::H5File::create(vl);
    f.set_attr("/", "note", text);
    f.set_attr("/", "other", std::string("fine"));
    f.commit();
  }
  CHECK(io::H5File::open_read(vl).attr_str("/", "note") == text);
  std::string bytes = bytes_of(vl);
  const size_t at = bytes.find(text);
  REQUIRE(at != std::string::npos);
  REQUIRE(at >= 8);
  REQUIRE(bytes[at - 8] == char(text.size()));
  for (size_t i = at - 8; i < at; ++i) bytes[i] = char(0x55);
  std::ofstream(vl, std::ios::binary) << bytes;
  CHECK_THROWS_WITH(io::H5File::open_read(vl).attr_str("/", "note"),
                    vl + ": attribute 'note' cannot be read: the file is corrupt (its string's length or place "
                         "in the file's global heap is wrong)");

  // A fixed-length string of 43 bytes whose type says 256 (HDF5 then cannot decode the attribute:
  // corrupt, not missing): the datatype message (class 3,
  // version 1: 0x13, three bytes of bit fields, then the size) rewritten.
  const std::string fixed = dir.file("fixed.h5");
  {
    const hid_t f = H5Fcreate(fixed.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    REQUIRE(H5Tset_size(t, 43) >= 0);
    const hid_t a = H5Acreate2(f, "fixed", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const std::string v(43, 'Q');
    REQUIRE(H5Awrite(a, t, v.data()) >= 0);
    H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Fclose(f);
  }
  CHECK(io::H5File::open_read(fixed).attr_str("/", "fixed") == std::string(43, 'Q'));
  bytes = bytes_of(fixed);
  size_t size_at = std::string::npos;
  for (size_t i = 0; i + 8 <= bytes.size(); ++i)
    if (bytes[i] == char(0x13) && bytes.compare(i + 4, 4, std::string("\x2b\0\0\0", 4)) == 0) {
      REQUIRE(size_at == std::string::npos);  // one such message
      size_at = i + 4;
    }
  REQUIRE(size_at != std::string::npos);
  bytes.replace(size_at, 4, std::string("\0\1\0\0", 4));
  std::ofstream(fixed, std::ios::binary) << bytes;
  CHECK_THROWS_WITH(io::H5File::open_read(fixed).attr_str("/", "fixed"),
                    Catch::StartsWith(fixed + ": attribute 'fixed' cannot be read: the file is corrupt"));
  // HDF5 then answers no question about the object's attributes: an optional one asked for is
  // not taken as absent (its default would stand in for what the file says).
  CHECK_THROWS_WITH(io::H5File::open_read(fixed).has_attr("/", "optional"),
                    Catch::StartsWith(fixed + ": attribute 'optional' cannot be read: the file is corrupt"));
}

TEST_CASE("h5: a file is finished only with nothing in it open", "[io][h5]") {
  // With a dataset open, H5Fclose returns at once and the file's real close (and any error it
  // meets) would come after the rename, unseen: finish() refuses, and works once it is closed.
  TempDir dir;
  auto f = io::H5File::create(dir.file("open.h5"));
  std::optional<io::H5Appender> rows;
  rows.emplace(f, "rows", io::H5Type::f32, io::Shape{2});
  const float r[2] = {1, 2};
  rows->append(r, 1);
  CHECK_THROWS_WITH(f.finish(), Catch::Contains("finish() with 1 objects of the file still open"));
  rows.reset();
  f.commit();
  CHECK(io::H5File::open_read(dir.file("open.h5")).read_f32("rows") == std::vector<float>{1, 2});
}

TEST_CASE("h5: appenders grow datasets, float16 rounds to nearest even", "[io][h5]") {
  TempDir dir;
  const std::string path = dir.file("b.h5");
  const std::vector<float> v = {0.99995f, 1.0f, -1.00048828125f, 0.031249f, 65504.0f, 65520.0f,
                                1e-7f, -2.5e-5f, 0.0f, 3.14159265f};
  // The float16 values, from the IEEE definition by hand.
  const std::vector<float> h = {1.0f, 1.0f, -1.0f, 0.03125f, 65504.0f, INFINITY,
                                1.1920928955078125e-07f, -2.4974346160888672e-05f, 0.0f, 3.140625f};
  {
    auto f = io::H5File::create(path);
    {  // (closed before the file is: H5File::finish refuses a file with datasets open)
      io::H5Appender a(f, "half", io::H5Type::f16, {2}, 3);
      io::H5Appender s(f, "full", io::H5Type::f32, {}, 4);
      io::H5Appender n(f, "names", io::H5Type::string, {});
      a.append(v.data(), 2);
      a.append(v.data() + 4, 3);
      for (float x : v) s.append(&x, 1);
      n.append(std::string("alpha"));
      n.append(std::string(""));
      CHECK(a.rows() == 5);
    }
    f.commit();
  }
  auto r = io::H5File::open_read(path);
  CHECK(r.shape("half") == io::Shape{5, 2});
  CHECK(r.read_f32("half") == h);
  CHECK(r.read_f32("full") == v);
  CHECK(r.read_strings("names") == std::vector<std::string>{"alpha", ""});
}

TEST_CASE("h5: appenders hold rows a chunk at a time, and a file with rows lost is not committed", "[io][h5]") {
  TempDir dir;
  const std::string path = dir.file("held.h5");
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("read" + std::string(size_t(i), 'x'));
  {
    auto f = io::H5File::create(path);
    {
      io::H5Appender s(f, "s", io::H5Type::string, {}, 3);  // chunks of 3: written at 3, 6 and 9 rows
      io::H5Appender i(f, "i", io::H5Type::i64, {}, 4);
      s.append(std::vector<std::string>(names.begin(), names.begin() + 4));
      for (int64_t k = 0; k < 7; ++k) i.append(&k, 1);
      for (size_t k = 4; k < names.size(); ++k) s.append(names[k]);
      CHECK(s.rows() == 10);
      CHECK(i.rows() == 7);
    }  // the last rows written as they close
    f.commit();
  }
  auto r = io::H5File::open_read(path);
  CHECK(r.read_strings("s") == names);
  CHECK(r.read_i64("i") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  // Rows held when an error unwinds are not written: the file cannot be committed after it.
  const std::string lost = dir.file("lost.h5");
  auto f = io::H5File::create(lost);
  try {
    io::H5Appender a(f, "x", io::H5Type::f32, {});
    const float v = 1;
    a.append(&v, 1);
    throw std::runtime_error("an error");
  } catch (const std::runtime_error&) {
  }
  CHECK_THROWS_WITH(f.commit(), lost + ": x: rows not written (an error came first)");
  CHECK_FALSE(fs::exists(lost));
  // An appender sized at its end, alive at commit with fewer rows than a chunk (no dataset yet,
  // nothing of the file open): refused, not committed without its rows.
  const std::string alive = dir.file("alive.h5");
  auto g = io::H5File::create(alive);
  std::optional<io::H5Appender> fit;
  fit.emplace(g, "per/x", io::H5Type::f32, io::Shape{}, 1024, 1, io::H5Chunks::fit);
  const float three[3] = {1, 2, 3};
  fit->append(three, 3);
  CHECK_THROWS_WITH(g.commit(), alive + ": finish() with 1 appenders of the file alive");
  // Numbers into a string dataset, or rows of another element type: refused as they come.
  io::H5Appender strings(g, "names", io::H5Type::string, {});
  const int64_t one = 1;
  CHECK_THROWS_WITH(strings.append(&one, 1), Catch::Contains("names: appending numbers to a string dataset"));
  const double half = 0.5;
  CHECK_THROWS_WITH(fit->append(&half, 1), Catch::Contains("per/x: rows of two element types"));
}

TEST_CASE("h5: an appender sized at its end: a short dataset is compact, a longer one a chunk of its rows",
          "[io][h5]") {
  // Per-position values of reads were each a chunk of 65,536 floats: 3.5 ms a read to fill and
  // deflate, and 20 times their size on disk.
  TempDir dir;
  const std::string path = dir.file("fit.h5");
  std::vector<float> v(70000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 977) * 0.25f - 3.0f;  // exact in f16 too
  {
    auto f = io::H5File::create(path);
    {
      io::H5Appender read(f, "g/0/read", io::H5Type::f32, {}, 65536, 4, io::H5Chunks::fit);
      io::H5Appender half(f, "g/0/half", io::H5Type::f16, {4}, 1024, 1, io::H5Chunks::fit);
      io::H5Appender region(f, "g/1/region", io::H5Type::f32, {}, 65536, 4, io::H5Chunks::fit);
      io::H5Appender genome(f, "g/2/genome", io::H5Type::f32, {}, 65536, 4, io::H5Chunks::fit);
      io::H5Appender none(f, "g/3/none", io::H5Type::f32, {}, 65536, 4, io::H5Chunks::fit);
      read.append(v.data(), 20), read.append(v.data() + 20, 15);
      half.append(v.data(), 9);
      region.append(v.data(), 10000);
      for (size_t at = 0; at < v.size(); at += 7000) genome.append(v.data() + at, 7000);
      CHECK(genome.rows() == 70000);
      for (auto* a : {&read, &half, &region, &genome, &none}) a->finish();
      CHECK_THROWS_WITH(io::H5Appender(f, "names", io::H5Type::string, {}, 64, 4, io::H5Chunks::fit),
                        Catch::Contains("a string dataset cannot be sized at its end"));
    }
    f.commit();
  }
  auto r = io::H5File::open_read(path);
  CHECK(r.list("g") == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(r.read_f32("g/0/read") == std::vector<float>(v.begin(), v.begin() + 35));
  CHECK(r.read_f32("g/0/half") == std::vector<float>(v.begin(), v.begin() + 36));
  CHECK(r.shape("g/0/half") == io::Shape{9, 4});
  CHECK(r.read_f32("g/1/region") == std::vector<float>(v.begin(), v.begin() + 10000));
  CHECK(r.read_f32("g/2/genome") == v);
  CHECK(r.shape("g/3/none") == io::Shape{0});
  // Layouts: compact (in the header, up to 16 KiB), else chunks of the rows or of 65,536.
  const auto layout = [&](const char* name, hsize_t* chunk) {
    const hid_t ds = H5Dopen2(r.id(), name, H5P_DEFAULT);
    const hid_t pl = H5Dget_create_plist(ds);
    const H5D_layout_t l = H5Pget_layout(pl);
    if (l == H5D_CHUNKED) H5Pget_chunk(pl, 1, chunk);
    H5Pclose(pl), H5Dclose(ds);
    return l;
  };
  hsize_t chunk = 0;
  CHECK(layout("g/0/read", &chunk) == H5D_COMPACT);
  CHECK(layout("g/0/half", &chunk) == H5D_COMPACT);
  CHECK(layout("g/1/region", &chunk) == H5D_CHUNKED);
  CHECK(chunk == 10000);
  CHECK(layout("g/2/genome", &chunk) == H5D_CHUNKED);
  CHECK(chunk == 65536);
  CHECK(fs::file_size(path) < 150000);  // the 80,000 values deflated: ~4 KB a chunk of 977 steps
}

TEST_CASE("outputs: special files are written in place, never replaced", "[io][h5]") {
  TempDir dir;
  REQUIRE(mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK(io::is_special_file("/dev/null"));
  CHECK(io::is_special_file(dir.file("fifo")));
  CHECK_FALSE(io::is_special_file(dir.file("absent")));
  {
    io::TextOutput out("/dev/null");
    out.write("discarded\n");
    out.commit();
  }
  {
    auto f = io::H5File::create("/dev/null");
    const float v[2] = {1, 2};
    f.write("x", v, {2});
    f.commit();
  }
  struct stat st {};
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));  // still the device
  // A regular file appears only on commit.
  {
    io::TextOutput out(dir.file("t.txt"));
    out.write("abc");
    CHECK_FALSE(fs::exists(dir.file("t.txt")));
    out.commit();
  }
  std::ifstream in(dir.file("t.txt"));
  std::string s;
  in >> s;
  CHECK(s == "abc");
  {
    io::TextOutput out(dir.file("u.txt"));
    out.write("never committed");
  }
  CHECK_FALSE(fs::exists(dir.file("u.txt")));
}

// Writes and commits one output of each writer in `dir`: t.txt ("text"), a.h5 (x = {4}) and
// v.vcf (a header alone).
static void write_each_output(const TempDir& dir) {
  {
    io::TextOutput out(dir.file("t.txt"));
    out.write("text\n");
    out.commit();
  }
  {
    auto f = io::H5File::create(dir.file("a.h5"));
    const float v[1] = {4};
    f.write("x", v, {1});
    f.commit();
  }
  bcf_hdr_t* hdr = bcf_hdr_init("w");
  io::VcfWriter w(dir.file("v.vcf"), 'v', hdr);
  w.commit();
  bcf_hdr_destroy(hdr);
}

TEST_CASE("outputs: a temporary is a new file, never one planted at its name", "[io][h5]") {
  // A symbolic link (or a file) waiting at the temporary's predictable name, in the output's
  // directory or, for standard output and special files, in the temporary directory: the
  // writers create another name and the link's target is untouched.
  TempDir dir;
  const std::string victim = dir.write("victim.txt", "precious\n");
  const std::string pid = std::to_string(::getpid());
  auto plant = [&](const std::string& at) { REQUIRE(::symlink(victim.c_str(), at.c_str()) == 0); };
  plant(dir.file("t.txt.tmp." + pid));
  plant(dir.file("a.h5.tmp." + pid));
  plant(dir.file("v.vcf.tmp." + pid));
  write_each_output(dir);
  // Standard output's and special files' temporaries live in $TMPDIR.
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir ? old_tmpdir : "";
  REQUIRE(::setenv("TMPDIR", dir.file("").c_str(), 1) == 0);
  plant(dir.file("mambadna.tmp." + pid + ".h5"));
  {
    auto f = io::H5File::create("/dev/null");
    const float v[1] = {5};
    f.write("x", v, {1});
    f.commit();
  }
  if (old_tmpdir) ::setenv("TMPDIR", saved.c_str(), 1);
  else ::unsetenv("TMPDIR");
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  CHECK(text == "precious\n");
  CHECK(io::H5File::open_read(dir.file("a.h5")).read_f32("x") == std::vector<float>{4});
  std::ifstream t(dir.file("t.txt"));
  std::string line;
  std::getline(t, line);
  CHECK(line == "text");
  CHECK(fs::is_regular_file(dir.file("v.vcf")));
  // Only the outputs, the victim and the planted links remain: no temporary is left behind.
  int64_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.file(""))) {
    INFO(e.path());
    CHECK((e.is_symlink() || e.path().filename().string().find(".tmp.") == std::string::npos));
    ++entries;
  }
  CHECK(entries == 4 + 4);
}

TEST_CASE("outputs: a file replaced keeps its permission bits", "[io][h5]") {
  // As a program writing in place keeps them (samtools, bcftools): a file made private (0600) or
  // shared (0664) stays so when a run replaces it; a new file has the umask's bits.
  TempDir dir;
  const mode_t mask = ::umask(022);
  auto mode_of = [](const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
  };
  write_each_output(dir);
  for (const char* name : {"t.txt", "a.h5", "v.vcf"}) CHECK(mode_of(dir.file(name)) == 0644);  // new
  for (mode_t mode : {mode_t(0600), mode_t(0664), mode_t(0640)}) {
    for (const char* name : {"t.txt", "a.h5", "v.vcf"}) REQUIRE(::chmod(dir.file(name).c_str(), mode) == 0);
    write_each_output(dir);
    for (const char* name : {"t.txt", "a.h5", "v.vcf"}) {
      INFO(name << " made " << std::oct << mode);
      CHECK(mode_of(dir.file(name)) == mode);
    }
  }
  CHECK(io::H5File::open_read(dir.file("a.h5")).read_f32("x") == std::vector<float>{4});
  ::umask(mask);
}

TEST_CASE("outputs: a scratch file has one temporary name, its messages say what it is", "[io][h5]") {
  // score's and embed's reverse-strand scratch file was created through create() under a
  // temporary's name, so that it took a second temporary suffix, and its messages named the
  // first name, which was never on disk.
  TempDir dir;
  const std::string pid = std::to_string(::getpid());
  const std::string expect = dir.file("o.h5.rc.tmp." + pid);
  {
    auto s = io::H5File::create_scratch(dir.file("o.h5"), "rc", "the reverse strand's scratch file");
    s.create_rows("rc", 4, 2);
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir.file(""))) names.push_back(e.path().string());
    CHECK(names == std::vector<std::string>{expect});
    std::vector<float> back(2);
    CHECK_THROWS_WITH(s.read_rows("absent", 0, back.data(), 1),
                      Catch::StartsWith(expect + " (the reverse strand's scratch file): "));
  }
  CHECK(fs::is_empty(dir.file("")));  // removed with the object
  CHECK_THROWS_WITH(io::H5File::create_scratch(dir.file("no/o.h5"), "rc", "the reverse strand's scratch file"),
                    Catch::Contains("no/o.h5.rc.tmp." + pid + ": cannot create the reverse strand's scratch file: "
                                    "No such file or directory"));
  // No file output, standard output or a special file: in the temporary directory, never beside
  // /dev/stdout or a FIFO.
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir ? old_tmpdir : "";
  REQUIRE(::setenv("TMPDIR", dir.file("").c_str(), 1) == 0);
  REQUIRE(mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  for (const std::string& output : {std::string(), std::string("-"), std::string("/dev/null"), dir.file("fifo")}) {
    INFO("output '" << output << "'");
    auto s = io::H5File::create_scratch(output, "rc", "the reverse strand's scratch file");
    CHECK(fs::exists(dir.file("mambadna.rc.tmp." + pid)));
  }
  if (old_tmpdir) ::setenv("TMPDIR", saved.c_str(), 1);
  else ::unsetenv("TMPDIR");
  CHECK_FALSE(fs::exists(dir.file("mambadna.rc.tmp." + pid)));
}
