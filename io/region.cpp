#include "io/region.h"

#include <htslib/hts.h>
#include <htslib/kseq.h>
#include <htslib/kstring.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cctype>
#include <cstring>
#include <memory>

#include "io/error.h"

namespace mambadna::io {

namespace {

// hts_parse_region resolves names through a callback. Without a contig list we accept every name
// except the whole unbraced text when it has a ':', so that "chr1:100-200" is split at its last ':'
// (htslib asks for the whole text first, then for the part before the colon).
struct NameSink {
  const char* whole;
  std::string name;
};

int accept_name(void* data, const char* name) {
  auto* sink = static_cast<NameSink*>(data);
  if (std::strcmp(name, sink->whole) == 0 && std::strchr(name, ':') != nullptr) return -1;
  sink->name = name;
  return 0;
}

[[noreturn]] void bad_region(const std::string& text, const std::string& why) {
  throw UsageError("invalid region '" + text + "': " + why +
                   " (expected CHR, CHR:BEG or CHR:BEG-END, 1-based inclusive; "
                   "write {NAME} for a contig name that contains ':' or ',')");
}

// Explains why htslib refused `text`; only called after hts_parse_region failed.
[[noreturn]] void explain_region_failure(const std::string& text) {
  const char* s = text.c_str();
  const char* colon = nullptr;
  if (s[0] == '{') {
    const char* close = std::strchr(s, '}');
    if (!close) bad_region(text, "no closing '}'");
    if (close[1] != '\0' && close[1] != ':') bad_region(text, "unexpected text after '}'");
    colon = close[1] == ':' ? close + 1 : nullptr;
  } else {
    colon = std::strrchr(s, ':');
  }
  if (colon) {
    char* after = nullptr;
    long long beg = hts_parse_decimal(colon + 1, &after, HTS_PARSE_THOUSANDS_SEP);
    if (after != colon + 1 && *after == '-') {
      char* after_end = nullptr;
      long long end = hts_parse_decimal(after + 1, &after_end, HTS_PARSE_THOUSANDS_SEP);
      if (after_end != after + 1 && *after_end == '\0') {
        if (beg <= 0) bad_region(text, "positions are 1-based, the start must be at least 1");
        if (beg > end)
          bad_region(text, "the start (" + std::to_string(beg) + ") is after the end (" +
                               std::to_string(end) + ")");
      }
    }
  }
  bad_region(text, "cannot parse the coordinates");
}

// Whether `s` is UTF-8 text (well-formed: no overlong forms, surrogates or code points past
// U+10FFFF), as the outputs' string datasets declare their names to be.
bool is_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool is_blank(const std::string& line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

std::vector<std::string> split_columns(const std::string& line) {
  std::vector<std::string> cols;
  if (line.find('\t') != std::string::npos) {
    size_t start = 0;
    for (;;) {
      size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
  } else {
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j > i) cols.push_back(line.substr(i, j - i));
      i = j;
    }
  }
  return cols;
}

int64_t parse_bed_coordinate(const std::string& path, int64_t line_no, const char* what,
                             const std::string& text) {
  auto fail = [&](const std::string& why) -> int64_t {
    throw InputError(path + ": line " + std::to_string(line_no) + ": " + why);
  };
  if (!text.empty() && text[0] == '-') fail(std::string(what) + " '" + text + "' is negative");
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    fail(std::string(what) + " '" + text + "' is not a non-negative integer");
  return v;
}

}  // namespace

namespace {

// A comma in a region's positions is a thousands separator (1,000,000), as samtools reads them;
// anywhere else (chr1:1-60,1 or chr1,chr2: a list, as bcftools takes one) it is an error,
// where htslib would read the digits as one number or the list as one contig's name. A name
// in braces may hold commas.
void check_commas(const std::string& text) {
  const size_t close = text[0] == '{' ? text.find('}') : std::string::npos;
  const size_t colon = text.rfind(':');
  // Where the positions start: after "{NAME}:" or the last ':' (past the text when there is none).
  size_t positions = colon == std::string::npos ? text.size() : colon + 1;
  if (close != std::string::npos) positions = close + 1 < text.size() && text[close + 1] == ':' ? close + 2 : close + 1;
  auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
  for (size_t i = text.find(','); i != std::string::npos; i = text.find(',', i + 1)) {
    if (close != std::string::npos && i < close) continue;
    if (i < positions || !digit(i - 1) || !digit(i + 1) || !digit(i + 2) || !digit(i + 3) || digit(i + 4))
      bad_region(text, "a comma that is no thousands separator: give one region per -r (-r A -r B), "
                       "or a BED file with -R");
  }
  // htslib's parse wraps a position past 2^63 round (99999999999999999999 read as
  // 7766279631452241919, 1e19 as a start below 1): each position's value, with the decimals,
  // exponent and k/M/G suffix htslib takes, must stay under it.
  for (size_t i = positions; i < text.size();) {
    std::string num;  // up to the '-' between the positions (not an exponent's sign)
    size_t j = i;
    for (; j < text.size() && !(text[j] == '-' && j > i && text[j - 1] != 'e' && text[j - 1] != 'E'); ++j)
      if (text[j] != ',') num += text[j];
    if (!num.empty() && (std::isdigit(static_cast<unsigned char>(num[0])) || num[0] == '.')) {
      char* after = nullptr;
      long double v = std::strtold(num.c_str(), &after);
      const char suffix = after ? *after : '\0';
      v *= suffix == 'k' || suffix == 'K' ? 1e3L : suffix == 'm' || suffix == 'M' ? 1e6L : suffix == 'g' || suffix == 'G' ? 1e9L : 1;
      if (v >= 9.2e18L) bad_region(text, "a position past any contig's length (2^63 or more)");
    }
    i = j + 1;
  }
}

}  // namespace

Region parse_region(const std::string& text) {
  if (text.empty()) bad_region(text, "empty region");
  NameSink sink{text.c_str(), {}};
  int tid = -1;
  hts_pos_t beg = 0, end = 0;
  check_commas(text);
  const char* rest = hts_parse_region(text.c_str(), &tid, &beg, &end, accept_name, &sink,
                                      HTS_PARSE_THOUSANDS_SEP);
  if (!rest || *rest != '\0') explain_region_failure(text);
  if (beg < 0) bad_region(text, "positions are 1-based, the start must be at least 1");
  if (sink.name.empty()) bad_region(text, "empty contig name");
  Region r;
  r.contig = sink.name;
  r.begin = beg;
  r.end = end >= HTS_POS_MAX ? kContigEnd : int64_t(end);
  if (text[0] != '{' && text.find(':') != std::string::npos) r.whole = text;
  return r;
}

RegionsOverlap parse_regions_overlap(const std::string& arg) {
  std::string word;
  for (char c : arg) word += char(std::tolower(static_cast<unsigned char>(c)));
  if (word == "pos" || word == "0") return RegionsOverlap::pos;
  if (word == "record" || word == "1") return RegionsOverlap::record;
  if (word == "variant" || word == "2") return RegionsOverlap::variant;
  throw UsageError("--regions-overlap " + arg + ": choose pos (0), record (1) or variant (2)");
}

std::string describe_region(const Region& region) {
  std::string s = region.whole.empty() ? format_region(region) : region.whole;  // -r text as typed
  if (region.line > 0) s += " (BED line " + std::to_string(region.line) + ")";
  return s;
}

std::vector<Region> regions_present(const std::string& path, const std::vector<Region>& regions,
                                    const ContigLength& contig_length, const RegionsSkipped& on_skipped,
                                    bool none_ok) {
  std::vector<Region> present, absent, past_end;
  for (Region r : regions) {
    if (!r.whole.empty()) {  // "a:b:1" is contig "a:b" from 1, or the contig "a:b:1"
      const bool whole = contig_length(r.whole) >= 0;
      if (whole && contig_length(r.contig) >= 0)
        throw UsageError(path + ": region '" + r.whole + "' is ambiguous: write {" + r.whole +
                         "} for that contig, or {" + r.contig + "}" + r.whole.substr(r.contig.size()) +
                         " for a range of contig '" + r.contig + "'");
      if (whole) {
        r.contig = r.whole;
        r.begin = 0;
        r.end = kContigEnd;
      }
    }
    const int64_t len = contig_length(r.contig);
    if (len < 0) {
      absent.push_back(r);  // with `whole`, for the message
      continue;
    }
    r.whole.clear();  // read one way, for this input
    // (an empty region at the contig's end is there; one past it, empty or not, is not)
    if (r.begin > len || (r.begin == len && r.end > r.begin)) past_end.push_back(r);
    else present.push_back(r);
  }
  if (present.empty() && !regions.empty() && !none_ok) {
    auto unknown = [&](const Region& r) { return "region '" + describe_region(r) + "': unknown contig '" + r.contig + "'"; };
    auto past = [&](const Region& r) {
      return "region '" + describe_region(r) + "' starts after the end of contig '" + r.contig + "' (" +
             std::to_string(contig_length(r.contig)) + " bases)";
    };
    const std::string others = regions.size() > 1 ? " (and no other region is there)" : "";
    if (past_end.empty()) throw InputError(path + ": " + unknown(absent[0]) + others);
    if (absent.empty()) throw InputError(path + ": " + past(past_end[0]) + others);
    throw InputError(path + ": no region is there: " + unknown(absent[0]) + "; " + past(past_end[0]));
  }
  if (on_skipped) {
    if (!absent.empty()) on_skipped(path, absent, RegionSkip::absent_contig);
    if (!past_end.empty()) on_skipped(path, past_end, RegionSkip::past_end);
  }
  return present;
}

std::string region_name(const Region& region, int64_t begin, int64_t end) {
  if (!region.name.empty()) return region.name;
  return format_region(Region{region.contig, begin, end, {}});  // {x:1-5}:1-300 reads back as a region
}

std::string format_region(const Region& region) {
  std::string s;
  if (region.contig.find_first_of(":,") != std::string::npos) {
    s.append("{").append(region.contig).append("}");
  } else {
    s = region.contig;
  }
  if (region.begin == 0 && region.end == kContigEnd) return s;
  s.append(":").append(std::to_string(region.begin + 1));
  if (region.end != kContigEnd) s.append("-").append(std::to_string(region.end));
  return s;
}

std::vector<Region> read_bed(const std::string& path) {
  struct stat st {};
  if (path != "-" && ::stat(path.c_str(), &st) != 0)  // "-": standard input, as htslib reads it
    throw InputError(path + ": cannot open BED file: " + std::strerror(errno));
  std::unique_ptr<htsFile, decltype(&hts_close)> fp(hts_open(path.c_str(), "r"), hts_close);
  if (!fp) throw InputError(path + ": cannot open BED file: " + std::strerror(errno));
  kstring_t line = KS_INITIALIZE;
  std::vector<Region> regions;
  int64_t line_no = 0;
  int rc;
  try {
    while ((rc = hts_getline(fp.get(), KS_SEP_LINE, &line)) >= 0) {
      ++line_no;
      std::string s(line.s, line.l);
      if (!s.empty() && s.back() == '\r') s.pop_back();
      if (is_blank(s) || s[0] == '#' || s.rfind("track", 0) == 0 || s.rfind("browser", 0) == 0)
        continue;
      std::vector<std::string> cols = split_columns(s);
      if (cols.size() < 3)
        throw InputError(path + ": line " + std::to_string(line_no) +
                         ": expected at least 3 columns (chrom, start, end), found " +
                         std::to_string(cols.size()));
      if (cols[0].empty()) throw InputError(path + ": line " + std::to_string(line_no) + ": empty chrom");
      Region r;
      r.contig = cols[0];
      r.line = line_no;
      r.begin = parse_bed_coordinate(path, line_no, "start", cols[1]);
      r.end = parse_bed_coordinate(path, line_no, "end", cols[2]);
      if (r.begin > r.end)
        throw InputError(path + ": line " + std::to_string(line_no) + ": start " +
                         std::to_string(r.begin) + " is after end " + std::to_string(r.end));
      if (cols.size() > 3 && cols[3] != ".") r.name = cols[3];  // '.': no name, as in bedtools
      if (!is_utf8(r.name))
        throw InputError(path + ": line " + std::to_string(line_no) +
                         ": the name (column 4) is not UTF-8 text, as the outputs store names (a "
                         "Latin-1 file? convert it: iconv -f latin1 -t utf-8)");
      if (cols.size() > 5) {
        if (cols[5] != "+" && cols[5] != "-" && cols[5] != ".")
          throw InputError(path + ": line " + std::to_string(line_no) + ": strand '" + cols[5] +
                           "' is not +, - or .");
        r.strand = cols[5][0];
      }
      regions.push_back(std::move(r));
    }
  } catch (...) {
    ks_free(&line);
    throw;
  }
  ks_free(&line);
  if (rc < -1) throw InputError(path + ": read error after line " + std::to_string(line_no));
  // An empty list means "everything" to the readers: a BED file with no region (an empty
  // selection, a failed step upstream) must not widen a run to the whole input.
  if (regions.empty())
    throw InputError(path + ": no regions in this BED file (" +
                     (line_no == 0 ? std::string("it is empty")
                                   : std::to_string(line_no) + (line_no == 1 ? " line" : " lines") +
                                         ", none a region") +
                     ")");
  return regions;
}

RegionCover::RegionCover(const std::vector<Region>& regions) {
  for (const Region& r : regions)
    if (r.begin < r.end) by_contig_[r.contig].emplace_back(r.begin, r.end);
  for (auto& [contig, iv] : by_contig_) {
    std::sort(iv.begin(), iv.end());
    size_t k = 0;  // merged so far: iv[0, k)
    for (const auto& x : iv) {
      if (k > 0 && x.first <= iv[k - 1].second) iv[k - 1].second = std::max(iv[k - 1].second, x.second);
      else iv[k++] = x;
    }
    iv.resize(k);
  }
}

bool RegionCover::contains(const std::string& contig, int64_t pos) const {
  const auto it = by_contig_.find(contig);
  if (it == by_contig_.end()) return false;
  const auto& iv = it->second;
  // The last interval starting at or before pos.
  auto after = std::upper_bound(iv.begin(), iv.end(), pos, [](int64_t p, const auto& x) { return p < x.first; });
  return after != iv.begin() && pos < std::prev(after)->second;
}

bool RegionCover::overlaps(const std::string& contig, int64_t begin, int64_t end) const {
  if (end <= begin) return contains(contig, begin);
  const auto it = by_contig_.find(contig);
  if (it == by_contig_.end()) return false;
  const auto& iv = it->second;
  // Disjoint and sorted: the last interval starting before `end` ends last of those that do.
  auto after = std::lower_bound(iv.begin(), iv.end(), end, [](const auto& x, int64_t e) { return x.first < e; });
  return after != iv.begin() && std::prev(after)->second > begin;
}

}  // namespace mambadna::io
